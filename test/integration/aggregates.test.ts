import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defineWorkflow } from '../../src/engine/index.js';
import {
  AGGREGATE_ALL_CLIENTS,
  AGGREGATE_ALL_INITIATORS,
  AGGREGATE_ALL_WORKFLOWS,
  AGGREGATE_NO_CLIENT,
  completeJobs,
  createClient,
  pendingAggregateRows,
  rollUpAggregates,
  enqueueJobs,
  INITIATOR_TYPES,
  TERMINAL_STATUSES,
  type InitiatorType,
  type JobCompletion,
  type JobStatus,
} from '../../src/store/index.js';
import {
  durationBucket,
  getDurationStats,
  getTimeSeries,
  getWorkflowStats,
  histogramPercentile,
  histogramOf,
  HISTOGRAM_MAX_RELATIVE_ERROR,
} from '../../src/read/index.js';
import { PostgresDb } from '../../src/db/index.js';
import { backend, createTestDb, type TestDb } from '../helpers/db.js';
import { seedOrg } from '../helpers/fixtures.js';
import { rng } from '../helpers/rng.js';

let t: TestDb;
let orgId: string;
let otherOrgId: string;
const workflows: string[] = [];
const clients: (string | null)[] = [null];
// Jobs finish over ~75 days from here, so hours, days and months all occur.
const BASE = Date.UTC(2026, 0, 20, 5, 30);
const SPAN_MS = 75 * 24 * 3600 * 1000;
const JOBS = 3000;

const def = { steps: [{ id: 'a', type: 'noop' }] };
const created: { id: string; workflowId: string }[] = [];
const completions: JobCompletion[] = [];

beforeAll(async () => {
  t = await createTestDb();
  orgId = (await seedOrg(t.db, 'Recount')).organizationId;
  otherOrgId = (await seedOrg(t.db, 'Other')).organizationId;
  for (let i = 0; i < 4; i++) workflows.push((await defineWorkflow(t.db, orgId, { name: `wf-${i}`, definition: def })).id);
  for (let i = 0; i < 3; i++) clients.push((await createClient(t.db, orgId, { name: `client-${i}` })).id);

  const random = rng(42);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  // Enqueue in batches of mixed clients and initiators per workflow.
  created.length = 0;
  for (let b = 0; b < JOBS / 100; b++) {
    const wf = pick(workflows);
    const runs = Array.from({ length: 100 }, () => ({ clientId: pick(clients), initiatorType: pick(INITIATOR_TYPES) as InitiatorType }));
    const jobs = await t.db.transaction((tx) => enqueueJobs(tx, orgId, { id: wf, version: 1, stepsTotal: 1 }, runs));
    for (const j of jobs) created.push({ id: j.id, workflowId: wf });
  }
  // A fifth of the jobs take a job-level retry first (RUNNING → PENDING →
  // RUNNING) and must still count once when they finish.
  const retried = created.filter(() => random() < 0.2).map((j) => j.id);
  await t.db.query(`UPDATE stepwise.jobs SET status = 'RUNNING' WHERE id = ANY($1::uuid[])`, [retried]);
  await t.db.query(`UPDATE stepwise.jobs SET status = 'PENDING', retry_count = 1 WHERE id = ANY($1::uuid[])`, [retried]);
  // Finish all but ~5 % in flushes of up to 500, with log-normal-ish durations.
  for (const job of created) {
    if (random() < 0.05) continue;
    const status = pick(TERMINAL_STATUSES) as JobStatus;
    const completedMs = BASE + Math.floor(random() * SPAN_MS);
    const duration = Math.floor(Math.exp(random() * 12)); // 1 ms … ~160 s
    completions.push(finish(job.id, status, completedMs, duration));
  }
  for (let i = 0; i < completions.length; i += 500) {
    await t.db.transaction((tx) => completeJobs(tx, completions.slice(i, i + 500)));
  }
  // A finished job written again (terminal → terminal) must not count twice.
  await t.db.transaction((tx) => completeJobs(tx, completions.slice(0, 50)));
}, 240_000);

afterAll(() => t?.close());

function finish(jobId: string, status: JobStatus, completedMs: number, duration: number): JobCompletion {
  const completedAt = new Date(completedMs);
  return {
    jobId,
    status,
    completedAt,
    result: null,
    errorCode: status === 'COMPLETED' ? null : 'E_TEST',
    errorMessage: status === 'COMPLETED' ? null : 'failed',
    errorStep: null,
    stepsCompleted: 1,
    lastSeq: 3,
    start: { jobId, attempts: 1, startedAt: new Date(completedAt.getTime() - duration), deadlineAt: null },
  };
}

interface Recount {
  period: string;
  workflow_id: string;
  client_id: string;
  initiator_type: string;
  period_start: Date;
  total: number;
  completed: number;
  partial: number;
  failed: number;
  cancelled: number;
  timed_out: number;
  dur_n: number;
  dur_sum: string;
  dur_min: number | null;
  dur_max: number | null;
}

