import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDb, type TestDb } from '../helpers/db.js';
import { seedOrg } from '../helpers/fixtures.js';
import { seedRoleKeys } from '../helpers/roles.js';
import { client, createTestApp, expectError, type ApiClient } from '../helpers/api.js';

let t: TestDb;
let app: FastifyInstance;
let owner: ApiClient;
let ownerId: string;
let otherOrg: ApiClient;

beforeAll(async () => {
  t = await createTestDb();
  app = await createTestApp(t.db);
  const seeded = await seedOrg(t.db, 'Users Org');
  owner = client(app, seeded.key);
  ownerId = seeded.ownerId;
  otherOrg = client(app, (await seedOrg(t.db, 'Other Org')).key);
});

afterAll(async () => {
  await app?.close();
  await t?.close();
});

async function count(table: string): Promise<number> {
  const { rows } = await t.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM stepwise.${table}`);
  return rows[0]!.n;
}

describe('users', () => {
  it('an OWNER creates, lists, reads, changes and deletes users; emails are unique per organization in any case', async () => {
    const created = await owner.post('/v1/users', { email: 'Ada@Example.com', name: 'Ada', role: 'MEMBER' });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ email: 'Ada@Example.com', name: 'Ada', role: 'MEMBER', disabledAt: null });
    expectError(await owner.post('/v1/users', { email: 'ada@example.com', role: 'VIEWER' }), 409, 'CONFLICT');
    // Another organization may use the same email.
    expect((await otherOrg.post('/v1/users', { email: 'ada@example.com', role: 'VIEWER' })).status).toBe(201);

    const list = await owner.get('/v1/users');
    expect(list.status).toBe(200);
    expect(list.body.items.map((u: { id: string }) => u.id)).toEqual(expect.arrayContaining([created.body.id, ownerId]));
    expect((await owner.get(`/v1/users/${created.body.id}`)).body.email).toBe('Ada@Example.com');

    const changed = await owner.request('PATCH', `/v1/users/${created.body.id}`, { body: { role: 'ADMIN', name: 'Ada L.' } });
    expect(changed.status).toBe(200);
    expect(changed.body).toMatchObject({ role: 'ADMIN', name: 'Ada L.' });

    expect((await owner.del(`/v1/users/${created.body.id}`)).status).toBe(204);
    expectError(await owner.get(`/v1/users/${created.body.id}`), 404, 'NOT_FOUND');
  });

  it('refuses bad input naming the field and changes nothing', async () => {
    const before = await count('users');
    expectError(await owner.post('/v1/users', { email: 'not an email', role: 'MEMBER' }), 400, 'VALIDATION');
    expectError(await owner.post('/v1/users', { email: 'x@y.z', role: 'SUPERUSER' }), 400, 'VALIDATION');
    expectError(await owner.post('/v1/users', { email: 'x@y.z' }), 400, 'VALIDATION');
    expectError(await owner.post('/v1/users', { email: 'x@y.z', role: 'VIEWER', extra: 1 }), 400, 'VALIDATION');
    expectError(await owner.request('PATCH', `/v1/users/${ownerId}`, { body: {} }), 400, 'VALIDATION');
    expect(await count('users')).toBe(before);
  });

  it('the last OWNER cannot be demoted, disabled or deleted (409); with a second OWNER it can', async () => {
    const demote = expectError(await owner.request('PATCH', `/v1/users/${ownerId}`, { body: { role: 'ADMIN' } }), 409, 'CONFLICT');
    expect(demote.message).toMatch(/last OWNER/);
    expectError(await owner.request('PATCH', `/v1/users/${ownerId}`, { body: { disabled: true } }), 409, 'CONFLICT');
    expectError(await owner.del(`/v1/users/${ownerId}`), 409, 'CONFLICT');
    expect((await owner.get(`/v1/users/${ownerId}`)).body.role).toBe('OWNER');

    const second = await owner.post('/v1/users', { email: 'second-owner@example.com', role: 'OWNER' });
    expect(second.status).toBe(201);
    const secondKey = (await owner.post('/v1/api-keys', { userId: second.body.id })).body.key as string;
    const asSecond = client(app, secondKey);
    // The second owner demotes the first, and is then the last one.
    expect((await asSecond.request('PATCH', `/v1/users/${ownerId}`, { body: { role: 'ADMIN' } })).status).toBe(200);
    expectError(await asSecond.del(`/v1/users/${second.body.id}`), 409, 'CONFLICT');
    // Restore the first owner for the other tests.
    expect((await asSecond.request('PATCH', `/v1/users/${ownerId}`, { body: { role: 'OWNER' } })).status).toBe(200);
  });

  it("another organization's user is 404 on every user route", async () => {
    const { ownerId: foreign } = await seedOrg(t.db, 'Foreign');
    expectError(await owner.get(`/v1/users/${foreign}`), 404, 'NOT_FOUND');
    expectError(await owner.request('PATCH', `/v1/users/${foreign}`, { body: { role: 'VIEWER' } }), 404, 'NOT_FOUND');
    expectError(await owner.del(`/v1/users/${foreign}`), 404, 'NOT_FOUND');
    const { rows } = await t.db.query<{ role: string }>(`SELECT role FROM stepwise.users WHERE id = $1`, [foreign]);
    expect(rows[0]!.role).toBe('OWNER');
  });
});

describe('API keys', () => {
  it('a key is shown once; the list shows the prefix and never the key or its hash', async () => {
    const created = await owner.post('/v1/api-keys', { name: 'ci' });
    expect(created.status).toBe(201);
    expect(created.body.key).toMatch(/^sw_[a-z0-9]{12}_/);
    expect(created.body).toMatchObject({ name: 'ci', role: 'OWNER', userId: ownerId, revokedAt: null, expiresAt: null });
    expect(created.body.key.startsWith(`sw_${created.body.prefix}_`)).toBe(true);
    const list = await owner.get('/v1/api-keys');
    const listed = list.body.items.find((k: { id: string }) => k.id === created.body.id);
    expect(listed).toMatchObject({ prefix: created.body.prefix, name: 'ci' });
    const text = JSON.stringify(list.body);
    expect(text).not.toContain(created.body.key);
    expect(text).not.toMatch(/hash/i);
    expect((await client(app, created.body.key).get('/v1/workflows')).status).toBe(200);
  });

  it('revoked and expired keys are 401 with KEY_REVOKED and KEY_EXPIRED', async () => {
    const k = (await owner.post('/v1/api-keys', { name: 'to revoke' })).body;
    const revoked = await owner.del(`/v1/api-keys/${k.id}`);
    expect(revoked.status).toBe(200);
    expect(revoked.body.revokedAt).not.toBeNull();
    expectError(await client(app, k.key).get('/v1/workflows'), 401, 'KEY_REVOKED');
    // Revoking twice keeps the first time.
    expect((await owner.del(`/v1/api-keys/${k.id}`)).body.revokedAt).toBe(revoked.body.revokedAt);

    const soon = new Date(Date.now() + 60_000).toISOString();
    const e = (await owner.post('/v1/api-keys', { name: 'expiring', expiresAt: soon })).body;
    expect(e.expiresAt).toBe(soon);
    expect((await client(app, e.key).get('/v1/workflows')).status).toBe(200);
    await t.db.query(`UPDATE stepwise.api_keys SET expires_at = now() - interval '1 second' WHERE id = $1`, [e.id]);
    expectError(await client(app, e.key).get('/v1/workflows'), 401, 'KEY_EXPIRED');
    expectError(await owner.post('/v1/api-keys', { expiresAt: new Date(Date.now() - 1000).toISOString() }), 400, 'VALIDATION');
  });

  it('a key carries at most its user\'s role; demoting the user caps the key at once; disabling stops it', async () => {
    const roles = await seedRoleKeys(t.db, (await owner.get('/v1/organization')).body.id);
    // An ADMIN key of an OWNER user acts as ADMIN; a MEMBER cannot mint an ADMIN key (403), nor a key for someone else.
    const member = client(app, roles.MEMBER.key);
    const up = expectError(await member.post('/v1/api-keys', { role: 'ADMIN' }), 403, 'FORBIDDEN');
    expect(up.message).toMatch(/ADMIN/);
    expectError(await member.post('/v1/api-keys', { userId: roles.VIEWER.userId }), 403, 'FORBIDDEN');
    const own = await member.post('/v1/api-keys', { role: 'VIEWER' });
    expect(own.status).toBe(201);
    expect(own.body).toMatchObject({ role: 'VIEWER', userId: roles.MEMBER.userId });
    // A member sees only their own keys.
    const mine = (await member.get('/v1/api-keys')).body.items as { userId: string }[];
    expect(mine.length).toBe(2);
    expect(mine.every((k) => k.userId === roles.MEMBER.userId)).toBe(true);
    // An OWNER cannot give a VIEWER user an ADMIN key: a key never exceeds its user.
    expectError(await owner.post('/v1/api-keys', { userId: roles.VIEWER.userId, role: 'ADMIN' }), 400, 'VALIDATION');

    // The ADMIN user's key manages workflows until the user is demoted to VIEWER.
    const admin = client(app, roles.ADMIN.key);
    const wf = await admin.post('/v1/workflows', { name: 'by admin', definition: { steps: [{ id: 'a', type: 'noop' }] } });
    expect(wf.status).toBe(201);
    expect((await owner.request('PATCH', `/v1/users/${roles.ADMIN.userId}`, { body: { role: 'VIEWER' } })).status).toBe(200);
    const capped = expectError(await admin.post('/v1/workflows', { name: 'again', definition: { steps: [{ id: 'a', type: 'noop' }] } }), 403, 'FORBIDDEN');
    expect(capped.details).toMatchObject({ action: 'workflows.manage', requiredRole: 'ADMIN', role: 'VIEWER' });
    expect((await admin.get(`/v1/workflows/${wf.body.id}`)).status).toBe(200);

    expect((await owner.request('PATCH', `/v1/users/${roles.ADMIN.userId}`, { body: { disabled: true } })).status).toBe(200);
    expectError(await admin.get('/v1/workflows'), 401, 'USER_DISABLED');
    expect((await owner.request('PATCH', `/v1/users/${roles.ADMIN.userId}`, { body: { disabled: false } })).status).toBe(200);
    expect((await admin.get('/v1/workflows')).status).toBe(200);

    // Deleting a user revokes their keys; the key rows stay.
    expect((await owner.del(`/v1/users/${roles.ADMIN.userId}`)).status).toBe(204);
    expectError(await admin.get('/v1/workflows'), 401, 'KEY_REVOKED');
    const { rows } = await t.db.query<{ user_id: string | null; revoked: boolean }>(
      `SELECT user_id, revoked_at IS NOT NULL AS revoked FROM stepwise.api_keys WHERE id = $1`,
      [roles.ADMIN.keyId],
    );
    expect(rows[0]).toEqual({ user_id: null, revoked: true });
  });

  it("only an OWNER revokes another user's key; another organization's key is 404", async () => {
    const roles = await seedRoleKeys(t.db, (await owner.get('/v1/organization')).body.id);
    expectError(await client(app, roles.ADMIN.key).del(`/v1/api-keys/${roles.MEMBER.keyId}`), 403, 'FORBIDDEN');
    expect((await client(app, roles.MEMBER.key).get('/v1/workflows')).status).toBe(200);
    const otherKeys = (await otherOrg.get('/v1/api-keys')).body.items as { id: string }[];
    expectError(await owner.del(`/v1/api-keys/${otherKeys[0]!.id}`), 404, 'NOT_FOUND');
    expect((await otherOrg.get('/v1/workflows')).status).toBe(200);
    expect((await owner.del(`/v1/api-keys/${roles.MEMBER.keyId}`)).status).toBe(200);
    expectError(await client(app, roles.MEMBER.key).get('/v1/workflows'), 401, 'KEY_REVOKED');
  });
});
