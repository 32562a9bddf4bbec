import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { analyzeStreamParent, ensureStreamPartitions } from '../../src/db/index.js';
import type { Worker } from '../../src/engine/index.js';
import { reconcileReadModel } from '../../src/lifecycle/index.js';
import { AGGREGATE_ALL_CLIENTS, AGGREGATE_ALL_INITIATORS, AGGREGATE_ALL_WORKFLOWS, rollUpAggregates } from '../../src/store/index.js';
import { createTestDb, type TestDb } from '../helpers/db.js';
import { seedOrg, startWorker, waitForJob } from '../helpers/fixtures.js';
import { client, createTestApp, expectError, type ApiClient, type Json } from '../helpers/api.js';

// Step 1 fails both attempts under continueOnError (the job ends
// PARTIAL_SUCCESS); step 2 logs a warning.
const mixedDefinition = {
  steps: [
    { id: 'shape', type: 'transform', expression: '{ "n": 1 }' },
    { id: 'flaky', type: 'transform', expression: '$error("nope")', continueOnError: true, retry: { maxAttempts: 2, initialMs: 1, maxMs: 2 } },
    { id: 'note', type: 'log', level: 'WARN', message: 'careful' },
  ],
};
/** The error message the engine records for $error("nope"). */
const NOPE = 'expression failed: nope (at "error")';
const failingDefinition = { steps: [{ id: 'ok', type: 'noop' }, { id: 'boom', type: 'transform', expression: '$error("boom")' }] };

let t: TestDb;
let app: FastifyInstance;
let worker: Worker;
let a: ApiClient;
let b: ApiClient;
let orgA: string;
let wf: Json;
let clientA: Json;
const jobIds: string[] = [];

async function runAndWait(api: ApiClient, orgId: string, workflowId: string, body: Record<string, unknown> = {}): Promise<string> {
  const res = await api.post(`/v1/workflows/${workflowId}/runs`, body);
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  await waitForJob(t.db, orgId, res.body.jobId);
  return res.body.jobId;
}

beforeAll(async () => {
  t = await createTestDb();
  await ensureStreamPartitions(t.db);
  app = await createTestApp(t.db);
  const seededA = await seedOrg(t.db, 'A');
  orgA = seededA.organizationId;
  a = client(app, seededA.key);
  b = client(app, (await seedOrg(t.db, 'B')).key);
  worker = startWorker(t.db);
  wf = (await a.post('/v1/workflows', { name: 'Mixed', definition: mixedDefinition })).body;
  clientA = (await a.post('/v1/clients', { name: 'Clinic A' })).body;
  for (let i = 0; i < 3; i++) jobIds.push(await runAndWait(a, orgA, wf.id, { clientId: clientA.id }));
}, 60_000);

afterAll(async () => {
  await worker?.stop();
  await app?.close();
  await t?.close();
});

describe('execution_metadata', () => {
  it('follows every job write: one slim row per job with the same fields and last_synced_at', async () => {
    const { rows } = await t.db.query<Json>(
      `SELECT j.id, j.status, m.status AS m_status, m.steps_completed = j.steps_completed AS same_steps,
              m.completed_at = j.completed_at AS same_completed, m.duration_ms IS NOT DISTINCT FROM j.duration_ms AS same_duration,
              m.client_id = j.client_id AS same_client, m.last_synced_at >= j.created_at AS synced
         FROM stepwise.jobs j JOIN stepwise.execution_metadata m ON m.job_id = j.id WHERE j.id = ANY($1::uuid[])`,
      [jobIds],
    );
    expect(rows).toHaveLength(3);
    for (const r of rows) {
      expect(r).toMatchObject({ status: 'PARTIAL_SUCCESS', m_status: 'PARTIAL_SUCCESS', same_steps: true, same_completed: true, same_duration: true, same_client: true, synced: true });
    }
    const report = await reconcileReadModel(t.db);
    expect(report.clean, JSON.stringify(report)).toBe(true);
  });
});

describe('step_metrics', () => {
  it('counts executions, successes, failures and top errors per step from the stream', async () => {
    const res = await a.get(`/v1/analytics/steps?workflowId=${wf.id}`);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const byIndex = new Map<number, Json>(res.body.items.map((s: Json) => [s.stepIndex, s]));
    expect(byIndex.get(0)).toMatchObject({ stepName: 'shape', executions: 3, successes: 3, failures: 0, topErrors: [] });
    // Two attempts per job, both failing.
    expect(byIndex.get(1)).toMatchObject({ executions: 6, successes: 0, failures: 6, topErrors: [{ code: expect.any(String), message: NOPE, count: 6 }] });
    expect(byIndex.get(2)).toMatchObject({ stepName: 'note', executions: 3, successes: 3 });
    expect(byIndex.get(0).p95DurationMs).toEqual(expect.any(Number));
  });
});

