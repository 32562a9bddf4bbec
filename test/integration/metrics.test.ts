import { mkdtemp, rm } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FsBlobStore } from '../../src/blob/index.js';
import { PostgresDb, type Db, type QueryOptions } from '../../src/db/index.js';
import { defineWorkflow, startRuns, Worker } from '../../src/engine/index.js';
import { maintenanceFigures, MAINTENANCE_LEASE, runMaintenance } from '../../src/lifecycle/maintain.js';
import { metrics, StepwiseMetrics } from '../../src/metrics/index.js';
import { claimJobs, tryAcquireMaintenanceLease, releaseMaintenanceLease } from '../../src/store/index.js';
import { measureQueueDepth } from '../../src/store/queue-depth.js';
import { startOpsServer } from '../../src/cli/observability.js';
import { buildOpsApp } from '../../src/api/ops-server.js';
import { client, createTestApp, expectError } from '../helpers/api.js';
import { backend, createTestDb, type TestDb } from '../helpers/db.js';
import { seedOrg, silentLogger, waitForJob, workerConfig } from '../helpers/fixtures.js';
import { startTestServer, type TestServer } from '../helpers/http-server.js';
import { delta, snapshot } from '../helpers/metrics.js';

const TOKEN = 'metrics-token-0123456789abcdef';

let t: TestDb;
let orgId: string;
let key: string;

beforeAll(async () => {
  t = await createTestDb();
  ({ organizationId: orgId, key } = await seedOrg(t.db));
});

afterAll(async () => {
  await t?.close();
});

