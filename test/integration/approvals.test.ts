import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { approvalService } from '../../src/engine/approvals.js';
import type { ApprovalRequest } from '../../src/engine/services.js';
import { createApiKey } from '../../src/security/index.js';
import { generateKeyEntry, parseKeyRing } from '../../src/security/crypto.js';
import { createUser, type Role } from '../../src/store/index.js';
import { createTestDb, type TestDb } from '../helpers/db.js';
import { seedOrg } from '../helpers/fixtures.js';
import { seedRoleKeys } from '../helpers/roles.js';
import { client, createTestApp, expectError, type ApiClient, type Json } from '../helpers/api.js';

/**
 * Approvals through the API, without a worker: approvals are opened the way
 * the approval step opens them (engine/approvals.ts), on a real job started
 * by a MEMBER's key, then listed, read and decided by key and by link.
 */
let t: TestDb;
let app: FastifyInstance;
let orgId: string;
let users: Record<Role, { userId: string; key: string }>;
let as: Record<Role, ApiClient>;
let admin2: { userId: string; api: ApiClient };
let stranger: ApiClient;
let anonymous: ApiClient;
let jobId: string;
let paths = 0;
const service = () => approvalService(t.db);

beforeAll(async () => {
  t = await createTestDb();
  // No API rate limit (this file makes many requests from one address), a key ring for links.
  app = await createTestApp(t.db, undefined, { keyRing: parseKeyRing(generateKeyEntry()), rateLimit: { perSecond: 0, burst: 1 } });
  const org = await seedOrg(t.db, 'Approvers');
  orgId = org.organizationId;
  users = await seedRoleKeys(t.db, orgId);
  as = { VIEWER: client(app, users.VIEWER.key), MEMBER: client(app, users.MEMBER.key), ADMIN: client(app, users.ADMIN.key), OWNER: client(app, users.OWNER.key) };
  const second = await createUser(t.db, orgId, { email: 'second-admin@example.com', name: 'Second admin', role: 'ADMIN' });
  admin2 = { userId: second.id, api: client(app, (await createApiKey(t.db, orgId, { name: 'admin 2', userId: second.id })).key) };
  stranger = client(app, (await seedOrg(t.db, 'Elsewhere')).key);
  anonymous = client(app, undefined);
  const wf = await as.ADMIN.post('/v1/workflows', {
    name: 'refunds',
    definition: { steps: [{ id: 'ok', type: 'approval', title: 'Refund {{ input.amount }} USD', approvers: { roles: ['ADMIN', 'OWNER'] } }] },
  });
  expect(wf.status, JSON.stringify(wf.body)).toBe(201);
  const run = await as.MEMBER.post(`/v1/workflows/${wf.body.id}/runs`, { input: { amount: 42 } });
  expect(run.status).toBe(202);
  jobId = run.body.jobId;
});

afterAll(async () => {
  await app?.close();
  await t?.close();
});

/** Open an approval on the job as the approval step would (a new step path each time). */
async function open(overrides: Partial<Omit<ApprovalRequest, 'approvers'>> & { approvers?: Partial<ApprovalRequest['approvers']> } = {}): Promise<string> {
  const { approvers, ...rest } = overrides;
  const { id } = await service().open({
    organizationId: orgId,
    jobId,
    stepPath: `ok${++paths}`,
    title: 'Refund 42 USD',
    required: 1,
    form: null,
    expiresAt: new Date(Date.now() + 3_600_000),
    initiatedBy: users.MEMBER.userId,
    ...rest,
    approvers: { roles: ['ADMIN', 'OWNER'], users: [], excludeInitiator: false, ...approvers },
  });
  return id;
}

const approve = (api: ApiClient, id: string, extra: Json = {}) => api.post(`/v1/approvals/${id}/decision`, { decision: 'approve', ...extra });
const reject = (api: ApiClient, id: string, extra: Json = {}) => api.post(`/v1/approvals/${id}/decision`, { decision: 'reject', ...extra });

/** The single-use link of one user, as an OWNER reads it. */
async function linkOf(id: string, userId: string): Promise<string> {
  const res = await as.OWNER.get(`/v1/approvals/${id}`);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  const link = res.body.links.find((l: Json) => l.userId === userId);
  expect(link, `a link for ${userId}`).toBeDefined();
  expect(link.path).toBe(`/v1/approval-links/${link.token}`);
  return link.token;
}

