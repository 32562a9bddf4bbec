import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defineWorkflow } from '../../src/engine/index.js';
import { getStepStats, histogramOf, histogramPercentile } from '../../src/read/index.js';
import { enqueueJobs, insertStreamRows, type StreamRow } from '../../src/store/index.js';
import { DAY_MS } from '../../src/util/clock.js';
import { createTestDb, type TestDb } from '../helpers/db.js';
import { seedOrg } from '../helpers/fixtures.js';
import { rng } from '../helpers/rng.js';

/**
 * step_metrics keeps DAY and MONTH rows from the stream's STEP_COMPLETED /
 * STEP_FAILED rows; getStepStats reads whole months from MONTH rows and the
 * edge days from DAY rows. Both are checked against a recount of the stream.
 */
let t: TestDb;
let orgId: string;
let wf: string;
const BASE = Date.UTC(2026, 0, 20, 5, 30);
const SPAN_MS = 75 * 24 * 3600 * 1000;

beforeAll(async () => {
  t = await createTestDb();
  orgId = (await seedOrg(t.db, 'Steps')).organizationId;
  const def = { steps: [{ id: 'a', type: 'noop' }, { id: 'b', type: 'noop' }, { id: 'c', type: 'noop' }] };
  wf = (await defineWorkflow(t.db, orgId, { name: 'three steps', definition: def })).id;
  const jobs = await t.db.transaction((tx) => enqueueJobs(tx, orgId, { id: wf, version: 1, stepsTotal: 3 }, Array.from({ length: 400 }, () => ({}))));
  const random = rng(7);
  // Each job: steps a, b, c at one instant in the span; c fails for ~15 %.
  const rows: StreamRow[] = [];
  for (const job of jobs) {
    const ts = BASE + Math.floor(random() * SPAN_MS);
    ['a', 'b', 'c'].forEach((name, i) => {
      const failed = i === 2 && random() < 0.15;
      const durationMs = Math.round(Math.exp(random() * 9) * 100) / 100;
      rows.push({
        organizationId: orgId,
        jobId: job.id,
        workflowId: wf,
        tsMs: ts + i,
        seq: i + 1,
        stepIndex: i,
        kind: failed ? 12 : 11,
        level: failed ? 5 : 3,
        message: failed ? (random() < 0.5 ? 'portal down' : 'timeout') : name,
        data: failed ? { durationMs, code: random() < 0.5 ? 'HTTP_503' : 'TIMEOUT' } : { durationMs },
      });
    });
  }
  // Flushes of 300 rows through the recorder's own insert.
  for (let i = 0; i < rows.length; i += 300) {
    const part = rows.slice(i, i + 300);
    await t.db.transaction((tx) => insertStreamRows(tx, part));
  }
}, 120_000);

afterAll(() => t?.close());

