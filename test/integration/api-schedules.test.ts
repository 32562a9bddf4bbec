import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authenticate } from '../../src/security/index.js';
import { createTestDb, type TestDb } from '../helpers/db.js';
import { seedOrg } from '../helpers/fixtures.js';
import { client, collectPages, createTestApp, expectError, simpleDefinition, type ApiClient, type ApiResponse, type Json } from '../helpers/api.js';

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

interface Org {
  api: ApiClient;
  keyId: string;
  workflowId: string;
}

async function freshOrg(name = 'Acme'): Promise<Org> {
  const { key } = await seedOrg(t.db, name);
  const api = client(app, key);
  const wf = await api.post('/v1/workflows', { name: 'wf', definition: simpleDefinition() });
  expect(wf.status).toBe(201);
  return { api, keyId: (await authenticate(t.db, key)).apiKeyId!, workflowId: wf.body.id };
}

const patch = (api: ApiClient, url: string, body: unknown) => api.request('PATCH', url, { body });

async function create(o: Org, body: Record<string, unknown> = {}): Promise<Json> {
  const res = await o.api.post('/v1/schedules', { workflowId: o.workflowId, name: 'nightly', cron: '0 3 * * *', ...body });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body;
}

/** Wall-clock hour and minute of an instant in a time zone. */
function localTime(iso: string, timeZone: string): string {
  return new Intl.DateTimeFormat('en-GB', { timeZone, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(new Date(iso));
}

function expectField(res: ApiResponse, status: number, path: string): void {
  const err = expectError(res, status, status === 413 ? 'PAYLOAD_TOO_LARGE' : 'VALIDATION');
  expect(err.details.path).toBe(path);
  expect(err.message).toContain(path);
}

describe('POST /v1/schedules and GET', () => {
  let o: Org;
  beforeAll(async () => {
    o = await freshOrg();
  });

  it('creates with defaults and the next fire time in the schedule time zone', async () => {
    const before = Date.now();
    const res = await o.api.post('/v1/schedules', { workflowId: o.workflowId, name: 'eligibility', cron: '30 2 * * *', timezone: 'America/New_York', input: { batch: 'daily' } });
    expect(res.status).toBe(201);
    expect(res.body).toEqual({
      id: expect.stringMatching(UUID),
      workflowId: o.workflowId,
      name: 'eligibility',
      cron: '30 2 * * *',
      timezone: 'America/New_York',
      input: { batch: 'daily' },
      enabled: true,
      misfirePolicy: 'SKIP',
      nextFireAt: expect.stringMatching(ISO),
      lastFiredAt: null,
      createdAt: expect.stringMatching(ISO),
      updatedAt: expect.stringMatching(ISO),
    });
    const next = Date.parse(res.body.nextFireAt);
    expect(next).toBeGreaterThan(before);
    expect(next - before).toBeLessThanOrEqual(25 * 3600_000);
    // 02:30 local, except on a spring-forward day, when it is 03:00.
    expect(['02:30', '03:00']).toContain(localTime(res.body.nextFireAt, 'America/New_York'));
    expect((await o.api.get(`/v1/schedules/${res.body.id}`)).body).toEqual(res.body);

    const utc = await create(o, { misfirePolicy: 'RUN_ONCE', enabled: false });
    expect(utc).toMatchObject({ timezone: 'UTC', misfirePolicy: 'RUN_ONCE', enabled: false, nextFireAt: null, input: null });
  });

  it('refuses bad input with a 400 naming the field, and creates nothing', async () => {
    const own = await freshOrg('Validation');
    const base = { workflowId: own.workflowId, name: 'n', cron: '0 3 * * *' };
    expectField(await own.api.post('/v1/schedules', { ...base, cron: '0 25 * * *' }), 400, '/cron');
    expectField(await own.api.post('/v1/schedules', { ...base, cron: '*/10 * * * * *' }), 400, '/cron');
    expectField(await own.api.post('/v1/schedules', { ...base, cron: '0 0 31 2 *' }), 400, '/cron');
    expectField(await own.api.post('/v1/schedules', { ...base, timezone: 'Atlantis/Capital' }), 400, '/timezone');
    expectField(await own.api.post('/v1/schedules', { ...base, cron: '' }), 400, '/body/cron');
    expectField(await own.api.post('/v1/schedules', { ...base, name: '   ' }), 400, '/body/name');
    expectField(await own.api.post('/v1/schedules', { ...base, misfirePolicy: 'LATER' }), 400, '/body/misfirePolicy');
    expectField(await own.api.post('/v1/schedules', { ...base, enabled: 'yes' }), 400, '/body/enabled');
    expectField(await own.api.post('/v1/schedules', { ...base, workflowId: 'nope' }), 400, '/body/workflowId');
    expectField(await own.api.post('/v1/schedules', { ...base, every: 'day' }), 400, '/body/every');
    expectField(await own.api.post('/v1/schedules', { workflowId: own.workflowId, name: 'n' }), 400, '/body/cron');
    expectField(await own.api.post('/v1/schedules', { ...base, input: { blob: 'x'.repeat(1024 * 1024) } }), 413, 'input');
    const missing = randomUUID();
    const err = expectError(await own.api.post('/v1/schedules', { ...base, workflowId: missing }), 404, 'NOT_FOUND');
    expect(err.details).toMatchObject({ resource: 'workflow', id: missing });
    await own.api.del(`/v1/workflows/${own.workflowId}`);
    expectError(await own.api.post('/v1/schedules', base), 404, 'NOT_FOUND');
    expect((await own.api.get('/v1/schedules')).body.items).toEqual([]);
  });

  it('lists newest first with keyset pagination; deleted schedules are not listed', async () => {
    const own = await freshOrg('Pager');
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await create(own, { name: `s${i}` })).id);
    expect((await own.api.del(`/v1/schedules/${ids[2]}`)).status).toBe(204);
    const { items, pages } = await collectPages(own.api, '/v1/schedules', 2);
    expect(pages).toBe(2);
    expect(items.map((s: Json) => s.id)).toEqual([ids[4], ids[3], ids[1], ids[0]]);
    expectError(await own.api.get('/v1/schedules?cursor=bogus'), 400, 'VALIDATION');
  });
});

