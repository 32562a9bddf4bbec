import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BulkRunner, DEFAULT_BULK_JOB_CONTROL, type BulkJobControl } from '../../src/engine/bulk.js';
import type { Worker } from '../../src/engine/index.js';
import { bulkJobSelector } from '../../src/read/bulk-selection.js';
import { DatabaseUnavailableError } from '../../src/db/index.js';
import { createTestDb, type TestDb } from '../helpers/db.js';
import { seedOrg, silentLogger, startWorker, waitForStatus } from '../helpers/fixtures.js';
import { seedRoleKeys } from '../helpers/roles.js';
import { client, createTestApp, expectError, type ApiClient, type Json } from '../helpers/api.js';

/**
 * Bulk cancel and retry: the runner is never started here; each test drives
 * it a chunk at a time (`step`) or to the end (`drain`). Fixtures are made
 * with a worker, which is then stopped, so nothing moves under the
 * assertions: a cancel leaves its request on the job (cancelRequestedAt),
 * a retry leaves a PENDING RETRY job.
 */
let t: TestDb;
let app: FastifyInstance;
let runner: BulkRunner;
let a: ApiClient;
let b: ApiClient;
let viewer: ApiClient;
let orgA: string;
let orgB: string;

const CHUNK = 2;
const TTL_MS = 3_600_000;

function newRunner(options: { control?: BulkJobControl; holder?: string } = {}): BulkRunner {
  return new BulkRunner(
    { db: t.db, logger: silentLogger, selector: bulkJobSelector, checkpointTtlMs: TTL_MS, control: options.control },
    { chunkSize: CHUNK, ...(options.holder ? { holder: options.holder } : {}) },
  );
}

async function workflow(api: ApiClient, definition: Json): Promise<string> {
  const res = await api.post('/v1/workflows', { name: 'bulk', definition });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.id;
}

const failing = { steps: [{ id: 'first', type: 'noop' }, { id: 'boom', type: 'transform', expression: '$error("nope")' }] };
const waiting = { steps: [{ id: 'w', type: 'wait', signal: 'never', timeoutMs: 3_600_000 }] };
const quick = { steps: [{ id: 'n', type: 'noop' }] };

/** Start `n` runs of a new workflow and wait until each is `status` (the worker runs them). */
async function jobs(api: ApiClient, organizationId: string, definition: Json, status: string, n: number): Promise<{ workflowId: string; ids: string[] }> {
  const workflowId = await workflow(api, definition);
  const res = await api.post(`/v1/workflows/${workflowId}/runs/batch`, { runs: Array.from({ length: n }, (_, i) => ({ input: { i } })) });
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  const ids: string[] = res.body.jobs.map((j: Json) => j.jobId);
  for (const id of ids) await waitForStatus(t.db, organizationId, id, status);
  return { workflowId, ids };
}

async function operation(id: string): Promise<Json> {
  const res = await a.get(`/v1/operations/${id}`);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body;
}

async function bulk(body: Json): Promise<Json> {
  const res = await a.post('/v1/jobs/bulk', body);
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return res.body.operation;
}

async function dryRun(body: Json): Promise<number> {
  const res = await a.post('/v1/jobs/bulk', { ...body, dryRun: true });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  expect(res.body.capped).toBe(false);
  return res.body.count;
}

/** RETRY jobs per original, and whether each has a checkpoint (a failed-step retry's copy). */
async function retriesOf(ids: string[]): Promise<Map<string, { n: number; checkpoints: number; nextStep: number | null }>> {
  const { rows } = await t.db.query<{ retry_of_job_id: string; n: number; checkpoints: number; next_step: number | null }>(
    `SELECT j.retry_of_job_id, count(*)::int AS n, count(c.job_id)::int AS checkpoints, max(c.next_step) AS next_step
       FROM stepwise.jobs j LEFT JOIN stepwise.execution_checkpoints c ON c.job_id = j.id
      WHERE j.retry_of_job_id = ANY($1::uuid[]) AND j.initiator_type = 'RETRY'
      GROUP BY j.retry_of_job_id`,
    [ids],
  );
  return new Map(rows.map((r) => [r.retry_of_job_id, { n: r.n, checkpoints: r.checkpoints, nextStep: r.next_step }]));
}

