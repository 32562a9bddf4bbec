import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Worker } from '../../src/engine/index.js';
import { createTestDb, type TestDb } from '../helpers/db.js';
import { seedOrg, startWorker, waitForJob } from '../helpers/fixtures.js';
import { client, collectPages, createTestApp, expectError, type ApiClient, type Json } from '../helpers/api.js';

const okDefinition = { steps: [{ id: 'a', type: 'noop' }, { id: 'b', type: 'transform', expression: '{ "x": 1 }' }] };
const badDefinition = { steps: [{ id: 'boom', type: 'transform', expression: '$error("boom")' }] };

let t: TestDb;
let app: FastifyInstance;
let worker: Worker;
let a: ApiClient;
let b: ApiClient;
let orgA: string;
let okWf: Json;
let badWf: Json;
let clinic: Json;
let batchIds: string[] = [];
let failedIds: string[] = [];

beforeAll(async () => {
  t = await createTestDb();
  app = await createTestApp(t.db);
  const seeded = await seedOrg(t.db, 'A');
  orgA = seeded.organizationId;
  a = client(app, seeded.key);
  b = client(app, (await seedOrg(t.db, 'B')).key);
  worker = startWorker(t.db);
  okWf = (await a.post('/v1/workflows', { name: 'Eligibility', definition: okDefinition })).body;
  badWf = (await a.post('/v1/workflows', { name: 'Claims', definition: badDefinition })).body;
  clinic = (await a.post('/v1/clients', { name: 'Clinic North' })).body;
  // One batch: five jobs created in one statement share created_at.
  const batch = await a.post(`/v1/workflows/${okWf.id}/runs/batch`, { runs: Array.from({ length: 5 }, () => ({ clientId: clinic.id })) });
  batchIds = batch.body.jobs.map((j: Json) => j.jobId);
  for (let i = 0; i < 2; i++) failedIds.push((await a.post(`/v1/workflows/${badWf.id}/runs`, {})).body.jobId);
  for (const id of [...batchIds, ...failedIds]) await waitForJob(t.db, orgA, id);
}, 60_000);

afterAll(async () => {
  await worker?.stop();
  await app?.close();
  await t?.close();
});

