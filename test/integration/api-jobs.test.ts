import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Worker } from '../../src/engine/index.js';
import { createTestDb, type TestDb } from '../helpers/db.js';
import { seedOrg, startWorker } from '../helpers/fixtures.js';
import { client, collectPages, createTestApp, expectError, type ApiClient, type Json } from '../helpers/api.js';

const TERMINAL = ['COMPLETED', 'PARTIAL_SUCCESS', 'FAILED', 'CANCELLED', 'TIMED_OUT'];

const logsDefinition = {
  steps: [
    { id: 'hello', type: 'log', level: 'INFO', message: 'info line for {{ input.who }}' },
    { id: 'careful', type: 'log', level: 'WARN', message: 'warn line' },
    { id: 'loud', type: 'log', level: 'ERROR', message: 'error line' },
    { id: 'done', type: 'transform', expression: '{ "who": input.who, "done": true }' },
  ],
};
const failingDefinition = {
  steps: [
    { id: 'ok', type: 'noop' },
    { id: 'boom', type: 'transform', expression: '$error("boom")' },
    { id: 'never', type: 'log', message: 'must not run' },
  ],
};

let t: TestDb;
let app: FastifyInstance;
let worker: Worker;
let api: ApiClient;

beforeAll(async () => {
  t = await createTestDb();
  app = await createTestApp(t.db);
  api = client(app, (await seedOrg(t.db)).key);
  worker = startWorker(t.db);
});

afterAll(async () => {
  await worker?.stop();
  await app?.close();
  await t?.close();
});

async function createWorkflow(as: ApiClient, definition: unknown): Promise<string> {
  const res = await as.post('/v1/workflows', { name: 'wf', definition });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.id;
}

async function run(as: ApiClient, workflowId: string, input?: unknown): Promise<string> {
  const res = await as.post(`/v1/workflows/${workflowId}/runs`, input === undefined ? {} : { input });
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return res.body.jobId;
}

