import Fastify from 'fastify';
import { uuidv7 } from '../../src/util/ids.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Queryable } from '../../src/db/index.js';
import { ContextDb, openTenantTransaction, withTenant } from '../../src/db/tenant.js';
import { installTenantScope } from '../../src/api/tenancy.js';
import { authenticate } from '../../src/security/index.js';
import { findJob } from '../../src/store/index.js';
import { createTestDb, type TestDb } from '../helpers/db.js';
import { seedOrg } from '../helpers/fixtures.js';
import { client, createTestApp, simpleDefinition } from '../helpers/api.js';

/**
 * Row-level security is the second wall behind the store's filters: even SQL that
 * forgot its organization filter, run on the tenant path, sees and writes
 * only the tenant's rows.
 */
let t: TestDb;
let orgA: { organizationId: string; key: string };
let orgB: { organizationId: string; key: string };
let jobA: string;
let jobB: string;

beforeAll(async () => {
  t = await createTestDb();
  orgA = await seedOrg(t.db, 'RLS A');
  orgB = await seedOrg(t.db, 'RLS B');
  const app = await createTestApp(t.db);
  for (const [org, set] of [
    [orgA, (id: string) => (jobA = id)],
    [orgB, (id: string) => (jobB = id)],
  ] as const) {
    const api = client(app, org.key);
    const wf = (await api.post('/v1/workflows', { name: 'w', definition: simpleDefinition() })).body;
    await api.post('/v1/clients', { name: 'c' });
    const run = await api.post(`/v1/workflows/${wf.id}/runs`, { input: { n: 1 } });
    expect(run.status).toBe(202);
    set(run.body.jobId);
  }
  await app.close();
});

afterAll(async () => {
  await t?.close();
});

/** The store's SQL with its organization filter cut out, the way a bug would. */
function withoutOrgFilter(q: Queryable): Queryable {
  const strip = (text: string) => text.replace(/organization_id = \$1( AND)?/, (_m, and: string | undefined) => `$1::uuid IS NOT NULL${and ?? ''}`);
  return { query: (text, params) => q.query(strip(text), params), exec: (sql) => q.exec(sql) };
}

describe('a store function with its organization filter removed', () => {
  it('really lost its filter: on the service path it finds the other tenant’s job', async () => {
    // Proves the stripping works, so the next assertions can fail.
    const found = await findJob(withoutOrgFilter(t.db), orgA.organizationId, jobB);
    expect(found?.organizationId).toBe(orgB.organizationId);
  });

  it('returns nothing of another tenant on the tenant path', async () => {
    await withTenant(t.db, orgA.organizationId, async (tx) => {
      const q = withoutOrgFilter(tx);
      expect(await findJob(q, orgA.organizationId, jobB)).toBeNull();
      expect((await findJob(q, orgA.organizationId, jobA))?.id).toBe(jobA);
      // A listing query of the same shape (organization filter first), stripped the same way.
      const listed = await q.query<{ organization_id: string }>(
        `SELECT organization_id FROM stepwise.jobs WHERE organization_id = $1 ORDER BY run_number DESC LIMIT 100`,
        [orgA.organizationId],
      );
      expect(listed.rows.map((j) => j.organization_id)).toEqual([orgA.organizationId]);
    });
  });

  it('sees only its own rows in every tenant table, whatever the query says', async () => {
    const tables = await tenantTables();
    expect(tables.length).toBeGreaterThan(8);
    await withTenant(t.db, orgA.organizationId, async (tx) => {
      for (const table of tables) {
        const { rows } = await tx.query<{ org: string }>(`SELECT DISTINCT organization_id AS org FROM stepwise.${table}`);
        for (const r of rows) expect(r.org, table).toBe(orgA.organizationId);
      }
      const orgs = await tx.query<{ id: string }>('SELECT id FROM stepwise.organizations');
      expect(orgs.rows.map((r) => r.id)).toEqual([orgA.organizationId]);
    });
  });

  it('refuses an INSERT carrying another organization’s id, and cannot touch its rows', async () => {
    await expect(
      withTenant(t.db, orgA.organizationId, (tx) =>
        tx.query(`INSERT INTO stepwise.clients (id, organization_id, name) VALUES ($1, $2, 'planted')`, [uuidv7(), orgB.organizationId]),
      ),
    ).rejects.toThrow(/row-level security/);
    const changed = await withTenant(t.db, orgA.organizationId, async (tx) => {
      const u = await tx.query(`UPDATE stepwise.jobs SET priority = 9 WHERE id = $1`, [jobB]);
      const d = await tx.query(`DELETE FROM stepwise.job_queue WHERE job_id = $1`, [jobB]);
      return u.rowCount + d.rowCount;
    });
    expect(changed).toBe(0);
    // Moving one of its own rows to B is refused too (WITH CHECK).
    await expect(
      withTenant(t.db, orgA.organizationId, (tx) =>
        tx.query(`UPDATE stepwise.jobs SET organization_id = $2 WHERE id = $1`, [jobA, orgB.organizationId]),
      ),
    ).rejects.toThrow();
    const b = await findJob(t.db, orgB.organizationId, jobB);
    expect(b?.priority).toBe(0);
    const { rows } = await t.db.query(`SELECT 1 FROM stepwise.clients WHERE name = 'planted'`);
    expect(rows).toEqual([]);
  });

  it('fails closed when the tenant role is taken without an organization', async () => {
    await expect(
      t.db.transaction(async (tx) => {
        await tx.query(`SELECT set_config('role', 'stepwise_tenant', true)`);
        await tx.query('SELECT id FROM stepwise.jobs');
      }),
    ).rejects.toThrow();
  });
});

