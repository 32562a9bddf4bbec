import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkScaleDataset, generateScaleDataset, type ScaleDataset } from '../../bench/scale-data.js';
import { Rng, scaleQueries, type ScaleContext } from '../../bench/scale-queries.js';
import { getWorkflowStats, replayJobEvents, type JobEvent } from '../../src/read/index.js';
import { kindName, levelName } from '../../src/store/index.js';
import { createTestDb, type TestDb } from '../helpers/db.js';

// The scale benchmark's generator (bench/scale-data.ts) at a tiny size: it
// must write the real schema the way production does, so the read model,
// aggregates and step metrics the benchmark times are the triggers' own.
describe('scale dataset generator', () => {
  let t: TestDb;
  let ds: ScaleDataset;
  const end = new Date('2026-03-10T12:00:00Z');

  beforeAll(async () => {
    t = await createTestDb();
    ds = await generateScaleDataset(t.db, { months: 3, jobsPerMonth: 150, rowsPerJob: 40, organizations: 3, workflows: 6, clients: 30, end });
  });
  afterAll(() => t?.close());

  it('writes the requested jobs and exactly the stream rows their last_seq promise, all inside month partitions', async () => {
    expect(ds.jobs).toBe(450);
    const { rows } = await t.db.query<{ jobs: number; seqs: number; rows: number; in_default: number; out_of_range: number }>(
      `SELECT (SELECT count(*)::int FROM stepwise.jobs) AS jobs,
              (SELECT sum(last_seq)::int FROM stepwise.jobs) AS seqs,
              (SELECT count(*)::int FROM stepwise.execution_log) AS rows,
              (SELECT count(*)::int FROM stepwise.execution_log_default) AS in_default,
              (SELECT count(*)::int FROM stepwise.jobs WHERE created_at < '2026-01-01' OR created_at >= $1) AS out_of_range`,
      [end.toISOString()],
    );
    expect(rows[0]).toEqual({ jobs: 450, seqs: ds.streamRows, rows: ds.streamRows, in_default: 0, out_of_range: 0 });
    // ~40 rows a job on average (at least 2 + 2 × steps each).
    expect(ds.streamRows / ds.jobs).toBeGreaterThan(30);
    expect(ds.streamRows / ds.jobs).toBeLessThan(55);
  });

  it('gives every client jobs, and 5–20% of jobs no client', async () => {
    const { rows } = await t.db.query<{ clients: number; used: number; without: number }>(
      `SELECT (SELECT count(*)::int FROM stepwise.clients) AS clients,
              (SELECT count(DISTINCT client_id)::int FROM stepwise.jobs) AS used,
              (SELECT count(*)::int FROM stepwise.jobs WHERE client_id IS NULL) AS without`,
    );
    expect(rows[0]!.clients).toBe(30);
    expect(rows[0]!.used).toBe(30);
    expect(rows[0]!.without).toBeGreaterThan(450 * 0.05);
    expect(rows[0]!.without).toBeLessThan(450 * 0.2);
  });

  it('keeps every job inside its own organization (workflow and client)', async () => {
    const { rows } = await t.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM stepwise.jobs j
         LEFT JOIN stepwise.workflows w ON w.id = j.workflow_id
         LEFT JOIN stepwise.clients c ON c.id = j.client_id
        WHERE w.organization_id <> j.organization_id OR (j.client_id IS NOT NULL AND c.organization_id <> j.organization_id)`,
    );
    expect(rows[0]!.n).toBe(0);
  });

  it('gives failed jobs an error code, a failing step and a STEP_FAILED + JOB_FAILED tail', async () => {
    const { rows } = await t.db.query<{ id: string; organization_id: string; error_code: string | null; error_step: string | null; last_seq: number; steps_completed: number }>(
      `SELECT id, organization_id, error_code, error_step, last_seq, steps_completed FROM stepwise.jobs WHERE status = 'FAILED'`,
    );
    expect(rows.length).toBeGreaterThan(0);
    const job = rows[0]!;
    expect(job.error_code).toMatch(/^[A-Z_0-9]+$/);
    expect(job.error_step).not.toBeNull();
    const { rows: stream } = await t.db.query<{ seq: number; ts: Date; kind: number; level: number; step_index: number | null; message: string; data: unknown }>(
      `SELECT seq, ts, kind, level, step_index, message, data FROM stepwise.execution_log WHERE job_id = $1 ORDER BY seq`,
      [job.id],
    );
    expect(stream.map((r) => r.seq)).toEqual(Array.from({ length: job.last_seq }, (_, i) => i + 1));
    const events: JobEvent[] = stream
      .filter((r) => r.kind !== 0)
      .map((r) => ({ seq: r.seq, ts: r.ts, kind: kindName(r.kind), level: levelName(r.level), stepIndex: r.step_index, message: r.message, data: r.data }));
    expect(events[0]!.kind).toBe('JOB_STARTED');
    expect(events.at(-1)!.kind).toBe('JOB_FAILED');
    expect(events.at(-2)!.kind).toBe('STEP_FAILED');
    const state = replayJobEvents(events);
    expect(state.status).toBe('FAILED');
    expect(state.steps.filter((s) => s.status === 'COMPLETED')).toHaveLength(job.steps_completed);
  });

  it('leaves the read model, aggregates and step metrics consistent with jobs', async () => {
    const { ok, counts } = await checkScaleDataset(t.db);
    expect(counts).toMatchObject({ jobs: 450, metadataRows: 450, aggregatedJobs: 450, terminalJobs: 450, readModelFailures: 0 });
    expect(counts.stepExecutions).toBe(counts.stepsRun);
    expect(ok).toBe(true);
  });

  it('detects drift: a lost metadata row fails the check', async () => {
    await t.db.transaction(async (tx) => {
      await tx.query(`DELETE FROM stepwise.execution_metadata WHERE job_id = (SELECT id FROM stepwise.jobs LIMIT 1)`);
      expect((await checkScaleDataset(tx)).ok).toBe(false);
      throw new Error('rollback');
    }).catch((err: unknown) => {
      if (!(err instanceof Error) || err.message !== 'rollback') throw err;
    });
    expect((await checkScaleDataset(t.db)).ok).toBe(true);
  });

  it('times nothing wrong: the naive N+1 workflow stats count what getWorkflowStats counts', async () => {
    const range = { from: new Date('2026-01-01T00:00:00Z'), to: new Date('2026-04-01T00:00:00Z') };
    for (const orgId of ds.organizationIds) {
      const stepwise = await getWorkflowStats(t.db, orgId, range);
      const { rows } = await t.db.query<{ workflow_id: string; n: number }>(
        `SELECT workflow_id, count(*)::int AS n FROM stepwise.jobs WHERE organization_id = $1 GROUP BY 1`,
        [orgId],
      );
      expect(new Map(stepwise.map((s) => [s.workflowId, s.total]))).toEqual(new Map(rows.map((r) => [r.workflow_id, r.n])));
    }
  });

  it('runs every benchmark query in both forms against the dataset', async () => {
    const { rows: jobs } = await t.db.query<{ id: string; organization_id: string; last_seq: number; created_us: string; run_number: string }>(
      `SELECT id, organization_id, last_seq, (extract(epoch FROM created_at) * 1000000)::bigint::text AS created_us, run_number
         FROM stepwise.jobs ORDER BY id LIMIT 20`,
    );
    const ctx: ScaleContext = {
      organizations: await Promise.all(
        ds.organizationIds.map(async (id) => ({
          id,
          workflowIds: ds.workflows.filter((w) => w.organizationId === id).map((w) => w.id),
          clientIds: (await t.db.query<{ id: string }>(`SELECT id FROM stepwise.clients WHERE organization_id = $1`, [id])).rows.map((r) => r.id),
        })),
      ),
      sampleJobs: jobs.map((j) => ({ id: j.id, organizationId: j.organization_id, lastSeq: j.last_seq, createdUs: j.created_us, runNumber: Number(j.run_number) })),
      from: ds.from,
      to: ds.to,
    };
    const names: string[] = [];
    for (const q of scaleQueries(ctx)) {
      const rnd = new Rng(1);
      for (let i = 0; i < 3; i++) {
        await expect(q.run.stepwise(t.db, rnd)).resolves.toBeDefined();
        await expect(q.run.naive(t.db, rnd)).resolves.toBeDefined();
      }
      names.push(q.name);
    }
    expect(names).toEqual(['jobs_list', 'jobs_list_page', 'workflow_stats', 'durations', 'step_stats', 'timeseries', 'job_timeline', 'job_state']);
  });
});
