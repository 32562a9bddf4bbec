import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installAuth } from '../../src/api/auth.js';
import { ATLAS_PAGES } from '../../src/api/atlas.js';
import { getPermissionMatrix, isAction, PERMISSIONS, renderPermissionMatrix, ROLES, type Action } from '../../src/security/index.js';
import type { Role } from '../../src/store/index.js';
import { createTestDb, type TestDb } from '../helpers/db.js';
import { seedOrg } from '../helpers/fixtures.js';
import { seedRoleKeys } from '../helpers/roles.js';
import { client, createTestApp, expectError, simpleDefinition, type ApiClient, type Json } from '../helpers/api.js';

let t: TestDb;
let app: FastifyInstance;
let as: Record<Role, ApiClient>;
let wf: Json;

beforeAll(async () => {
  t = await createTestDb();
  app = await createTestApp(t.db);
  const { organizationId } = await seedOrg(t.db, 'Roles');
  const keys = await seedRoleKeys(t.db, organizationId);
  as = { VIEWER: client(app, keys.VIEWER.key), MEMBER: client(app, keys.MEMBER.key), ADMIN: client(app, keys.ADMIN.key), OWNER: client(app, keys.OWNER.key) };
  wf = (await as.ADMIN.post('/v1/workflows', { name: 'w', definition: simpleDefinition() })).body;
});

afterAll(async () => {
  await app?.close();
  await t?.close();
});

describe('permission matrix', () => {
  it('VIEWER reads, MEMBER runs, ADMIN manages workflows, OWNER manages users and the plan', async () => {
    const cases: [string, () => Promise<{ status: number }>, Role][] = [
      ['list workflows', () => as.VIEWER.get('/v1/workflows'), 'VIEWER'],
      ['start a run', () => as.MEMBER.post(`/v1/workflows/${wf.id}/runs`, {}), 'MEMBER'],
      ['create a workflow', () => as.ADMIN.post('/v1/workflows', { name: 'x', definition: simpleDefinition() }), 'ADMIN'],
      ['list users', () => as.ADMIN.get('/v1/users'), 'ADMIN'],
      ['create a user', () => as.OWNER.post('/v1/users', { email: 'new@example.com', role: 'VIEWER' }), 'OWNER'],
      ['change the plan', () => as.OWNER.put('/v1/organization/plan', { plan: 'ENTERPRISE' }), 'OWNER'],
    ];
    for (const [label, call, _least] of cases) expect((await call()).status, label).toBeLessThan(300);

    const refused: [() => Promise<Json>, Action, Role][] = [
      [() => as.VIEWER.post(`/v1/workflows/${wf.id}/runs`, {}), 'workflows.run', 'VIEWER'],
      [() => as.VIEWER.post(`/v1/clients`, { name: 'c' }), 'clients.manage', 'VIEWER'],
      [() => as.MEMBER.put(`/v1/workflows/${wf.id}`, { name: 'renamed' }), 'workflows.manage', 'MEMBER'],
      [() => as.MEMBER.post('/v1/schedules', { workflowId: wf.id, cron: '* * * * *' }), 'schedules.manage', 'MEMBER'],
      [() => as.ADMIN.post('/v1/users', { email: 'a@b.c', role: 'VIEWER' }), 'users.manage', 'ADMIN'],
      [() => as.ADMIN.put('/v1/organization/plan', { plan: 'STARTER' }), 'plan.manage', 'ADMIN'],
      [() => as.MEMBER.get('/v1/users'), 'users.read', 'MEMBER'],
    ];
    for (const [call, action, role] of refused) {
      const err = expectError(await call(), 403, 'FORBIDDEN');
      const required = PERMISSIONS[action].role;
      expect(err.message).toContain(action);
      expect(err.message).toContain(required);
      expect(err.details).toEqual({ action, requiredRole: required, role });
    }
    // Nothing the refused calls asked for happened.
    expect((await as.VIEWER.get(`/v1/workflows/${wf.id}`)).body.name).toBe('w');
    const { rows } = await t.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM stepwise.clients`);
    expect(rows[0]!.n).toBe(0);
  });

  it('an insufficient role is 403 before the body is validated; another organization\'s object is still 404', async () => {
    expectError(await as.VIEWER.request('POST', '/v1/workflows', { raw: '{"broken' }), 403, 'FORBIDDEN');
    const other = client(app, (await seedOrg(t.db, 'Elsewhere')).key);
    expectError(await other.get(`/v1/workflows/${wf.id}`), 404, 'NOT_FOUND');
  });

  it('every route the app serves declares a known action or is public', () => {
    expect(app.routeTable.length).toBeGreaterThan(30);
    for (const r of app.routeTable) {
      if (r.public) continue;
      expect(isAction(r.action), `${r.method} ${r.url}`).toBe(true);
    }
    // The dashboard's shell and assets are public (they hold no tenant data; its API calls are authenticated).
    const atlas = ['/', '/assets/:file', ...ATLAS_PAGES];
    expect(app.routeTable.filter((r) => r.public).map((r) => r.url).sort()).toEqual(
      ['/health', '/health/live', '/health/ready', '/openapi.json', '/v1/approval-links/:token', '/v1/approval-links/:token', '/v1/hooks/:workflowId', '/v1/invitations/accept', '/v1/sessions', ...atlas].sort(),
    );
  });

  it('a route without a declared action refuses to start', async () => {
    const bare = Fastify();
    installAuth(bare, t.db, { perSecond: 0, burst: 1 });
    await expect(async () => {
      bare.get('/v1/unguarded', async () => ({}));
      await bare.ready();
    }).rejects.toThrow(/\/v1\/unguarded declares no known action/);
    const typo = Fastify();
    installAuth(typo, t.db, { perSecond: 0, burst: 1 });
    await expect(async () => {
      typo.get('/v1/typo', { config: { action: 'jobs.raed' as Action } }, async () => ({}));
      await typo.ready();
    }).rejects.toThrow(/declares no known action/);
  });

  it('renders as a table with every action, least role first', () => {
    const table = renderPermissionMatrix();
    for (const action of Object.keys(PERMISSIONS)) expect(table).toContain(`| ${action} |`);
    const rows = getPermissionMatrix();
    const ranks = rows.map((r) => ROLES.indexOf(r.role));
    expect([...ranks].sort((a, b) => a - b)).toEqual(ranks);
    for (const r of rows) expect(ROLES.filter((role) => r.allowed[role])[0]).toBe(r.role);
  });
});