describe('GET /v1/jobs from the read model', () => {
  const ids = (res: { body: Json }): string[] => res.body.items.map((j: Json) => j.id);

  it('joins the workflow and client names for the page', async () => {
    const res = await a.get(`/v1/jobs?clientId=${clinic.id}`);
    expect(res.status).toBe(200);
    expect(res.body.items).toHaveLength(5);
    for (const j of res.body.items) expect(j).toMatchObject({ workflowName: 'Eligibility', clientName: 'Clinic North', clientId: clinic.id, status: 'COMPLETED' });
    const failed = (await a.get('/v1/jobs?status=FAILED')).body.items;
    expect(failed[0]).toMatchObject({ workflowName: 'Claims', clientName: null });
  });

  it('filters by client, initiator, error code and creation time', async () => {
    expect(ids(await a.get(`/v1/jobs?clientId=${clinic.id}`)).sort()).toEqual([...batchIds].sort());
    expect(ids(await a.get(`/v1/jobs?clientId=${randomUUID()}`))).toEqual([]);
    expect((await a.get('/v1/jobs?initiatorType=API')).body.items).toHaveLength(7);
    expect(ids(await a.get('/v1/jobs?initiatorType=SCHEDULE'))).toEqual([]);
    const byCode = await a.get('/v1/jobs?errorCode=EXPRESSION_ERROR');
    expect(ids(byCode).sort()).toEqual([...failedIds].sort());
    expect(ids(await a.get('/v1/jobs?errorCode=NOPE'))).toEqual([]);
    const all = (await a.get('/v1/jobs')).body.items as Json[];
    const newest = all[0]!.createdAt;
    expect(ids(await a.get(`/v1/jobs?createdFrom=${encodeURIComponent(newest)}`))).toEqual(all.filter((j) => j.createdAt >= newest).map((j) => j.id));
    expect(ids(await a.get(`/v1/jobs?createdTo=${encodeURIComponent(newest)}`))).toEqual(all.filter((j) => j.createdAt < newest).map((j) => j.id));
    expect(ids(await a.get('/v1/jobs?createdFrom=2000-01-01T00:00:00Z&createdTo=2000-01-02T00:00:00Z'))).toEqual([]);
  });

  it('pages through jobs created in the same instant without gaps or duplicates', async () => {
    const { items, pages } = await collectPages(a, `/v1/jobs?clientId=${clinic.id}`, 2);
    expect(pages).toBe(3);
    expect(items.map((j: Json) => j.id)).toEqual(ids(await a.get(`/v1/jobs?clientId=${clinic.id}`)));
    // Same created_at, so run numbers break the tie: newest (highest) first.
    expect(items.map((j: Json) => j.runNumber)).toEqual([...items.map((j: Json) => j.runNumber)].sort((x, y) => y - x));
  });

  it('rejects bad filters with 400 naming the field', async () => {
    expect(expectError(await a.get('/v1/jobs?clientId=nope'), 400, 'VALIDATION').details.path).toBe('/querystring/clientId');
    expectError(await a.get('/v1/jobs?initiatorType=ROBOT'), 400, 'VALIDATION');
    expectError(await a.get('/v1/jobs?createdFrom=yesterday'), 400, 'VALIDATION');
    expect(expectError(await a.get('/v1/jobs?createdFrom=2026-02-01T00:00:00Z&createdTo=2026-01-01T00:00:00Z'), 400, 'VALIDATION').details.path).toBe(
      '/querystring/createdFrom',
    );
    expectError(await a.get(`/v1/jobs?errorCode=${'x'.repeat(101)}`), 400, 'VALIDATION');
    expectError(await a.get('/v1/jobs?cursor=bm90LWpzb24'), 400, 'VALIDATION');
  });

  it("B sees none of A's jobs, whatever the filter", async () => {
    expect(ids(await b.get('/v1/jobs'))).toEqual([]);
    expect(ids(await b.get(`/v1/jobs?clientId=${clinic.id}`))).toEqual([]);
    expect(ids(await b.get(`/v1/jobs?workflowId=${okWf.id}&status=COMPLETED`))).toEqual([]);
  });
});

