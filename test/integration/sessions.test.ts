import { createHash } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FsBlobStore } from '../../src/blob/index.js';
import { runMaintenance } from '../../src/lifecycle/index.js';
import { setUserPassword } from '../../src/security/index.js';
import { createTestDb, type TestDb } from '../helpers/db.js';
import { seedOrg } from '../helpers/fixtures.js';
import { seedRoleKeys } from '../helpers/roles.js';
import { client, createTestApp, expectError, simpleDefinition, type ApiClient, type Json } from '../helpers/api.js';
import type { Role } from '../../src/store/index.js';

/**
 * Dashboard sign-in: server-side sessions behind an HttpOnly cookie, opened
 * with a password or a pasted API key; expiry, revocation, the same-origin
 * rule for cookie writes, sign-in throttling, invitations and the PHI audit.
 * Time is moved by rewriting the session rows, never by sleeping.
 */
let t: TestDb;
let app: FastifyInstance;
let orgId: string;
let ownerId: string;
let owner: ApiClient;
let users: Record<Role, { userId: string; key: string; keyId: string }>;
const PASSWORD = 'correct horse battery staple';
/** inject's default Host is localhost:80, so this is the app's own origin as a browser writes it. */
const OWN_ORIGIN = 'http://localhost';

interface Res {
  status: number;
  body: Json;
  headers: Record<string, unknown>;
  /** The session cookie's value from Set-Cookie, if one was set (empty when cleared). */
  cookie: string | undefined;
  setCookie: string | undefined;
}

let address = 0;
/** A fresh client address per test, so sign-in attempt limits of one test do not reach another. */
function freshAddress(): string {
  address++;
  return `10.0.${Math.floor(address / 250)}.${address % 250}`;
}

async function call(
  target: FastifyInstance,
  method: 'GET' | 'POST' | 'DELETE' | 'PATCH',
  url: string,
  opts: { body?: unknown; cookie?: string; cookieName?: string; headers?: Record<string, string>; remoteAddress?: string } = {},
): Promise<Res> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.cookie !== undefined) headers.cookie = `${opts.cookieName ?? 'stepwise_session'}=${opts.cookie}`;
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  const res = await target.inject({
    method,
    url,
    headers,
    ...(opts.body !== undefined ? { payload: JSON.stringify(opts.body) } : {}),
    ...(opts.remoteAddress ? { remoteAddress: opts.remoteAddress } : {}),
  });
  const raw = res.headers['set-cookie'];
  const setCookie = Array.isArray(raw) ? raw[0] : raw;
  const cookie = setCookie ? /^(?:__Host-)?stepwise_session=([^;]*)/.exec(setCookie)?.[1] : undefined;
  return { status: res.statusCode, body: res.body ? JSON.parse(res.body) : null, headers: res.headers, cookie, setCookie };
}

function signIn(body: unknown, remoteAddress = freshAddress(), headers: Record<string, string> = {}, target = app): Promise<Res> {
  return call(target, 'POST', '/v1/sessions', { body, remoteAddress, headers });
}

async function sessionRow(cookie: string): Promise<Json | undefined> {
  const id = createHash('sha256').update(cookie).digest();
  const { rows } = await t.db.query(`SELECT organization_id, user_id, api_key_id, created_at, last_seen_at, expires_at FROM stepwise.web_sessions WHERE id = $1`, [id]);
  return rows[0];
}

async function moveSession(cookie: string, set: string): Promise<void> {
  const id = createHash('sha256').update(cookie).digest();
  const { rowCount } = await t.db.query(`UPDATE stepwise.web_sessions SET ${set} WHERE id = $1`, [id]);
  expect(rowCount).toBe(1);
}

beforeAll(async () => {
  t = await createTestDb();
  // The per-key API rate limit is off; sign-in throttling is the app's own and stays on.
  app = await createTestApp(t.db, undefined, { rateLimit: { perSecond: 0, burst: 1 } });
  const seeded = await seedOrg(t.db, 'Clinic');
  orgId = seeded.organizationId;
  ownerId = seeded.ownerId;
  owner = client(app, seeded.key);
  users = await seedRoleKeys(t.db, orgId);
  for (const role of ['VIEWER', 'MEMBER', 'ADMIN', 'OWNER'] as const) await setUserPassword(t.db, orgId, users[role].userId, PASSWORD, 'test');
  await setUserPassword(t.db, orgId, ownerId, PASSWORD, 'test');
});

