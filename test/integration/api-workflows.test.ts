import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDb, type TestDb } from '../helpers/db.js';
import { seedOrg } from '../helpers/fixtures.js';
import { client, collectPages, createTestApp, expectError, simpleDefinition, type ApiClient, type Json } from '../helpers/api.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

let t: TestDb;
let app: FastifyInstance;

beforeAll(async () => {
  t = await createTestDb();
  app = await createTestApp(t.db);
});

afterAll(async () => {
  await app?.close();
  await t?.close();
});

/** A client for a fresh organization, so counts and run numbers start from zero. */
async function freshOrg(name = 'Acme'): Promise<ApiClient> {
  return client(app, (await seedOrg(t.db, name)).key);
}

async function createWorkflow(api: ApiClient, body: Record<string, unknown> = {}): Promise<Json> {
  const res = await api.post('/v1/workflows', { name: 'wf', definition: simpleDefinition(), ...body });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body;
}

async function jobsOf(api: ApiClient, workflowId: string): Promise<Json[]> {
  const res = await api.get(`/v1/jobs?workflowId=${workflowId}&limit=500`);
  expect(res.status).toBe(200);
  return res.body.items;
}

describe('workflows: create, get, list', () => {
  let api: ApiClient;
  beforeAll(async () => {
    api = await freshOrg();
  });

  it('creates version 1, echoes the definition, and GET returns the same workflow', async () => {
    const definition = {
      steps: [
        { id: 'shape', type: 'transform', expression: '{ "n": input.n * 2 }' },
        { id: 'note', type: 'log', level: 'WARN', message: 'n is {{ steps.shape.n }}' },
      ],
    };
    const res = await api.post('/v1/workflows', { name: 'Intake', description: 'new patients', category: 'ops', definition });
    expect(res.status).toBe(201);
    expect(res.body).toEqual({
      id: expect.stringMatching(UUID),
      name: 'Intake',
      description: 'new patients',
      category: 'ops',
      status: 'ACTIVE',
      version: 1,
      definition,
      maxConcurrentRuns: null,
      createdAt: expect.stringMatching(ISO),
      updatedAt: expect.stringMatching(ISO),
      archivedAt: null,
    });
    const got = await api.get(`/v1/workflows/${res.body.id}`);
    expect(got.status).toBe(200);
    expect(got.body).toEqual(res.body);
  });

  it('lists newest first with keyset pagination and no duplicates', async () => {
    const own = await freshOrg('Pager');
    const created: string[] = [];
    for (let i = 0; i < 5; i++) created.push((await createWorkflow(own, { name: `wf ${i}` })).id);
    const first = await own.get('/v1/workflows?limit=2');
    expect(first.body.items).toHaveLength(2);
    expect(first.body.nextCursor).toEqual(expect.any(String));
    const { items, pages } = await collectPages(own, '/v1/workflows', 2);
    expect(pages).toBe(3);
    const ids = items.map((w: Json) => w.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids).toEqual([...created].reverse());
    expect(items.map((w: Json) => w.name)).toEqual(['wf 4', 'wf 3', 'wf 2', 'wf 1', 'wf 0']);
    // An exact multiple of the page size ends with an empty nextCursor, not an empty extra page.
    const all = await own.get('/v1/workflows?limit=5');
    expect(all.body.items).toHaveLength(5);
    expect(all.body.nextCursor).toBeNull();
  });
});