async function until(what: string, probe: () => Promise<boolean> | boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** `base`, counting the claim statements it runs (store/queue.ts runs each plain claim as the prepared `stepwise_claim`). */
function countingClaims(base: Db): { db: Db; claims: () => number } {
  let claims = 0;
  const query: Db['query'] = async <R>(text: string, params?: readonly unknown[], options?: QueryOptions) => {
    const result = await base.query<R>(text, params, options);
    if (options?.name === 'stepwise_claim') claims++;
    return result;
  };
  const db = new Proxy(base, {
    get(target, prop, receiver) {
      if (prop === 'query') return query;
      const value: unknown = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { db, claims: () => claims };
}

async function streamRowCount(jobIds: string[]): Promise<number> {
  const { rows } = await t.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM stepwise.execution_log WHERE job_id = ANY($1::uuid[])`, [jobIds]);
  return rows[0]!.n;
}

describe('a worker moves its metrics by exactly the work it did', () => {
  it('runs, outcomes, step durations by type, claims and flushed rows', async () => {
    const ok = await defineWorkflow(t.db, orgId, {
      name: 'three steps',
      definition: {
        steps: [
          { id: 'shape', type: 'transform', expression: '{ "n": input.n * 2 }' },
          { id: 'note', type: 'log', message: 'n is {{ steps.shape.n }}' },
          { id: 'nothing', type: 'noop' },
        ],
      },
    });
    const bad = await defineWorkflow(t.db, orgId, {
      name: 'fails at its second step',
      definition: { steps: [{ id: 'first', type: 'noop' }, { id: 'boom', type: 'transform', expression: '$error("boom")' }] },
    });
    const N = 6;
    const F = 2;
    const counting = countingClaims(t.db);
    const before = await snapshot();
    const worker = new Worker(counting.db, workerConfig(), silentLogger, 'metrics-worker');
    await worker.start();
    let ids: string[];
    try {
      const good = await startRuns(t.db, orgId, ok.id, Array.from({ length: N }, (_, i) => ({ input: { n: i } })));
      const failing = await startRuns(t.db, orgId, bad.id, Array.from({ length: F }, () => ({})));
      ids = [...good, ...failing].map((r) => r.id);
      const jobs = await Promise.all(ids.map((id) => waitForJob(t.db, orgId, id)));
      expect(jobs.map((j) => j.status).sort()).toEqual([...Array(N).fill('COMPLETED'), ...Array(F).fill('FAILED')].sort());
    } finally {
      await worker.stop();
    }
    const after = await snapshot();
    const d = (name: string, labels: Record<string, string> = {}) => delta(before, after, name, labels);

    expect(d('stepwise_runs_started_total')).toBe(N + F);
    expect(d('stepwise_runs_finished_total', { status: 'COMPLETED' })).toBe(N);
    expect(d('stepwise_runs_finished_total', { status: 'FAILED' })).toBe(F);
    expect(d('stepwise_runs_finished_total')).toBe(N + F);

    const steps = (type: string, outcome: string) => d('stepwise_step_duration_seconds_count', { type, outcome });
    expect(steps('transform', 'completed')).toBe(N);
    expect(steps('log', 'completed')).toBe(N);
    expect(steps('noop', 'completed')).toBe(N + F);
    expect(steps('transform', 'failed')).toBe(F);
    expect(d('stepwise_step_duration_seconds_count')).toBe(3 * N + 2 * F);
    expect(d('stepwise_step_duration_seconds_sum')).toBeGreaterThanOrEqual(0);
    // The same count step_metrics keeps in the database.
    const { rows } = await t.db.query<{ n: number }>(
      `SELECT coalesce(sum(executions), 0)::int AS n FROM stepwise.step_metrics WHERE workflow_id = ANY($1::uuid[]) AND period = 'DAY'`,
      [[ok.id, bad.id]],
    );
    expect(d('stepwise_step_duration_seconds_count')).toBe(rows[0]!.n);

    // One observation per claim round, each one claim statement here (no concurrency limits or keys).
    expect(counting.claims()).toBeGreaterThan(0);
    expect(d('stepwise_claim_duration_seconds_count')).toBe(counting.claims());
    expect(d('stepwise_claim_jobs_count')).toBe(counting.claims());
    expect(d('stepwise_claim_jobs_sum')).toBe(N + F);

    // Every committed stream row, once.
    expect(d('stepwise_flush_rows_sum')).toBe(await streamRowCount(ids));
    expect(d('stepwise_flush_rows_sum')).toBe(worker.stats.rowsWritten);
    expect(d('stepwise_flush_duration_seconds_count')).toBe(worker.stats.flushes);
    expect(d('stepwise_flush_jobs_count')).toBe(worker.stats.flushes);
    expect(d('stepwise_flush_jobs_sum')).toBeGreaterThanOrEqual(N + F);
    expect(d('stepwise_flush_failures_total')).toBe(0);
    expect(d('stepwise_fenced_jobs_total')).toBe(0);
    expect(d('stepwise_lease_takeovers_total')).toBe(0);
  });

  it('a takeover after an expired lease, and the old owner’s fenced writes', async () => {
    let held: ServerResponse | undefined;
    let calls = 0;
    const srv: TestServer = await startTestServer((req, res) => {
      if (!req.url?.startsWith('/slow')) return false;
      calls++;
      // The first call (worker A's) is held until the test lets it go; later ones answer at once.
      if (calls === 1) {
        held = res;
        return true;
      }
      return false;
    });
    const wf = await defineWorkflow(t.db, orgId, {
      name: 'taken over',
      definition: { steps: [{ id: 'call', type: 'http', method: 'GET', url: `${srv.url}/slow` }, { id: 'after', type: 'noop' }] },
    });
    const before = await snapshot();
    // A's lease outlives the test, so no heartbeat renews it after the test expires it.
    const a = new Worker(t.db, workerConfig({ leaseMs: 60_000 }), silentLogger, 'worker-a');
    await a.start();
    let b: Worker | undefined;
    try {
      const [run] = await startRuns(t.db, orgId, wf.id, [{}]);
      const jobId = run!.id;
      // The http step has side effects: its STEP_STARTED (and the job's RUNNING) commit before the call.
      await until('A to be in the call', () => held !== undefined);
      const { rows } = await t.db.query<{ status: string }>(`SELECT status FROM stepwise.jobs WHERE id = $1`, [jobId]);
      expect(rows[0]!.status).toBe('RUNNING');
      await t.db.query(`UPDATE stepwise.job_queue SET locked_until = now() - interval '1 second' WHERE job_id = $1`, [jobId]);
      b = new Worker(t.db, workerConfig({ pollIntervalMs: 20 }), silentLogger, 'worker-b');
      await b.start();
      const job = await waitForJob(t.db, orgId, jobId);
      expect(job.status).toBe('COMPLETED');
      // A's call returns now; its flush finds the job taken and drops everything of it.
      held!.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      await until('A to drop the job', () => a.stats.fencedJobs === 1 && a.activeCount === 0);
    } finally {
      held?.end();
      await b?.stop();
      await a.stop();
      await srv.close();
    }
    const after = await snapshot();
    const d = (name: string, labels: Record<string, string> = {}) => delta(before, after, name, labels);
    expect(d('stepwise_lease_takeovers_total')).toBe(1);
    expect(d('stepwise_fenced_jobs_total')).toBe(1);
    expect(a.stats.fencedRows).toBeGreaterThan(0);
    expect(d('stepwise_fenced_rows_total')).toBe(a.stats.fencedRows);
    // One run: started once (B's claim resumed it), finished once (A's outcome was fenced).
    expect(d('stepwise_runs_started_total')).toBe(1);
    expect(d('stepwise_runs_finished_total', { status: 'COMPLETED' })).toBe(1);
    expect(d('stepwise_runs_finished_total')).toBe(1);
    // The step A ran counts (its row was appended before it was fenced), and B's run of it.
    expect(d('stepwise_step_duration_seconds_count', { type: 'http', outcome: 'completed' })).toBe(2);
  });

  it('organization labels, when switched on, split the per-run counters by organization', async () => {
    const other = await seedOrg(t.db, 'Other');
    const make = (org: string) => defineWorkflow(t.db, org, { name: 'labelled', definition: { steps: [{ id: 'n', type: 'noop' }] } });
    const [wfA, wfB] = await Promise.all([make(orgId), make(other.organizationId)]);
    metrics.setOrganizationLabels(true);
    try {
      const before = await snapshot();
      const worker = new Worker(t.db, workerConfig(), silentLogger);
      await worker.start();
      try {
        const a = await startRuns(t.db, orgId, wfA.id, [{}, {}, {}]);
        const b = await startRuns(t.db, other.organizationId, wfB.id, [{}]);
        await Promise.all(a.map((r) => waitForJob(t.db, orgId, r.id)));
        await waitForJob(t.db, other.organizationId, b[0]!.id);
      } finally {
        await worker.stop();
      }
      const after = await snapshot();
      expect(delta(before, after, 'stepwise_runs_started_total', { organization: orgId })).toBe(3);
      expect(delta(before, after, 'stepwise_runs_started_total', { organization: other.organizationId })).toBe(1);
      expect(delta(before, after, 'stepwise_runs_finished_total', { status: 'COMPLETED', organization: orgId })).toBe(3);
      expect(delta(before, after, 'stepwise_runs_finished_total', { status: 'COMPLETED', organization: other.organizationId })).toBe(1);
    } finally {
      metrics.setOrganizationLabels(false);
    }
    // Off again: no organization label on any series.
    const off = await snapshot();
    expect(off.labelSets('stepwise_runs_finished_total').every((l) => !('organization' in l))).toBe(true);
  });
});

describe('scrape-time figures', () => {
  it('queue depth by state and the oldest runnable age, measured at most every 5 s', async () => {
    const q = await createTestDb();
    try {
      const org = (await seedOrg(q.db)).organizationId;
      const wf = await defineWorkflow(q.db, org, { name: 'queued', definition: { steps: [{ id: 'n', type: 'noop' }] } });
      let now = 1_000_000;
      const m = new StepwiseMetrics({ processMetrics: false, now: () => now });
      m.watchQueue(() => measureQueueDepth(q.db));
      const depth = async (state: string) => (await snapshot(m.registry)).value('stepwise_queue_depth', { state });

      expect(await depth('runnable')).toBe(0);
      const runs = await startRuns(q.db, org, wf.id, [{}, {}, {}, {}, {}]);
      // Cached: the same figures until 5 s have passed.
      expect(await depth('runnable')).toBe(0);
      now += 5_000;
      expect(await depth('runnable')).toBe(5);

      await claimJobs(q.db, 'a-worker', 2, 60_000);
      await q.db.query(`UPDATE stepwise.job_queue SET run_at = now() + interval '1 hour' WHERE job_id = $1`, [runs[4]!.id]);
      await q.db.query(`UPDATE stepwise.job_queue SET run_at = now() - interval '90 seconds' WHERE job_id = $1`, [runs[3]!.id]);
      now += 5_000;
      const s = await snapshot(m.registry);
      expect(s.value('stepwise_queue_depth', { state: 'running' })).toBe(2);
      expect(s.value('stepwise_queue_depth', { state: 'delayed' })).toBe(1);
      expect(s.value('stepwise_queue_depth', { state: 'runnable' })).toBe(2);
      const age = s.value('stepwise_queue_oldest_runnable_age_seconds');
      expect(age).toBeGreaterThanOrEqual(90);
      expect(age).toBeLessThan(600);
    } finally {
      await q.close();
    }
  });

  it.runIf(backend === 'postgres')('a queue measurement past its budget leaves no sample and counts the failure', async () => {
    const m = new StepwiseMetrics({ processMetrics: false });
    m.watchQueue(() => measureQueueDepth(t.db, 50));
    let release!: () => void;
    const locked = new Promise<void>((resolve) => (release = resolve));
    let taken!: () => void;
    const holding = new Promise<void>((resolve) => (taken = resolve));
    // A transaction holding job_queue exclusively: the measurement waits, past its 50 ms budget.
    const holder = t.db.transaction(async (tx) => {
      await tx.query('LOCK TABLE stepwise.job_queue IN ACCESS EXCLUSIVE MODE');
      taken();
      await locked;
    });
    try {
      await holding;
      const s = await snapshot(m.registry);
      expect(s.has('stepwise_queue_depth')).toBe(false);
      expect(s.value('stepwise_metrics_source_errors_total', { source: 'queue' })).toBe(1);
    } finally {
      release();
      await holder;
    }
  });

  it.runIf(backend === 'postgres')('pool connections in use, idle and waiting, read from pg.Pool at the scrape', async () => {
    const db = new PostgresDb(t.url!, { poolSize: 1, role: 'test', logger: silentLogger });
    const stop = metrics.watchPool('under-test', () => db.poolStats());
    try {
      const pool = async () => {
        const s = await snapshot();
        const v = (name: string) => s.value(name, { pool: 'under-test' });
        return { inUse: v('stepwise_db_pool_in_use_connections'), idle: v('stepwise_db_pool_idle_connections'), waiting: v('stepwise_db_pool_waiting_clients'), max: v('stepwise_db_pool_max_connections') };
      };
      expect(await pool()).toEqual({ inUse: 0, idle: 0, waiting: 0, max: 1 });
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      let inside!: () => void;
      const entered = new Promise<void>((resolve) => (inside = resolve));
      const tx = db.transaction(async (q) => {
        await q.query('SELECT 1');
        inside();
        await gate;
      });
      await entered;
      expect(await pool()).toEqual({ inUse: 1, idle: 0, waiting: 0, max: 1 });
      const queued = db.query('SELECT 1');
      await until('the second caller to wait', () => db.poolStats().waiting === 1);
      expect(await pool()).toEqual({ inUse: 1, idle: 0, waiting: 1, max: 1 });
      release();
      await tx;
      await queued;
      expect(await pool()).toEqual({ inUse: 0, idle: 1, waiting: 0, max: 1 });
      // The scrape's own queue measurement takes a pooled connection: the pool's figures are read before it.
      const m = new StepwiseMetrics({ processMetrics: false });
      m.watchPool('primary', () => db.poolStats());
      m.watchQueue(() => measureQueueDepth(db));
      const s = await snapshot(m.registry);
      expect(s.value('stepwise_queue_depth', { state: 'runnable' })).toBeGreaterThanOrEqual(0);
      expect(s.has('stepwise_queue_depth')).toBe(true);
      expect([s.value('stepwise_db_pool_in_use_connections'), s.value('stepwise_db_pool_waiting_clients')]).toEqual([0, 0]);
    } finally {
      stop();
      await db.close();
    }
    expect((await snapshot()).labelSets('stepwise_db_pool_max_connections').some((l) => l.pool === 'under-test')).toBe(false);
  });

  it.runIf(backend === 'pglite')('PGlite: every statement’s wait for the connection is observed once', async () => {
    const before = await snapshot();
    for (let i = 0; i < 7; i++) await t.db.query('SELECT 1');
    await t.db.transaction(async (tx) => {
      await tx.query('SELECT 1');
      await tx.query('SELECT 2');
    });
    const after = await snapshot();
    // 7 statements and one transaction each queued once (statements inside the transaction hold the connection).
    expect(delta(before, after, 'stepwise_pglite_queue_wait_seconds_count')).toBe(8);
  });

  it.runIf(backend === 'postgres')('the LISTEN connection coming back counts one reconnect', async () => {
    const db = new PostgresDb(t.url!, { poolSize: 1, role: 'bench', logger: silentLogger });
    try {
      let reconnected = 0;
      const off = await db.listen('sw_metrics', () => undefined, { onReconnect: () => void reconnected++ });
      const before = await snapshot();
      const { rows } = await t.db.query<{ pid: number }>(
        `SELECT pid FROM pg_stat_activity WHERE application_name = 'stepwise-bench-listen' AND datname = current_database()`,
      );
      expect(rows).toHaveLength(1);
      await t.db.query('SELECT pg_terminate_backend($1)', [rows[0]!.pid]);
      await until('the listener to reconnect', () => reconnected === 1);
      expect(delta(before, await snapshot(), 'stepwise_listener_reconnects_total')).toBe(1);
      await off();
    } finally {
      await db.close();
    }
  });
});

describe('maintenance runs and rows', () => {
  it('counts a completed run with what it archived and deleted, a skipped run, and no dry run', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'stepwise-metrics-'));
    const blobs = new FsBlobStore(dir);
    try {
      // Everything finished so far is past the default 30-day hot window 60 days from now.
      const asOf = new Date(Date.now() + 60 * 86_400_000);
      let before = await snapshot();
      await runMaintenance(t.db, blobs, { asOf, dryRun: true });
      let after = await snapshot();
      expect(delta(before, after, 'stepwise_maintenance_runs_total')).toBe(0);

      before = after;
      const report = await runMaintenance(t.db, blobs, { asOf });
      after = await snapshot();
      expect(report.executionLog.rows).toBeGreaterThan(0);
      expect(delta(before, after, 'stepwise_maintenance_runs_total', { result: 'completed' })).toBe(1);
      for (const [kind, n] of Object.entries(maintenanceFigures(report))) {
        expect(delta(before, after, 'stepwise_maintenance_rows_total', { kind }), kind).toBe(n);
      }
      expect(after.value('stepwise_maintenance_last_success_timestamp_seconds')).toBeGreaterThan(Date.now() / 1000 - 60);

      before = after;
      expect(await tryAcquireMaintenanceLease(t.db, MAINTENANCE_LEASE, 'another-process', 60_000)).toBe(true);
      await expect(runMaintenance(t.db, blobs, { asOf })).rejects.toThrow(/another maintenance run holds the lease/);
      await releaseMaintenanceLease(t.db, MAINTENANCE_LEASE, 'another-process');
      after = await snapshot();
      expect(delta(before, after, 'stepwise_maintenance_runs_total', { result: 'skipped' })).toBe(1);
      expect(delta(before, after, 'stepwise_maintenance_runs_total')).toBe(1);
    } finally {
      await blobs.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('GET /metrics and request metrics', () => {
  it('is 404 like any unknown route while STEPWISE_METRICS_TOKEN is unset', async () => {
    const app = await createTestApp(t.db);
    try {
      const api = client(app, undefined);
      const res = await api.get('/metrics');
      const unknown = await api.get('/no-such-route');
      expectError(res, 404, 'NOT_FOUND');
      expect(res.body.error.message).toBe('no route GET /metrics');
      expect(Object.keys(res.body.error)).toEqual(Object.keys(unknown.body.error));
    } finally {
      await app.close();
    }
  });

  it('wants the token as a Bearer header: 401 without it or with another, the Prometheus text with it', async () => {
    const app = await createTestApp(t.db, undefined, { metricsToken: TOKEN });
    try {
      const res401 = await client(app, undefined).get('/metrics');
      expectError(res401, 401, 'UNAUTHORIZED');
      expect(res401.headers['www-authenticate']).toBe('Bearer realm="metrics"');
      expectError(await client(app, `${TOKEN}x`).get('/metrics'), 401, 'UNAUTHORIZED');
      // An API key is not the metrics token.
      expectError(await client(app, key).get('/metrics'), 401, 'UNAUTHORIZED');
      const ok = await client(app, TOKEN).get('/metrics');
      expect(ok.status).toBe(200);
      expect(ok.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
      expect(ok.headers['cache-control']).toBe('no-store');
      const text = ok.body as string;
      expect(text).toMatch(/^# HELP stepwise_runs_started_total /m);
      expect(text).toMatch(/^# TYPE stepwise_step_duration_seconds histogram$/m);
      // prom-client's process metrics, under their standard names.
      expect(text).toMatch(/^process_cpu_user_seconds_total /m);
      expect(text).toMatch(/^nodejs_heap_size_used_bytes /m);
    } finally {
      await app.close();
    }
  });

  it('records each request under its route template, method and status; rate-limited requests are counted', async () => {
    const app = await createTestApp(t.db, undefined, { rateLimit: { perSecond: 0.001, burst: 2 } });
    try {
      const api = client(app, key);
      const before = await snapshot();
      const missing = '00000000-0000-4000-8000-000000000001';
      expectError(await api.get(`/v1/jobs/${missing}`), 404, 'NOT_FOUND');
      expect((await api.get('/v1/workflows')).status).toBe(200);
      // The bucket (burst 2, refilled once in 1,000 s) is empty now.
      expectError(await api.get('/v1/workflows'), 429, 'RATE_LIMITED');
      expectError(await client(app, undefined).get('/nowhere/at/all'), 404, 'NOT_FOUND');
      const after = await snapshot();
      const count = (labels: Record<string, string>) => delta(before, after, 'stepwise_http_request_duration_seconds_count', labels);
      expect(count({ route: '/v1/jobs/:id', method: 'GET', status: '404' })).toBe(1);
      expect(count({ route: '/v1/workflows', method: 'GET', status: '200' })).toBe(1);
      expect(count({ route: '/v1/workflows', method: 'GET', status: '429' })).toBe(1);
      expect(count({ route: 'unmatched', method: 'GET', status: '404' })).toBe(1);
      expect(count({})).toBe(4);
      // Ids never become label values.
      expect(after.labelSets('stepwise_http_request_duration_seconds_count').some((l) => String(l.route).includes(missing))).toBe(false);
      expect(delta(before, after, 'stepwise_http_rate_limited_total')).toBe(1);
    } finally {
      await app.close();
    }
  });

  it('a worker process serves /metrics and the probes on STEPWISE_METRICS_PORT, and nothing else', async () => {
    const worker = new Worker(t.db, workerConfig(), silentLogger);
    await worker.start();
    const ops = await startOpsServer(
      { metricsPort: 0, metricsToken: TOKEN, host: '127.0.0.1' },
      { db: t.db, logger: silentLogger, version: 'test', workerLiveness: () => worker.liveness() },
    );
    try {
      const base = `http://127.0.0.1:${(ops!.server.address() as AddressInfo).port}`;
      const metricsRes = await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
      expect(metricsRes.status).toBe(200);
      expect(await metricsRes.text()).toMatch(/^stepwise_claim_jobs_count /m);
      expect((await fetch(`${base}/metrics`)).status).toBe(401);
      expect(await (await fetch(`${base}/health/live`)).json()).toEqual({ status: 'ok' });
      await until('the worker loop to go round', () => worker.liveness().lastRoundAt > 0);
      const ready = await fetch(`${base}/health/ready`);
      expect(ready.status).toBe(200);
      expect(((await ready.json()) as { checks: { name: string }[] }).checks.map((c) => c.name)).toEqual(['database', 'migrations', 'worker']);
      const other = await fetch(`${base}/v1/workflows`);
      expect(other.status).toBe(404);
      expect(((await other.json()) as { error: { code: string } }).error.code).toBe('NOT_FOUND');
    } finally {
      await ops?.close();
      await worker.stop();
    }
    // Without a token the port serves the probes and 404s /metrics.
    const bare = await buildOpsApp({ db: t.db, logger: silentLogger, version: 'test' });
    try {
      expect((await bare.inject({ method: 'GET', url: '/metrics' })).statusCode).toBe(404);
      expect((await bare.inject({ method: 'GET', url: '/health/ready' })).statusCode).toBe(200);
    } finally {
      await bare.close();
    }
  });
});