async function cancelRequested(ids: string[]): Promise<number> {
  const { rows } = await t.db.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM stepwise.jobs WHERE id = ANY($1::uuid[]) AND cancel_requested_at IS NOT NULL',
    [ids],
  );
  return rows[0]!.n;
}

// Fixtures, made once with a worker.
let waitingA: { workflowId: string; ids: string[] };
let waitingA2: { workflowId: string; ids: string[] };
let doneA: { workflowId: string; ids: string[] };
let failedA1: { workflowId: string; ids: string[] };
let failedA2: { workflowId: string; ids: string[] };
let failedA3: { workflowId: string; ids: string[] };
let failedA4: { workflowId: string; ids: string[] };
let manyDone: { workflowId: string; ids: string[] };
let waitingB: { workflowId: string; ids: string[] };
let failedB: { workflowId: string; ids: string[] };

beforeAll(async () => {
  t = await createTestDb();
  runner = newRunner();
  app = await createTestApp(t.db, undefined, { bulkRunner: runner });
  const seededA = await seedOrg(t.db, 'A');
  const seededB = await seedOrg(t.db, 'B');
  orgA = seededA.organizationId;
  orgB = seededB.organizationId;
  a = client(app, seededA.key);
  b = client(app, seededB.key);
  viewer = client(app, (await seedRoleKeys(t.db, orgA)).VIEWER.key);
  const worker: Worker = startWorker(t.db, { pollIntervalMs: 20 });
  try {
    waitingA = await jobs(a, orgA, waiting, 'WAITING', 3);
    waitingA2 = await jobs(a, orgA, waiting, 'WAITING', 3);
    doneA = await jobs(a, orgA, quick, 'COMPLETED', 2);
    failedA1 = await jobs(a, orgA, failing, 'FAILED', 5);
    failedA2 = await jobs(a, orgA, failing, 'FAILED', 2);
    failedA3 = await jobs(a, orgA, failing, 'FAILED', 5);
    failedA4 = await jobs(a, orgA, failing, 'FAILED', 3);
    manyDone = await jobs(a, orgA, quick, 'COMPLETED', 52);
    waitingB = await jobs(b, orgB, waiting, 'WAITING', 2);
    failedB = await jobs(b, orgB, failing, 'FAILED', 1);
  } finally {
    await worker.stop();
  }
}, 120_000);

afterAll(async () => {
  await runner?.stop();
  await app?.close();
  await t?.close();
});