describe('timeline and state', () => {
  it('GET /v1/jobs/:id/timeline gives each step its attempts, times, status and error', async () => {
    const res = await a.get(`/v1/jobs/${jobIds[0]}/timeline`);
    expect(res.status).toBe(200);
    expect(res.body.status).toBe('PARTIAL_SUCCESS');
    expect(res.body.steps.map((s: Json) => [s.index, s.name, s.status, s.attempts, s.error?.message ?? null])).toEqual([
      [0, 'shape', 'COMPLETED', 1, null],
      [1, 'flaky', 'FAILED', 2, NOPE],
      [2, 'note', 'COMPLETED', 1, null],
    ]);
    for (const s of res.body.steps) {
      expect(Date.parse(s.endedAt)).toBeGreaterThanOrEqual(Date.parse(s.startedAt));
      expect(s.durationMs).toEqual(expect.any(Number));
    }
  });

  it('GET /v1/jobs/:id/state?at= rebuilds the state at each sequence number', async () => {
    const stream = (await a.get(`/v1/jobs/${jobIds[1]}/stream`)).body.items as Json[];
    const firstFail = stream.find((r) => r.kind === 'STEP_FAILED')!.seq;
    const before = await a.get(`/v1/jobs/${jobIds[1]}/state?at=${firstFail - 1}`);
    expect(before.status).toBe(200);
    expect(before.body).toMatchObject({ atSeq: firstFail - 1, status: 'RUNNING', currentStep: 1 });
    expect(before.body.steps.map((s: Json) => s.status)).toEqual(['COMPLETED', 'RUNNING']);
    const atFail = (await a.get(`/v1/jobs/${jobIds[1]}/state?at=${firstFail}`)).body;
    expect(atFail.steps[1]).toMatchObject({ status: 'FAILED', attempts: 1, error: { message: NOPE } });
    const last = stream[stream.length - 1]!.seq;
    const end = (await a.get(`/v1/jobs/${jobIds[1]}/state?at=${last}`)).body;
    expect(end).toMatchObject({ atSeq: last, status: 'PARTIAL_SUCCESS' });
    expect((await a.get(`/v1/jobs/${jobIds[1]}/state?at=0`)).body).toMatchObject({ atSeq: 0, status: 'PENDING', steps: [] });
    expectError(await a.get(`/v1/jobs/${jobIds[1]}/state`), 400, 'VALIDATION');
    expectError(await a.get(`/v1/jobs/${jobIds[1]}/state?at=-1`), 400, 'VALIDATION');
    expectError(await a.get(`/v1/jobs/${jobIds[1]}/state?at=x`), 400, 'VALIDATION');
  });

  it("another organization's job is 404 on timeline and state, like a job that does not exist", async () => {
    for (const path of [`/v1/jobs/${jobIds[0]}/timeline`, `/v1/jobs/${jobIds[0]}/state?at=3`, `/v1/jobs/${randomUUID()}/timeline`, `/v1/jobs/${randomUUID()}/state?at=3`]) {
      expectError(await b.get(path), 404, 'NOT_FOUND');
    }
  });

  it("reads of one job's stream touch only the partitions of its lifetime", async () => {
    const job = (await a.get(`/v1/jobs/${jobIds[0]}`)).body;
    const { rows } = await t.db.query<{ 'QUERY PLAN': unknown }>(
      `EXPLAIN (FORMAT JSON) SELECT seq FROM stepwise.execution_log
        WHERE organization_id = $1 AND job_id = $2 AND ts >= $3 AND ts < $4`,
      [orgA, job.id, new Date(Date.parse(job.createdAt) - 86_400_000).toISOString(), new Date(Date.parse(job.completedAt) + 86_400_000).toISOString()],
    );
    const plan = JSON.stringify(rows[0]!['QUERY PLAN']);
    const relations = [...plan.matchAll(/"Relation Name":\s*"([a-z0-9_]+)"/g)].map((m) => m[1]!);
    expect(relations.length).toBeGreaterThan(0);
    expect(relations.length).toBeLessThanOrEqual(2);
    for (const r of relations) expect(r).toMatch(/^execution_log_\d{4}_\d{2}$/);
  });
});