afterAll(async () => {
  await app?.close();
  await t?.close();
});

async function emailOf(role: Role): Promise<string> {
  const { rows } = await t.db.query<{ email: string }>(`SELECT email FROM stepwise.users WHERE id = $1`, [users[role].userId]);
  return rows[0]!.email;
}

describe('sign-in', () => {
  it('by password: 201 with the user, organization and expiry, and an HttpOnly SameSite=Strict cookie whose hash alone is stored', async () => {
    const email = await emailOf('MEMBER');
    const res = await signIn({ email: email.toUpperCase(), password: PASSWORD });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body).toMatchObject({
      user: { id: users.MEMBER.userId, email, role: 'MEMBER' },
      organization: { id: orgId, name: 'Clinic' },
      role: 'MEMBER',
      via: 'password',
    });
    const expiresAt = Date.parse(res.body.expiresAt);
    const idle = Date.parse(res.body.idleExpiresAt);
    expect(expiresAt - idle).toBe(12 * 3_600_000 - 15 * 60_000);
    // Served over plain HTTP (inject, no trusted proxy): the unprefixed name, no Secure.
    expect(res.setCookie).toMatch(/^stepwise_session=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Strict; Max-Age=(43200|4319\d)$/);
    expect(res.setCookie).not.toContain('Secure');
    const row = await sessionRow(res.cookie!);
    expect(row).toMatchObject({ organization_id: orgId, user_id: users.MEMBER.userId, api_key_id: null });
    const { rows } = await t.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM stepwise.web_sessions WHERE id = convert_to($1, 'UTF8')`, [res.cookie]);
    expect(rows[0]!.n).toBe(0);

    const current = await call(app, 'GET', '/v1/sessions/current', { cookie: res.cookie! });
    expect(current.status).toBe(200);
    expect(current.body).toEqual(res.body);
    // The cookie authenticates every route, with the user's role.
    expect((await call(app, 'GET', '/v1/workflows', { cookie: res.cookie! })).status).toBe(200);
    const refused = await call(app, 'POST', '/v1/workflows', { cookie: res.cookie!, headers: { origin: OWN_ORIGIN }, body: { name: 'x', definition: simpleDefinition() } });
    expect(refused.status).toBe(403);
    expect(refused.body.error.code).toBe('FORBIDDEN');
  });

  it('by API key: the session acts with the key\'s (capped) role and names the key', async () => {
    const res = await signIn({ apiKey: users.ADMIN.key });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body).toMatchObject({ user: { id: users.ADMIN.userId, role: 'ADMIN' }, role: 'ADMIN', via: 'apiKey' });
    expect(await sessionRow(res.cookie!)).toMatchObject({ user_id: users.ADMIN.userId, api_key_id: users.ADMIN.keyId });
    const created = await call(app, 'POST', '/v1/workflows', { cookie: res.cookie!, headers: { origin: OWN_ORIGIN }, body: { name: 'by key session', definition: simpleDefinition() } });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
  });

  it('a Bearer key reads the current "session" as via apiKey with no expiry', async () => {
    const res = await client(app, users.VIEWER.key).get('/v1/sessions/current');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ user: { id: users.VIEWER.userId }, role: 'VIEWER', via: 'apiKey', expiresAt: null, idleExpiresAt: null });
    expectError(await client(app, undefined).get('/v1/sessions/current'), 401, 'UNAUTHORIZED');
  });

  it('a wrong password, an unknown email, a user without a password and a wrong key are the same 401, and set no cookie', async () => {
    const { rows } = await t.db.query<{ id: string }>(
      `INSERT INTO stepwise.users (id, organization_id, email, role) VALUES (gen_random_uuid(), $1, 'nopass@example.com', 'VIEWER') RETURNING id`,
      [orgId],
    );
    expect(rows).toHaveLength(1);
    const attempts = [
      await signIn({ email: await emailOf('OWNER'), password: 'not the password at all' }),
      await signIn({ email: 'nobody@example.com', password: PASSWORD }),
      await signIn({ email: 'nopass@example.com', password: PASSWORD }),
      await signIn({ apiKey: users.OWNER.key.slice(0, -2) + 'zz' }),
      await signIn({ apiKey: 'not a key' }),
    ];
    const messages = new Set<string>();
    for (const res of attempts) {
      expect(res.status).toBe(401);
      expect(res.body.error.code).toBe('INVALID_CREDENTIALS');
      expect(res.setCookie).toBeUndefined();
      messages.add(res.body.error.message);
    }
    expect(messages.size).toBe(1);
  });

  it('bad bodies are 400 naming the field', async () => {
    expect((await signIn({ email: 'a@b.c' })).body.error.details.path).toBe('/body/password');
    expect((await signIn({ password: PASSWORD })).body.error.details.path).toBe('/body/email');
    expect((await signIn({ apiKey: users.OWNER.key, email: 'a@b.c', password: 'x' })).body.error.details.path).toBe('/body/apiKey');
    const long = await signIn({ email: 'a@b.c', password: 'x'.repeat(257) });
    expect(long.status).toBe(400);
    expect(long.body.error.details.path).toBe('/body/password');
  });

  it('a sign-in from a foreign page is refused', async () => {
    const res = await signIn({ email: await emailOf('OWNER'), password: PASSWORD }, freshAddress(), { origin: 'https://evil.example' });
    expectError(res, 403, 'CROSS_ORIGIN_REQUEST');
    expect(res.setCookie).toBeUndefined();
  });
});

describe('sign-in throttling', () => {
  it('10 failed attempts for an email in 5 minutes: the 11th is 429 with Retry-After, even with the right password', async () => {
    const email = await emailOf('VIEWER');
    for (let i = 0; i < 10; i++) {
      const res = await signIn({ email, password: `wrong password ${i}` }, freshAddress());
      expect(res.status).toBe(401);
    }
    const res = await signIn({ email, password: PASSWORD }, freshAddress());
    expectError(res, 429, 'RATE_LIMITED');
    expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
    expect(res.body.error.details).toMatchObject({ scope: 'email', attempts: 10, windowSeconds: 300 });
    // Another email from the same addresses is unaffected.
    expect((await signIn({ email: await emailOf('ADMIN'), password: PASSWORD })).status).toBe(201);
  });

  it('30 failed attempts from one address: the 31st is 429 whatever the email; successes do not count', async () => {
    const from = freshAddress();
    for (let i = 0; i < 5; i++) expect((await signIn({ email: await emailOf('OWNER'), password: PASSWORD }, from)).status).toBe(201);
    for (let i = 0; i < 30; i++) expect((await signIn({ email: `spray${i}@example.com`, password: PASSWORD }, from)).status).toBe(401);
    const res = await signIn({ email: await emailOf('OWNER'), password: PASSWORD }, from);
    expectError(res, 429, 'RATE_LIMITED');
    expect(res.body.error.details).toMatchObject({ scope: 'ip', attempts: 30 });
    expect((await signIn({ email: await emailOf('OWNER'), password: PASSWORD }, freshAddress())).status).toBe(201);
  });
});

describe('session lifetime', () => {
  it('touches last_seen_at at most once a minute', async () => {
    const { cookie } = await signIn({ email: await emailOf('OWNER'), password: PASSWORD });
    await moveSession(cookie!, `last_seen_at = now() - interval '5 minutes'`);
    const before = (await sessionRow(cookie!)).last_seen_at as Date;
    expect((await call(app, 'GET', '/v1/sessions/current', { cookie: cookie! })).status).toBe(200);
    const touched = (await sessionRow(cookie!)).last_seen_at as Date;
    expect(touched.getTime()).toBeGreaterThan(before.getTime());
    const current = await call(app, 'GET', '/v1/sessions/current', { cookie: cookie! });
    expect(Date.parse(current.body.idleExpiresAt)).toBe(touched.getTime() + 15 * 60_000);
    // Within the minute: no write.
    expect(((await sessionRow(cookie!)).last_seen_at as Date).getTime()).toBe(touched.getTime());
  });

  it('15 minutes unused: 401 SESSION_EXPIRED, the cookie is cleared and the row deleted', async () => {
    const { cookie } = await signIn({ email: await emailOf('OWNER'), password: PASSWORD });
    await moveSession(cookie!, `last_seen_at = now() - interval '14 minutes'`);
    expect((await call(app, 'GET', '/v1/workflows', { cookie: cookie! })).status).toBe(200);
    await moveSession(cookie!, `last_seen_at = now() - interval '15 minutes 1 second'`);
    const res = await call(app, 'GET', '/v1/workflows', { cookie: cookie! });
    expectError(res, 401, 'SESSION_EXPIRED');
    expect(res.body.error.details.reason).toBe('idle');
    expect(res.setCookie).toMatch(/^stepwise_session=; Path=\/; HttpOnly; SameSite=Strict; Max-Age=0$/);
    expect(await sessionRow(cookie!)).toBeUndefined();
    expectError(await call(app, 'GET', '/v1/workflows', { cookie: cookie! }), 401, 'UNAUTHORIZED');
  });

  it('12 hours after sign-in: 401 SESSION_EXPIRED however recently it was used', async () => {
    const { cookie } = await signIn({ email: await emailOf('OWNER'), password: PASSWORD });
    await moveSession(cookie!, `created_at = now() - interval '12 hours 1 second', expires_at = now() - interval '1 second', last_seen_at = now()`);
    const res = await call(app, 'GET', '/v1/sessions/current', { cookie: cookie! });
    expectError(res, 401, 'SESSION_EXPIRED');
    expect(res.body.error.details.reason).toBe('absolute');
    expect(await sessionRow(cookie!)).toBeUndefined();
  });

  it('the daily maintenance deletes sessions past their end and expired invitations, and keeps live ones', async () => {
    const live = (await signIn({ email: await emailOf('OWNER'), password: PASSWORD })).cookie!;
    const old = (await signIn({ email: await emailOf('ADMIN'), password: PASSWORD })).cookie!;
    await moveSession(old, `created_at = now() - interval '13 hours', expires_at = now() - interval '1 hour'`);
    await t.db.query(
      `INSERT INTO stepwise.user_invitations (id, organization_id, user_id, token_hash, created_by, created_at, expires_at)
       VALUES (gen_random_uuid(), $1, $2, sha256('stale-invite'::bytea), 'test', now() - interval '4 days', now() - interval '1 day')`,
      [orgId, users.VIEWER.userId],
    );
    const report = await runMaintenance(t.db, new FsBlobStore(await mkdtemp(join(tmpdir(), 'sweep-'))));
    expect(report.webSessions.sessions).toBeGreaterThanOrEqual(1);
    expect(report.webSessions.invitations).toBeGreaterThanOrEqual(1);
    expect(await sessionRow(old)).toBeUndefined();
    expect(await sessionRow(live)).toBeDefined();
    expect((await call(app, 'GET', '/v1/workflows', { cookie: live })).status).toBe(200);
  });

  it('a made-up or malformed cookie is 401 UNAUTHORIZED', async () => {
    expectError(await call(app, 'GET', '/v1/workflows', { cookie: 'A'.repeat(43) }), 401, 'UNAUTHORIZED');
    expectError(await call(app, 'GET', '/v1/workflows', { cookie: 'short' }), 401, 'UNAUTHORIZED');
  });
});

describe('ending sessions', () => {
  it('disabling the user ends their sessions at once (rows deleted); the lookup refuses a disabled user even with rows left', async () => {
    // By key: the throttling test spent the VIEWER email's password attempts.
    const user = users.VIEWER.userId;
    const password = await signIn({ apiKey: users.VIEWER.key });
    expect(password.status).toBe(201);
    expect((await owner.request('PATCH', `/v1/users/${user}`, { body: { disabled: true } })).status).toBe(200);
    expect(await sessionRow(password.cookie!)).toBeUndefined();
    expectError(await call(app, 'GET', '/v1/workflows', { cookie: password.cookie! }), 401, 'UNAUTHORIZED');
    expect((await owner.request('PATCH', `/v1/users/${user}`, { body: { disabled: false } })).status).toBe(200);

    // Disabled behind the store's back: the row stays, the one lookup query still refuses it.
    const other = await signIn({ email: await emailOf('MEMBER'), password: PASSWORD });
    await t.db.query(`UPDATE stepwise.users SET disabled_at = now() WHERE id = $1`, [users.MEMBER.userId]);
    expect(await sessionRow(other.cookie!)).toBeDefined();
    expectError(await call(app, 'GET', '/v1/workflows', { cookie: other.cookie! }), 401, 'UNAUTHORIZED');
    await t.db.query(`UPDATE stepwise.users SET disabled_at = NULL WHERE id = $1`, [users.MEMBER.userId]);
    expect((await call(app, 'GET', '/v1/workflows', { cookie: other.cookie! })).status).toBe(200);
  });

  it('revoking the key ends the sessions opened with it, not the user\'s password sessions', async () => {
    const { rows } = await t.db.query<{ email: string }>(`SELECT email FROM stepwise.users WHERE id = $1`, [ownerId]);
    const byKey = await signIn({ apiKey: (await owner.post('/v1/api-keys', { name: 'to revoke' })).body.key });
    const byPassword = await signIn({ email: rows[0]!.email, password: PASSWORD });
    const keyId = (await sessionRow(byKey.cookie!)).api_key_id as string;
    expect((await owner.del(`/v1/api-keys/${keyId}`)).status).toBe(200);
    expect(await sessionRow(byKey.cookie!)).toBeUndefined();
    expectError(await call(app, 'GET', '/v1/workflows', { cookie: byKey.cookie! }), 401, 'UNAUTHORIZED');
    expect((await call(app, 'GET', '/v1/workflows', { cookie: byPassword.cookie! })).status).toBe(200);

    // Revoked or expired behind the store's back: refused by the lookup all the same.
    const again = await owner.post('/v1/api-keys', { name: 'to expire' });
    const session = await signIn({ apiKey: again.body.key });
    await t.db.query(`UPDATE stepwise.api_keys SET expires_at = now() - interval '1 second' WHERE id = $1`, [again.body.id]);
    expectError(await call(app, 'GET', '/v1/workflows', { cookie: session.cookie! }), 401, 'UNAUTHORIZED');
  });

  it('deleting the user deletes their sessions', async () => {
    const created = await owner.post('/v1/users', { email: 'leaving@example.com', role: 'MEMBER' });
    await setUserPassword(t.db, orgId, created.body.id, PASSWORD, 'test');
    const { cookie } = await signIn({ email: 'leaving@example.com', password: PASSWORD });
    expect(await sessionRow(cookie!)).toBeDefined();
    expect((await owner.del(`/v1/users/${created.body.id}`)).status).toBe(204);
    expect(await sessionRow(cookie!)).toBeUndefined();
    expectError(await call(app, 'GET', '/v1/workflows', { cookie: cookie! }), 401, 'UNAUTHORIZED');
  });

  it('sign-out: 204, the cookie cleared, the row deleted, the cookie no longer works', async () => {
    const { cookie } = await signIn({ email: await emailOf('ADMIN'), password: PASSWORD });
    const res = await call(app, 'DELETE', '/v1/sessions/current', { cookie: cookie!, headers: { origin: OWN_ORIGIN } });
    expect(res.status).toBe(204);
    expect(res.setCookie).toMatch(/^stepwise_session=; .*Max-Age=0/);
    expect(await sessionRow(cookie!)).toBeUndefined();
    expectError(await call(app, 'GET', '/v1/sessions/current', { cookie: cookie! }), 401, 'UNAUTHORIZED');
  });

  it('setting a new password ends the user\'s password sessions', async () => {
    const { cookie } = await signIn({ email: await emailOf('ADMIN'), password: PASSWORD });
    await setUserPassword(t.db, orgId, users.ADMIN.userId, PASSWORD, 'test');
    expect(await sessionRow(cookie!)).toBeUndefined();
  });
});

describe('same-origin rule for cookie sessions', () => {
  it('a cookie POST from another origin (or saying nothing of its origin) is 403 CROSS_ORIGIN_REQUEST and changes nothing; same-origin is fine; Bearer requests are unaffected', async () => {
    const { cookie } = await signIn({ email: await emailOf('ADMIN'), password: PASSWORD });
    const body = { name: 'csrf', definition: simpleDefinition() };
    const count = async () => (await t.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM stepwise.workflows WHERE name = 'csrf'`)).rows[0]!.n;
    for (const headers of [
      { origin: 'https://evil.example' },
      { origin: 'http://localhost:8080' },
      { origin: 'https://localhost' },
      { origin: 'null' },
      { 'sec-fetch-site': 'cross-site' },
      { 'sec-fetch-site': 'same-site' },
      {},
    ] as Record<string, string>[]) {
      const res = await call(app, 'POST', '/v1/workflows', { cookie: cookie!, headers, body });
      expectError(res, 403, 'CROSS_ORIGIN_REQUEST');
    }
    expectError(await call(app, 'DELETE', '/v1/sessions/current', { cookie: cookie!, headers: { origin: 'https://evil.example' } }), 403, 'CROSS_ORIGIN_REQUEST');
    expect(await sessionRow(cookie!)).toBeDefined();
    expect(await count()).toBe(0);
    // Reads are not state-changing: a foreign Origin on a GET is answered (CORS keeps the response from the foreign page).
    expect((await call(app, 'GET', '/v1/workflows', { cookie: cookie!, headers: { origin: 'https://evil.example' } })).status).toBe(200);

    expect((await call(app, 'POST', '/v1/workflows', { cookie: cookie!, headers: { origin: OWN_ORIGIN }, body })).status).toBe(201);
    expect((await call(app, 'POST', '/v1/workflows', { cookie: cookie!, headers: { 'sec-fetch-site': 'same-origin' }, body: { ...body, name: 'csrf-2' } })).status).toBe(201);
    const bearer = await client(app, users.ADMIN.key).post('/v1/workflows', { ...body, name: 'csrf-3' }, { origin: 'https://evil.example' });
    expect(bearer.status).toBe(201);
    // A Bearer header decides alone, even beside a cookie.
    const both = await call(app, 'POST', '/v1/workflows', {
      cookie: cookie!,
      headers: { origin: 'https://evil.example', authorization: `Bearer ${users.ADMIN.key}` },
      body: { ...body, name: 'csrf-4' },
    });
    expect(both.status).toBe(201);
  });
});

