import { describe, expect, it } from 'vitest';
import { CachedSource, metrics, observeReplica, StepwiseMetrics, type QueueSnapshot, type ReplicaSnapshot } from '../../src/metrics/index.js';
import { snapshot } from '../helpers/metrics.js';

function fresh(options: ConstructorParameters<typeof StepwiseMetrics>[0] = {}): StepwiseMetrics {
  return new StepwiseMetrics({ processMetrics: false, ...options });
}

describe('the instruments', () => {
  it('are all named stepwise_*, with help text, on a registry of their own', async () => {
    const m = fresh();
    const all = await m.registry.getMetricsAsJSON();
    expect(all.length).toBeGreaterThan(25);
    for (const metric of all) {
      expect(metric.name).toMatch(/^stepwise_[a-z0-9_]+$/);
      expect(metric.help.length, metric.name).toBeGreaterThan(20);
      if (String(metric.type) === 'counter') expect(metric.name, 'counters end in _total').toMatch(/_total$/);
    }
    // The process-wide instance adds prom-client's process metrics under their standard names, not to the global registry.
    const names = (await metrics.registry.getMetricsAsJSON()).map((x) => x.name);
    expect(names).toContain('process_cpu_seconds_total');
    expect(names).toContain('nodejs_eventloop_lag_p99_seconds');
  });

  it('count runs once per first start and per outcome, grouped per flush, with no organization label by default', async () => {
    const m = fresh();
    m.recordRunsStarted([{ firstRun: true, organizationId: 'o1' }, { firstRun: false, organizationId: 'o1' }, { firstRun: true }]);
    m.recordRunsFinished(
      [
        { jobId: 'a', status: 'COMPLETED' },
        { jobId: 'b', status: 'FAILED' },
        { jobId: 'c', status: 'COMPLETED' },
      ],
      () => {
        throw new Error('organizations are not read while labels are off');
      },
    );
    const s = await snapshot(m.registry);
    expect(s.value('stepwise_runs_started_total')).toBe(2);
    expect(s.labelSets('stepwise_runs_finished_total')).toEqual([{ status: 'COMPLETED' }, { status: 'FAILED' }]);
    expect(s.value('stepwise_runs_finished_total', { status: 'COMPLETED' })).toBe(2);
  });

  it('label the per-run counters by organization when switched on', async () => {
    const m = fresh({ organizationLabels: true });
    const orgOf = new Map([
      ['a', 'o1'],
      ['b', 'o2'],
      ['c', 'o1'],
    ]);
    m.recordRunsStarted([{ firstRun: true, organizationId: 'o1' }, { firstRun: true, organizationId: 'o2' }, { firstRun: true, organizationId: 'o1' }]);
    m.recordRunsFinished(
      [
        { jobId: 'a', status: 'COMPLETED' },
        { jobId: 'b', status: 'COMPLETED' },
        { jobId: 'c', status: 'CANCELLED' },
      ],
      (id) => orgOf.get(id),
    );
    const s = await snapshot(m.registry);
    expect(s.value('stepwise_runs_started_total', { organization: 'o1' })).toBe(2);
    expect(s.value('stepwise_runs_started_total', { organization: 'o2' })).toBe(1);
    expect(s.value('stepwise_runs_finished_total', { status: 'COMPLETED', organization: 'o2' })).toBe(1);
    expect(s.value('stepwise_runs_finished_total', { status: 'CANCELLED', organization: 'o1' })).toBe(1);
    m.setOrganizationLabels(false);
    m.recordRunsStarted([{ firstRun: true, organizationId: 'o1' }]);
    const off = await snapshot(m.registry);
    expect(off.labelSets('stepwise_runs_started_total')).toEqual([{}]);
    expect(off.value('stepwise_runs_started_total')).toBe(1);
  });

  it('record steps by type and outcome, claims, flushes and requests with bounded labels', async () => {
    const m = fresh();
    m.observeStep('http', false, 0.2);
    m.observeStep('http', true, 3);
    m.observeStep('http', false, 0.4);
    m.recordClaim(0.004, 0, 0);
    m.recordClaim(0.006, 500, 2);
    m.recordFlush(0.03, 40, 200);
    m.observeHttp('/v1/jobs/:id', 'GET', 200, 0.002);
    m.observeHttp(undefined, 'PROPFIND', 404, 0.001);
    const s = await snapshot(m.registry);
    expect(s.value('stepwise_step_duration_seconds_count', { type: 'http', outcome: 'completed' })).toBe(2);
    expect(s.value('stepwise_step_duration_seconds_sum', { type: 'http', outcome: 'completed' })).toBeCloseTo(0.6);
    expect(s.value('stepwise_step_duration_seconds_bucket', { type: 'http', outcome: 'failed', le: '5' })).toBe(1);
    expect(s.value('stepwise_step_duration_seconds_bucket', { type: 'http', outcome: 'failed', le: '2.5' })).toBe(0);
    expect(s.value('stepwise_claim_jobs_count')).toBe(2);
    expect(s.value('stepwise_claim_jobs_bucket', { le: '0' })).toBe(1);
    expect(s.value('stepwise_claim_jobs_sum')).toBe(500);
    expect(s.value('stepwise_lease_takeovers_total')).toBe(2);
    expect(s.value('stepwise_flush_rows_sum')).toBe(200);
    expect(s.labelSets('stepwise_http_request_duration_seconds_count')).toEqual([
      { route: '/v1/jobs/:id', method: 'GET', status: '200' },
      { route: 'unmatched', method: 'OTHER', status: '404' },
    ]);
  });

  it('record maintenance: every run by result, what a completed one did by kind', async () => {
    let now = 1_700_000_000_000;
    const m = fresh({ now: () => now });
    m.recordMaintenance('skipped');
    // Never completed here: no sample (not a 0 that reads as 1970).
    expect((await snapshot(m.registry)).has('stepwise_maintenance_last_success_timestamp_seconds')).toBe(false);
    const rows = {
      archived_stream_rows: 120,
      deleted_stream_rows: 0,
      dropped_partitions: 1,
      expired_archives: 0,
      expired_jobs: 3,
      expired_stream_rows: 0,
      expired_phi_audit_rows: 0,
      archived_results: 0,
      deleted_screenshots: 0,
      deleted_blobs: 2,
      deleted_web_sessions: 0,
    };
    m.recordMaintenance('completed', { seconds: 12.5, rows });
    now += 1000;
    const s = await snapshot(m.registry);
    expect(s.value('stepwise_maintenance_runs_total', { result: 'skipped' })).toBe(1);
    expect(s.value('stepwise_maintenance_runs_total', { result: 'completed' })).toBe(1);
    expect(s.value('stepwise_maintenance_rows_total', { kind: 'archived_stream_rows' })).toBe(120);
    expect(s.value('stepwise_maintenance_rows_total', { kind: 'expired_jobs' })).toBe(3);
    // Kinds with nothing done add no series.
    expect(s.labelSets('stepwise_maintenance_rows_total').map((l) => l.kind).sort()).toEqual(['archived_stream_rows', 'deleted_blobs', 'dropped_partitions', 'expired_jobs']);
    expect(s.value('stepwise_maintenance_last_duration_seconds')).toBe(12.5);
    expect(s.value('stepwise_maintenance_last_success_timestamp_seconds')).toBe(1_700_000_000);
  });
});

