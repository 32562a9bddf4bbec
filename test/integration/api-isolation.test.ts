import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDb, type TestDb } from '../helpers/db.js';
import { seedOrg } from '../helpers/fixtures.js';
import { client, collectPages, createTestApp, expectError, simpleDefinition, type ApiClient, type ApiResponse, type Json } from '../helpers/api.js';

/**
 * Organization B holding a valid key must not read, change, run or even
 * detect organization A's objects: every such request is 404 NOT_FOUND (never
 * 403) and leaves A's data exactly as it was.
 */
let t: TestDb;
let app: FastifyInstance;
let a: ApiClient;
let b: ApiClient;
let wfA: Json;
let jobA: Json;
let clientA: Json;
let wfB: Json;

beforeAll(async () => {
  t = await createTestDb();
  app = await createTestApp(t.db);
  a = client(app, (await seedOrg(t.db, 'Org A')).key);
  b = client(app, (await seedOrg(t.db, 'Org B')).key);

  wfA = (await a.post('/v1/workflows', { name: 'A private', definition: simpleDefinition() })).body;
  clientA = (await a.post('/v1/clients', { name: 'A customer' })).body;
  const run = await a.post(`/v1/workflows/${wfA.id}/runs`, { input: { secret: 'a' }, clientId: clientA.id, idempotencyKey: 'shared-key' });
  expect(run.status).toBe(202);
  jobA = (await a.get(`/v1/jobs/${run.body.jobId}`)).body;
  await a.post('/v1/workflows', { name: 'A archived', definition: simpleDefinition() }).then((r) => a.del(`/v1/workflows/${r.body.id}`));
  wfB = (await b.post('/v1/workflows', { name: 'B own', definition: simpleDefinition() })).body;
});

afterAll(async () => {
  await app?.close();
  await t?.close();
});

/** Everything A can see, to compare before and after B's attempts. */
async function snapshotA(): Promise<Json> {
  const workflow = await a.get(`/v1/workflows/${wfA.id}`);
  const job = await a.get(`/v1/jobs/${jobA.id}`);
  const stream = await a.get(`/v1/jobs/${jobA.id}/stream`);
  return {
    workflow: workflow.body,
    job: job.body,
    stream: stream.body,
    workflows: (await collectPages(a, '/v1/workflows?includeArchived=true', 500)).items,
    jobs: (await collectPages(a, '/v1/jobs', 500)).items,
    clients: (await collectPages(a, '/v1/clients', 500)).items,
  };
}

async function countJobsOfB(): Promise<number> {
  return (await collectPages(b, '/v1/jobs', 500)).items.length;
}

function expectHidden(res: ApiResponse, resource: string, id: string): void {
  const err = expectError(res, 404, 'NOT_FOUND');
  expect(err.details).toMatchObject({ resource, id });
}

describe("another organization's ids are 404 on every route and change nothing", () => {
  let before: Json;
  let jobsOfB: number;
  beforeAll(async () => {
    before = await snapshotA();
    jobsOfB = await countJobsOfB();
    expect(before.workflow).toMatchObject({ name: 'A private', version: 1, status: 'ACTIVE' });
    expect(before.jobs).toHaveLength(1);
  });

  it('GET /v1/workflows/:id', async () => {
    expectHidden(await b.get(`/v1/workflows/${wfA.id}`), 'workflow', wfA.id);
  });

  it('PUT /v1/workflows/:id (name, status, definition)', async () => {
    expectHidden(await b.put(`/v1/workflows/${wfA.id}`, { name: 'hijacked' }), 'workflow', wfA.id);
    expectHidden(await b.put(`/v1/workflows/${wfA.id}`, { status: 'PAUSED' }), 'workflow', wfA.id);
    const definition = { steps: [{ id: 'evil', type: 'log', message: 'x' }] };
    expectHidden(await b.put(`/v1/workflows/${wfA.id}`, { definition }), 'workflow', wfA.id);
    expect(await a.get(`/v1/workflows/${wfA.id}`)).toMatchObject({ body: { name: 'A private', version: 1, status: 'ACTIVE' } });
  });

  it('DELETE /v1/workflows/:id', async () => {
    expectHidden(await b.del(`/v1/workflows/${wfA.id}`), 'workflow', wfA.id);
    expect((await a.get(`/v1/workflows/${wfA.id}`)).body).toMatchObject({ status: 'ACTIVE', archivedAt: null });
  });

  it('POST /v1/workflows/:id/runs, with and without A\'s idempotency key', async () => {
    expectHidden(await b.post(`/v1/workflows/${wfA.id}/runs`, {}), 'workflow', wfA.id);
    expectHidden(await b.post(`/v1/workflows/${wfA.id}/runs`, { idempotencyKey: 'shared-key' }), 'workflow', wfA.id);
    expectHidden(await b.post(`/v1/workflows/${wfA.id}/runs`, {}, { 'idempotency-key': 'shared-key' }), 'workflow', wfA.id);
  });

  it('POST /v1/workflows/:id/runs/batch', async () => {
    expectHidden(await b.post(`/v1/workflows/${wfA.id}/runs/batch`, { runs: [{}, {}, {}] }), 'workflow', wfA.id);
  });

  it('GET /v1/jobs/:id', async () => {
    expectHidden(await b.get(`/v1/jobs/${jobA.id}`), 'job', jobA.id);
  });

  it('GET /v1/jobs/:id/stream', async () => {
    expectHidden(await b.get(`/v1/jobs/${jobA.id}/stream`), 'job', jobA.id);
    expectHidden(await b.get(`/v1/jobs/${jobA.id}/stream?afterSeq=0&level=TRACE`), 'job', jobA.id);
  });

  it("answers A's ids exactly like ids that do not exist (no existence leak)", async () => {
    const ghost = randomUUID();
    const mask = (res: ApiResponse, id: string): Json => ({
      status: res.status,
      body: JSON.parse(JSON.stringify(res.body).replaceAll(id, '<id>')),
    });
    const pairs: [string, (id: string) => Promise<ApiResponse>][] = [
      ['workflow', (id) => b.get(`/v1/workflows/${id}`)],
      ['workflow', (id) => b.put(`/v1/workflows/${id}`, { name: 'x' })],
      ['workflow', (id) => b.del(`/v1/workflows/${id}`)],
      ['workflow', (id) => b.post(`/v1/workflows/${id}/runs`, {})],
      ['workflow', (id) => b.post(`/v1/workflows/${id}/runs/batch`, { runs: [{}] })],
      ['job', (id) => b.get(`/v1/jobs/${id}`)],
      ['job', (id) => b.get(`/v1/jobs/${id}/stream`)],
    ];
    for (const [resource, call] of pairs) {
      const real = resource === 'workflow' ? wfA.id : jobA.id;
      expect(mask(await call(real), real)).toEqual(mask(await call(ghost), ghost));
    }
  });

  // Runs last in this block (tests in a file run in order).
  it("after all of B's attempts A sees exactly what it saw before, and B gained no jobs", async () => {
    expect(await snapshotA()).toEqual(before);
    expect(await countJobsOfB()).toBe(jobsOfB);
  });
});