describe('listing and reading', () => {
  it('lists the pending approvals the caller may decide, with job, workflow, title and requested time', async () => {
    const id = await open();
    const listed = await as.ADMIN.get('/v1/approvals?status=pending');
    expect(listed.status, JSON.stringify(listed.body)).toBe(200);
    const item = listed.body.items.find((a: Json) => a.id === id);
    expect(item).toMatchObject({
      status: 'pending',
      title: 'Refund 42 USD',
      required: 1,
      approvals: 0,
      job: { id: jobId, runNumber: 1 },
      workflow: { name: 'refunds' },
      requestedAt: expect.any(String),
      expiresAt: expect.any(String),
    });
    // Not addressed to VIEWER or MEMBER (their roles are not listed).
    expect((await as.VIEWER.get('/v1/approvals')).body.items.map((a: Json) => a.id)).not.toContain(id);
    expect((await as.MEMBER.get('/v1/approvals')).body.items.map((a: Json) => a.id)).not.toContain(id);
    // Once the caller decided, it is no longer pending for them; it is listed under its status.
    expect((await approve(as.ADMIN, id)).status).toBe(200);
    expect((await as.ADMIN.get('/v1/approvals')).body.items.map((a: Json) => a.id)).not.toContain(id);
    expect((await as.ADMIN.get('/v1/approvals?status=approved')).body.items.map((a: Json) => a.id)).toContain(id);
  });

  it('pages newest first with an opaque cursor', async () => {
    const ids = [await open({ approvers: { roles: ['VIEWER'] } }), await open({ approvers: { roles: ['VIEWER'] } }), await open({ approvers: { roles: ['VIEWER'] } })];
    const first = await as.VIEWER.get('/v1/approvals?limit=2');
    expect(first.body.items.map((a: Json) => a.id)).toEqual([ids[2], ids[1]]);
    const second = await as.VIEWER.get(`/v1/approvals?limit=2&cursor=${encodeURIComponent(first.body.nextCursor)}`);
    expect(second.body.items.map((a: Json) => a.id)).toEqual([ids[0]]);
    expect(second.body.nextCursor).toBeNull();
    expectError(await as.VIEWER.get('/v1/approvals?status=maybe'), 400, 'VALIDATION');
  });

  it('a user listed by id may decide whatever their role', async () => {
    const id = await open({ approvers: { roles: [], users: [users.VIEWER.userId] } });
    expect((await as.VIEWER.get('/v1/approvals')).body.items.map((a: Json) => a.id)).toContain(id);
    expectError(await approve(as.ADMIN, id), 403, 'FORBIDDEN');
    const res = await approve(as.VIEWER, id);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.status).toBe('approved');
  });
});

