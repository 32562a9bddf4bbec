import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FsBlobStore } from '../../src/blob/index.js';
import type { Worker } from '../../src/engine/index.js';
import { archiveExecutionLogs, reconcileReadModel, restoreJob } from '../../src/lifecycle/index.js';
import { listPoliciesForAllOrganizations } from '../../src/store/index.js';
import { DAY_MS } from '../../src/util/clock.js';
import { client, createTestApp, type ApiClient, type Json } from '../helpers/api.js';
import { createTestDb, type TestDb } from '../helpers/db.js';
import { seedOrg, startWorker, waitForJob } from '../helpers/fixtures.js';

/**
 * Jobs with blocks and sub-workflows through retention: their stream rows
 * (paths, the new kinds) are archived, read back from the archive by the
 * stream, timeline and state routes exactly as they were, and restored with
 * their paths; restore counts no step again, and the read model of jobs
 * started by a parent stays without drift throughout.
 */
let t: TestDb;
let dir: string;
let blobs: FsBlobStore;
let app: FastifyInstance;
let worker: Worker;
let api: ApiClient;
let orgId: string;
const jobIds: string[] = [];
/** What the routes answered while the rows were hot, per job. */
const hot = new Map<string, { stream: Json; timeline: Json; paged: Json; state: Json; atSeq: number }>();
let rowsBefore: Map<string, HotRow>;
let metricsBefore: unknown[];

interface HotRow {
  jobId: string;
  seq: number;
  us: string;
  stepIndex: number | null;
  kind: number;
  message: string;
  data: unknown;
  path: string | null;
}

/** The hot rows of the test's jobs, timestamps to the microsecond. */
async function hotRows(): Promise<Map<string, HotRow>> {
  const { rows } = await t.db.query<{ job_id: string; seq: number; us: string; step_index: number | null; kind: number; message: string; data: string | null; path: string | null }>(
    `SELECT job_id, seq, (extract(epoch FROM ts) * 1000000)::bigint::text AS us, step_index, kind, message, data::text AS data, path
       FROM stepwise.execution_log WHERE job_id = ANY($1::uuid[])`,
    [jobIds],
  );
  return new Map(
    rows.map((r) => [
      `${r.job_id}:${r.seq}`,
      { jobId: r.job_id, seq: r.seq, us: r.us, stepIndex: r.step_index, kind: r.kind, message: r.message, data: r.data === null ? null : JSON.parse(r.data), path: r.path },
    ]),
  );
}

async function stepMetrics(): Promise<unknown[]> {
  const { rows } = await t.db.query(
    `SELECT workflow_id, period, period_start, step_index, step_path, step_name, executions, successes, failures, duration_histogram, top_errors
       FROM stepwise.step_metrics WHERE organization_id = $1 ORDER BY workflow_id, period, period_start, step_index, step_path COLLATE "C"`,
    [orgId],
  );
  return rows;
}

async function define(name: string, definition: unknown): Promise<string> {
  const res = await api.post('/v1/workflows', { name, definition });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.id;
}

async function run(workflowId: string, input: unknown = {}): Promise<string> {
  const res = await api.post(`/v1/workflows/${workflowId}/runs`, { input });
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  await waitForJob(t.db, orgId, res.body.jobId, 60_000);
  return res.body.jobId;
}

beforeAll(async () => {
  t = await createTestDb();
  dir = await mkdtemp(join(tmpdir(), 'stepwise-nested-archive-'));
  blobs = new FsBlobStore(dir);
  app = await createTestApp(t.db, blobs);
  const seeded = await seedOrg(t.db, 'Nested archive');
  orgId = seeded.organizationId;
  api = client(app, seeded.key);
  worker = startWorker(t.db, { pollIntervalMs: 50 });
  const child = await define('child', { steps: [{ id: 'c', type: 'transform', expression: 'input.n * 10' }] });
  const parent = await define('parent', {
    steps: [
      {
        id: 'route',
        type: 'if',
        condition: 'input.big',
        then: [{ id: 'enrich', type: 'parallel', branches: { crm: [{ id: 'score', type: 'transform', expression: '42' }], kyc: [{ id: 'kid', type: 'workflow', workflowId: child, input: { n: 7 } }] } }],
      },
      {
        id: 'inv',
        type: 'forEach',
        items: '[0..119]',
        concurrency: 5,
        maxItems: 200,
        toleratedFailures: 2,
        steps: [{ id: 't', type: 'transform', expression: 'item in [3, 110] ? $error("bad " & $string(item)) : item' }],
      },
    ],
  });
  const parentJob = await run(parent, { big: true });
  jobIds.push(parentJob);
  const { rows } = await t.db.query<{ id: string }>(`SELECT id FROM stepwise.jobs WHERE parent_job_id = $1`, [parentJob]);
  expect(rows).toHaveLength(1);
  jobIds.push(rows[0]!.id);
  await worker.stop();
  for (const id of jobIds) {
    const stream = (await api.get(`/v1/jobs/${id}/stream?limit=5000`)).body;
    const timeline = (await api.get(`/v1/jobs/${id}/timeline`)).body;
    const paged = (await api.get(`/v1/jobs/${id}/timeline?loop=inv&iterationOffset=90&iterationLimit=20`)).body;
    const atSeq = Math.floor(stream.items.length / 2);
    const state = (await api.get(`/v1/jobs/${id}/state?at=${atSeq}`)).body;
    hot.set(id, { stream, timeline, paged, state, atSeq });
  }
  rowsBefore = await hotRows();
  metricsBefore = await stepMetrics();
}, 120_000);