describe('cookies over HTTPS', () => {
  it('behind a trusted proxy that says https: __Host- prefixed and Secure; the plain-HTTP name is not accepted there', async () => {
    const proxied = await createTestApp(t.db, undefined, { rateLimit: { perSecond: 0, burst: 1 }, trustProxy: true });
    try {
      // As a TLS-terminating proxy forwards it: the Host the browser used (no :80) and the scheme.
      const https = { 'x-forwarded-proto': 'https', host: 'localhost' };
      const res = await signIn({ email: await emailOf('OWNER'), password: PASSWORD }, freshAddress(), https, proxied);
      expect(res.status).toBe(201);
      expect(res.setCookie).toMatch(/^__Host-stepwise_session=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Strict; Max-Age=\d+; Secure$/);
      expect((await call(proxied, 'GET', '/v1/sessions/current', { cookie: res.cookie!, cookieName: '__Host-stepwise_session', headers: https })).status).toBe(200);
      // A cookie planted under the unprefixed name (e.g. over plain HTTP) is ignored on HTTPS.
      expectError(await call(proxied, 'GET', '/v1/sessions/current', { cookie: res.cookie!, headers: https }), 401, 'UNAUTHORIZED');
      // The same-origin rule compares against the https origin.
      const body = { name: 'over https', definition: simpleDefinition() };
      expectError(
        await call(proxied, 'POST', '/v1/workflows', { cookie: res.cookie!, cookieName: '__Host-stepwise_session', headers: { ...https, origin: OWN_ORIGIN }, body }),
        403,
        'CROSS_ORIGIN_REQUEST',
      );
      const ok = await call(proxied, 'POST', '/v1/workflows', { cookie: res.cookie!, cookieName: '__Host-stepwise_session', headers: { ...https, origin: 'https://localhost' }, body });
      expect(ok.status).toBe(201);
    } finally {
      await proxied.close();
    }
    // The default app does not trust X-Forwarded-Proto: plain name, no Secure.
    const plain = await signIn({ email: await emailOf('OWNER'), password: PASSWORD }, freshAddress(), { 'x-forwarded-proto': 'https' });
    expect(plain.setCookie).toMatch(/^stepwise_session=/);
    expect(plain.setCookie).not.toContain('Secure');
  });
});

