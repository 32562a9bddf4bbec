import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FsBlobStore } from '../../src/blob/index.js';
import { ConflictError } from '../../src/errors/index.js';
import { runMaintenance } from '../../src/lifecycle/index.js';
import { createTestDb, type TestDb } from '../helpers/db.js';
import { seedOrg } from '../helpers/fixtures.js';
import { client, createTestApp, expectError, type ApiClient } from '../helpers/api.js';

let t: TestDb;
let app: FastifyInstance;
let api: ApiClient;
let other: ApiClient;

beforeAll(async () => {
  t = await createTestDb();
  app = await createTestApp(t.db);
  api = client(app, (await seedOrg(t.db, 'Acme')).key);
  other = client(app, (await seedOrg(t.db, 'Other')).key);
});

afterAll(async () => {
  await app?.close();
  await t?.close();
});

describe('retention policies API', () => {
  it('lists every resource type with the seed defaults when nothing was set', async () => {
    const res = await api.get('/v1/retention-policies');
    expect(res.status).toBe(200);
    expect(res.body.items.map((p: { resourceType: string }) => p.resourceType)).toEqual([
      'execution_log', 'screenshot', 'job', 'job_result', 'phi_audit',
    ]);
    const log = res.body.items[0];
    expect(log).toEqual({ resourceType: 'execution_log', hotRetentionDays: 30, archiveRetentionDays: 365, deleteAfterDays: null, isDefault: true, updatedAt: null });
    expect(res.body.items[4]).toMatchObject({ resourceType: 'phi_audit', archiveRetentionDays: 2192, deleteAfterDays: null });
  });

  it('sets a policy, keeps omitted fields, and does not touch another organization', async () => {
    const set = await api.put('/v1/retention-policies/execution_log', { hotRetentionDays: 7, archiveRetentionDays: 90, deleteAfterDays: 400 });
    expect(set.status, JSON.stringify(set.body)).toBe(200);
    expect(set.body).toMatchObject({ resourceType: 'execution_log', hotRetentionDays: 7, archiveRetentionDays: 90, deleteAfterDays: 400, isDefault: false });
    const partial = await api.put('/v1/retention-policies/execution_log', { hotRetentionDays: 14 });
    expect(partial.body).toMatchObject({ hotRetentionDays: 14, archiveRetentionDays: 90, deleteAfterDays: 400 });
    const never = await api.put('/v1/retention-policies/execution_log', { deleteAfterDays: null });
    expect(never.body).toMatchObject({ hotRetentionDays: 14, deleteAfterDays: null });
    const mine = (await api.get('/v1/retention-policies')).body.items[0];
    expect(mine).toMatchObject({ hotRetentionDays: 14, isDefault: false });
    const theirs = (await other.get('/v1/retention-policies')).body.items[0];
    expect(theirs).toMatchObject({ hotRetentionDays: 30, isDefault: true });
  });

  it('refuses PHI audit retention under six years with a clear 400, changing nothing', async () => {
    const short = await api.put('/v1/retention-policies/phi_audit', { archiveRetentionDays: 365 });
    const err = expectError(short, 400, 'VALIDATION');
    expect(err.message).toMatch(/six years/);
    expect(err.details).toMatchObject({ path: 'archiveRetentionDays', min: 2192 });
    const del = expectError(await api.put('/v1/retention-policies/phi_audit', { deleteAfterDays: 2000 }), 400, 'VALIDATION');
    expect(del.details).toMatchObject({ path: 'deleteAfterDays', min: 2192 });
    const ok = await api.put('/v1/retention-policies/phi_audit', { hotRetentionDays: 90, deleteAfterDays: 2600 });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ hotRetentionDays: 90, archiveRetentionDays: 2192, deleteAfterDays: 2600 });
  });

  it('the database refuses a short PHI policy even when the API is bypassed', async () => {
    const { rows } = await t.db.query<{ id: string }>(`SELECT id FROM stepwise.organizations LIMIT 1`);
    await expect(
      t.db.query(
        `INSERT INTO stepwise.retention_policies (organization_id, resource_type, hot_retention_days, archive_retention_days)
         VALUES ($1, 'phi_audit', 1, 30)`,
        [rows[0]!.id],
      ),
    ).rejects.toThrow();
  });

  it('names the field and the limit for bad values, changing nothing', async () => {
    const before = (await api.get('/v1/retention-policies')).body.items;
    expectError(await api.put('/v1/retention-policies/execution_log', { hotRetentionDays: 0 }), 400, 'VALIDATION');
    expect(expectError(await api.put('/v1/retention-policies/execution_log', { hotRetentionDays: 40_000 }), 400, 'VALIDATION').details)
      .toMatchObject({ path: 'hotRetentionDays', max: 36_500 });
    expect(expectError(await api.put('/v1/retention-policies/execution_log', { hotRetentionDays: 500 }), 400, 'VALIDATION').details)
      .toMatchObject({ path: 'archiveRetentionDays' });
    expect(expectError(await api.put('/v1/retention-policies/execution_log', { deleteAfterDays: 10 }), 400, 'VALIDATION').details)
      .toMatchObject({ path: 'deleteAfterDays' });
    expectError(await api.put('/v1/retention-policies/execution_log', { hotRetentionDays: 1.5 }), 400, 'VALIDATION');
    expectError(await api.put('/v1/retention-policies/execution_log', { hot: 1 }), 400, 'VALIDATION');
    expectError(await api.put('/v1/retention-policies/execution_log', {}), 400, 'VALIDATION');
    const bad = expectError(await api.put('/v1/retention-policies/logs', { hotRetentionDays: 3 }), 400, 'VALIDATION');
    expect(bad.details).toMatchObject({ path: 'resourceType' });
    expect((await api.get('/v1/retention-policies')).body.items).toEqual(before);
  });

  it('needs a key', async () => {
    expectError(await client(app, undefined).get('/v1/retention-policies'), 401, 'UNAUTHORIZED');
  });
});

describe('maintenance lease', () => {
  it('a second maintenance run is refused while another holds the lease; a dry run is not; an expired lease is taken over', async () => {
    const blobs = new FsBlobStore(join(tmpdir(), `stepwise-lease-${process.pid}`));
    await t.db.query(
      `INSERT INTO stepwise.maintenance_leases (name, holder, expires_at) VALUES ('maintenance', 'other-host:1', now() + interval '5 minutes')`,
    );
    await expect(runMaintenance(t.db, blobs, { holder: 'me:2' })).rejects.toBeInstanceOf(ConflictError);
    expect((await runMaintenance(t.db, blobs, { holder: 'me:2', dryRun: true })).dryRun).toBe(true);
    const { rows } = await t.db.query<{ holder: string }>(`SELECT holder FROM stepwise.maintenance_leases`);
    expect(rows).toEqual([{ holder: 'other-host:1' }]);
    await t.db.query(`UPDATE stepwise.maintenance_leases SET expires_at = now() - interval '1 second'`);
    const report = await runMaintenance(t.db, blobs, { holder: 'me:2' });
    expect(report.dryRun).toBe(false);
    // Given back at the end of the run (the weekly index compaction's lease stays: it is its schedule).
    expect((await t.db.query(`SELECT name FROM stepwise.maintenance_leases`)).rows).toEqual([{ name: 'read-model-index-compaction' }]);
  });
});
