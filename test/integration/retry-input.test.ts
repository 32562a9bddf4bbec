import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Worker } from '../../src/engine/index.js';
import { MAX_INPUT_BYTES } from '../../src/engine/index.js';
import { createTestDb, type TestDb } from '../helpers/db.js';
import { seedOrg, startWorker, waitForJob, waitForStatus } from '../helpers/fixtures.js';
import { client, createTestApp, expectError, type ApiClient, type Json } from '../helpers/api.js';

/** POST /v1/jobs/:id/retry with an edited input: from the start only, within the run input's limit. */
let t: TestDb;
let app: FastifyInstance;
let worker: Worker;
let a: ApiClient;
let b: ApiClient;
let orgA: string;
let workflowId: string;

beforeAll(async () => {
  t = await createTestDb();
  app = await createTestApp(t.db);
  const seeded = await seedOrg(t.db, 'A');
  orgA = seeded.organizationId;
  a = client(app, seeded.key);
  b = client(app, (await seedOrg(t.db, 'B')).key);
  worker = startWorker(t.db, { pollIntervalMs: 20 });
  // Fails unless its input says ok: the edited input is what makes the retry succeed.
  const res = await a.post('/v1/workflows', {
    name: 'needs ok',
    definition: {
      steps: [
        { id: 'first', type: 'noop' },
        { id: 'check', type: 'transform', expression: 'input.ok = true ? { "member": input.member } : $error("input not ok")' },
      ],
    },
  });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  workflowId = res.body.id;
});

afterAll(async () => {
  await worker?.stop();
  await app?.close();
  await t?.close();
});

async function failedJob(input: Json): Promise<string> {
  const res = await a.post(`/v1/workflows/${workflowId}/runs`, { input });
  expect(res.status).toBe(202);
  await waitForStatus(t.db, orgA, res.body.jobId, 'FAILED');
  return res.body.jobId;
}

describe('retry with an edited input', () => {
  it('runs the new job with the input sent; the old job keeps its own', async () => {
    const old = await failedJob({ member: 'M-1', ok: false });
    const res = await a.post(`/v1/jobs/${old}/retry`, { from: 'start', input: { member: 'M-1', ok: true } });
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    expect(res.body).toMatchObject({ retryOf: old, inputEdited: true });
    const done = await waitForJob(t.db, orgA, res.body.jobId);
    expect(done.status).toBe('COMPLETED');
    expect(done.result).toEqual({ member: 'M-1' });
    const fresh = (await a.get(`/v1/jobs/${res.body.jobId}`)).body;
    expect(fresh).toMatchObject({ initiatorType: 'RETRY', retryOfJobId: old, input: { member: 'M-1', ok: true } });
    expect((await a.get(`/v1/jobs/${old}`)).body.input).toEqual({ member: 'M-1', ok: false });
  });

  it('without input, a retry keeps the old input (and fails the same way here)', async () => {
    const old = await failedJob({ member: 'M-2', ok: false });
    const res = await a.post(`/v1/jobs/${old}/retry`, { from: 'start' });
    expect(res.status).toBe(202);
    expect(res.body.inputEdited).toBe(false);
    const done = await waitForJob(t.db, orgA, res.body.jobId);
    expect(done).toMatchObject({ status: 'FAILED', input: { member: 'M-2', ok: false } });
  });

  it('refuses an input with a failed-step retry, a non-object input and an oversized one, creating nothing', async () => {
    const old = await failedJob({ member: 'M-3', ok: false });
    const retries = async () =>
      (await t.db.query<{ n: number }>('SELECT count(*)::int AS n FROM stepwise.jobs WHERE retry_of_job_id = $1', [old])).rows[0]!.n;
    for (const body of [{ input: { ok: true } }, { from: 'failed-step', input: { ok: true } }]) {
      const err = expectError(await a.post(`/v1/jobs/${old}/retry`, body), 400, 'VALIDATION');
      expect(err.details.path).toBe('/body/input');
    }
    for (const input of [[1, 2], 'text', 7, null]) {
      const err = expectError(await a.post(`/v1/jobs/${old}/retry`, { from: 'start', input }), 400, 'VALIDATION');
      expect(err.details.path).toBe('/body/input');
    }
    const big = { blob: 'x'.repeat(MAX_INPUT_BYTES) };
    const err = expectError(await a.post(`/v1/jobs/${old}/retry`, { from: 'start', input: big }), 413, 'PAYLOAD_TOO_LARGE');
    expect(err.details).toMatchObject({ path: 'input', limit: MAX_INPUT_BYTES });
    expect(await retries()).toBe(0);
  });

  it('another organization gets 404 and changes nothing', async () => {
    const old = await failedJob({ member: 'M-4', ok: false });
    expectError(await b.post(`/v1/jobs/${old}/retry`, { from: 'start', input: { ok: true } }), 404, 'NOT_FOUND');
    const { rows } = await t.db.query<{ n: number }>('SELECT count(*)::int AS n FROM stepwise.jobs WHERE retry_of_job_id = $1', [old]);
    expect(rows[0]!.n).toBe(0);
  });
});