describe('invitations', () => {
  it('an ADMIN invites a user; the link sets the password once, signs them in, and then answers 410', async () => {
    const created = await owner.post('/v1/users', { email: 'invited@example.com', name: 'Invited', role: 'MEMBER' });
    const admin = client(app, users.ADMIN.key);
    const first = await admin.post(`/v1/users/${created.body.id}/invitations`);
    expect(first.status, JSON.stringify(first.body)).toBe(201);
    const inv = await admin.post(`/v1/users/${created.body.id}/invitations`);
    expect(inv.status).toBe(201);
    expect(inv.body.path).toBe(`/invite/${inv.body.token}`);
    expect(Date.parse(inv.body.expiresAt) - Date.now()).toBeGreaterThan(71 * 3_600_000);
    expect(Date.parse(inv.body.expiresAt) - Date.now()).toBeLessThanOrEqual(72 * 3_600_000);
    // Only a hash is stored.
    const { rows } = await t.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM stepwise.user_invitations WHERE token_hash = convert_to($1, 'UTF8')`, [inv.body.token]);
    expect(rows[0]!.n).toBe(0);

    // The earlier link stopped working when the new one was issued.
    expectError(await call(app, 'POST', '/v1/invitations/accept', { body: { token: first.body.token, password: PASSWORD } }), 404, 'NOT_FOUND');
    const short = await call(app, 'POST', '/v1/invitations/accept', { body: { token: inv.body.token, password: 'too short' } });
    expectError(short, 400, 'VALIDATION');
    expect(short.body.error.details).toMatchObject({ path: '/body/password', minLength: 12 });
    const accepted = await call(app, 'POST', '/v1/invitations/accept', { body: { token: inv.body.token, password: 'a new password for me' } });
    expect(accepted.status, JSON.stringify(accepted.body)).toBe(201);
    expect(accepted.body).toMatchObject({ user: { id: created.body.id, email: 'invited@example.com' }, role: 'MEMBER', via: 'password' });
    expect((await call(app, 'GET', '/v1/sessions/current', { cookie: accepted.cookie! })).status).toBe(200);

    const again = await call(app, 'POST', '/v1/invitations/accept', { body: { token: inv.body.token, password: 'another password here' } });
    expectError(again, 410, 'GONE');
    expect(again.body.error.details.reason).toBe('used');
    expect((await signIn({ email: 'invited@example.com', password: 'a new password for me' })).status).toBe(201);
    expect((await signIn({ email: 'invited@example.com', password: 'another password here' })).status).toBe(401);
  });

  it('an expired link is 410; an unknown one 404; a VIEWER or MEMBER may not invite; an ADMIN may not invite an OWNER', async () => {
    const created = await owner.post('/v1/users', { email: 'late@example.com', role: 'VIEWER' });
    const inv = await owner.post(`/v1/users/${created.body.id}/invitations`);
    await t.db.query(`UPDATE stepwise.user_invitations SET created_at = now() - interval '73 hours', expires_at = now() - interval '1 hour' WHERE user_id = $1`, [created.body.id]);
    const late = await call(app, 'POST', '/v1/invitations/accept', { body: { token: inv.body.token, password: PASSWORD } });
    expectError(late, 410, 'GONE');
    expect(late.body.error.details.reason).toBe('expired');
    expectError(await call(app, 'POST', '/v1/invitations/accept', { body: { token: 'x'.repeat(43), password: PASSWORD } }), 404, 'NOT_FOUND');

    expectError(await client(app, users.MEMBER.key).post(`/v1/users/${created.body.id}/invitations`), 403, 'FORBIDDEN');
    const up = await client(app, users.ADMIN.key).post(`/v1/users/${users.OWNER.userId}/invitations`);
    expectError(up, 403, 'FORBIDDEN');
    expect(up.body.error.details).toMatchObject({ path: '/params/id', requiredRole: 'OWNER', role: 'ADMIN' });
    expectError(await client(app, (await seedOrg(t.db, 'Elsewhere')).key).post(`/v1/users/${created.body.id}/invitations`), 404, 'NOT_FOUND');
  });

  it('a link that would replace a password is an OWNER\'s: an ADMIN may not take over a user who has one', async () => {
    const admin = client(app, users.ADMIN.key);
    // users.MEMBER has a password (set in beforeAll): a link for them would let its holder become them.
    const refused = await admin.post(`/v1/users/${users.MEMBER.userId}/invitations`);
    expectError(refused, 403, 'FORBIDDEN');
    expect(refused.body.error.details).toMatchObject({ requiredRole: 'OWNER', role: 'ADMIN' });
    expect((await owner.post(`/v1/users/${users.MEMBER.userId}/invitations`)).status).toBe(201);
  });
});

describe('inviting a new user', () => {
  it('an ADMIN brings someone in at or below their own role: the user is created and their link issued together', async () => {
    const admin = client(app, users.ADMIN.key);
    const res = await admin.post('/v1/invitations', { email: 'newcomer@example.com', name: 'Newcomer', role: 'MEMBER' });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body).toMatchObject({ user: { email: 'newcomer@example.com', name: 'Newcomer', role: 'MEMBER' }, path: `/invite/${res.body.token}` });
    const accepted = await call(app, 'POST', '/v1/invitations/accept', { body: { token: res.body.token, password: 'newcomer password 1' } });
    expect(accepted.status, JSON.stringify(accepted.body)).toBe(201);
    expect(accepted.body).toMatchObject({ user: { id: res.body.user.id }, role: 'MEMBER' });

    // Above one's own role, a taken email, a MEMBER inviting, bad input: refused, and nobody is created.
    const count = async () => (await t.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM stepwise.users WHERE organization_id = $1`, [orgId])).rows[0]!.n;
    const before = await count();
    expectError(await admin.post('/v1/invitations', { email: 'boss@example.com', role: 'OWNER' }), 403, 'FORBIDDEN');
    expectError(await admin.post('/v1/invitations', { email: 'newcomer@example.com', role: 'VIEWER' }), 409, 'CONFLICT');
    expectError(await client(app, users.MEMBER.key).post('/v1/invitations', { email: 'm@example.com', role: 'VIEWER' }), 403, 'FORBIDDEN');
    expect(expectError(await admin.post('/v1/invitations', { email: 'no-at-sign', role: 'VIEWER' }), 400, 'VALIDATION').details.path).toBe('/body/email');
    expect(await count()).toBe(before);
  });
});

