import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { migrate, PostgresDb } from '../../src/db/index.js';
import { withTenant } from '../../src/db/tenant.js';
import type { Worker } from '../../src/engine/index.js';
import { backend } from '../helpers/db.js';
import { seedOrg, startWorker, waitForJob } from '../helpers/fixtures.js';
import { client, createTestApp, simpleDefinition } from '../helpers/api.js';

/**
 * Production does not run as a superuser, and a superuser bypasses RLS, so
 * the other tests cannot show that the policies leave the service path
 * working. Here a plain login with CREATEROLE owns its database, migrates it
 * and runs the service: FORCE ROW LEVEL SECURITY applies to it as the
 * tables' owner, the service policy lets the engine work across tenants, and
 * the tenant path is still confined. Server only (PGlite has one user).
 */
const server = backend === 'postgres';
const suffix = randomBytes(4).toString('hex');
const role = `sw_app_${suffix}`;
const database = `stepwise_ns_${suffix}`;
let db: PostgresDb;
let worker: Worker | undefined;

async function admin(sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: inject('pgAdminUrl') });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

beforeAll(async () => {
  if (!server) return;
  await admin(`CREATE ROLE ${role} LOGIN CREATEROLE NOSUPERUSER NOBYPASSRLS`);
  await admin(`CREATE DATABASE ${database} OWNER ${role}`);
  const u = new URL(inject('pgAdminUrl'));
  u.username = role;
  u.pathname = `/${database}`;
  db = new PostgresDb(u.toString(), 4);
});

afterAll(async () => {
  if (!server) return;
  await worker?.stop();
  await db?.close();
  await admin(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
  await admin(`DROP ROLE IF EXISTS ${role}`);
});

describe.skipIf(!server)('a non-superuser service login', () => {
  it('migrates, runs jobs across tenants as the service, and is confined on the tenant path', async () => {
    await migrate(db);
    const { rows } = await db.query<{ su: boolean; tenant: boolean; service: boolean }>(
      `SELECT rolsuper AS su, pg_has_role(current_user, 'stepwise_tenant', 'MEMBER') AS tenant,
              pg_has_role(current_user, 'stepwise_service', 'MEMBER') AS service
         FROM pg_roles WHERE rolname = current_user`,
    );
    expect(rows[0]).toEqual({ su: false, tenant: true, service: true });

    const a = await seedOrg(db, 'NS A');
    const b = await seedOrg(db, 'NS B');
    const app = await createTestApp(db);
    worker = startWorker(db);
    const jobs: string[] = [];
    for (const org of [a, b]) {
      const api = client(app, org.key);
      const wf = await api.post('/v1/workflows', { name: 'w', definition: simpleDefinition() });
      expect(wf.status, JSON.stringify(wf.body)).toBe(201);
      const run = await api.post(`/v1/workflows/${wf.body.id}/runs`, { input: { n: 1 } });
      expect(run.status).toBe(202);
      jobs.push(run.body.jobId);
      expect((await api.get(`/v1/jobs/${run.body.jobId}`)).status).toBe(200);
    }
    // The engine (service path, both tenants' jobs) works under FORCE ROW LEVEL SECURITY.
    expect((await waitForJob(db, a.organizationId, jobs[0]!)).status).toBe('COMPLETED');
    expect((await waitForJob(db, b.organizationId, jobs[1]!)).status).toBe('COMPLETED');
    const all = await db.query<{ n: number }>('SELECT count(DISTINCT organization_id)::int AS n FROM stepwise.jobs');
    expect(all.rows[0]!.n).toBe(2);

    // The tenant path sees one tenant and cannot write another's rows.
    await withTenant(db, a.organizationId, async (tx) => {
      const seen = await tx.query<{ org: string }>('SELECT DISTINCT organization_id AS org FROM stepwise.jobs');
      expect(seen.rows.map((r) => r.org)).toEqual([a.organizationId]);
    });
    await expect(
      withTenant(db, a.organizationId, (tx) =>
        tx.query(`INSERT INTO stepwise.clients (id, organization_id, name) VALUES (gen_random_uuid(), $1, 'x')`, [b.organizationId]),
      ),
    ).rejects.toThrow(/row-level security/);
    await app.close();
  });
});