describe('bulk cancel', () => {
  it('by ids: live jobs are cancelled, finished ones and another organization’s are counted failed with a code', async () => {
    const ids = [...waitingA.ids, ...doneA.ids, failedA1.ids[0]!, waitingB.ids[0]!];
    expect(await dryRun({ action: 'cancel', ids })).toBe(3);
    const created = await bulk({ action: 'cancel', ids });
    expect(created).toMatchObject({ action: 'cancel', from: null, status: 'RUNNING', total: 7, done: 0, succeeded: 0, failed: 0, errors: [], finishedAt: null });
    expect(created.createdBy).toMatch(/^user:/);
    await runner.drain();
    const op = await operation(created.id);
    expect(op).toMatchObject({ status: 'COMPLETED', total: 7, done: 7, succeeded: 3, failed: 4 });
    expect(op.finishedAt).not.toBeNull();
    const codes = Object.fromEntries(op.errors.map((e: Json) => [e.jobId, e.code]));
    expect(codes).toEqual({
      [doneA.ids[0]!]: 'ALREADY_FINISHED',
      [doneA.ids[1]!]: 'ALREADY_FINISHED',
      [failedA1.ids[0]!]: 'ALREADY_FINISHED',
      [waitingB.ids[0]!]: 'NOT_FOUND',
    });
    expect(await cancelRequested(waitingA.ids)).toBe(3);
    // Another organization's job was not touched.
    expect(await cancelRequested(waitingB.ids)).toBe(0);
    // The finished ones are as they were.
    expect((await a.get(`/v1/jobs/${doneA.ids[0]}`)).body).toMatchObject({ status: 'COMPLETED', cancelRequestedAt: null });
  });

  it('by filter: the dry run counts what is then done; runs started after the request are not touched', async () => {
    const filter = { workflowId: waitingA2.workflowId };
    expect(await dryRun({ action: 'cancel', filter })).toBe(3);
    const created = await bulk({ action: 'cancel', filter });
    expect(created.total).toBe(3);
    // Started after the operation was created (no worker: they stay PENDING, live, matching the filter).
    const later: string[] = [];
    for (let i = 0; i < 2; i++) later.push((await a.post(`/v1/workflows/${waitingA2.workflowId}/runs`, {})).body.jobId);
    await runner.drain();
    expect(await operation(created.id)).toMatchObject({ status: 'COMPLETED', total: 3, done: 3, succeeded: 3, failed: 0, errors: [] });
    expect(await cancelRequested(waitingA2.ids)).toBe(3);
    expect(await cancelRequested(later)).toBe(0);
    // A filter asking only for statuses a cancel cannot touch selects nothing: completed at once.
    const none = { workflowId: waitingA2.workflowId, status: ['COMPLETED', 'FAILED'] };
    expect(await dryRun({ action: 'cancel', filter: none })).toBe(0);
    expect(await bulk({ action: 'cancel', filter: none })).toMatchObject({ status: 'COMPLETED', total: 0, done: 0 });
  });

  it('keeps the first 50 refusals and counts them all', async () => {
    const created = await bulk({ action: 'cancel', ids: manyDone.ids });
    await runner.drain();
    const op = await operation(created.id);
    expect(op).toMatchObject({ status: 'COMPLETED', total: 52, done: 52, succeeded: 0, failed: 52 });
    expect(op.errors).toHaveLength(50);
    expect(op.errors.map((e: Json) => e.jobId)).toEqual(manyDone.ids.slice(0, 50));
    expect(new Set(op.errors.map((e: Json) => e.code))).toEqual(new Set(['ALREADY_FINISHED']));
  });
});