describe('PATCH, pause, resume, delete', () => {
  let o: Org;
  beforeAll(async () => {
    o = await freshOrg('Changes');
  });

  it('renaming keeps the next fire time; a new cron or time zone recomputes it', async () => {
    const s = await create(o, { cron: '0 3 * * *' });
    const renamed = await patch(o.api, `/v1/schedules/${s.id}`, { name: 'renamed', input: { v: 2 }, misfirePolicy: 'RUN_ONCE' });
    expect(renamed.status).toBe(200);
    expect(renamed.body).toMatchObject({ name: 'renamed', input: { v: 2 }, misfirePolicy: 'RUN_ONCE', nextFireAt: s.nextFireAt });
    const moved = await patch(o.api, `/v1/schedules/${s.id}`, { cron: '15 4 * * *', timezone: 'Asia/Kolkata' });
    expect(moved.status).toBe(200);
    expect(localTime(moved.body.nextFireAt, 'Asia/Kolkata')).toBe('04:15');
    const disabled = await patch(o.api, `/v1/schedules/${s.id}`, { enabled: false });
    expect(disabled.body).toMatchObject({ enabled: false, nextFireAt: null });
    const enabled = await patch(o.api, `/v1/schedules/${s.id}`, { enabled: true });
    expect(enabled.body).toMatchObject({ enabled: true, nextFireAt: moved.body.nextFireAt });
  });

  it('a bad PATCH is 400 naming the field and changes nothing', async () => {
    const s = await create(o);
    expectField(await patch(o.api, `/v1/schedules/${s.id}`, { cron: 'sometimes' }), 400, '/cron');
    expectField(await patch(o.api, `/v1/schedules/${s.id}`, { timezone: 'Moon/Base' }), 400, '/timezone');
    expectError(await patch(o.api, `/v1/schedules/${s.id}`, {}), 400, 'VALIDATION');
    expectError(await patch(o.api, `/v1/schedules/${s.id}`, { workflowId: randomUUID() }), 404, 'NOT_FOUND');
    expect((await o.api.get(`/v1/schedules/${s.id}`)).body).toEqual(s);
    expect((await o.api.get(`/v1/schedules/${s.id}/audit`)).body.items.map((e: Json) => e.action)).toEqual(['CREATE']);
  });

  it('pause clears the next fire time, resume sets it again, delete hides it but keeps the audit trail', async () => {
    const s = await create(o);
    const paused = await o.api.post(`/v1/schedules/${s.id}/pause`);
    expect(paused.status).toBe(200);
    expect(paused.body).toMatchObject({ enabled: false, nextFireAt: null });
    const resumed = await o.api.post(`/v1/schedules/${s.id}/resume`);
    expect(resumed.body).toMatchObject({ enabled: true, nextFireAt: s.nextFireAt });
    const del = await o.api.del(`/v1/schedules/${s.id}`);
    expect(del.status).toBe(204);
    expect(del.body).toBeNull();
    for (const res of [
      await o.api.get(`/v1/schedules/${s.id}`),
      await patch(o.api, `/v1/schedules/${s.id}`, { name: 'x' }),
      await o.api.post(`/v1/schedules/${s.id}/pause`),
      await o.api.post(`/v1/schedules/${s.id}/resume`),
      await o.api.del(`/v1/schedules/${s.id}`),
    ]) {
      expect(expectError(res, 404, 'NOT_FOUND').details).toMatchObject({ resource: 'schedule', id: s.id });
    }
    const audit = await o.api.get(`/v1/schedules/${s.id}/audit`);
    expect(audit.status).toBe(200);
    expect(audit.body.items.map((e: Json) => e.action)).toEqual(['DELETE', 'RESUME', 'PAUSE', 'CREATE']);
  });

  it('every change is audited with the API key id, before and after', async () => {
    const s = await create(o, { name: 'before' });
    await patch(o.api, `/v1/schedules/${s.id}`, { name: 'after' });
    const { items } = await collectPages(o.api, `/v1/schedules/${s.id}/audit`, 1);
    expect(items).toHaveLength(2);
    const [update, created] = items;
    expect(created).toEqual({
      id: expect.stringMatching(UUID),
      scheduleId: s.id,
      action: 'CREATE',
      actor: o.keyId,
      before: null,
      after: expect.objectContaining({ name: 'before', cron: '0 3 * * *', nextFireAt: s.nextFireAt }),
      at: expect.stringMatching(ISO),
    });
    expect(update).toMatchObject({ action: 'UPDATE', actor: o.keyId, before: created.after, after: { ...created.after, name: 'after' } });
  });
});