/** Every table of schema stepwise with an organization_id column (partitions are reached through their parent). */
async function tenantTables(): Promise<string[]> {
  const { rows } = await t.db.query<{ relname: string }>(
    `SELECT c.relname FROM pg_class c
       JOIN pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'organization_id' AND NOT a.attisdropped
      WHERE n.nspname = 'stepwise' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
      ORDER BY 1`,
  );
  return rows.map((r) => r.relname);
}

describe('every tenant table', () => {
  it('has ENABLE and FORCE ROW LEVEL SECURITY and the tenant policy (tables added later are caught here)', async () => {
    const { rows } = await t.db.query<{ relname: string; enabled: boolean; forced: boolean; policy: string | null }>(
      `SELECT c.relname, c.relrowsecurity AS enabled, c.relforcerowsecurity AS forced,
              (SELECT pg_get_expr(p.polqual, p.polrelid) FROM pg_policy p
                WHERE p.polrelid = c.oid AND p.polname = 'tenant_isolation'
                  AND (SELECT oid FROM pg_roles WHERE rolname = 'stepwise_tenant') = ANY (p.polroles)) AS policy
         FROM pg_class c
         JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'stepwise' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
          AND (c.relname = 'organizations' OR EXISTS (
                SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'organization_id' AND NOT a.attisdropped))`,
    );
    expect(rows.length).toBeGreaterThan(8);
    const unprotected = rows
      .filter((r) => !r.enabled || !r.forced || !r.policy || !r.policy.includes("current_setting('stepwise.organization_id'"))
      .map((r) => r.relname);
    expect(unprotected).toEqual([]);
  });
});

describe('the API runs each authenticated request as its tenant', () => {
  it('a handler whose query has no organization filter sees only the caller’s rows; a failed request rolls back', async () => {
    const app = Fastify();
    const db = new ContextDb(t.db);
    app.decorateRequest('principal', null as never);
    app.addHook('onRequest', async (req) => {
      req.principal = await authenticate(t.db, req.headers.authorization?.slice('Bearer '.length));
    });
    installTenantScope(app, db);
    app.get('/all-jobs', async () => (await db.query<{ organization_id: string }>('SELECT organization_id FROM stepwise.jobs')).rows);
    app.post('/plant-then-fail', async () => {
      await db.query(`INSERT INTO stepwise.clients (id, organization_id, name) VALUES ($1, $2, 'rolled back')`, [uuidv7(), orgA.organizationId]);
      // A nested transaction is a savepoint: its failure is contained…
      await db.transaction((tx) => tx.query('SELECT 1/0')).catch(() => undefined);
      // …and the request's transaction goes on, until the error status rolls it back.
      await db.query('SELECT 1');
      throw Object.assign(new Error('refused'), { statusCode: 409 });
    });
    await app.ready();
    const res = await app.inject({ method: 'GET', url: '/all-jobs', headers: { authorization: `Bearer ${orgA.key}` } });
    expect(res.statusCode).toBe(200);
    const orgs = new Set((res.json() as { organization_id: string }[]).map((r) => r.organization_id));
    expect([...orgs]).toEqual([orgA.organizationId]);
    const failed = await app.inject({ method: 'POST', url: '/plant-then-fail', headers: { authorization: `Bearer ${orgA.key}` } });
    expect(failed.statusCode).toBe(409);
    const { rows } = await t.db.query(`SELECT 1 FROM stepwise.clients WHERE name = 'rolled back'`);
    expect(rows).toEqual([]);
    // Nothing is left holding the connection (PGlite has one): the service path still answers.
    expect((await t.db.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    await app.close();
  });

  it('an open tenant transaction commits or rolls back on request', async () => {
    const open = await openTenantTransaction(t.db, orgA.organizationId);
    await open.tx.query(`INSERT INTO stepwise.clients (id, organization_id, name) VALUES ($1, $2, 'kept')`, [uuidv7(), orgA.organizationId]);
    await open.commit();
    const again = await openTenantTransaction(t.db, orgA.organizationId);
    await again.tx.query(`INSERT INTO stepwise.clients (id, organization_id, name) VALUES ($1, $2, 'dropped')`, [uuidv7(), orgA.organizationId]);
    await again.rollback();
    const { rows } = await t.db.query<{ name: string }>(`SELECT name FROM stepwise.clients WHERE name IN ('kept', 'dropped')`);
    expect(rows.map((r) => r.name)).toEqual(['kept']);
  });
});