describe('bulk retry', () => {
  it('from the failed step, by filter, a chunk at a time with progress visible mid-way', async () => {
    const filter = { workflowId: failedA1.workflowId, status: 'FAILED,TIMED_OUT' };
    expect(await dryRun({ action: 'retry', filter })).toBe(5);
    const created = await bulk({ action: 'retry', from: 'failed-step', filter });
    expect(created).toMatchObject({ action: 'retry', from: 'failed-step', status: 'RUNNING', total: 5, done: 0 });
    expect(await runner.step()).toBe(true);
    expect(await operation(created.id)).toMatchObject({ status: 'RUNNING', total: 5, done: 2, succeeded: 2, failed: 0 });
    expect((await retriesOf(failedA1.ids)).size).toBe(2);
    expect(await runner.step()).toBe(true);
    expect(await operation(created.id)).toMatchObject({ status: 'RUNNING', done: 4, succeeded: 4 });
    expect(await runner.step()).toBe(true);
    expect(await operation(created.id)).toMatchObject({ status: 'COMPLETED', total: 5, done: 5, succeeded: 5, failed: 0 });
    expect(await runner.step()).toBe(false);
    const retries = await retriesOf(failedA1.ids);
    expect(retries.size).toBe(5);
    // One retry each, starting at the failed step (index 1) with the first step's output reused.
    for (const r of retries.values()) expect(r).toEqual({ n: 1, checkpoints: 1, nextStep: 1 });
    // The retries (PENDING) are not retryable; the originals still are, and are counted again.
    expect(await dryRun({ action: 'retry', filter: { workflowId: failedA1.workflowId } })).toBe(5);
  });

  it('from the start, by ids, with a job that cannot be retried', async () => {
    const ids = [...failedA2.ids, doneA.ids[0]!];
    const created = await bulk({ action: 'retry', from: 'start', ids });
    await runner.drain();
    const op = await operation(created.id);
    expect(op).toMatchObject({ status: 'COMPLETED', from: 'start', total: 3, succeeded: 2, failed: 1 });
    expect(op.errors).toEqual([{ jobId: doneA.ids[0], code: 'NOT_RETRYABLE', message: expect.any(String) }]);
    const retries = await retriesOf(failedA2.ids);
    for (const id of failedA2.ids) expect(retries.get(id)).toEqual({ n: 1, checkpoints: 0, nextStep: null });
    const { rows } = await t.db.query<{ input: Json }>('SELECT input FROM stepwise.jobs WHERE retry_of_job_id = $1', [failedA2.ids[1]]);
    expect(rows[0]!.input).toEqual({ i: 1 });
  });

  it('a chunk whose transaction fails is rolled back and done again once; a crashed runner’s operation is taken over', async () => {
    // The 2nd job of the 2nd chunk fails the chunk once (as a lost connection would), after the 1st job's retry was written.
    let calls = 0;
    const flaky: BulkJobControl = {
      cancelJob: DEFAULT_BULK_JOB_CONTROL.cancelJob,
      async retryJob(db, organizationId, jobId, from, ttl) {
        calls++;
        if (calls === 4) throw new Error('connection lost mid-chunk');
        return DEFAULT_BULK_JOB_CONTROL.retryJob(db, organizationId, jobId, from, ttl);
      },
    };
    const first = newRunner({ control: flaky, holder: 'first' });
    const created = await bulk({ action: 'retry', filter: { workflowId: failedA3.workflowId } });
    expect(created.total).toBe(5);
    expect(await first.step()).toBe(true);
    expect(await operation(created.id)).toMatchObject({ done: 2 });
    expect(await first.step()).toBe(true); // the failing chunk
    const afterFailure = await operation(created.id);
    expect(afterFailure).toMatchObject({ status: 'RUNNING', done: 2, succeeded: 2 });
    expect(afterFailure.lastError).toContain('connection lost');
    // Nothing of the failed chunk was kept: still two retries only.
    expect([...(await retriesOf(failedA3.ids)).values()].reduce((s, r) => s + r.n, 0)).toBe(2);
    expect(await first.step()).toBe(true);
    expect(await operation(created.id)).toMatchObject({ status: 'RUNNING', done: 4, succeeded: 4, lastError: null });

    // The first runner "crashes" (never stopped, its lease held): another runner waits for the lease.
    const second = newRunner({ holder: 'second' });
    expect(await second.step()).toBe(false);
    await t.db.query(`UPDATE stepwise.bulk_operations SET lease_until = now() - interval '1 second' WHERE id = $1`, [created.id]);
    await second.drain();
    expect(await operation(created.id)).toMatchObject({ status: 'COMPLETED', total: 5, done: 5, succeeded: 5, failed: 0 });
    // The first runner, back, finds nothing of its own to do.
    expect(await first.step()).toBe(false);
    const retries = await retriesOf(failedA3.ids);
    expect(retries.size).toBe(5);
    for (const r of retries.values()) expect(r.n).toBe(1);
    await second.stop();
    await first.stop();
  });

  it('an operation whose chunks keep failing is FAILED, keeping what was done', async () => {
    const broken: BulkJobControl = {
      cancelJob: DEFAULT_BULK_JOB_CONTROL.cancelJob,
      async retryJob() {
        throw new Error('database gone');
      },
    };
    const r = new BulkRunner(
      { db: t.db, logger: silentLogger, selector: bulkJobSelector, checkpointTtlMs: TTL_MS, control: broken },
      { chunkSize: CHUNK, maxChunkFailures: 3, holder: 'broken' },
    );
    const created = await bulk({ action: 'retry', ids: failedA4.ids });
    await r.drain();
    const op = await operation(created.id);
    expect(op).toMatchObject({ status: 'FAILED', done: 0, lastError: 'database gone' });
    expect(op.finishedAt).not.toBeNull();
    expect((await retriesOf(failedA4.ids)).size).toBe(0);
    await r.stop();
  });
});