describe("lists never show another organization's rows", () => {
  it('GET /v1/workflows (also with includeArchived) lists only B\'s workflows', async () => {
    const idsOfA = new Set((await collectPages(a, '/v1/workflows?includeArchived=true', 500)).items.map((w: Json) => w.id));
    expect(idsOfA.size).toBe(2);
    for (const url of ['/v1/workflows', '/v1/workflows?includeArchived=true']) {
      const items = (await collectPages(b, url, 500)).items;
      expect(items.map((w: Json) => w.id)).toEqual([wfB.id]);
    }
  });

  it('GET /v1/jobs, with or without A\'s workflowId, lists none of A\'s jobs', async () => {
    const ownJob = (await b.post(`/v1/workflows/${wfB.id}/runs`, {})).body.jobId;
    expect((await b.get('/v1/jobs')).body.items.map((j: Json) => j.id)).toEqual([ownJob]);
    expect((await b.get('/v1/jobs?status=PENDING')).body.items.map((j: Json) => j.id)).toEqual([ownJob]);
    const byA = await b.get(`/v1/jobs?workflowId=${wfA.id}`);
    expect(byA.status).toBe(200);
    expect(byA.body).toEqual({ items: [], nextCursor: null });
  });

  it('GET /v1/clients lists none of A\'s clients', async () => {
    const own = (await b.post('/v1/clients', { name: 'B customer' })).body;
    const items = (await collectPages(b, '/v1/clients', 500)).items;
    expect(items.map((c: Json) => c.id)).toEqual([own.id]);
    expect(items.map((c: Json) => c.id)).not.toContain(clientA.id);
  });

  it("a cursor made from A's rows pages over B's rows only", async () => {
    // Cursors are opaque but not secret; one taken from A's list must not open A's data to B.
    const pageOfA = await a.get('/v1/workflows?limit=1&includeArchived=true');
    expect(pageOfA.body.nextCursor).toEqual(expect.any(String));
    const res = await b.get(`/v1/workflows?includeArchived=true&cursor=${encodeURIComponent(pageOfA.body.nextCursor)}`);
    expect(res.status).toBe(200);
    for (const w of res.body.items) expect(w.id).toBe(wfB.id);
  });
});

describe('clients across organizations', () => {
  it("a run with B's key on B's workflow but A's clientId is 404 and creates nothing", async () => {
    const before = await countJobsOfB();
    expectHidden(await b.post(`/v1/workflows/${wfB.id}/runs`, { clientId: clientA.id }), 'client', clientA.id);
    expectHidden(await b.post(`/v1/workflows/${wfB.id}/runs/batch`, { runs: [{}, { clientId: clientA.id }] }), 'client', clientA.id);
    expect(await countJobsOfB()).toBe(before);
  });

  it("B may reuse an idempotency key A has used: it gets its own new job", async () => {
    const res = await b.post(`/v1/workflows/${wfB.id}/runs`, { idempotencyKey: 'shared-key' });
    expect(res.status).toBe(202);
    expect(res.body.jobId).not.toBe(jobA.id);
    expect((await b.get(`/v1/jobs/${res.body.jobId}`)).body).toMatchObject({ workflowId: wfB.id, idempotencyKey: 'shared-key' });
    expect((await a.get(`/v1/jobs/${jobA.id}`)).body).toEqual(jobA);
  });
});