describe('workflows: update and archive', () => {
  let api: ApiClient;
  beforeAll(async () => {
    api = await freshOrg();
  });

  it('renaming keeps the version and the definition', async () => {
    const wf = await createWorkflow(api, { name: 'before' });
    const res = await api.put(`/v1/workflows/${wf.id}`, { name: 'after', description: 'now described' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id: wf.id, name: 'after', description: 'now described', version: 1, definition: wf.definition });
    expect(Date.parse(res.body.updatedAt)).toBeGreaterThanOrEqual(Date.parse(wf.updatedAt));
    expect((await api.get(`/v1/workflows/${wf.id}`)).body).toMatchObject({ name: 'after', version: 1 });
  });

  it('a new definition is version 2; a job started before keeps version 1', async () => {
    const wf = await createWorkflow(api);
    const before = await api.post(`/v1/workflows/${wf.id}/runs`, { input: { n: 1 } });
    expect(before.status).toBe(202);

    const definition = { steps: [{ id: 'second', type: 'log', message: 'v2' }] };
    const res = await api.put(`/v1/workflows/${wf.id}`, { definition });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ version: 2, definition, name: 'wf' });
    expect((await api.get(`/v1/workflows/${wf.id}`)).body).toMatchObject({ version: 2, definition });

    const oldJob = await api.get(`/v1/jobs/${before.body.jobId}`);
    expect(oldJob.body).toMatchObject({ workflowId: wf.id, workflowVersion: 1 });
    const after = await api.post(`/v1/workflows/${wf.id}/runs`, {});
    expect((await api.get(`/v1/jobs/${after.body.jobId}`)).body).toMatchObject({ workflowVersion: 2 });

    // Renaming after that leaves the version at 2.
    expect((await api.put(`/v1/workflows/${wf.id}`, { name: 'renamed' })).body).toMatchObject({ version: 2, definition });
  });

  it('every version stays readable by number (the dashboard compares them); a missing one or another organization\'s is 404', async () => {
    const wf = await createWorkflow(api);
    const v2 = { steps: [{ id: 'second', type: 'log', message: 'v2' }] };
    expect((await api.put(`/v1/workflows/${wf.id}`, { definition: v2 })).status).toBe(200);
    const one = await api.get(`/v1/workflows/${wf.id}/versions/1`);
    expect(one.status).toBe(200);
    expect(one.body).toMatchObject({ workflowId: wf.id, version: 1, definition: simpleDefinition(), createdAt: expect.any(String) });
    expect((await api.get(`/v1/workflows/${wf.id}/versions/2`)).body).toMatchObject({ version: 2, definition: v2 });
    expectError(await api.get(`/v1/workflows/${wf.id}/versions/3`), 404, 'NOT_FOUND');
    expectError(await api.get(`/v1/workflows/${wf.id}/versions/0`), 400, 'VALIDATION');
    expectError(await (await freshOrg('Other')).get(`/v1/workflows/${wf.id}/versions/1`), 404, 'NOT_FOUND');
  });

  it('DELETE archives: hidden from the list unless includeArchived, and it can no longer run', async () => {
    const wf = await createWorkflow(api, { name: 'to archive' });
    const kept = await createWorkflow(api, { name: 'kept' });
    const job = await api.post(`/v1/workflows/${wf.id}/runs`, {});
    expect(job.status).toBe(202);

    const del = await api.del(`/v1/workflows/${wf.id}`);
    expect(del.status).toBe(204);
    expect(del.body).toBeNull();

    const listed = (await collectPages(api, '/v1/workflows', 500)).items.map((w: Json) => w.id);
    expect(listed).toContain(kept.id);
    expect(listed).not.toContain(wf.id);
    const withArchived = (await collectPages(api, '/v1/workflows?includeArchived=true', 500)).items;
    const archived = withArchived.find((w: Json) => w.id === wf.id);
    expect(archived).toMatchObject({ status: 'ARCHIVED', archivedAt: expect.stringMatching(ISO) });
    expect(withArchived.map((w: Json) => w.id)).toContain(kept.id);

    expectError(await api.post(`/v1/workflows/${wf.id}/runs`, {}), 404, 'NOT_FOUND');
    expectError(await api.post(`/v1/workflows/${wf.id}/runs/batch`, { runs: [{}] }), 404, 'NOT_FOUND');
    expectError(await api.put(`/v1/workflows/${wf.id}`, { name: 'revived' }), 404, 'NOT_FOUND');
    expectError(await api.del(`/v1/workflows/${wf.id}`), 404, 'NOT_FOUND');
    // The job that ran it is kept.
    expect((await jobsOf(api, wf.id)).map((j: Json) => j.id)).toEqual([job.body.jobId]);
  });

  it('only ACTIVE workflows run: PAUSED and DRAFT give 409 and create no job', async () => {
    const paused = await createWorkflow(api, { status: 'PAUSED' });
    const err = expectError(await api.post(`/v1/workflows/${paused.id}/runs`, {}), 409, 'CONFLICT');
    expect(err.details).toMatchObject({ status: 'PAUSED' });
    const draft = await createWorkflow(api, { status: 'DRAFT' });
    expectError(await api.post(`/v1/workflows/${draft.id}/runs/batch`, { runs: [{}, {}] }), 409, 'CONFLICT');

    const active = await createWorkflow(api);
    expect((await api.put(`/v1/workflows/${active.id}`, { status: 'PAUSED' })).body).toMatchObject({ status: 'PAUSED', version: 1 });
    expectError(await api.post(`/v1/workflows/${active.id}/runs`, {}), 409, 'CONFLICT');
    for (const id of [paused.id, draft.id, active.id]) expect(await jobsOf(api, id)).toEqual([]);

    expect((await api.put(`/v1/workflows/${active.id}`, { status: 'ACTIVE' })).status).toBe(200);
    expect((await api.post(`/v1/workflows/${active.id}/runs`, {})).status).toBe(202);
  });
});