describe('bulk operations while the database is unavailable', () => {
  it('a chunk cut short by an unavailable database is tried again and not counted toward FAILED', async () => {
    let outage = 4; // more chunk attempts than maxChunkFailures: counted, they would FAIL the operation
    const flaky: BulkJobControl = {
      async cancelJob(...args) {
        if (outage-- > 0) throw new DatabaseUnavailableError('restarting');
        return DEFAULT_BULK_JOB_CONTROL.cancelJob(...args);
      },
      retryJob: DEFAULT_BULK_JOB_CONTROL.retryJob,
    };
    const r = new BulkRunner(
      { db: t.db, logger: silentLogger, selector: bulkJobSelector, checkpointTtlMs: TTL_MS, control: flaky },
      { chunkSize: CHUNK, maxChunkFailures: 3, holder: 'flaky' },
    );
    // Runs nobody claims (no worker runs here): PENDING until cancelled.
    const workflowId = await workflow(a, waiting);
    const started = await a.post(`/v1/workflows/${workflowId}/runs/batch`, { runs: [{ input: { i: 1 } }, { input: { i: 2 } }] });
    expect(started.status, JSON.stringify(started.body)).toBe(202);
    const created = await bulk({ action: 'cancel', ids: started.body.jobs.map((j: Json) => j.jobId) });
    for (let i = 0; i < 4; i++) expect(await r.step()).toBe(true);
    expect(await operation(created.id)).toMatchObject({ status: 'RUNNING', done: 0, lastError: null });
    await r.drain();
    expect(await operation(created.id)).toMatchObject({ status: 'COMPLETED', total: 2, done: 2, succeeded: 2, failed: 0, lastError: null });
    await r.stop();
  });
});

