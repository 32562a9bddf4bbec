import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Role } from '../../src/store/index.js';
import { createTestDb, type TestDb } from '../helpers/db.js';
import { seedOrg } from '../helpers/fixtures.js';
import { seedRoleKeys } from '../helpers/roles.js';
import { client, createTestApp, expectError, type ApiClient, type Json } from '../helpers/api.js';

/**
 * Saved views of the runs list: personal ones seen by their owner only,
 * shared ones by the whole organization; a shared view someone else made is
 * deleted by ADMIN and above only; never visible across organizations.
 */
let t: TestDb;
let app: FastifyInstance;
let as: Record<Role, ApiClient>;
let users: Record<Role, { userId: string }>;
let other: ApiClient;

beforeAll(async () => {
  t = await createTestDb();
  app = await createTestApp(t.db);
  const org = await seedOrg(t.db, 'Views A');
  const keys = await seedRoleKeys(t.db, org.organizationId);
  users = keys;
  as = Object.fromEntries(Object.entries(keys).map(([role, k]) => [role, client(app, k.key)])) as Record<Role, ApiClient>;
  other = client(app, (await seedOrg(t.db, 'Views B')).key);
});

afterAll(async () => {
  await app?.close();
  await t?.close();
});

async function save(api: ApiClient, body: Json): Promise<Json> {
  const res = await api.post('/v1/views', { page: 'runs', ...body });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body;
}

const names = async (api: ApiClient): Promise<string[]> => {
  const res = await api.get('/v1/views?page=runs');
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body.items.map((v: Json) => v.name);
};

describe('saved views', () => {
  it('a VIEWER saves a personal view; only they see it', async () => {
    const view = await save(as.VIEWER, { name: 'My failures', query: 'status=FAILED&search=input.memberId%3AM-1' });
    expect(view).toMatchObject({
      name: 'My failures',
      page: 'runs',
      query: 'status=FAILED&search=input.memberId%3AM-1',
      shared: false,
      mine: true,
      ownerUserId: users.VIEWER.userId,
    });
    expect(typeof view.createdAt).toBe('string');
    expect(await names(as.VIEWER)).toContain('My failures');
    expect(await names(as.MEMBER)).not.toContain('My failures');
    expect(await names(as.OWNER)).not.toContain('My failures');
    expect(await names(other)).toEqual([]);
  });

  it('a shared view is listed for the whole organization (mine only for its owner), never for another', async () => {
    const view = await save(as.MEMBER, { name: 'Team: timeouts', query: 'status=TIMED_OUT', shared: true });
    for (const role of ['VIEWER', 'ADMIN', 'OWNER'] as const) {
      const items = (await as[role].get('/v1/views')).body.items as Json[];
      expect(items.find((v) => v.id === view.id)).toMatchObject({ shared: true, mine: false, ownerUserId: users.MEMBER.userId });
    }
    expect((await as.MEMBER.get('/v1/views')).body.items.find((v: Json) => v.id === view.id).mine).toBe(true);
    expect(await names(other)).toEqual([]);
    expectError(await other.del(`/v1/views/${view.id}`), 404, 'NOT_FOUND');
  });

  it("deleting: one's own always; another's personal view is not found; another's shared one needs ADMIN", async () => {
    const personal = await save(as.MEMBER, { name: 'Personal', query: '' });
    const shared = await save(as.MEMBER, { name: 'Shared', query: 'status=FAILED', shared: true });
    expectError(await as.ADMIN.del(`/v1/views/${personal.id}`), 404, 'NOT_FOUND');
    const forbidden = expectError(await as.VIEWER.del(`/v1/views/${shared.id}`), 403, 'FORBIDDEN');
    expect(forbidden.message).toMatch(/ADMIN/);
    expect(await names(as.VIEWER)).toContain('Shared');
    expect((await as.ADMIN.del(`/v1/views/${shared.id}`)).status).toBe(204);
    expect(await names(as.MEMBER)).not.toContain('Shared');
    expect((await as.MEMBER.del(`/v1/views/${personal.id}`)).status).toBe(204);
    expectError(await as.MEMBER.del(`/v1/views/${personal.id}`), 404, 'NOT_FOUND');
    const ownShared = await save(as.VIEWER, { name: 'Mine, shared', query: 'x=1', shared: true });
    expect((await as.VIEWER.del(`/v1/views/${ownShared.id}`)).status).toBe(204);
  });

  it.each([
    ['an empty name', { name: '', query: '' }, '/body/name'],
    ['a blank name', { name: '   ', query: '' }, '/body/name'],
    ['a name past 100 characters', { name: 'n'.repeat(101), query: '' }, '/body/name'],
    ['a query past 2000 characters', { name: 'long', query: 'q'.repeat(2001) }, '/body/query'],
    ['an unknown page', { name: 'x', query: '', page: 'workflows' }, '/body/page'],
    ['no query', { name: 'x' }, '/body/query'],
    ['an unknown property', { name: 'x', query: '', owner: 'me' }, '/body/owner'],
  ])('refuses %s with 400 naming the field, saving nothing', async (_name, body, path) => {
    const before = await names(as.OWNER);
    const err = expectError(await as.OWNER.post('/v1/views', { page: 'runs', ...body }), 400, 'VALIDATION');
    expect(err.details.path).toBe(path);
    expect(await names(as.OWNER)).toEqual(before);
  });

  it('refuses an unknown page on the list and a malformed id on delete', async () => {
    expect(expectError(await as.OWNER.get('/v1/views?page=nope'), 400, 'VALIDATION').details.path).toBe('/querystring/page');
    expect(expectError(await as.OWNER.del('/v1/views/not-a-uuid'), 400, 'VALIDATION').details.path).toBe('/params/id');
  });

  it('a user keeps at most 100 views', async () => {
    const api = as.ADMIN;
    const have = (await api.get('/v1/views')).body.items.filter((v: Json) => v.mine).length;
    for (let i = have; i < 100; i++) await save(api, { name: `v${i}`, query: `n=${i}` });
    const err = expectError(await api.post('/v1/views', { page: 'runs', name: 'one more', query: '' }), 409, 'CONFLICT');
    expect(err.details.limit).toBe(100);
  });
});
