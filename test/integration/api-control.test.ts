import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Worker } from '../../src/engine/index.js';
import { createTestDb, type TestDb } from '../helpers/db.js';
import { seedOrg, startWorker } from '../helpers/fixtures.js';
import { client, createTestApp, expectError, type ApiClient, type Json } from '../helpers/api.js';

let t: TestDb;
let app: FastifyInstance;
let worker: Worker;
let a: ApiClient;
let aKey: string;
let b: ApiClient;

beforeAll(async () => {
  t = await createTestDb();
  app = await createTestApp(t.db);
  aKey = (await seedOrg(t.db, 'A')).key;
  a = client(app, aKey);
  b = client(app, (await seedOrg(t.db, 'B')).key);
  worker = startWorker(t.db, { pollIntervalMs: 20 });
});

afterAll(async () => {
  await worker?.stop();
  await app?.close();
  await t?.close();
});

async function workflow(definition: Json, extra: Json = {}): Promise<string> {
  const res = await a.post('/v1/workflows', { name: 'ctl', definition, ...extra });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.id;
}

async function start(workflowId: string, body: Json = {}): Promise<string> {
  const res = await a.post(`/v1/workflows/${workflowId}/runs`, body);
  expect(res.status).toBe(202);
  return res.body.jobId;
}

async function until(jobId: string, statuses: string[]): Promise<Json> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const res = await a.get(`/v1/jobs/${jobId}`);
    if (statuses.includes(res.body.status)) return res.body;
    if (Date.now() > deadline) throw new Error(`job ${jobId} is ${res.body.status}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('signals', () => {
  it('delivers a payload to a waiting job; ended, foreign and malformed targets are refused', async () => {
    const wf = await workflow({ steps: [{ id: 'ok', type: 'wait', signal: 'approved', timeoutMs: 30_000 }] });
    const job = await start(wf);
    await until(job, ['WAITING']);
    expectError(await b.post(`/v1/jobs/${job}/signals/approved`, { payload: 1 }), 404, 'NOT_FOUND');
    expectError(await a.post(`/v1/jobs/${job}/signals/bad name!`, {}), 400, 'VALIDATION');
    const sent = await a.post(`/v1/jobs/${job}/signals/approved`, { payload: { by: 'ada' } });
    expect(sent.status).toBe(202);
    expect(sent.body.signalId).toMatch(/^[0-9a-f-]{36}$/);
    const done = await until(job, ['COMPLETED']);
    expect(done.result).toEqual({ by: 'ada' });
    expectError(await a.post(`/v1/jobs/${job}/signals/approved`, {}), 409, 'CONFLICT');
  });
});

describe('cancel and retry', () => {
  it('cancels a waiting job, then retries it from the start as a linked RETRY job', async () => {
    const wf = await workflow({ steps: [{ id: 'w', type: 'wait', signal: 'never', timeoutMs: 60_000 }] });
    const job = await start(wf, { input: { n: 5 } });
    await until(job, ['WAITING']);
    expectError(await b.post(`/v1/jobs/${job}/cancel`), 404, 'NOT_FOUND');
    const cancelled = await a.post(`/v1/jobs/${job}/cancel`);
    expect(cancelled.status).toBe(202);
    const ended = await until(job, ['CANCELLED']);
    expect(ended.error).toMatchObject({ code: 'CANCELLED' });
    expectError(await a.post(`/v1/jobs/${job}/cancel`), 409, 'CONFLICT');
    expectError(await a.post(`/v1/jobs/${job}/retry`, { from: 'sideways' }), 400, 'VALIDATION');
    expectError(await b.post(`/v1/jobs/${job}/retry`, {}), 404, 'NOT_FOUND');
    const retried = await a.post(`/v1/jobs/${job}/retry`, { from: 'start' });
    expect(retried.status).toBe(202);
    expect(retried.body.retryOf).toBe(job);
    const fresh = await a.get(`/v1/jobs/${retried.body.jobId}`);
    expect(fresh.body).toMatchObject({ initiatorType: 'RETRY', retryOfJobId: job, input: { n: 5 } });
    await a.post(`/v1/jobs/${retried.body.jobId}/cancel`);
  });

  it('gives the retried job a copy of the checkpoint that lives the configured checkpoint TTL', async () => {
    const ttlMs = 2 * 3600 * 1000; // not the 24 h default, so the test tells them apart
    const configured = await createTestApp(t.db, undefined, { checkpointTtlMs: ttlMs });
    try {
      const wf = await workflow({ steps: [{ id: 'first', type: 'noop' }, { id: 'boom', type: 'transform', expression: '$error("nope")' }] });
      const job = await start(wf);
      await until(job, ['FAILED']);
      // No worker may touch the new job's checkpoint before it is read: it would rewrite expires_at with its own TTL.
      await worker.stop();
      const before = Date.now();
      const retried = await client(configured, aKey).post(`/v1/jobs/${job}/retry`, { from: 'failed-step' });
      const after = Date.now();
      expect(retried.status, JSON.stringify(retried.body)).toBe(202);
      const { rows } = await t.db.query<{ next_step: number; expires_at: Date }>(
        'SELECT next_step, expires_at FROM stepwise.execution_checkpoints WHERE job_id = $1',
        [retried.body.jobId],
      );
      expect(rows[0]?.next_step).toBe(1);
      const expiresAt = new Date(rows[0]!.expires_at).getTime();
      expect(expiresAt).toBeGreaterThanOrEqual(before + ttlMs);
      expect(expiresAt).toBeLessThanOrEqual(after + ttlMs);
    } finally {
      await configured.close();
      worker = startWorker(t.db, { pollIntervalMs: 20 });
    }
  });

  it('refuses to retry a job that completed', async () => {
    const wf = await workflow({ steps: [{ id: 'n', type: 'noop' }] });
    const job = await start(wf);
    await until(job, ['COMPLETED']);
    expectError(await a.post(`/v1/jobs/${job}/retry`, {}), 409, 'CONFLICT');
  });
});

describe('limits through the API', () => {
  it('workflow maxConcurrentRuns round-trips and is validated', async () => {
    const wf = await workflow({ steps: [{ id: 'n', type: 'noop' }] }, { maxConcurrentRuns: 3 });
    expect((await a.get(`/v1/workflows/${wf}`)).body.maxConcurrentRuns).toBe(3);
    const cleared = await a.put(`/v1/workflows/${wf}`, { maxConcurrentRuns: null });
    expect(cleared.body.maxConcurrentRuns).toBeNull();
    expectError(await a.put(`/v1/workflows/${wf}`, { maxConcurrentRuns: 0 }), 400, 'VALIDATION');
  });

  it('the organization limit is read and set for the key’s own organization only', async () => {
    expect((await a.get('/v1/organization')).body).toMatchObject({ name: 'A', maxConcurrentRuns: null });
    const set = await a.request('PATCH', '/v1/organization', { body: { maxConcurrentRuns: 7 } });
    expect(set.body.maxConcurrentRuns).toBe(7);
    expect((await b.get('/v1/organization')).body).toMatchObject({ name: 'B', maxConcurrentRuns: null });
    expectError(await a.request('PATCH', '/v1/organization', { body: { maxConcurrentRuns: -1 } }), 400, 'VALIDATION');
    await a.request('PATCH', '/v1/organization', { body: { maxConcurrentRuns: null } });
  });
});