describe('operations API', () => {
  it('lists the organization’s own operations, newest first; another organization’s answers 404', async () => {
    const mine = await a.get('/v1/operations');
    expect(mine.status).toBe(200);
    expect(mine.body.items.length).toBeGreaterThan(3);
    const created = mine.body.items.map((o: Json) => o.createdAt);
    expect([...created].sort().reverse()).toEqual(created);
    expect((await b.get('/v1/operations')).body.items).toEqual([]);
    expectError(await b.get(`/v1/operations/${mine.body.items[0].id}`), 404, 'NOT_FOUND');
    // Readable by a VIEWER; starting one needs jobs.control.
    expect((await viewer.get(`/v1/operations/${mine.body.items[0].id}`)).status).toBe(200);
    expectError(await viewer.post('/v1/jobs/bulk', { action: 'cancel', ids: waitingA.ids }), 403, 'FORBIDDEN');
  });

  it('another organization cannot touch A’s jobs by filter either', async () => {
    const before = await cancelRequested(waitingB.ids);
    const res = await b.post('/v1/jobs/bulk', { action: 'retry', filter: { workflowId: failedA2.workflowId }, dryRun: true });
    expect(res.body).toEqual({ count: 0, capped: false });
    const op = (await b.post('/v1/jobs/bulk', { action: 'cancel', filter: {} })).body.operation;
    await runner.drain();
    // B's filter covers B's live jobs only, and A cannot see B's operation.
    expectError(await a.get(`/v1/operations/${op.id}`), 404, 'NOT_FOUND');
    expect((await b.get(`/v1/operations/${op.id}`)).body).toMatchObject({ status: 'COMPLETED', succeeded: 2, failed: 0 });
    expect(before).toBe(0);
    expect(await cancelRequested(waitingB.ids)).toBe(2);
    expect(await retriesOf([failedB.ids[0]!])).toEqual(new Map());
  });

  it('refuses bad requests with 400 naming the field, and creates nothing', async () => {
    const count = async () => (await t.db.query<{ n: number }>('SELECT count(*)::int AS n FROM stepwise.bulk_operations')).rows[0]!.n;
    const before = await count();
    const id = waitingA.ids[0]!;
    const cases: [Json, string][] = [
      [{ action: 'cancel' }, '/body/ids'],
      [{ action: 'cancel', ids: [id], filter: {} }, '/body/filter'],
      [{ action: 'cancel', ids: [] }, '/body/ids'],
      [{ action: 'cancel', ids: Array.from({ length: 1001 }, () => id) }, '/body/ids'],
      [{ action: 'cancel', ids: [id, id.toUpperCase()] }, '/body/ids/1'],
      [{ action: 'cancel', ids: ['not-a-uuid'] }, '/body/ids/0'],
      [{ action: 'cancel', ids: [id], from: 'start' }, '/body/from'],
      [{ action: 'delete', ids: [id] }, '/body/action'],
      [{ ids: [id] }, '/body/action'],
      [{ action: 'retry', ids: [id], from: 'middle' }, '/body/from'],
      [{ action: 'retry', filter: { status: ['DONE'] } }, '/body/filter/status/0'],
      [{ action: 'retry', filter: { workflowId: 'x' } }, '/body/filter/workflowId'],
      [{ action: 'retry', filter: { parentJobId: id } }, '/body/filter/parentJobId'],
      [{ action: 'retry', filter: { createdFrom: '2030-01-02T00:00:00Z', createdTo: '2030-01-01T00:00:00Z' } }, '/body/filter/createdFrom'],
      [{ action: 'retry', filter: { search: ['no colon'] } }, '/body/filter/search/0'],
      [{ action: 'retry', ids: [id], dryRun: 'yes' }, '/body/dryRun'],
    ];
    for (const [body, path] of cases) {
      const err = expectError(await a.post('/v1/jobs/bulk', body), 400, 'VALIDATION');
      expect(err.details.path, JSON.stringify(body)).toBe(path);
    }
    expect(await count()).toBe(before);
    expectError(await a.get('/v1/operations/not-a-uuid'), 400, 'VALIDATION');
    expectError(await a.get('/v1/operations/00000000-0000-7000-8000-000000000000'), 404, 'NOT_FOUND');
  });

  it('is described in /openapi.json', async () => {
    const doc = (await client(app, undefined).get('/openapi.json')).body;
    expect(doc.paths['/v1/jobs/bulk'].post.requestBody).toBeDefined();
    expect(doc.paths['/v1/operations/{id}'].get).toBeDefined();
    expect(doc.paths['/v1/operations'].get).toBeDefined();
    expect(JSON.stringify(doc)).toContain('NOT_RETRYABLE');
  });

  it('a filter with a search term selects by the indexed input value', async () => {
    const wf = await workflow(a, { searchKeys: ['input.memberId'], steps: [{ id: 'w', type: 'wait', signal: 'never', timeoutMs: 3_600_000 }] });
    const one = (await a.post(`/v1/workflows/${wf}/runs`, { input: { memberId: 'M-1' } })).body.jobId;
    const two = (await a.post(`/v1/workflows/${wf}/runs`, { input: { memberId: 'M-2' } })).body.jobId;
    const filter = { workflowId: wf, search: 'input.memberId:M-2' };
    expect(await dryRun({ action: 'cancel', filter })).toBe(1);
    const created = await bulk({ action: 'cancel', filter });
    await runner.drain();
    expect(await operation(created.id)).toMatchObject({ status: 'COMPLETED', total: 1, succeeded: 1 });
    expect(await cancelRequested([one])).toBe(0);
    expect(await cancelRequested([two])).toBe(1);
  });
});

describe('the runner as serve runs it', () => {
  it('started, it works through an operation as soon as the request that created it has committed', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await a.post(`/v1/workflows/${waitingA.workflowId}/runs`, {})).body.jobId);
    runner.start();
    try {
      const created = await bulk({ action: 'cancel', ids });
      let op = await operation(created.id);
      for (let polls = 0; op.status === 'RUNNING' && polls < 500; polls++) {
        await new Promise((r) => setTimeout(r, 20));
        op = await operation(created.id);
      }
      expect(op).toMatchObject({ status: 'COMPLETED', total: 3, succeeded: 3 });
      expect(await cancelRequested(ids)).toBe(3);
    } finally {
      await runner.stop();
    }
    const { rows } = await t.db.query<{ n: number }>('SELECT count(*)::int AS n FROM stepwise.bulk_operations WHERE lease_holder IS NOT NULL AND status = $1', ['RUNNING']);
    expect(rows[0]!.n).toBe(0);
  });
});