describe('PHI audit of a session read', () => {
  it('names user:<id>, with no key for a password session and the key for a key session', async () => {
    const wf = await owner.post('/v1/workflows', {
      name: 'eligibility',
      definition: { phi: ['input.memberId'], steps: [{ id: 'n', type: 'noop' }] },
    });
    expect(wf.status).toBe(201);
    const jobId = (await owner.post(`/v1/workflows/${wf.body.id}/runs`, { input: { memberId: 'M-1' } })).body.jobId as string;
    const byPassword = await signIn({ email: await emailOf('ADMIN'), password: PASSWORD });
    expect((await call(app, 'GET', `/v1/jobs/${jobId}`, { cookie: byPassword.cookie! })).status).toBe(200);
    const byKey = await signIn({ apiKey: users.MEMBER.key });
    expect((await call(app, 'GET', `/v1/jobs/${jobId}`, { cookie: byKey.cookie! })).status).toBe(200);
    const { rows } = await t.db.query(`SELECT actor, api_key_id FROM stepwise.phi_audit_log WHERE job_id = $1 ORDER BY id`, [jobId]);
    expect(rows).toEqual([
      { actor: `user:${users.ADMIN.userId}`, api_key_id: null },
      { actor: `user:${users.MEMBER.userId}`, api_key_id: users.MEMBER.keyId },
    ]);
  });
});