afterAll(async () => {
  await worker?.stop();
  await app?.close();
  await t?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('blocks and sub-workflows through archive, read back and restore', () => {
  it('the jobs hold nested rows of the new kinds, and a child started by its parent', async () => {
    const rows = [...rowsBefore.values()];
    const parentRows = rows.filter((r) => r.jobId === jobIds[0]);
    const paths = new Set(parentRows.map((r) => r.path).filter((p) => p !== null));
    for (const p of ['route.then.enrich', 'route.then.enrich.crm.score', 'route.then.enrich.kyc.kid', 'inv[0]', 'inv[0].t', 'inv[110]', 'inv[110].t']) {
      expect(paths, p).toContain(p);
    }
    // Kinds 24 (BRANCH_TAKEN) to 34 (CHILD_JOB_COMPLETED) that these blocks write.
    for (const kind of [24, 25, 26, 27, 28, 33, 34]) expect(parentRows.some((r) => r.kind === kind), `kind ${kind}`).toBe(true);
    const child = (await api.get(`/v1/jobs/${jobIds[1]}`)).body;
    expect(child).toMatchObject({ initiatorType: 'PARENT', parentJobId: jobIds[0], parentStepPath: 'route.then.enrich.kyc.kid', depth: 1 });
    expect((await reconcileReadModel(t.db, { organizationId: orgId })).clean).toBe(true);
  });

  it('archives them: the rows leave hot storage, and an archive line carries "path" only when it is set', async () => {
    const asOf = new Date(Date.now() + 31 * DAY_MS);
    const policies = (await listPoliciesForAllOrganizations(t.db, 'execution_log')).filter((p) => p.organizationId === orgId);
    const report = await archiveExecutionLogs(t.db, blobs, policies, { asOf, dryRun: false, keepBefore: null, batchRows: 50_000, batchJobs: 100, pageSize: 100 });
    expect(report.jobs).toBe(jobIds.length);
    expect(report.rows).toBe(rowsBefore.size);
    expect((await hotRows()).size).toBe(0);
    let lines = 0;
    for (const { key } of await blobs.list('')) {
      let jobId = '';
      for (const line of gunzipSync(await blobs.get(key)).toString('utf8').split('\n')) {
        if (line === '') continue;
        const parsed = JSON.parse(line) as { jobId?: string; seq?: number; path?: string };
        if (parsed.jobId !== undefined) {
          jobId = parsed.jobId;
          continue;
        }
        const before = rowsBefore.get(`${jobId}:${parsed.seq}`)!;
        expect(before).toBeDefined();
        if (before.path === null) expect(line).not.toContain('"path"');
        else expect(parsed.path).toBe(before.path);
        lines++;
      }
    }
    expect(lines).toBe(rowsBefore.size);
  });

  it('the stream, timeline and state routes read the archived jobs back exactly as they were', async () => {
    for (const id of jobIds) {
      const was = hot.get(id)!;
      const stream = (await api.get(`/v1/jobs/${id}/stream?limit=5000`)).body;
      expect(stream.archived).toBe(true);
      expect(stream.items).toEqual(was.stream.items);
      expect(stream.items.some((r: Json) => r.path !== null)).toBe(id === jobIds[0]);
      const timeline = (await api.get(`/v1/jobs/${id}/timeline`)).body;
      expect(timeline.archived).toBe(true);
      expect(timeline.steps).toEqual(was.timeline.steps);
      expect((await api.get(`/v1/jobs/${id}/timeline?loop=inv&iterationOffset=90&iterationLimit=20`)).body.steps).toEqual(was.paged.steps);
      expect((await api.get(`/v1/jobs/${id}/state?at=${was.atSeq}`)).body).toEqual(was.state);
    }
    const inv = hot.get(jobIds[0]!)!.paged.steps[1];
    expect(inv.iterations.map((i: Json) => i.index)).toEqual([...Array.from({ length: 10 }, (_, i) => 90 + i), 110]);
    expect(inv.iterationPage).toMatchObject({ recorded: 101, total: 120, succeededWithoutRows: 19 });
    expect(hot.get(jobIds[0]!)!.timeline.steps[0].branches[0].steps[0].branches.map((b: Json) => b.label).sort()).toEqual(['crm', 'kyc']);
  });

  it('restores them with their paths, to the microsecond, counting no step again; the read model has no drift', async () => {
    for (const id of jobIds) {
      const r = await restoreJob(t.db, blobs, id, { holdDays: 1 });
      expect(r.jobs).toBe(1);
    }
    expect(await hotRows()).toEqual(rowsBefore);
    expect(await stepMetrics()).toEqual(metricsBefore);
    const nested = metricsBefore.filter((m) => (m as { step_path: string }).step_path !== '').map((m) => (m as { step_path: string }).step_path);
    expect(new Set(nested)).toEqual(new Set(['route.then.enrich', 'route.then.enrich.crm.score', 'route.then.enrich.kyc.kid', 'inv[].t']));
    for (const id of jobIds) {
      const timeline = (await api.get(`/v1/jobs/${id}/timeline`)).body;
      expect(timeline.archived).toBe(false);
      expect(timeline.steps).toEqual(hot.get(id)!.timeline.steps);
    }
    const report = await reconcileReadModel(t.db);
    expect(report.clean, JSON.stringify(report)).toBe(true);
  });
});