describe("another organization's schedules and workflows are 404", () => {
  it('on every route, and nothing changes', async () => {
    const a = await freshOrg('Org A');
    const b = await freshOrg('Org B');
    const s = await create(a, { input: { secret: 'a' } });
    const hidden = (res: ApiResponse) => expect(expectError(res, 404, 'NOT_FOUND').details).toMatchObject({ resource: 'schedule', id: s.id });
    hidden(await b.api.get(`/v1/schedules/${s.id}`));
    hidden(await patch(b.api, `/v1/schedules/${s.id}`, { name: 'stolen', enabled: false }));
    hidden(await b.api.post(`/v1/schedules/${s.id}/pause`));
    hidden(await b.api.post(`/v1/schedules/${s.id}/resume`));
    hidden(await b.api.del(`/v1/schedules/${s.id}`));
    hidden(await b.api.get(`/v1/schedules/${s.id}/audit`));
    expect((await b.api.get('/v1/schedules')).body.items).toEqual([]);
    expect((await b.api.get(`/v1/schedules?workflowId=${a.workflowId}`)).body.items).toEqual([]);
    // B cannot schedule A's workflow, nor point its own schedule at it.
    const wfErr = expectError(await b.api.post('/v1/schedules', { workflowId: a.workflowId, name: 'x', cron: '* * * * *' }), 404, 'NOT_FOUND');
    expect(wfErr.details).toMatchObject({ resource: 'workflow', id: a.workflowId });
    const own = await create(b);
    expectError(await patch(b.api, `/v1/schedules/${own.id}`, { workflowId: a.workflowId }), 404, 'NOT_FOUND');

    expect((await a.api.get(`/v1/schedules/${s.id}`)).body).toEqual(s);
    expect((await a.api.get(`/v1/schedules/${s.id}/audit`)).body.items.map((e: Json) => e.action)).toEqual(['CREATE']);
  });

  it('without a key: 401', async () => {
    expectError(await client(app, undefined).get('/v1/schedules'), 401, 'UNAUTHORIZED');
  });
});