describe('step_metrics', () => {
  it('MONTH rows hold exactly the sums of their DAY rows', async () => {
    const { rows } = await t.db.query<{ n: number }>(
      `WITH d AS (
         SELECT step_index, date_trunc('month', period_start, 'UTC') AS ps, sum(executions) AS e, sum(successes) AS s,
                sum(failures) AS f, round(sum(total_duration_ms)::numeric, 3) AS dur, stepwise.histogram_sum(duration_histogram) AS h
           FROM stepwise.step_metrics WHERE organization_id = $1 AND workflow_id = $2 AND period = 'DAY' GROUP BY 1, 2
       ), m AS (
         SELECT step_index, period_start AS ps, executions AS e, successes AS s, failures AS f,
                round(total_duration_ms::numeric, 3) AS dur, duration_histogram AS h
           FROM stepwise.step_metrics WHERE organization_id = $1 AND workflow_id = $2 AND period = 'MONTH'
       )
       SELECT count(*)::int AS n FROM d FULL JOIN m USING (step_index, ps)
        WHERE (d.e, d.s, d.f, d.dur, d.h) IS DISTINCT FROM (m.e, m.s, m.f, m.dur, m.h)`,
      [orgId, wf],
    );
    expect(rows[0]!.n).toBe(0);
    const { rows: months } = await t.db.query<{ n: number }>(
      `SELECT count(DISTINCT period_start)::int AS n FROM stepwise.step_metrics WHERE organization_id = $1 AND period = 'MONTH'`,
      [orgId],
    );
    expect(months[0]!.n).toBe(4); // 20 January + 75 days: January to April
  });

  it('getStepStats over months and edge days equals a recount of the stream', async () => {
    for (const [from, to] of [
      [new Date(Date.UTC(2026, 0, 25)), new Date(Date.UTC(2026, 2, 10))], // edge days + one whole month + edge days
      [new Date(Date.UTC(2026, 1, 1)), new Date(Date.UTC(2026, 2, 1))], // exactly one month
      [new Date(Date.UTC(2026, 1, 3, 7)), new Date(Date.UTC(2026, 1, 9, 2))], // days only, widened to whole days
    ] as const) {
      const stats = await getStepStats(t.db, orgId, wf, { from, to });
      const dayFrom = new Date(Math.floor(from.getTime() / DAY_MS) * DAY_MS);
      const dayTo = new Date(Math.ceil(to.getTime() / DAY_MS) * DAY_MS);
      const { rows } = await t.db.query<{ step_index: number; kind: number; message: string; ms: number; code: string | null }>(
        `SELECT step_index, kind, message, (data->>'durationMs')::float8 AS ms, data->>'code' AS code FROM stepwise.execution_log
          WHERE organization_id = $1 AND kind IN (11, 12) AND ts >= $2 AND ts < $3`,
        [orgId, dayFrom.toISOString(), dayTo.toISOString()],
      );
      expect(stats.map((s) => s.stepIndex)).toEqual([...new Set(rows.map((r) => r.step_index))].sort());
      for (const s of stats) {
        const mine = rows.filter((r) => r.step_index === s.stepIndex);
        expect(s.executions).toBe(mine.length);
        expect(s.failures).toBe(mine.filter((r) => r.kind === 12).length);
        expect(s.successes).toBe(mine.filter((r) => r.kind === 11).length);
        expect(s.avgDurationMs!).toBeCloseTo(mine.reduce((a, r) => a + r.ms, 0) / mine.length, 2);
        const h = histogramOf(mine.map((r) => r.ms));
        expect(s.p95DurationMs).toBeCloseTo(histogramPercentile(h, 0.95)!, 2);
        const errors = new Map<string, number>();
        for (const r of mine.filter((x) => x.kind === 12)) errors.set(`${r.code}|${r.message}`, (errors.get(`${r.code}|${r.message}`) ?? 0) + 1);
        expect(Object.fromEntries(s.topErrors.map((e) => [`${e.code}|${e.message}`, e.count]))).toEqual(Object.fromEntries(errors));
      }
    }
  });

  it('a refused step_metrics write is recorded in read_model_failures and never loses the stream rows', async () => {
    const [job] = await t.db.transaction((tx) => enqueueJobs(tx, orgId, { id: wf, version: 1, stepsTotal: 3 }, [{}]));
    const row = (seq: number, kind: number): StreamRow => ({
      organizationId: orgId,
      jobId: job!.id,
      workflowId: wf,
      tsMs: BASE + seq,
      seq,
      stepIndex: kind === 0 ? null : 0,
      kind,
      level: 3,
      message: kind === 11 ? 'a' : 'plain line',
      data: kind === 11 ? { durationMs: 2 } : null,
    });
    await t.db.exec(`ALTER TABLE stepwise.step_metrics ADD CONSTRAINT test_refuse CHECK (executions < 0) NOT VALID`);
    try {
      await t.db.transaction((tx) => insertStreamRows(tx, [row(1, 0), row(2, 11)]));
    } finally {
      await t.db.exec(`ALTER TABLE stepwise.step_metrics DROP CONSTRAINT test_refuse`);
    }
    const { rows } = await t.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM stepwise.execution_log WHERE job_id = $1`, [job!.id]);
    expect(rows[0]!.n).toBe(2);
    const { rows: failures } = await t.db.query<{ source: string; sqlstate: string; row_count: number }>(
      `SELECT source, sqlstate, row_count FROM stepwise.read_model_failures WHERE resolved_at IS NULL`,
    );
    // One group each for the DAY and the MONTH row of step 0.
    expect(failures).toEqual([{ source: 'step_metrics', sqlstate: '23514', row_count: 2 }]);
  });
});