describe('runs', () => {
  let api: ApiClient;
  let wf: Json;
  beforeAll(async () => {
    api = await freshOrg('Runner');
    wf = await createWorkflow(api);
  });

  it('starts runs with 202 and run numbers 1, 2, 3 counted per organization', async () => {
    const runs = [];
    for (const input of [{ a: 1 }, { a: 2 }, { a: 3 }]) runs.push(await api.post(`/v1/workflows/${wf.id}/runs`, { input }));
    for (const r of runs) expect(r.status).toBe(202);
    expect(runs.map((r) => r.body)).toEqual([
      { jobId: expect.stringMatching(UUID), runNumber: 1, status: 'PENDING' },
      { jobId: expect.stringMatching(UUID), runNumber: 2, status: 'PENDING' },
      { jobId: expect.stringMatching(UUID), runNumber: 3, status: 'PENDING' },
    ]);
    const job = await api.get(`/v1/jobs/${runs[1]!.body.jobId}`);
    expect(job.body).toMatchObject({
      id: runs[1]!.body.jobId,
      runNumber: 2,
      workflowId: wf.id,
      workflowVersion: 1,
      status: 'PENDING',
      initiatorType: 'API',
      input: { a: 2 },
      clientId: null,
      idempotencyKey: null,
      error: null,
    });

    // Another organization counts from 1 on its own, whatever this one has done.
    const other = await freshOrg('Other');
    const otherWf = await createWorkflow(other);
    expect((await other.post(`/v1/workflows/${otherWf.id}/runs`, {})).body.runNumber).toBe(1);
    // A second workflow in the first organization continues the organization's sequence.
    const wf2 = await createWorkflow(api);
    expect((await api.post(`/v1/workflows/${wf2.id}/runs`, {})).body.runNumber).toBe(4);
  });

  it('accepts a run with no body at all', async () => {
    const own = await freshOrg();
    const w = await createWorkflow(own);
    const res = await own.request('POST', `/v1/workflows/${w.id}/runs`);
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    expect((await own.get(`/v1/jobs/${res.body.jobId}`)).body).toMatchObject({ input: null });
  });

  it('an idempotency key in the body returns the same job with 200 the second time', async () => {
    const w = await createWorkflow(api);
    const first = await api.post(`/v1/workflows/${w.id}/runs`, { input: { x: 1 }, idempotencyKey: 'order-17' });
    expect(first.status).toBe(202);
    const second = await api.post(`/v1/workflows/${w.id}/runs`, { input: { x: 2 }, idempotencyKey: 'order-17' });
    expect(second.status).toBe(200);
    expect(second.body).toEqual(first.body);
    const jobs = await jobsOf(api, w.id);
    expect(jobs).toHaveLength(1);
    expect(jobs[0]).toMatchObject({ id: first.body.jobId, idempotencyKey: 'order-17', input: { x: 1 } });
  });

  it('concurrent requests with one idempotency key create one job and all get its id', async () => {
    const w = await createWorkflow(api);
    const results = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        i % 2 === 0
          ? api.post(`/v1/workflows/${w.id}/runs`, { idempotencyKey: 'race' })
          : api.post(`/v1/workflows/${w.id}/runs`, {}, { 'idempotency-key': 'race' }),
      ),
    );
    expect(results.map((r) => r.status).sort(), JSON.stringify(results.map((r) => r.body))).toEqual([200, 200, 200, 200, 200, 202]);
    expect(new Set(results.map((r) => r.body.jobId)).size).toBe(1);
    expect(await jobsOf(api, w.id)).toHaveLength(1);
  });

  it('an Idempotency-Key header works the same way', async () => {
    const w = await createWorkflow(api);
    const first = await api.post(`/v1/workflows/${w.id}/runs`, {}, { 'idempotency-key': 'hdr-1' });
    const second = await api.post(`/v1/workflows/${w.id}/runs`, {}, { 'Idempotency-Key': 'hdr-1' });
    expect([first.status, second.status]).toEqual([202, 200]);
    expect(second.body.jobId).toBe(first.body.jobId);
    const other = await api.post(`/v1/workflows/${w.id}/runs`, {}, { 'idempotency-key': 'hdr-2' });
    expect(other.status).toBe(202);
    expect(other.body.jobId).not.toBe(first.body.jobId);
    expect((await jobsOf(api, w.id)).map((j: Json) => j.idempotencyKey).sort()).toEqual(['hdr-1', 'hdr-2']);
  });

  it('batch starts 3 runs in one call with consecutive run numbers', async () => {
    const own = await freshOrg();
    const w = await createWorkflow(own);
    const res = await own.post(`/v1/workflows/${w.id}/runs/batch`, { runs: [{ input: 1 }, { input: 2 }, { input: 3, priority: 5 }] });
    expect(res.status).toBe(202);
    expect(res.body.jobs).toHaveLength(3);
    expect(res.body.jobs.map((j: Json) => [j.runNumber, j.status, j.created])).toEqual([
      [1, 'PENDING', true],
      [2, 'PENDING', true],
      [3, 'PENDING', true],
    ]);
    expect(new Set(res.body.jobs.map((j: Json) => j.jobId)).size).toBe(3);
    const jobs = await jobsOf(own, w.id);
    expect(jobs.map((j: Json) => j.input).sort()).toEqual([1, 2, 3]);
    expect(jobs.find((j: Json) => j.input === 3)).toMatchObject({ priority: 5 });
  });

  it('batch honours idempotency keys, within the batch and against earlier runs', async () => {
    const w = await createWorkflow(api);
    const single = await api.post(`/v1/workflows/${w.id}/runs`, { idempotencyKey: 'k1' });
    const res = await api.post(`/v1/workflows/${w.id}/runs/batch`, {
      runs: [{ idempotencyKey: 'k1' }, { idempotencyKey: 'k2' }, { idempotencyKey: 'k2' }],
    });
    expect(res.status).toBe(202);
    const [a, b, c] = res.body.jobs;
    expect(a).toMatchObject({ jobId: single.body.jobId, created: false });
    expect(b).toMatchObject({ created: true });
    expect(c).toMatchObject({ jobId: b.jobId, created: false });
    expect(await jobsOf(api, w.id)).toHaveLength(2);
  });

  it('runs on behalf of a client; an unknown clientId is 404 and creates nothing', async () => {
    const created = await api.post('/v1/clients', { name: 'Clinic North', externalId: 'crm-9' });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ id: expect.stringMatching(UUID), name: 'Clinic North', externalId: 'crm-9' });
    const w = await createWorkflow(api);
    const run = await api.post(`/v1/workflows/${w.id}/runs`, { clientId: created.body.id });
    expect(run.status).toBe(202);
    expect((await api.get(`/v1/jobs/${run.body.jobId}`)).body.clientId).toBe(created.body.id);

    const missing = randomUUID();
    const err = expectError(await api.post(`/v1/workflows/${w.id}/runs`, { clientId: missing }), 404, 'NOT_FOUND');
    expect(err.details).toMatchObject({ resource: 'client', id: missing });
    expectError(
      await api.post(`/v1/workflows/${w.id}/runs/batch`, { runs: [{ clientId: created.body.id }, { clientId: missing }] }),
      404,
      'NOT_FOUND',
    );
    expect((await jobsOf(api, w.id)).map((j: Json) => j.id)).toEqual([run.body.jobId]);
  });

  it('a run of a workflow that does not exist is 404', async () => {
    const err = expectError(await api.post(`/v1/workflows/${randomUUID()}/runs`, {}), 404, 'NOT_FOUND');
    expect(err.details).toMatchObject({ resource: 'workflow' });
  });
});