describe('housekeeping', () => {
  it('ANALYZE of the partitioned parent gives the planner statistics for it', async () => {
    // Autovacuum never analyzes a partitioned parent: before, it has no
    // whole-table statistics; after, pg_stats has inherited rows for it.
    const inherited = async () =>
      (await t.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stats WHERE schemaname = 'stepwise' AND tablename = 'execution_log' AND inherited`)).rows[0]!.n;
    expect(await inherited()).toBe(0);
    await analyzeStreamParent(t.db);
    expect(await inherited()).toBeGreaterThan(0);
  });
});

describe('a failing trigger never loses the job write; reconcile finds and repairs drift', () => {
  it('records the failure, keeps the job, and reconcile repairs metadata and aggregates', async () => {
    const failing = (await a.post('/v1/workflows', { name: 'Failing', definition: failingDefinition })).body;
    // Make the metadata write refuse FAILED rows: the trigger's update fails.
    await t.db.exec(`ALTER TABLE stepwise.execution_metadata ADD CONSTRAINT test_no_failed CHECK (status <> 'FAILED') NOT VALID`);
    let failedJob: string;
    try {
      failedJob = await runAndWait(a, orgA, failing.id);
    } finally {
      await t.db.exec(`ALTER TABLE stepwise.execution_metadata DROP CONSTRAINT test_no_failed`);
    }
    expect((await a.get(`/v1/jobs/${failedJob}`)).body.status).toBe('FAILED');
    const { rows: failures } = await t.db.query<Json>(`SELECT source, sqlstate FROM stepwise.read_model_failures WHERE resolved_at IS NULL`);
    expect(failures).toContainEqual({ source: 'execution_metadata', sqlstate: '23514' });

    // More drift by hand: a missing row, an orphan, a wrong status, a wrong counter.
    await t.db.query(`DELETE FROM stepwise.execution_metadata WHERE job_id = $1`, [jobIds[0]]);
    await t.db.query(`UPDATE stepwise.execution_metadata SET status = 'RUNNING' WHERE job_id = $1`, [jobIds[1]]);
    const orphan = randomUUID();
    await t.db.query(
      `INSERT INTO stepwise.execution_metadata (job_id, organization_id, workflow_id, run_number, status, initiator_type, steps_total, steps_completed, attempts, retry_count, created_at)
       VALUES ($1, $2, $3, 999999, 'COMPLETED', 'API', 1, 1, 1, 0, now())`,
      [orphan, orgA, wf.id],
    );
    // Rolled up first, so the DAY row exists to be damaged (finished jobs wait in the outbox until then).
    await rollUpAggregates(t.db, { wait: true });
    await t.db.query(
      `UPDATE stepwise.aggregate_metrics SET total_count = total_count + 5
        WHERE organization_id = $1 AND period = 'DAY' AND workflow_id = $2 AND client_id = $3 AND initiator_type = $4`,
      [orgA, AGGREGATE_ALL_WORKFLOWS, AGGREGATE_ALL_CLIENTS, AGGREGATE_ALL_INITIATORS],
    );

    const report = await reconcileReadModel(t.db);
    expect(report.clean).toBe(false);
    // The failed job's row was never written (the read model holds a job from the moment it finishes).
    expect(report.metadata.missing.count).toBe(2);
    expect(report.metadata.missing.sample.sort()).toEqual([failedJob, jobIds[0]].sort());
    expect(report.metadata.orphaned).toEqual({ count: 1, sample: [orphan] });
    expect(report.metadata.stale).toEqual({ count: 1, sample: [jobIds[1]] });
    expect(report.aggregates).toEqual({ count: 1, sample: [orgA] });
    expect(report.failures.count).toBeGreaterThanOrEqual(1);
    // The report is plain JSON (the CLI prints it as is).
    expect(JSON.parse(JSON.stringify(report)).metadata.missing.count).toBe(2);

    const repaired = await reconcileReadModel(t.db, { repair: true });
    expect(repaired.clean, JSON.stringify(repaired)).toBe(true);
    expect(repaired.repaired).toMatchObject({ metadataWritten: 3, metadataDeleted: 1, aggregateOrganizations: 1 });
    const { rows } = await t.db.query<{ status: string }>(`SELECT status FROM stepwise.execution_metadata WHERE job_id = $1`, [failedJob]);
    expect(rows[0]!.status).toBe('FAILED');
    const list = await a.get(`/v1/jobs?status=FAILED`);
    expect(list.body.items.map((j: Json) => j.id)).toEqual([failedJob]);
    const stats = (await a.get('/v1/analytics/durations')).body;
    expect(stats.total).toBe(4);
  });
});