describe('deciding by API key', () => {
  it('quorum: with required 2, one approve keeps it pending, a second distinct approver approves, the same user twice does not count', async () => {
    const id = await open({ required: 2 });
    const one = await approve(as.ADMIN, id, { comment: 'fine by me' });
    expect(one.status, JSON.stringify(one.body)).toBe(200);
    expect(one.body).toMatchObject({ status: 'pending', approvals: 1 });
    const again = expectError(await approve(as.ADMIN, id), 409, 'CONFLICT');
    expect(again.message).toContain('already decided');
    expect((await as.ADMIN.get(`/v1/approvals/${id}`)).body).toMatchObject({ status: 'pending', approvals: 1 });
    const two = await approve(admin2.api, id);
    expect(two.body).toMatchObject({ status: 'approved', approvals: 2, decidedAt: expect.any(String) });
    // The audit: who, when, what, with which comment.
    const detail = await as.VIEWER.get(`/v1/approvals/${id}`);
    expect(detail.body.decisions).toEqual([
      { userId: users.ADMIN.userId, decision: 'approve', comment: 'fine by me', values: null, via: 'API', apiKeyId: expect.any(String), decidedAt: expect.any(String) },
      { userId: admin2.userId, decision: 'approve', comment: null, values: null, via: 'API', apiKeyId: expect.any(String), decidedAt: expect.any(String) },
    ]);
    const state = await service().find(orgId, id);
    expect(state).toMatchObject({ status: 'APPROVED', decidedBy: [users.ADMIN.userId, admin2.userId], values: null });
  });

  it('racing decisions are taken one at a time: the quorum closes once, the same user counts once', async () => {
    const id = await open({ required: 2 });
    const results = await Promise.all([approve(as.ADMIN, id), approve(as.ADMIN, id), approve(admin2.api, id), approve(as.OWNER, id)]);
    expect(results.map((r) => r.status).sort()).toEqual([200, 200, 409, 409]);
    const detail = await as.OWNER.get(`/v1/approvals/${id}`);
    expect(detail.body).toMatchObject({ status: 'approved', approvals: 2 });
    expect(new Set(detail.body.decisions.map((d: Json) => d.userId)).size).toBe(2);
    const { rows } = await t.db.query<{ seq: number }>(`SELECT seq FROM stepwise.approval_decisions WHERE approval_id = $1 ORDER BY seq`, [id]);
    expect(rows.map((r) => r.seq)).toEqual([1, 2]);
  });

  it('a caller whose role and user are not listed gets 403', async () => {
    const id = await open();
    const err = expectError(await approve(as.MEMBER, id), 403, 'FORBIDDEN');
    expect(err.details).toMatchObject({ role: 'MEMBER', approverRoles: ['ADMIN', 'OWNER'] });
    expectError(await reject(as.VIEWER, id), 403, 'FORBIDDEN');
    expect((await as.OWNER.get(`/v1/approvals/${id}`)).body.decisions).toEqual([]);
  });

  it('the run\'s initiator may not decide when excludeInitiator (403), and it is not listed for them', async () => {
    const id = await open({ approvers: { roles: ['MEMBER', 'ADMIN'], excludeInitiator: true } });
    const err = expectError(await approve(as.MEMBER, id), 403, 'FORBIDDEN');
    expect(err.details.reason).toBe('INITIATOR_EXCLUDED');
    expect((await as.MEMBER.get('/v1/approvals')).body.items.map((a: Json) => a.id)).not.toContain(id);
    // Without the exclusion the initiator may.
    const open2 = await open({ approvers: { roles: ['MEMBER'], excludeInitiator: false } });
    expect((await approve(as.MEMBER, open2)).body.status).toBe('approved');
  });

  it('one reject rejects; a decided approval answers 409', async () => {
    const id = await open({ required: 2 });
    expect((await approve(as.ADMIN, id)).body.status).toBe('pending');
    const rejected = await reject(as.OWNER, id, { comment: 'too much' });
    expect(rejected.body).toMatchObject({ status: 'rejected' });
    const err = expectError(await approve(admin2.api, id), 409, 'CONFLICT');
    expect(err.details.status).toBe('REJECTED');
    expect(await service().find(orgId, id)).toMatchObject({ status: 'REJECTED', decidedBy: [users.OWNER.userId] });
  });

  it('values must match the form: 400 naming the field', async () => {
    const form = { type: 'object', required: ['note'], additionalProperties: false, properties: { note: { type: 'string', minLength: 2 }, amount: { type: 'number' } } };
    const id = await open({ form });
    let err = expectError(await approve(as.ADMIN, id, { values: { note: 5 } }), 400, 'VALIDATION');
    expect(err.details.path).toBe('/body/values/note');
    err = expectError(await approve(as.ADMIN, id), 400, 'VALIDATION');
    expect(err).toMatchObject({ message: '/body/values/note is required', details: { path: '/body/values/note' } });
    err = expectError(await approve(as.ADMIN, id, { values: { note: 'ok', extra: 1 } }), 400, 'VALIDATION');
    expect(err.details.path).toBe('/body/values/extra');
    expectError(await approve(as.ADMIN, id, { values: [] }), 400, 'VALIDATION');
    // Nothing was recorded by the refused decisions; a matching one is.
    expect((await as.ADMIN.get(`/v1/approvals/${id}`)).body.decisions).toEqual([]);
    const ok = await approve(as.ADMIN, id, { values: { note: 'ok', amount: 42 } });
    expect(ok.body.status).toBe('approved');
    expect(await service().find(orgId, id)).toMatchObject({ values: { note: 'ok', amount: 42 } });
    // Without a form, a decision carries no values.
    const bare = await open();
    expect(expectError(await approve(as.ADMIN, bare, { values: { x: 1 } }), 400, 'VALIDATION').details.path).toBe('/body/values');
  });

  it('a reject needs no form values', async () => {
    const id = await open({ form: { type: 'object', required: ['note'], properties: { note: { type: 'string' } } } });
    expect((await reject(as.ADMIN, id)).body.status).toBe('rejected');
  });

  it('another organization\'s approval is 404, and is never listed', async () => {
    const id = await open();
    expectError(await stranger.get(`/v1/approvals/${id}`), 404, 'NOT_FOUND');
    expectError(await approve(stranger, id), 404, 'NOT_FOUND');
    expect((await stranger.get('/v1/approvals')).body.items).toEqual([]);
    expectError(await as.ADMIN.get('/v1/approvals/00000000-0000-7000-8000-000000000000'), 404, 'NOT_FOUND');
    expect((await as.OWNER.get(`/v1/approvals/${id}`)).body.decisions).toEqual([]);
  });

  it('an expired approval cannot be decided (409) and is not listed as pending', async () => {
    const id = await open({ expiresAt: new Date(Date.now() - 1_000) });
    expect((await as.ADMIN.get('/v1/approvals')).body.items.map((a: Json) => a.id)).not.toContain(id);
    const err = expectError(await approve(as.ADMIN, id), 409, 'CONFLICT');
    expect(err.details.status).toBe('EXPIRED');
  });

  it('a decision wakes the job', async () => {
    await t.db.query(`UPDATE stepwise.job_queue SET wake_requested = false, run_at = now() + interval '1 hour' WHERE job_id = $1`, [jobId]);
    const id = await open();
    expect((await approve(as.ADMIN, id)).status).toBe(200);
    const { rows } = await t.db.query<{ wake_requested: boolean; due: boolean }>(
      `SELECT wake_requested, run_at <= now() AS due FROM stepwise.job_queue WHERE job_id = $1`,
      [jobId],
    );
    expect(rows[0]).toEqual({ wake_requested: true, due: true });
  });
});

