import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sendSignal } from '../../src/engine/control.js';
import type { Worker } from '../../src/engine/index.js';
import { readJobEvents, reconcileReadModel } from '../../src/lifecycle/index.js';
import { pageSteps, replayJobEvents } from '../../src/read/index.js';
import { findJob } from '../../src/store/index.js';
import { client, createTestApp, expectError, type ApiClient, type Json } from '../helpers/api.js';
import { createTestDb, type TestDb } from '../helpers/db.js';
import { seedOrg, startWorker, waitForJob } from '../helpers/fixtures.js';

/**
 * The read side of blocks and sub-workflows on real runs: the timeline and
 * the state nest a block's inner steps and page loop iterations, step stats
 * count nested steps by path, and the job list and views show a job's
 * parent and children.
 */
const blocksDefinition = {
  steps: [
    { id: 'amount', type: 'transform', expression: 'input.amount' },
    {
      id: 'route',
      type: 'if',
      condition: 'steps.amount > 1000',
      then: [{ id: 'big', type: 'transform', expression: '"review"' }],
      else: [{ id: 'small', type: 'transform', expression: '"auto"' }],
    },
    {
      id: 'src',
      type: 'switch',
      cases: [
        { when: 'false', steps: [{ id: 'x', type: 'noop' }] },
        { when: 'true', steps: [{ id: 'p', type: 'transform', expression: '"paypal"' }] },
      ],
    },
    {
      id: 'enrich',
      type: 'parallel',
      branches: {
        crm: [{ id: 'score', type: 'transform', expression: '42' }],
        billing: [
          { id: 'a', type: 'transform', expression: '1' },
          { id: 'b', type: 'transform', expression: 'steps.a + 1' },
        ],
      },
    },
    {
      id: 'inv',
      type: 'forEach',
      items: '[1..3]',
      maxItems: 10,
      steps: [{ id: 'inner', type: 'forEach', items: '[1..2]', maxItems: 10, steps: [{ id: 'call', type: 'transform', expression: 'item * 10' }] }],
    },
  ],
};

/** 250 items: rows for the first 100 iterations and the failed ones (5, 150, 200), rollups for the rest. */
const loopDefinition = {
  steps: [
    {
      id: 'inv',
      type: 'forEach',
      items: '[0..249]',
      concurrency: 10,
      maxItems: 1000,
      toleratedFailures: 5,
      steps: [{ id: 't', type: 'transform', expression: 'item in [5, 150, 200] ? $error("bad " & $string(item)) : item * 2' }],
    },
  ],
};

let t: TestDb;
let app: FastifyInstance;
let worker: Worker;
let api: ApiClient;
let other: ApiClient;
let orgId: string;
let blocksWf: string;
let loopWf: string;
let blocksJob: string;
let loopJob: string;

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

/** What the reducer makes of the job's stream, paged, as JSON: the routes must answer exactly this. */
async function expectedSteps(jobId: string, paging = { offset: 0, limit: 50 }): Promise<Json> {
  const job = (await findJob(t.db, orgId, jobId))!;
  const { events } = await readJobEvents(t.db, undefined, orgId, job);
  return JSON.parse(JSON.stringify(pageSteps(replayJobEvents(events).steps, paging)));
}

beforeAll(async () => {
  t = await createTestDb();
  app = await createTestApp(t.db);
  const seeded = await seedOrg(t.db, 'Nested');
  orgId = seeded.organizationId;
  api = client(app, seeded.key);
  other = client(app, (await seedOrg(t.db, 'Other')).key);
  worker = startWorker(t.db, { pollIntervalMs: 50 });
  blocksWf = await define('blocks', blocksDefinition);
  loopWf = await define('loop', loopDefinition);
  blocksJob = await run(blocksWf, { amount: 5000 });
  loopJob = await run(loopWf);
}, 120_000);

afterAll(async () => {
  await worker?.stop();
  await app?.close();
  await t?.close();
});