describe('scrape-time sources', () => {
  it('a cached source measures once per interval, shares a call in flight, and does not cache a failure', async () => {
    let now = 0;
    let calls = 0;
    let fail = false;
    const errors: unknown[] = [];
    let resolveCall!: () => void;
    const source = new CachedSource(
      () =>
        new Promise<number>((resolve, reject) => {
          calls++;
          resolveCall = () => (fail ? reject(new Error('down')) : resolve(calls));
        }),
      5_000,
      () => now,
      (err) => errors.push(err),
    );
    const first = source.get();
    const second = source.get();
    resolveCall();
    expect(await first).toBe(1);
    expect(await second).toBe(1);
    expect(calls).toBe(1);
    now = 4_999;
    expect(await source.get()).toBe(1);
    now = 5_000;
    const third = source.get();
    resolveCall();
    expect(await third).toBe(2);
    now = 10_000;
    fail = true;
    const failed = source.get();
    resolveCall();
    expect(await failed).toBeUndefined();
    expect(errors).toHaveLength(1);
    fail = false;
    const again = source.get();
    resolveCall();
    expect(await again).toBe(4);
  });

  it('queue and pool gauges read their sources at the scrape; no source, no sample', async () => {
    let now = 0;
    const m = fresh({ now: () => now });
    expect((await snapshot(m.registry)).has('stepwise_queue_depth')).toBe(false);
    expect((await snapshot(m.registry)).has('stepwise_queue_oldest_runnable_age_seconds')).toBe(false);
    let measured = 0;
    const queue: QueueSnapshot = { runnable: 7, running: 3, delayed: 2, oldestRunnableAgeSeconds: 42.5 };
    const stopQueue = m.watchQueue(async () => {
      measured++;
      return queue;
    });
    const pool = { total: 4, idle: 1, waiting: 2, max: 10 };
    const stopPool = m.watchPool('primary', () => pool);
    const s = await snapshot(m.registry);
    expect(s.value('stepwise_queue_depth', { state: 'runnable' })).toBe(7);
    expect(s.value('stepwise_queue_depth', { state: 'running' })).toBe(3);
    expect(s.value('stepwise_queue_depth', { state: 'delayed' })).toBe(2);
    expect(s.value('stepwise_queue_oldest_runnable_age_seconds')).toBe(42.5);
    // Both queue gauges, one measurement.
    expect(measured).toBe(1);
    expect(s.value('stepwise_db_pool_in_use_connections', { pool: 'primary' })).toBe(3);
    expect(s.value('stepwise_db_pool_idle_connections', { pool: 'primary' })).toBe(1);
    expect(s.value('stepwise_db_pool_waiting_clients', { pool: 'primary' })).toBe(2);
    expect(s.value('stepwise_db_pool_max_connections', { pool: 'primary' })).toBe(10);
    await snapshot(m.registry);
    expect(measured).toBe(1);
    now += 5_000;
    await snapshot(m.registry);
    expect(measured).toBe(2);
    stopQueue();
    stopPool();
    const after = await snapshot(m.registry);
    expect(after.has('stepwise_queue_depth')).toBe(false);
    expect(after.has('stepwise_db_pool_in_use_connections')).toBe(false);
  });

  it('observeReplica reports the router’s figures at every scrape, and stops when told', async () => {
    let state: ReplicaSnapshot = { configured: true, lagSeconds: 0.8, usingReplica: true, readsOnReplica: 40, readsOnPrimary: 3 };
    const stop = observeReplica(() => state);
    try {
      let s = await snapshot();
      expect(s.value('stepwise_replica_configured')).toBe(1);
      expect(s.value('stepwise_replica_lag_seconds')).toBe(0.8);
      expect(s.value('stepwise_replica_in_use')).toBe(1);
      expect(s.value('stepwise_replica_reads_total', { target: 'replica' })).toBe(40);
      expect(s.value('stepwise_replica_reads_total', { target: 'primary' })).toBe(3);
      state = { configured: true, lagSeconds: null, usingReplica: false, readsOnReplica: 41, readsOnPrimary: 9 };
      s = await snapshot();
      expect(s.has('stepwise_replica_lag_seconds')).toBe(false);
      expect(s.value('stepwise_replica_in_use')).toBe(0);
      expect(s.value('stepwise_replica_reads_total', { target: 'replica' })).toBe(41);
      expect(s.value('stepwise_replica_reads_total', { target: 'primary' })).toBe(9);
      // The Prometheus text names them as the dashboard does.
      expect(await metrics.render()).toMatch(/^stepwise_replica_reads_total\{target="primary"\} 9$/m);
    } finally {
      stop();
    }
    const s = await snapshot();
    expect(s.has('stepwise_replica_configured')).toBe(false);
    expect(s.has('stepwise_replica_reads_total')).toBe(false);
  });

  it('a source that throws counts an error and leaves no sample', async () => {
    const m = fresh();
    m.watchPool('broken', () => {
      throw new Error('pool gone');
    });
    m.observeReplica(() => {
      throw new Error('router gone');
    });
    m.watchQueue(() => Promise.reject(new Error('statement timeout')));
    const s = await snapshot(m.registry);
    expect(s.has('stepwise_db_pool_in_use_connections')).toBe(false);
    expect(s.has('stepwise_replica_configured')).toBe(false);
    expect(s.has('stepwise_queue_depth')).toBe(false);
    // Once per scrape each, however many gauges read the source.
    expect(s.value('stepwise_metrics_source_errors_total', { source: 'pool' })).toBe(1);
    expect(s.value('stepwise_metrics_source_errors_total', { source: 'replica' })).toBe(1);
    expect(s.value('stepwise_metrics_source_errors_total', { source: 'queue' })).toBe(1);
  });
});
