import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FsBlobStore } from '../../src/blob/index.js';
import { defineWorkflow } from '../../src/engine/index.js';
import { compactReadModelIndexes, INDEX_COMPACTION_LEASE, runMaintenance } from '../../src/lifecycle/index.js';
import { listJobSummaries } from '../../src/read/index.js';
import { completeJobs, enqueueJobs, listTableIndexes, type JobCompletion } from '../../src/store/index.js';
import { createTestDb, type TestDb } from '../helpers/db.js';
import { seedOrg } from '../helpers/fixtures.js';

let t: TestDb;
let dir: string;
const orgs: string[] = [];

/** Finished jobs of several organizations, interleaved, as workers write them. */
beforeAll(async () => {
  t = await createTestDb();
  dir = await mkdtemp(join(tmpdir(), 'stepwise-compaction-'));
  const def = { steps: [{ id: 'a', type: 'noop' }] };
  const wfs: string[] = [];
  for (let i = 0; i < 4; i++) {
    const org = (await seedOrg(t.db, `Org ${i}`)).organizationId;
    orgs.push(org);
    wfs.push((await defineWorkflow(t.db, org, { name: 'wf', definition: def })).id);
  }
  for (let round = 0; round < 6; round++) {
    const completions: JobCompletion[] = [];
    for (let i = 0; i < orgs.length; i++) {
      const jobs = await t.db.transaction((tx) => enqueueJobs(tx, orgs[i]!, { id: wfs[i]!, version: 1, stepsTotal: 1 }, Array.from({ length: 150 }, () => ({}))));
      for (const [k, j] of jobs.entries()) {
        const now = new Date();
        const failed = k % 10 === 0;
        completions.push({
          jobId: j.id,
          status: failed ? 'FAILED' : 'COMPLETED',
          completedAt: now,
          result: null,
          errorCode: failed ? 'E_TEST' : null,
          errorMessage: failed ? 'failed' : null,
          errorStep: failed ? 'a' : null,
          stepsCompleted: failed ? 0 : 1,
          lastSeq: 3,
          start: { jobId: j.id, attempts: 1, startedAt: new Date(now.getTime() - 5), deadlineAt: null },
        });
      }
    }
    await t.db.query(`DELETE FROM stepwise.job_queue WHERE job_id = ANY($1::uuid[])`, [completions.map((c) => c.jobId)]);
    await t.db.transaction((tx) => completeJobs(tx, completions));
  }
}, 120_000);

afterAll(async () => {
  await t?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('weekly rebuild of the read model indexes', () => {
  it('rebuilds every execution_metadata index packed, and the job list reads the same after it', async () => {
    const before = await Promise.all(orgs.map((o) => listJobSummaries(t.db, o, { limit: 50, statuses: ['FAILED'] })));
    const report = await compactReadModelIndexes(t.db, { holder: 'test' });
    expect(report.ran).toBe(true);
    const names = report.indexes.map((i) => i.name).sort();
    expect(names).toEqual((await listTableIndexes(t.db, 'execution_metadata')).map((i) => i.name).sort());
    expect(names).toContain('execution_metadata_org_client_created_idx');
    expect(names.length).toBeGreaterThanOrEqual(6);
    for (const i of report.indexes) expect(i.bytesAfter).toBeLessThanOrEqual(i.bytesBefore);
    const after = await Promise.all(orgs.map((o) => listJobSummaries(t.db, o, { limit: 50, statuses: ['FAILED'] })));
    expect(after.map((p) => p.items.map((j) => j.id))).toEqual(before.map((p) => p.items.map((j) => j.id)));
    expect(after[0]!.items).toHaveLength(50);
  });

  it('runs once a week: the next run skips unless forced, and a dry run never rebuilds', async () => {
    expect((await compactReadModelIndexes(t.db, { holder: 'test' })).ran).toBe(false);
    expect((await compactReadModelIndexes(t.db, { holder: 'other' })).ran).toBe(false);
    expect((await compactReadModelIndexes(t.db, { holder: 'test', force: true })).ran).toBe(true);
    // A week later the lease has expired.
    await t.db.query(`UPDATE stepwise.maintenance_leases SET expires_at = now() - interval '1 second' WHERE name = $1`, [INDEX_COMPACTION_LEASE]);
    expect((await compactReadModelIndexes(t.db, { holder: 'test', dryRun: true })).ran).toBe(false);
    const blobs = new FsBlobStore(dir);
    const maintenance = await runMaintenance(t.db, blobs);
    expect(maintenance.indexCompaction.ran).toBe(true);
    expect((await runMaintenance(t.db, blobs)).indexCompaction.ran).toBe(false);
  });

  it('drops the invalid copy an interrupted concurrent rebuild leaves behind', async () => {
    // What REINDEX CONCURRENTLY leaves when killed: an invalid <name>_ccnew index.
    await t.db.exec(`CREATE INDEX execution_metadata_org_created_idx_ccnew ON stepwise.execution_metadata (organization_id, created_at)`);
    await t.db.exec(
      `UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'stepwise.execution_metadata_org_created_idx_ccnew'::regclass`,
    );
    const report = await compactReadModelIndexes(t.db, { holder: 'test', force: true });
    expect(report.droppedInvalid).toEqual(['execution_metadata_org_created_idx_ccnew']);
    expect(report.indexes.map((i) => i.name)).not.toContain('execution_metadata_org_created_idx_ccnew');
    const { rows } = await t.db.query(`SELECT 1 FROM pg_class WHERE relname = 'execution_metadata_org_created_idx_ccnew'`);
    expect(rows).toHaveLength(0);
  });
});