describe('aggregate_metrics', () => {
  it('equal a recount from jobs, for every period and dimension key', async () => {
    const recount = `
      WITH j AS (SELECT * FROM stepwise.jobs WHERE organization_id = $1 AND status = ANY($2::text[])),
      k AS (
        SELECT p.period, d.wf, d.cl, d.ini, date_trunc(p.unit, j.completed_at, 'UTC') AS ps, j.status, j.duration_ms
          FROM j CROSS JOIN (VALUES ('HOUR','hour'),('DAY','day'),('MONTH','month')) p(period, unit)
          CROSS JOIN LATERAL (VALUES
            (j.workflow_id::text, coalesce(j.client_id::text, $5::text), j.initiator_type::text),
            (j.workflow_id::text, $4::text, $6::text),
            ($3::text, coalesce(j.client_id::text, $5::text), $6::text),
            ($3::text, $4::text, j.initiator_type::text),
            ($3::text, $4::text, $6::text)) d(wf, cl, ini))
      SELECT period, wf AS workflow_id, cl AS client_id, ini AS initiator_type, ps AS period_start, count(*)::int AS total,
             count(*) FILTER (WHERE status = 'COMPLETED')::int AS completed, count(*) FILTER (WHERE status = 'PARTIAL_SUCCESS')::int AS partial,
             count(*) FILTER (WHERE status = 'FAILED')::int AS failed, count(*) FILTER (WHERE status = 'CANCELLED')::int AS cancelled,
             count(*) FILTER (WHERE status = 'TIMED_OUT')::int AS timed_out, count(duration_ms)::int AS dur_n,
             coalesce(sum(duration_ms), 0)::text AS dur_sum, min(duration_ms) AS dur_min, max(duration_ms) AS dur_max
        FROM k GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5`;
    // Summed per key: in the live view a key can have a rolled-up row and a row still in the outbox.
    const stored = (relation: string) => `
      SELECT period, workflow_id::text, client_id::text, initiator_type, period_start, sum(total_count)::int AS total,
             sum(completed_count)::int AS completed, sum(partial_success_count)::int AS partial, sum(failed_count)::int AS failed,
             sum(cancelled_count)::int AS cancelled, sum(timed_out_count)::int AS timed_out, sum(duration_count)::int AS dur_n,
             sum(total_duration_ms)::text AS dur_sum, min(min_duration_ms) AS dur_min, max(max_duration_ms) AS dur_max
        FROM stepwise.${relation} WHERE organization_id = $1 GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5`;
    const sentinels = [AGGREGATE_ALL_WORKFLOWS, AGGREGATE_ALL_CLIENTS, AGGREGATE_NO_CLIENT, AGGREGATE_ALL_INITIATORS];
    const recounted = async () => (await t.db.query<Recount>(recount, [orgId, TERMINAL_STATUSES, ...sentinels])).rows;
    const expected = await recounted();
    expect(expected.length).toBeGreaterThan(1000);
    // Nothing rolled up yet: every finished job is in the outbox once (the 50 written twice too), and the live view counts them.
    expect(await pendingAggregateRows(t.db)).toBe(completions.length);
    expect((await t.db.query(`SELECT 1 FROM stepwise.aggregate_metrics WHERE organization_id = $1`, [orgId])).rows).toEqual([]);
    expect((await t.db.query<Recount>(stored('aggregate_metrics_live'), [orgId])).rows).toEqual(expected);
    // Rolled up in batches of 1,000: the table alone now holds the same, and the outbox is empty.
    expect(await rollUpAggregates(t.db, { wait: true, batch: 1_000 })).toBe(completions.length);
    expect(await pendingAggregateRows(t.db)).toBe(0);
    expect((await t.db.query<Recount>(stored('aggregate_metrics'), [orgId])).rows).toEqual(expected);
    // The jobs left unfinished end now: their keys are in both the table and the outbox, and the live view adds them up.
    const rest = created.filter((j) => !completions.some((c) => c.jobId === j.id)).map((j): JobCompletion => finish(j.id, 'FAILED', BASE + SPAN_MS / 2, 700));
    expect(rest.length).toBeGreaterThan(0);
    await t.db.transaction((tx) => completeJobs(tx, rest));
    completions.push(...rest);
    const after = await recounted();
    expect(after).not.toEqual(expected);
    expect((await t.db.query<Recount>(stored('aggregate_metrics_live'), [orgId])).rows).toEqual(after);
    await rollUpAggregates(t.db, { wait: true });
    const actual = (await t.db.query<Recount>(stored('aggregate_metrics'), [orgId])).rows;
    expect(actual).toEqual(after);
    const { rows } = await t.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM stepwise.jobs WHERE organization_id = $1 AND status = ANY($2::text[])`, [orgId, TERMINAL_STATUSES]);
    const all = actual.filter(
      (r) => r.period === 'MONTH' && r.workflow_id === AGGREGATE_ALL_WORKFLOWS && r.client_id === AGGREGATE_ALL_CLIENTS && r.initiator_type === AGGREGATE_ALL_INITIATORS,
    );
    expect(all.reduce((n, r) => n + r.total, 0)).toBe(rows[0]!.n);
  });

  it('generated avg_duration_ms and success_rate follow the counters', async () => {
    const { rows } = await t.db.query<{ bad: number }>(
      `SELECT count(*)::int AS bad FROM stepwise.aggregate_metrics
        WHERE organization_id = $1
          AND (abs(avg_duration_ms - total_duration_ms::float8 / nullif(duration_count, 0)) > 1e-9
               OR abs(success_rate - completed_count::float8 / total_count) > 1e-12)`,
      [orgId],
    );
    expect(rows[0]!.bad).toBe(0);
  });

  it('histograms equal a recount and percentiles are within the error bound of percentile_cont', async () => {
    // Per workflow over the whole span (months + days + hours merged).
    const range = { from: new Date(BASE - 3600_000), to: new Date(BASE + SPAN_MS + 3600_000) };
    const stats = await getWorkflowStats(t.db, orgId, range);
    expect(stats.map((s) => s.workflowId).sort()).toEqual([...workflows].sort());
    for (const s of stats) {
      const { rows } = await t.db.query<{ total: number; completed: number; failed: number; p50: number; p95: number; p99: number; durations: number[] }>(
        `SELECT count(*)::int AS total, count(*) FILTER (WHERE status = 'COMPLETED')::int AS completed,
                count(*) FILTER (WHERE status = 'FAILED')::int AS failed,
                percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms) AS p50,
                percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms) AS p95,
                percentile_cont(0.99) WITHIN GROUP (ORDER BY duration_ms) AS p99,
                array_agg(duration_ms) AS durations
           FROM stepwise.jobs WHERE organization_id = $1 AND workflow_id = $2 AND completed_at IS NOT NULL`,
        [orgId, s.workflowId],
      );
      const exact = rows[0]!;
      expect([s.total, s.completed, s.failed]).toEqual([exact.total, exact.completed, exact.failed]);
      // The stored histogram is exactly the histogram of the durations…
      const h = histogramOf(exact.durations);
      expect(histogramPercentile(h, 0.5)).toBeCloseTo(s.p50DurationMs!, 2);
      // …and its percentiles are within 4.88 % of the exact ones (plus a
      // little for percentile_cont's interpolation between neighbours).
      const bound = HISTOGRAM_MAX_RELATIVE_ERROR + 0.005;
      expect(Math.abs(s.p50DurationMs! - exact.p50) / exact.p50).toBeLessThanOrEqual(bound);
      expect(Math.abs(s.p95DurationMs! - exact.p95) / exact.p95).toBeLessThanOrEqual(bound);
      expect(Math.abs(s.p99DurationMs! - exact.p99) / exact.p99).toBeLessThanOrEqual(bound);
    }
  });

  it('a sub-range merged from hour, day and month rows equals a recount over the same hours', async () => {
    const from = new Date(Date.UTC(2026, 0, 27, 13));
    const to = new Date(Date.UTC(2026, 2, 3, 7));
    const stats = await getDurationStats(t.db, orgId, { from, to }, { workflowId: workflows[1] });
    const { rows } = await t.db.query<{ total: number; failed: number; n: number; sum: string }>(
      `SELECT count(*)::int AS total, count(*) FILTER (WHERE status = 'FAILED')::int AS failed, count(duration_ms)::int AS n, coalesce(sum(duration_ms), 0)::text AS sum
         FROM stepwise.jobs WHERE organization_id = $1 AND workflow_id = $2 AND completed_at >= $3 AND completed_at < $4`,
      [orgId, workflows[1], from.toISOString(), to.toISOString()],
    );
    expect(stats.total).toBe(rows[0]!.total);
    expect(stats.failed).toBe(rows[0]!.failed);
    expect(stats.durationCount).toBe(rows[0]!.n);
    expect(stats.avgDurationMs).toBeCloseTo(Number(rows[0]!.sum) / rows[0]!.n, 2);
  });

  it('filters by client, initiator and both, and builds daily time series', async () => {
    const range = { from: new Date(BASE - 3600_000), to: new Date(BASE + SPAN_MS + 3600_000) };
    const count = async (where: string, params: unknown[]) =>
      (await t.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM stepwise.jobs WHERE organization_id = $1 AND completed_at IS NOT NULL AND ${where}`, [orgId, ...params])).rows[0]!.n;
    expect((await getDurationStats(t.db, orgId, range, { clientId: clients[1]! })).total).toBe(await count('client_id = $2', [clients[1]]));
    expect((await getDurationStats(t.db, orgId, range, { initiatorType: 'WEBHOOK' })).total).toBe(await count(`initiator_type = 'WEBHOOK'`, []));
    expect((await getDurationStats(t.db, orgId, range, { workflowId: workflows[0], initiatorType: 'API' })).total).toBe(
      await count(`workflow_id = $2 AND initiator_type = 'API'`, [workflows[0]]),
    );
    expect((await getDurationStats(t.db, orgId, range, { workflowId: workflows[2], clientId: clients[2]!, initiatorType: 'SCHEDULE' })).total).toBe(
      await count(`workflow_id = $2 AND client_id = $3 AND initiator_type = 'SCHEDULE'`, [workflows[2], clients[2]]),
    );
    const series = await getTimeSeries(t.db, orgId, range, 'day', { workflowId: workflows[3] });
    expect(series.length).toBeGreaterThan(60);
    expect(series.reduce((n, p) => n + p.total, 0)).toBe(await count('workflow_id = $2', [workflows[3]]));
    const hours = await getTimeSeries(t.db, orgId, { from: new Date(BASE), to: new Date(BASE + 2 * 24 * 3600_000) }, 'hour');
    expect(hours.every((p) => p.periodStart.getUTCMinutes() === 0)).toBe(true);
    expect(hours.reduce((n, p) => n + p.total, 0)).toBe(
      await count(`completed_at >= date_trunc('hour', $2::timestamptz, 'UTC') AND completed_at < $3`, [new Date(BASE).toISOString(), new Date(BASE + 2 * 24 * 3600_000).toISOString()]),
    );
  });

  it("another organization's rows are not read", async () => {
    const range = { from: new Date(BASE - 3600_000), to: new Date(BASE + SPAN_MS + 3600_000) };
    expect(await getWorkflowStats(t.db, otherOrgId, range)).toEqual([]);
    expect((await getDurationStats(t.db, otherOrgId, range)).total).toBe(0);
    expect((await getDurationStats(t.db, otherOrgId, range, { workflowId: workflows[0] })).total).toBe(0);
  });

  it.skipIf(backend !== 'postgres')('concurrent flushes on separate connections neither deadlock nor lose counts', async () => {
    const org = (await seedOrg(t.db, 'Concurrent')).organizationId;
    const wfId = (await defineWorkflow(t.db, org, { name: 'c', definition: def })).id;
    const ids = (await t.db.transaction((tx) => enqueueJobs(tx, org, { id: wfId, version: 1, stepsTotal: 1 }, Array.from({ length: 800 }, () => ({}))))).map((j) => j.id);
    const pools = [new PostgresDb(t.url!, 2), new PostgresDb(t.url!, 2)];
    const at = new Date();
    const completion = (id: string, i: number): JobCompletion => ({
      jobId: id, status: i % 3 === 0 ? 'FAILED' : 'COMPLETED', completedAt: at, result: null, errorCode: null, errorMessage: null,
      errorStep: null, stepsCompleted: 1, lastSeq: 1, start: { jobId: id, attempts: 1, startedAt: new Date(at.getTime() - i), deadlineAt: null },
    });
    try {
      // Eight flushes of 100 at once, alternating connections, all hitting the same rollup rows.
      await Promise.all(
        Array.from({ length: 8 }, (_, f) =>
          pools[f % 2]!.transaction((tx) => completeJobs(tx, ids.slice(f * 100, f * 100 + 100).map((id, i) => completion(id, f * 100 + i)))),
        ),
      );
    } finally {
      await Promise.all(pools.map((p) => p.close()));
    }
    const { rows: failures } = await t.db.query(`SELECT sqlstate, message FROM stepwise.read_model_failures`);
    expect(failures).toEqual([]);
    const stats = await getDurationStats(t.db, org, { from: new Date(at.getTime() - 3600_000), to: new Date(at.getTime() + 3600_000) });
    expect([stats.total, stats.failed]).toEqual([800, 267]);
  });

  it('the SQL and TypeScript bucket functions agree', async () => {
    const values = [0, 0.001, 0.0099, 0.01, 0.011, 0.5, 1, 1.1, 2, 3.7, 10, 99.99, 100, 1234.5, 65_535, 1e6, 3.6e6, 8.64e7, 1e12];
    for (let i = 0; i < 200; i++) values.push(Math.exp(i / 10) / 100);
    const { rows } = await t.db.query<{ b: number[] }>(`SELECT array_agg(stepwise.duration_bucket(v) ORDER BY i) AS b FROM unnest($1::float8[]) WITH ORDINALITY u(v, i)`, [values]);
    expect(rows[0]!.b).toEqual(values.map(durationBucket));
  });
});