describe('analytics routes', () => {
  it('GET /v1/analytics/workflows: per-workflow stats in one response', async () => {
    const res = await a.get('/v1/analytics/workflows');
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const byName = new Map(res.body.items.map((w: Json) => [w.workflowName, w]));
    expect(byName.get('Eligibility')).toMatchObject({ workflowId: okWf.id, total: 5, completed: 5, failed: 0, successRate: 1 });
    expect(byName.get('Claims')).toMatchObject({ workflowId: badWf.id, total: 2, completed: 0, failed: 2, successRate: 0 });
    expect((byName.get('Eligibility') as Json).p50DurationMs).toEqual(expect.any(Number));
    expect((await b.get('/v1/analytics/workflows')).body.items).toEqual([]);
  });

  it('GET /v1/analytics/durations for all, a workflow, a client and an initiator', async () => {
    expect((await a.get('/v1/analytics/durations')).body).toMatchObject({ total: 7, completed: 5, failed: 2, durationCount: 7 });
    expect((await a.get(`/v1/analytics/durations?workflowId=${badWf.id}`)).body).toMatchObject({ total: 2, failed: 2 });
    expect((await a.get(`/v1/analytics/durations?clientId=${clinic.id}`)).body).toMatchObject({ total: 5 });
    expect((await a.get(`/v1/analytics/durations?workflowId=${okWf.id}&initiatorType=API`)).body).toMatchObject({ total: 5 });
    expect((await a.get('/v1/analytics/durations?initiatorType=WEBHOOK')).body).toMatchObject({ total: 0, p50DurationMs: null, histogram: [] });
  });

  it('GET /v1/analytics/durations draws its histogram from the same buckets: bins count every run with a duration and hold p50', async () => {
    const body = (await a.get('/v1/analytics/durations')).body;
    const bins: Json[] = body.histogram;
    expect(bins.reduce((n: number, b: Json) => n + b.count, 0)).toBe(body.durationCount);
    for (let i = 0; i < bins.length; i++) {
      expect(bins[i].toMs).toBeGreaterThan(bins[i].fromMs);
      if (i > 0) expect(bins[i].fromMs).toBeGreaterThanOrEqual(bins[i - 1].toMs);
    }
    // The bin holding the median ends above it and starts below it (within the 4.88 % of a bucket's reading).
    expect(bins.some((b: Json) => b.fromMs <= body.p50DurationMs * 1.05 && b.toMs >= body.p50DurationMs / 1.05)).toBe(true);
  });

  it('GET /v1/analytics/timeseries by day and by hour', async () => {
    const day = await a.get('/v1/analytics/timeseries');
    expect(day.status).toBe(200);
    expect(day.body.granularity).toBe('day');
    expect(day.body.items.reduce((n: number, p: Json) => n + p.total, 0)).toBe(7);
    const hour = await a.get(`/v1/analytics/timeseries?granularity=hour&workflowId=${okWf.id}`);
    expect(hour.body.items.reduce((n: number, p: Json) => n + p.total, 0)).toBe(5);
    expect(hour.body.items.every((p: Json) => p.periodStart.endsWith(':00:00.000Z'))).toBe(true);
  });

  it('validates ranges and filters with clear 400s', async () => {
    const long = expectError(await a.get('/v1/analytics/workflows?from=2024-01-01T00:00:00Z&to=2026-01-01T00:00:00Z'), 400, 'VALIDATION');
    expect(long.details).toMatchObject({ path: '/querystring/from', limit: 400 });
    expect(long.message).toContain('400 days');
    const hourly = expectError(await a.get('/v1/analytics/timeseries?granularity=hour&from=2026-01-01T00:00:00Z&to=2026-03-01T00:00:00Z'), 400, 'VALIDATION');
    expect(hourly.details).toMatchObject({ limit: 31 });
    expectError(await a.get('/v1/analytics/durations?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z'), 400, 'VALIDATION');
    expectError(await a.get('/v1/analytics/durations?from=soon'), 400, 'VALIDATION');
    expectError(await a.get('/v1/analytics/timeseries?granularity=minute'), 400, 'VALIDATION');
    expect(expectError(await a.get('/v1/analytics/steps'), 400, 'VALIDATION').message).toContain('workflowId');
    expectError(await a.get('/v1/analytics/durations?workflowId=x'), 400, 'VALIDATION');
    expectError(await a.get('/v1/analytics/workflows?unknown=1'), 400, 'VALIDATION');
  });

  it("another organization's workflow or client is 404 on every analytics route, like one that does not exist", async () => {
    const paths = [
      `/v1/analytics/durations?workflowId=${okWf.id}`,
      `/v1/analytics/durations?clientId=${clinic.id}`,
      `/v1/analytics/steps?workflowId=${okWf.id}`,
      `/v1/analytics/timeseries?workflowId=${okWf.id}`,
      `/v1/analytics/timeseries?clientId=${clinic.id}`,
      `/v1/analytics/steps?workflowId=${randomUUID()}`,
    ];
    for (const path of paths) expectError(await b.get(path), 404, 'NOT_FOUND');
    // /v1/analytics/workflows takes no id: B gets its own (empty) list.
    expect((await b.get('/v1/analytics/workflows')).body.items).toEqual([]);
  });

  it('the OpenAPI document describes the new routes', async () => {
    const doc = (await client(app, undefined).get('/openapi.json')).body;
    for (const path of ['/v1/analytics/workflows', '/v1/analytics/durations', '/v1/analytics/steps', '/v1/analytics/timeseries', '/v1/jobs/{id}/timeline', '/v1/jobs/{id}/state']) {
      expect(doc.paths[path]?.get, path).toBeDefined();
    }
  });
});