/** Poll GET /v1/jobs/:id until the job is terminal. */
async function waitForJob(as: ApiClient, jobId: string, timeoutMs = 20_000): Promise<Json> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await as.get(`/v1/jobs/${jobId}`);
    expect(res.status).toBe(200);
    if (TERMINAL.includes(res.body.status)) return res.body;
    if (Date.now() > deadline) throw new Error(`job ${jobId} still ${res.body.status}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('a completed job and its stream', () => {
  let jobId: string;
  let workflowId: string;
  let full: Json[];

  beforeAll(async () => {
    workflowId = await createWorkflow(api, logsDefinition);
    jobId = await run(api, workflowId, { who: 'Ada' });
    await waitForJob(api, jobId);
    full = (await api.get(`/v1/jobs/${jobId}/stream`)).body.items;
  });

  it('GET /v1/jobs/:id shows the finished job', async () => {
    const res = await api.get(`/v1/jobs/${jobId}`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      id: jobId,
      workflowId,
      workflowVersion: 1,
      status: 'COMPLETED',
      input: { who: 'Ada' },
      result: { who: 'Ada', done: true },
      error: null,
      stepsTotal: 4,
      stepsCompleted: 4,
      attempts: 1,
    });
    expect(Date.parse(res.body.completedAt)).toBeGreaterThanOrEqual(Date.parse(res.body.startedAt));
    expect(res.body.durationMs).toBeGreaterThanOrEqual(0);
  });

  it('the stream is ordered from seq 1, from JOB_STARTED to JOB_COMPLETED', async () => {
    const res = await api.get(`/v1/jobs/${jobId}/stream`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ jobId, status: 'COMPLETED' });
    const items: Json[] = res.body.items;
    expect(items.map((r) => r.seq)).toEqual(items.map((_, i) => i + 1));
    expect(res.body.nextAfterSeq).toBe(items.length);
    expect(items.map((r) => [r.kind, r.stepIndex])).toEqual([
      ['JOB_STARTED', null],
      ['STEP_STARTED', 0],
      ['LOG', 0],
      ['STEP_COMPLETED', 0],
      ['STEP_STARTED', 1],
      ['LOG', 1],
      ['STEP_COMPLETED', 1],
      ['STEP_STARTED', 2],
      ['LOG', 2],
      ['STEP_COMPLETED', 2],
      ['STEP_STARTED', 3],
      ['STEP_COMPLETED', 3],
      ['JOB_COMPLETED', null],
    ]);
    expect(items.filter((r) => r.kind === 'LOG').map((r) => [r.level, r.message])).toEqual([
      ['INFO', 'info line for Ada'],
      ['WARN', 'warn line'],
      ['ERROR', 'error line'],
    ]);
    for (const r of items) expect(Number.isNaN(Date.parse(r.ts))).toBe(false);
  });

  it('afterSeq returns only later rows; nextAfterSeq is the last seq returned', async () => {
    const res = await api.get(`/v1/jobs/${jobId}/stream?afterSeq=5`);
    expect(res.status).toBe(200);
    expect(res.body.items.map((r: Json) => r.seq)).toEqual(full.slice(5).map((r) => r.seq));
    expect(res.body.nextAfterSeq).toBe(full.length);

    const page = await api.get(`/v1/jobs/${jobId}/stream?afterSeq=2&limit=3`);
    expect(page.body.items.map((r: Json) => r.seq)).toEqual([3, 4, 5]);
    expect(page.body.nextAfterSeq).toBe(5);
    // lastSeq says how long the whole stream is, whatever page was asked for.
    expect(page.body.lastSeq).toBe(full[full.length - 1]!.seq);

    // Polling past the end gives nothing new and keeps the position.
    const end = await api.get(`/v1/jobs/${jobId}/stream?afterSeq=${full.length}`);
    expect(end.body).toMatchObject({ items: [], nextAfterSeq: full.length });
  });

  it('level=WARN returns only WARN and above; level=ERROR only ERROR and above', async () => {
    const warn = await api.get(`/v1/jobs/${jobId}/stream?level=WARN`);
    expect(warn.status).toBe(200);
    expect(warn.body.items.map((r: Json) => [r.kind, r.level, r.message])).toEqual([
      ['LOG', 'WARN', 'warn line'],
      ['LOG', 'ERROR', 'error line'],
    ]);
    expect(warn.body.nextAfterSeq).toBe(warn.body.items[1].seq);
    const error = await api.get(`/v1/jobs/${jobId}/stream?level=ERROR`);
    expect(error.body.items.map((r: Json) => r.message)).toEqual(['error line']);
    const info = await api.get(`/v1/jobs/${jobId}/stream?level=INFO`);
    expect(info.body.items).toHaveLength(full.length);
    // Level and afterSeq combine.
    const after = await api.get(`/v1/jobs/${jobId}/stream?level=WARN&afterSeq=${warn.body.items[0].seq}`);
    expect(after.body.items.map((r: Json) => r.message)).toEqual(['error line']);
  });

  it('rejects an unknown level and a negative afterSeq', async () => {
    expectError(await api.get(`/v1/jobs/${jobId}/stream?level=LOUD`), 400, 'VALIDATION');
    expectError(await api.get(`/v1/jobs/${jobId}/stream?afterSeq=-1`), 400, 'VALIDATION');
  });

  it('an unknown job id is 404 for the job and its stream', async () => {
    const id = randomUUID();
    expect(expectError(await api.get(`/v1/jobs/${id}`), 404, 'NOT_FOUND').details).toMatchObject({ resource: 'job', id });
    expectError(await api.get(`/v1/jobs/${id}/stream`), 404, 'NOT_FOUND');
  });
});

describe('a failed job', () => {
  it('shows EXPRESSION_ERROR at the failing step, and the stream ends in STEP_FAILED, JOB_FAILED', async () => {
    const jobId = await run(api, await createWorkflow(api, failingDefinition));
    const job = await waitForJob(api, jobId);
    expect(job).toMatchObject({
      status: 'FAILED',
      stepsTotal: 3,
      stepsCompleted: 1,
      result: null,
      error: { code: 'EXPRESSION_ERROR', step: 'boom', message: expect.stringContaining('boom') },
    });
    const stream = (await api.get(`/v1/jobs/${jobId}/stream`)).body;
    expect(stream.status).toBe('FAILED');
    expect(stream.items.map((r: Json) => r.kind)).toEqual([
      'JOB_STARTED',
      'STEP_STARTED',
      'STEP_COMPLETED',
      'STEP_STARTED',
      'STEP_FAILED',
      'JOB_FAILED',
    ]);
    const errors = (await api.get(`/v1/jobs/${jobId}/stream?level=ERROR`)).body.items;
    expect(errors.map((r: Json) => [r.kind, r.stepIndex])).toEqual([
      ['STEP_FAILED', 1],
      ['JOB_FAILED', null],
    ]);
    expect(errors[0].data).toMatchObject({ code: 'EXPRESSION_ERROR' });
  });
});

describe('GET /v1/jobs filters and pagination', () => {
  let own: ApiClient;
  let okWf: string;
  let badWf: string;
  const completed: string[] = [];
  const failed: string[] = [];
  /** Every job of this organization, in creation order. */
  const all: string[] = [];

  beforeAll(async () => {
    own = client(app, (await seedOrg(t.db, 'Lister')).key);
    okWf = await createWorkflow(own, logsDefinition);
    badWf = await createWorkflow(own, failingDefinition);
    for (const wf of [okWf, badWf, okWf, okWf, badWf]) {
      const id = await run(own, wf, { who: 'x' });
      all.push(id);
      (wf === okWf ? completed : failed).push(id);
    }
    for (const id of all) await waitForJob(own, id);
  });

  const ids = (res: { body: Json }): string[] => res.body.items.map((j: Json) => j.id);
  const newestFirst = (list: string[]): string[] => [...list].reverse();

  it('lists every job newest first', async () => {
    const res = await own.get('/v1/jobs');
    expect(res.status).toBe(200);
    expect(ids(res)).toEqual(newestFirst(all));
    expect(res.body.nextCursor).toBeNull();
  });

  it('filters by one status', async () => {
    expect(ids(await own.get('/v1/jobs?status=COMPLETED'))).toEqual(newestFirst(completed));
    expect(ids(await own.get('/v1/jobs?status=FAILED'))).toEqual(newestFirst(failed));
    expect(ids(await own.get('/v1/jobs?status=PENDING'))).toEqual([]);
  });

  it('filters by several statuses, comma-separated or repeated', async () => {
    const comma = await own.get('/v1/jobs?status=COMPLETED,FAILED');
    expect(comma.status).toBe(200);
    expect(ids(comma)).toEqual(newestFirst(all));
    const repeated = await own.get('/v1/jobs?status=COMPLETED&status=FAILED');
    expect(repeated.status).toBe(200);
    expect(ids(repeated)).toEqual(newestFirst(all));
    expect(ids(await own.get('/v1/jobs?status=FAILED,RUNNING&status=CANCELLED'))).toEqual(newestFirst(failed));
    expectError(await own.get('/v1/jobs?status=COMPLETED,DONE'), 400, 'VALIDATION');
  });

  it('filters by workflowId, alone and with a status', async () => {
    expect(ids(await own.get(`/v1/jobs?workflowId=${okWf}`))).toEqual(newestFirst(completed));
    expect(ids(await own.get(`/v1/jobs?workflowId=${badWf}&status=FAILED`))).toEqual(newestFirst(failed));
    expect(ids(await own.get(`/v1/jobs?workflowId=${badWf}&status=COMPLETED`))).toEqual([]);
    expect(ids(await own.get(`/v1/jobs?workflowId=${randomUUID()}`))).toEqual([]);
  });

  it('paginates with limit and cursor without gaps or duplicates', async () => {
    const first = await own.get('/v1/jobs?limit=2');
    expect(ids(first)).toEqual(newestFirst(all).slice(0, 2));
    expect(first.body.nextCursor).toEqual(expect.any(String));
    const second = await own.get(`/v1/jobs?limit=2&cursor=${encodeURIComponent(first.body.nextCursor)}`);
    expect(ids(second)).toEqual(newestFirst(all).slice(2, 4));

    const { items, pages } = await collectPages(own, '/v1/jobs', 2);
    expect(pages).toBe(3);
    expect(items.map((j: Json) => j.id)).toEqual(newestFirst(all));

    const filtered = await collectPages(own, '/v1/jobs?status=COMPLETED', 1);
    expect(filtered.items.map((j: Json) => j.id)).toEqual(newestFirst(completed));
    expect(filtered.pages).toBe(completed.length);
  });
});

/**
 * The list reads finished jobs from execution_metadata and live jobs
 * (PENDING, RUNNING, WAITING) from job_queue; one page merges both in
 * created order, and a live job enters the read model when it finishes.
 */
describe('GET /v1/jobs merges live and finished jobs', () => {
  let own: ApiClient;
  let clientId: string;
  /** Every job in creation order, with what it ends as while the test runs. */
  const all: { id: string; status: string }[] = [];

  beforeAll(async () => {
    own = client(app, (await seedOrg(t.db, 'Live and finished')).key);
    const okWf = await createWorkflow(own, logsDefinition);
    const badWf = await createWorkflow(own, failingDefinition);
    // WAITING for an hour: stays in the queue for the whole test.
    const sleepWf = await createWorkflow(own, { steps: [{ id: 'nap', type: 'delay', durationMs: 3_600_000 }] });
    const c = await own.post('/v1/clients', { name: 'Acme clinic' });
    expect(c.status, JSON.stringify(c.body)).toBe(201);
    clientId = c.body.id;
    for (const [wf, status] of [[okWf, 'COMPLETED'], [sleepWf, 'WAITING'], [badWf, 'FAILED'], [sleepWf, 'WAITING'], [okWf, 'COMPLETED']] as const) {
      const res = await own.post(`/v1/workflows/${wf}/runs`, { input: { who: 'x' }, ...(status === 'WAITING' ? { clientId } : {}) });
      expect(res.status, JSON.stringify(res.body)).toBe(202);
      all.push({ id: res.body.jobId, status });
    }
    for (const j of all) {
      const deadline = Date.now() + 20_000;
      while ((await own.get(`/v1/jobs/${j.id}`)).body.status !== j.status) {
        if (Date.now() > deadline) throw new Error(`job ${j.id} never reached ${j.status}`);
        await new Promise((r) => setTimeout(r, 25));
      }
    }
  });

  const ids = (res: { body: Json }): string[] => res.body.items.map((j: Json) => j.id);
  const newest = (pred: (j: { status: string }) => boolean = () => true) => all.filter(pred).map((j) => j.id).reverse();

  it('holds a metadata row for each finished job and none for a live one', async () => {
    const { rows } = await t.db.query<{ job_id: string }>(`SELECT job_id FROM stepwise.execution_metadata WHERE job_id = ANY($1::uuid[])`, [
      all.map((j) => j.id),
    ]);
    expect(rows.map((r) => r.job_id).sort()).toEqual(all.filter((j) => j.status !== 'WAITING').map((j) => j.id).sort());
  });

  it('lists live and finished jobs together, newest first, and pages across both', async () => {
    expect(ids(await own.get('/v1/jobs'))).toEqual(newest());
    const { items } = await collectPages(own, '/v1/jobs', 2);
    expect(items.map((j: Json) => j.id)).toEqual(newest());
    const waiting = await own.get('/v1/jobs?status=WAITING');
    expect(ids(waiting)).toEqual(newest((j) => j.status === 'WAITING'));
    expect(waiting.body.items.every((j: Json) => j.status === 'WAITING')).toBe(true);
    expect(ids(await own.get('/v1/jobs?status=WAITING,FAILED'))).toEqual(newest((j) => j.status !== 'COMPLETED'));
    expect(ids(await own.get('/v1/jobs?status=PENDING,RUNNING'))).toEqual([]);
  });

  it('filters live jobs by client and finished ones by error code', async () => {
    expect(ids(await own.get(`/v1/jobs?clientId=${clientId}`))).toEqual(newest((j) => j.status === 'WAITING'));
    expect(ids(await own.get(`/v1/jobs?clientId=${clientId}&status=COMPLETED`))).toEqual([]);
    const failed = all.find((j) => j.status === 'FAILED')!.id;
    const code = (await own.get(`/v1/jobs/${failed}`)).body.error.code;
    expect(code).toEqual(expect.any(String));
    expect(ids(await own.get(`/v1/jobs?errorCode=${encodeURIComponent(code)}`))).toEqual([failed]);
  });

  it('moves a job into the read model when it finishes (cancel of a waiting job)', async () => {
    const target = all.find((j) => j.status === 'WAITING')!;
    const res = await own.post(`/v1/jobs/${target.id}/cancel`, {});
    expect(res.status, JSON.stringify(res.body)).toBeLessThan(300);
    const deadline = Date.now() + 20_000;
    while ((await own.get(`/v1/jobs/${target.id}`)).body.status !== 'CANCELLED') {
      if (Date.now() > deadline) throw new Error('cancel did not finish');
      await new Promise((r) => setTimeout(r, 25));
    }
    target.status = 'CANCELLED';
    const { rows } = await t.db.query<{ status: string }>(`SELECT status FROM stepwise.execution_metadata WHERE job_id = $1`, [target.id]);
    expect(rows).toEqual([{ status: 'CANCELLED' }]);
    expect(ids(await own.get('/v1/jobs?status=CANCELLED'))).toEqual([target.id]);
    expect(ids(await own.get('/v1/jobs'))).toEqual(newest());
  });
});

/**
 * Results that pass the executor's own checks but that PostgreSQL refuses:
 * a NUL character (jsonb cannot hold \u0000) and a compact result under 1 MB
 * whose jsonb text (with ", " separators) is over the 1 MB CHECK. Either must
 * end the job with a clear outcome and must not stop the worker recording
 * other jobs. Kept last in the file: a failure here can wedge the shared worker.
 */
describe('results the database cannot store', () => {
  it.each([
    ['a result with a NUL character', '"before\\u0000after"'],
    ['a compact 900 KB result whose jsonb text is over 1 MB', '$map([1..450000], function($v) { 0 })'],
  ])('%s ends the job and other jobs still finish', async (_label, expression) => {
    const poison = await run(api, await createWorkflow(api, { steps: [{ id: 't', type: 'transform', expression }] }));
    const job = await waitForJob(api, poison, 10_000);
    expect(TERMINAL).toContain(job.status);
    const after = await run(api, await createWorkflow(api, { steps: [{ id: 'n', type: 'noop' }] }));
    expect((await waitForJob(api, after, 10_000)).status).toBe('COMPLETED');
  });
});