describe('GET /v1/jobs/:id/timeline with blocks', () => {
  it("nests each block's branches and iterations under it; the blocks keep their own state", async () => {
    const res = await api.get(`/v1/jobs/${blocksJob}/timeline`);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const steps: Json[] = res.body.steps;
    expect(steps.map((s) => [s.index, s.name, s.status, s.attempts])).toEqual([
      [0, 'amount', 'COMPLETED', 1],
      [1, 'route', 'COMPLETED', 1],
      [2, 'src', 'COMPLETED', 1],
      [3, 'enrich', 'COMPLETED', 1],
      [4, 'inv', 'COMPLETED', 1],
    ]);
    const [, route, src, enrich, inv] = steps;
    expect(route.branch).toBe('then');
    expect(route.output).toEqual({ branch: 'then', output: 'review' });
    expect(route.branches).toHaveLength(1);
    expect(route.branches[0]).toMatchObject({ label: 'then', path: 'route.then' });
    expect(route.branches[0].steps).toEqual([
      expect.objectContaining({ path: 'route.then.big', name: 'big', status: 'COMPLETED', attempts: 1, error: null, output: 'review' }),
    ]);
    expect(typeof route.branches[0].steps[0].durationMs).toBe('number');
    expect(new Date(route.branches[0].steps[0].endedAt) >= new Date(route.branches[0].steps[0].startedAt)).toBe(true);
    expect(src).toMatchObject({ branch: 1, branches: [{ label: '1', steps: [{ path: 'src.1.p', output: 'paypal' }] }] });
    expect(enrich.branches.map((b: Json) => b.label).sort()).toEqual(['billing', 'crm']);
    expect(enrich.branches.find((b: Json) => b.label === 'billing').steps.map((s: Json) => [s.path, s.output])).toEqual([
      ['enrich.billing.a', 1],
      ['enrich.billing.b', 2],
    ]);
    expect(inv.iterations.map((i: Json) => [i.index, i.path, i.status])).toEqual([
      [0, 'inv[0]', 'COMPLETED'],
      [1, 'inv[1]', 'COMPLETED'],
      [2, 'inv[2]', 'COMPLETED'],
    ]);
    expect(inv.iterationPage).toEqual({ offset: 0, limit: 50, recorded: 3, total: 3, hasMore: false, nextOffset: null, succeededWithoutRows: 0 });
    const inner = inv.iterations[2].steps[0];
    expect(inner).toMatchObject({ path: 'inv[2].inner', name: 'inner', status: 'COMPLETED', output: [10, 20] });
    expect(inner.iterations.map((i: Json) => i.steps[0].path)).toEqual(['inv[2].inner[0].call', 'inv[2].inner[1].call']);
    expect(inner.iterationPage).toMatchObject({ recorded: 2, total: 2, hasMore: false });
    // Exactly what the reducer makes of the stream.
    expect(steps).toEqual(await expectedSteps(blocksJob));
  });

  it('pages the iterations of every loop, or of the one named', async () => {
    const small = (await api.get(`/v1/jobs/${blocksJob}/timeline?iterationLimit=2`)).body.steps[4];
    expect(small.iterations.map((i: Json) => i.index)).toEqual([0, 1]);
    expect(small.iterationPage).toMatchObject({ offset: 0, limit: 2, recorded: 3, hasMore: true, nextOffset: 2 });
    const next = (await api.get(`/v1/jobs/${blocksJob}/timeline?loop=inv&iterationOffset=2&iterationLimit=2`)).body.steps[4];
    expect(next.iterations.map((i: Json) => i.index)).toEqual([2]);
    expect(next.iterationPage).toMatchObject({ offset: 2, hasMore: false, nextOffset: null });
    // The inner loops start at 0 when the offset names the outer one.
    expect(next.iterations[0].steps[0].iterationPage).toMatchObject({ offset: 0, recorded: 2 });
    const innerOnly = (await api.get(`/v1/jobs/${blocksJob}/timeline?loop=inv[1].inner&iterationOffset=1`)).body.steps[4];
    expect(innerOnly.iterationPage.offset).toBe(0);
    expect(innerOnly.iterations[1].steps[0].iterations.map((i: Json) => i.index)).toEqual([1]);
    expect(innerOnly.iterations[0].steps[0].iterations.map((i: Json) => i.index)).toEqual([0, 1]);
    for (const q of ['iterationLimit=0', 'iterationLimit=501', 'iterationOffset=-1', 'loop=', 'iterationLimit=x']) {
      expectError(await api.get(`/v1/jobs/${blocksJob}/timeline?${q}`), 400, 'VALIDATION');
    }
    expectError(await other.get(`/v1/jobs/${blocksJob}/timeline?iterationLimit=2`), 404, 'NOT_FOUND');
  });

  it('a loop past 100 items: the recorded iterations paged, the rollup counting the rest', async () => {
    const job = (await findJob(t.db, orgId, loopJob))!;
    expect(job.status).toBe('PARTIAL_SUCCESS');
    const inv = (await api.get(`/v1/jobs/${loopJob}/timeline`)).body.steps[0];
    expect(inv).toMatchObject({ name: 'inv', status: 'COMPLETED', attempts: 1 });
    expect(inv.progress).toEqual({ total: 250, succeeded: 247, failed: 3, running: 0 });
    expect(inv.iterationPage).toEqual({ offset: 0, limit: 50, recorded: 102, total: 250, hasMore: true, nextOffset: 50, succeededWithoutRows: 148 });
    expect(inv.iterations.map((i: Json) => i.index)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(inv.iterations[5]).toMatchObject({ status: 'FAILED', error: { code: 'EXPRESSION_ERROR', path: 'inv[5].t' } });
    expect(inv.iterations[5].steps).toEqual([expect.objectContaining({ path: 'inv[5].t', status: 'FAILED', error: expect.objectContaining({ code: 'EXPRESSION_ERROR' }) })]);
    const tail = (await api.get(`/v1/jobs/${loopJob}/timeline?iterationOffset=100`)).body.steps[0];
    expect(tail.iterations.map((i: Json) => [i.index, i.status, i.steps.map((s: Json) => s.status)])).toEqual([
      [150, 'FAILED', ['FAILED']],
      [200, 'FAILED', ['FAILED']],
    ]);
    expect(tail.iterationPage).toMatchObject({ offset: 100, hasMore: false, nextOffset: null });
    expect((await api.get(`/v1/jobs/${loopJob}/timeline?iterationOffset=100`)).body.steps).toEqual(await expectedSteps(loopJob, { offset: 100, limit: 50 }));
  });
});

describe('GET /v1/jobs/:id/state?at= with blocks', () => {
  it('rebuilds the nested state at a sequence number, paged like the timeline', async () => {
    const stream = (await api.get(`/v1/jobs/${blocksJob}/stream`)).body.items as Json[];
    const started = stream.find((r) => r.kind === 'STEP_STARTED' && r.path === 'inv[1].inner[0].call')!;
    expect(started.stepIndex).toBe(4);
    const res = await api.get(`/v1/jobs/${blocksJob}/state?at=${started.seq}&iterationLimit=1`);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({ atSeq: started.seq, status: 'RUNNING', currentStep: 4, currentPath: 'inv[1].inner[0].call' });
    const inv = res.body.steps[4];
    expect(inv).toMatchObject({ status: 'RUNNING', iterationPage: { recorded: 2, total: null, hasMore: true, nextOffset: 1 } });
    expect(inv.iterations.map((i: Json) => [i.index, i.status])).toEqual([[0, 'COMPLETED']]);
    const second = (await api.get(`/v1/jobs/${blocksJob}/state?at=${started.seq}&loop=inv&iterationOffset=1`)).body.steps[4].iterations[0];
    expect(second).toMatchObject({ index: 1, status: 'RUNNING' });
    expect(second.steps[0].iterations[0].steps[0]).toMatchObject({ path: 'inv[1].inner[0].call', status: 'RUNNING', attempts: 1, endedAt: null });
    const end = (await api.get(`/v1/jobs/${blocksJob}/state?at=${stream.at(-1)!.seq}`)).body;
    expect(end).toMatchObject({ status: 'COMPLETED', currentStep: null, currentPath: null });
    expect(end.steps).toEqual((await api.get(`/v1/jobs/${blocksJob}/timeline`)).body.steps);
  });
});

describe('GET /v1/jobs/:id/stream', () => {
  it('gives every row its path: null at the top level, the step path inside blocks', async () => {
    const items = (await api.get(`/v1/jobs/${blocksJob}/stream`)).body.items as Json[];
    expect(items.every((r) => 'path' in r)).toBe(true);
    expect(items.find((r) => r.kind === 'BRANCH_TAKEN' && r.stepIndex === 1)).toMatchObject({ path: null, message: 'then' });
    expect(items.filter((r) => r.path === 'route.then.big').map((r) => [r.kind, r.stepIndex])).toEqual([
      ['STEP_STARTED', 1],
      ['STEP_COMPLETED', 1],
    ]);
    expect(items.filter((r) => r.kind === 'ITERATION_COMPLETED' && r.stepIndex === 4).map((r) => r.path)).toEqual(
      expect.arrayContaining(['inv[0]', 'inv[1]', 'inv[2]', 'inv[2].inner[1]']),
    );
  });
});

describe('GET /v1/analytics/steps by step path', () => {
  it("counts a loop's iterations of one step into one item, apart from the block", async () => {
    const res = await api.get(`/v1/analytics/steps?workflowId=${loopWf}`);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const items: Json[] = res.body.items;
    expect(items.map((i) => [i.stepIndex, i.stepPath, i.stepName, i.executions, i.successes, i.failures])).toEqual([
      [0, null, 'inv', 1, 1, 0],
      // Every iteration counts, the quiet ones past the first 100 that wrote no rows too: 5, 150 and 200 failed.
      [0, 'inv[].t', 't', 250, 247, 3],
    ]);
    expect(items[1].topErrors.map((e: Json) => e.code)).toEqual(['EXPRESSION_ERROR', 'EXPRESSION_ERROR', 'EXPRESSION_ERROR']);
    expect(items[1].p95DurationMs).not.toBeNull();
  });

  it('gives every nested step of every block its own item by path, after its block', async () => {
    const items: Json[] = (await api.get(`/v1/analytics/steps?workflowId=${blocksWf}`)).body.items;
    expect(items.map((i) => [i.stepIndex, i.stepPath, i.executions])).toEqual([
      [0, null, 1],
      [1, null, 1],
      [1, 'route.then.big', 1],
      [2, null, 1],
      [2, 'src.1.p', 1],
      [3, null, 1],
      [3, 'enrich.billing.a', 1],
      [3, 'enrich.billing.b', 1],
      [3, 'enrich.crm.score', 1],
      [4, null, 1],
      [4, 'inv[].inner', 3],
      [4, 'inv[].inner[].call', 6],
    ]);
  });
});

describe('parents and children', () => {
  let childWf: string;
  let parentJob: string;
  let liveChild: string;

  beforeAll(async () => {
    childWf = await define('child', { steps: [{ id: 'c', type: 'transform', expression: 'input.n * 10' }] });
    const waitWf = await define('waits', { steps: [{ id: 'w', type: 'wait', signal: 'go' }] });
    const parentWf = await define('parent', {
      steps: [
        { id: 'kids', type: 'forEach', items: '[1..2]', maxItems: 10, steps: [{ id: 'call', type: 'workflow', workflowId: childWf, input: { n: '{{ item }}' } }] },
        { id: 'slow', type: 'workflow', workflowId: waitWf, wait: false },
      ],
    });
    parentJob = await run(parentWf);
    const { rows } = await t.db.query<{ id: string }>(`SELECT id FROM stepwise.jobs WHERE parent_job_id = $1 AND parent_step_path = 'slow'`, [parentJob]);
    liveChild = rows[0]!.id;
    const deadline = Date.now() + 20_000;
    while ((await findJob(t.db, orgId, liveChild))!.status !== 'WAITING') {
      if (Date.now() > deadline) throw new Error('the waiting child never waited');
      await new Promise((r) => setTimeout(r, 20));
    }
  }, 60_000);

  it('GET /v1/jobs/:id shows the parent, the step path, the depth and the initiator', async () => {
    const parent = (await api.get(`/v1/jobs/${parentJob}`)).body;
    expect(parent).toMatchObject({ status: 'COMPLETED', parentJobId: null, parentStepPath: null, depth: 0, initiatorType: 'API' });
    expect(parent.initiatedBy).toEqual(expect.any(String));
    const child = (await api.get(`/v1/jobs/${liveChild}`)).body;
    expect(child).toMatchObject({ status: 'WAITING', parentJobId: parentJob, parentStepPath: 'slow', depth: 1, initiatorType: 'PARENT', initiatedBy: null });
  });

  it("GET /v1/jobs?parentJobId= lists a job's children, finished (read model) and live (queue), with the other filters", async () => {
    const res = await api.get(`/v1/jobs?parentJobId=${parentJob}`);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const items: Json[] = res.body.items;
    expect(items.map((i) => i.parentStepPath).sort()).toEqual(['kids[0].call', 'kids[1].call', 'slow']);
    expect(items.every((i) => i.parentJobId === parentJob && i.depth === 1 && i.initiatorType === 'PARENT')).toBe(true);
    expect(items.find((i) => i.parentStepPath === 'slow').status).toBe('WAITING');
    expect((await api.get(`/v1/jobs?parentJobId=${parentJob}&status=WAITING`)).body.items.map((i: Json) => i.id)).toEqual([liveChild]);
    expect((await api.get(`/v1/jobs?parentJobId=${parentJob}&status=COMPLETED`)).body.items).toHaveLength(2);
    const page = await api.get(`/v1/jobs?parentJobId=${parentJob}&limit=2`);
    expect(page.body.items).toHaveLength(2);
    const rest = await api.get(`/v1/jobs?parentJobId=${parentJob}&limit=2&cursor=${page.body.nextCursor}`);
    expect(rest.body.items).toHaveLength(1);
    expect((await api.get(`/v1/jobs?parentJobId=${liveChild}`)).body.items).toEqual([]);
    // Another organization sees none of them.
    expect((await other.get(`/v1/jobs?parentJobId=${parentJob}`)).body.items).toEqual([]);
    expectError(await api.get('/v1/jobs?parentJobId=nope'), 400, 'VALIDATION');
  });

  it("the parent's timeline links each workflow step to its child", async () => {
    const steps: Json[] = (await api.get(`/v1/jobs/${parentJob}/timeline`)).body.steps;
    const calls = steps[0].iterations.map((i: Json) => i.steps[0].childJob);
    expect(calls).toEqual([
      expect.objectContaining({ workflowId: childWf, status: 'COMPLETED' }),
      expect.objectContaining({ workflowId: childWf, status: 'COMPLETED' }),
    ]);
    const kids = (await api.get(`/v1/jobs?parentJobId=${parentJob}&status=COMPLETED`)).body.items as Json[];
    expect(calls.map((c: Json) => c.jobId).sort()).toEqual(kids.map((k) => k.id).sort());
    expect(steps[1]).toMatchObject({ name: 'slow', status: 'COMPLETED', childJob: { jobId: liveChild, status: null } });
  });

  it('reconcile finds no drift for children; it finds and repairs a lost parent in the read model', async () => {
    await sendSignal(t.db, orgId, liveChild, 'go', null);
    await waitForJob(t.db, orgId, liveChild);
    const clean = await reconcileReadModel(t.db, { organizationId: orgId });
    expect(clean.clean, JSON.stringify(clean)).toBe(true);
    const { rows } = await t.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM stepwise.execution_metadata WHERE parent_job_id = $1`, [parentJob]);
    expect(rows[0]!.n).toBe(3);
    await t.db.query(`UPDATE stepwise.execution_metadata SET parent_job_id = NULL WHERE job_id = $1`, [liveChild]);
    const drift = await reconcileReadModel(t.db, { organizationId: orgId });
    expect(drift.metadata.stale).toEqual({ count: 1, sample: [liveChild] });
    const repaired = await reconcileReadModel(t.db, { organizationId: orgId, repair: true });
    expect(repaired.clean, JSON.stringify(repaired)).toBe(true);
    expect((await api.get(`/v1/jobs?parentJobId=${parentJob}`)).body.items).toHaveLength(3);
  });
});

describe('OpenAPI', () => {
  it('documents the new fields and parameters', async () => {
    const doc = (await api.get('/openapi.json')).body;
    const schemas = doc.components.schemas;
    const find = (id: string): Json => Object.values(schemas).find((s: Json) => s.$id === id || s.title === id) ?? schemas[id];
    for (const field of ['initiatedBy', 'parentJobId', 'parentStepPath', 'depth']) expect(Object.keys(find('Job').properties)).toContain(field);
    expect(Object.keys(find('JobListItem').properties)).toContain('parentJobId');
    expect(Object.keys(find('StreamEntry').properties)).toContain('path');
    expect(Object.keys(find('StepStats').properties)).toContain('stepPath');
    expect(Object.keys(find('StepState').properties)).toEqual(expect.arrayContaining(['branches', 'iterations', 'iterationPage', 'progress', 'childJob']));
    expect(Object.keys(find('NestedStepState').properties)).toEqual(expect.arrayContaining(['path', 'name', 'branches', 'iterations']));
    expect(Object.keys(find('JobState').properties)).toContain('currentPath');
    const params = (path: string) => (doc.paths[path].get.parameters as Json[]).map((p) => p.name);
    expect(params('/v1/jobs')).toContain('parentJobId');
    for (const path of ['/v1/jobs/{id}/timeline', '/v1/jobs/{id}/state']) {
      expect(params(path)).toEqual(expect.arrayContaining(['loop', 'iterationOffset', 'iterationLimit']));
    }
  });
});