describe('single-use links', () => {
  it('links go to OWNER and ADMIN only, one per eligible user (the excluded initiator has none)', async () => {
    const id = await open({ approvers: { roles: ['MEMBER', 'ADMIN'], users: [users.VIEWER.userId], excludeInitiator: true } });
    const owner = await as.OWNER.get(`/v1/approvals/${id}`);
    const linked = owner.body.links.map((l: Json) => l.userId).sort();
    expect(linked).toEqual([users.ADMIN.userId, admin2.userId, users.VIEWER.userId].sort());
    for (const l of owner.body.links) {
      expect(l.token).toMatch(/^swl_[A-Za-z0-9_-]{43}$/);
      expect(l).toMatchObject({ usedAt: null, expiresAt: expect.any(String) });
    }
    // The same links every time (derived, not stored), for ADMIN too.
    const admin = await as.ADMIN.get(`/v1/approvals/${id}`);
    expect(admin.body.links.map((l: Json) => l.token).sort()).toEqual(owner.body.links.map((l: Json) => l.token).sort());
    // Never to the approvers' peers.
    for (const api of [as.MEMBER, as.VIEWER]) {
      const res = await api.get(`/v1/approvals/${id}`);
      expect(res.status).toBe(200);
      expect(res.body).not.toHaveProperty('links');
      expect(JSON.stringify(res.body)).not.toContain('swl_');
    }
    // Only hashes are stored.
    const { rows } = await t.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM stepwise.approval_links WHERE approval_id = $1 AND token_hash IS NOT NULL AND octet_length(token_hash) = 32`,
      [id],
    );
    expect(rows[0]!.n).toBe(3);
    const tokens: string[] = owner.body.links.map((l: Json) => l.token);
    const { rows: dump } = await t.db.query<{ row: string }>(`SELECT row_to_json(l)::text AS row FROM stepwise.approval_links l WHERE approval_id = $1`, [id]);
    for (const token of tokens) for (const r of dump) expect(r.row).not.toContain(token.slice(4));
  });

  it('a link shows what is asked without a key, decides once as its user, and a second use is 410', async () => {
    const form = { type: 'object', properties: { note: { type: 'string' } } };
    const id = await open({ form, title: 'Refund 7 USD' });
    const token = await linkOf(id, users.ADMIN.userId);
    const shown = await anonymous.get(`/v1/approval-links/${token}`);
    expect(shown.status, JSON.stringify(shown.body)).toBe(200);
    expect(shown.body).toEqual({ title: 'Refund 7 USD', status: 'pending', form, required: 1, expiresAt: expect.any(String), workflow: 'refunds', runNumber: 1 });
    expect(shown.headers['cache-control']).toBe('no-store');
    const bad = expectError(await anonymous.post(`/v1/approval-links/${token}`, { decision: 'approve', values: { note: 1 } }), 400, 'VALIDATION');
    expect(bad.details.path).toBe('/body/values/note');
    const decided = await anonymous.post(`/v1/approval-links/${token}`, { decision: 'approve', comment: 'via link', values: { note: 'ok' } });
    expect(decided.status, JSON.stringify(decided.body)).toBe(200);
    expect(decided.body.status).toBe('approved');
    expectError(await anonymous.post(`/v1/approval-links/${token}`, { decision: 'approve' }), 410, 'GONE');
    expectError(await anonymous.get(`/v1/approval-links/${token}`), 410, 'GONE');
    const detail = await as.OWNER.get(`/v1/approvals/${id}`);
    expect(detail.body.decisions).toEqual([
      { userId: users.ADMIN.userId, decision: 'approve', comment: 'via link', values: { note: 'ok' }, via: 'LINK', apiKeyId: null, decidedAt: expect.any(String) },
    ]);
    const used = detail.body.links.find((l: Json) => l.userId === users.ADMIN.userId);
    expect(used).toMatchObject({ token: null, path: null, usedAt: expect.any(String) });
  });

  it('a link to an approval decided by someone else answers 409 and stays unused', async () => {
    const id = await open();
    const token = await linkOf(id, users.ADMIN.userId);
    expect((await reject(as.OWNER, id)).body.status).toBe('rejected');
    expect((await anonymous.get(`/v1/approval-links/${token}`)).body.status).toBe('rejected');
    expectError(await anonymous.post(`/v1/approval-links/${token}`, { decision: 'approve' }), 409, 'CONFLICT');
  });

  it('an expired link is 410', async () => {
    const id = await open({ expiresAt: new Date(Date.now() + 3_600_000) });
    const token = await linkOf(id, users.OWNER.userId);
    expect((await anonymous.get(`/v1/approval-links/${token}`)).status).toBe(200);
    // Expired by the database's clock, the one the routes judge by; no sleep for a deadline to pass (a loaded machine outran 300 ms).
    await t.db.query(`UPDATE stepwise.approvals SET expires_at = now() - interval '1 second' WHERE id = $1`, [id]);
    await t.db.query(`UPDATE stepwise.approval_links SET expires_at = now() - interval '1 second' WHERE approval_id = $1`, [id]);
    expectError(await anonymous.get(`/v1/approval-links/${token}`), 410, 'GONE');
    expectError(await anonymous.post(`/v1/approval-links/${token}`, { decision: 'approve' }), 410, 'GONE');
    expect((await as.OWNER.get(`/v1/approvals/${id}`)).body.links.find((l: Json) => l.userId === users.OWNER.userId).token).toBeNull();
  });

  it('a link of a user who can no longer decide (demoted) is refused with 403', async () => {
    const user = await createUser(t.db, orgId, { email: 'soon-demoted@example.com', role: 'ADMIN' });
    const id = await open();
    const token = await linkOf(id, user.id);
    await t.db.query(`UPDATE stepwise.users SET role = 'VIEWER' WHERE id = $1`, [user.id]);
    expectError(await anonymous.post(`/v1/approval-links/${token}`, { decision: 'approve' }), 403, 'FORBIDDEN');
    await t.db.query(`UPDATE stepwise.users SET disabled_at = now() WHERE id = $1`, [user.id]);
    expectError(await anonymous.post(`/v1/approval-links/${token}`, { decision: 'approve' }), 403, 'FORBIDDEN');
  });

  it('unknown and malformed tokens are 404', async () => {
    expectError(await anonymous.get(`/v1/approval-links/swl_${'A'.repeat(43)}`), 404, 'NOT_FOUND');
    expectError(await anonymous.get('/v1/approval-links/nonsense'), 404, 'NOT_FOUND');
    expectError(await anonymous.post(`/v1/approval-links/swl_${'A'.repeat(43)}`, { decision: 'approve' }), 404, 'NOT_FOUND');
  });

  it('without a key ring there are no links to show', async () => {
    const bare = await createTestApp(t.db);
    try {
      const id = await open();
      const res = await client(bare, users.OWNER.key).get(`/v1/approvals/${id}`);
      expect(res.status).toBe(200);
      expect(res.body.links).toBeNull();
    } finally {
      await bare.close();
    }
  });

  it('the OpenAPI document describes the routes, the link routes without a key', async () => {
    const doc = (await anonymous.get('/openapi.json')).body;
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/v1/approvals', '/v1/approvals/{id}', '/v1/approvals/{id}/decision', '/v1/approval-links/{token}']));
    expect(doc.paths['/v1/approval-links/{token}'].post.security).toEqual([]);
    expect(doc.paths['/v1/approvals/{id}/decision'].post.requestBody.content['application/json'].schema.properties.decision.enum).toEqual(['approve', 'reject']);
  });

  it('link requests are rate limited per address', async () => {
    const limited = await createTestApp(t.db, undefined, { keyRing: parseKeyRing(generateKeyEntry()) });
    try {
      const c = client(limited, undefined);
      let status = 0;
      for (let i = 0; i < 100 && status !== 429; i++) status = (await c.get(`/v1/approval-links/swl_${'B'.repeat(43)}`)).status;
      expect(status).toBe(429);
    } finally {
      await limited.close();
    }
  });
});
