import { randomUUID } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FsBlobStore } from '../../src/blob/index.js';
import { runMaintenance, setRetentionPolicy } from '../../src/lifecycle/index.js';
import { getDurationStats } from '../../src/read/index.js';
import { upsertArchiveHold } from '../../src/store/index.js';
import { generateStorageDataset } from '../../bench/storage-data.js';
import { createTestDb, type TestDb } from '../helpers/db.js';

const DAY = 86_400_000;
const NOW = new Date();

let t: TestDb;
let dir: string;
let blobs: FsBlobStore;
let expiring: string;
let keeping: string;

async function count(sql: string, params: unknown[]): Promise<number> {
  const { rows } = await t.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM (${sql}) x`, params);
  return rows[0]!.n;
}

async function listBlobFiles(root: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(root, { withFileTypes: true, recursive: true })) if (e.isFile()) out.push(e.name);
  return out;
}

beforeAll(async () => {
  t = await createTestDb();
  dir = await mkdtemp(join(tmpdir(), 'stepwise-expiry-'));
  blobs = new FsBlobStore(dir);
  // Four months of jobs ending now, in two organizations.
  const data = await generateStorageDataset(t.db, { months: 4, jobsPerMonth: 30, rowsPerJob: 8, organizations: 2, end: NOW });
  [expiring, keeping] = data.organizationIds as [string, string];
  // Archive the older months first, so expiry has archive records and blobs to remove as well
  // (blobs of 10 jobs: the oldest hold only jobs that expire, and go whole).
  await runMaintenance(t.db, blobs, { asOf: NOW, batchJobs: 10 });
});

afterAll(async () => {
  await t?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('delete-after of jobs', () => {
  it('a dry run counts and deletes nothing', async () => {
    await setRetentionPolicy(t.db, expiring, 'job', { hotRetentionDays: 30, archiveRetentionDays: 30, deleteAfterDays: 60 });
    const jobsBefore = await count(`SELECT 1 FROM stepwise.jobs`, []);
    const report = await runMaintenance(t.db, blobs, { asOf: NOW, dryRun: true });
    expect(report.expiredRecords.jobs).toBeGreaterThan(0);
    expect(await count(`SELECT 1 FROM stepwise.jobs`, [])).toBe(jobsBefore);
  });

  it('deletes the jobs that ended before the cutoff with their stream, archives, read model and blobs; keeps held jobs and other organizations', async () => {
    const cutoff = new Date(NOW.getTime() - 60 * DAY);
    const { rows: old } = await t.db.query<{ id: string }>(
      `SELECT id FROM stepwise.jobs WHERE organization_id = $1 AND completed_at < $2 ORDER BY run_number`,
      [expiring, cutoff.toISOString()],
    );
    expect(old.length).toBeGreaterThan(10);
    const held = old[0]!.id;
    await upsertArchiveHold(t.db, expiring, held, new Date(NOW.getTime() + 7 * DAY));
    const otherOrgJobs = await count(`SELECT 1 FROM stepwise.jobs WHERE organization_id = $1`, [keeping]);
    const statsBefore = await getDurationStats(t.db, expiring, { from: new Date(NOW.getTime() - 200 * DAY), to: NOW });
    // A stored result of an expiring job: its blob goes with the job.
    const resultKey = `results/${expiring}/${old[1]!.id}.json.gz`;
    const put = await blobs.put(resultKey, Buffer.from('{"big":"result"}'));
    await t.db.query(
      `INSERT INTO stepwise.job_result_archives (job_id, organization_id, blob_key, size_bytes, stored_bytes, content_encoding, sha256)
       VALUES ($1, $2, $3, 16, 16, 'identity', decode($4, 'hex'))`,
      [old[1]!.id, expiring, resultKey, put.sha256],
    );
    const blobsBefore = (await listBlobFiles(dir)).length;

    const report = await runMaintenance(t.db, blobs, { asOf: NOW });
    expect(report.expiredRecords.jobs).toBe(old.length - 1);
    expect(report.expiredRecords.archiveRecords).toBeGreaterThan(0);

    const gone = old.slice(1).map((j) => j.id);
    expect(await count(`SELECT 1 FROM stepwise.jobs WHERE id = ANY($1::uuid[])`, [gone])).toBe(0);
    expect(await count(`SELECT 1 FROM stepwise.execution_log WHERE job_id = ANY($1::uuid[])`, [gone])).toBe(0);
    expect(await count(`SELECT 1 FROM stepwise.execution_log_archives WHERE job_id = ANY($1::uuid[])`, [gone])).toBe(0);
    expect(await count(`SELECT 1 FROM stepwise.execution_metadata WHERE job_id = ANY($1::uuid[])`, [gone])).toBe(0);
    // The held job stays whole, as do younger jobs and the other organization.
    expect(await count(`SELECT 1 FROM stepwise.jobs WHERE id = $1`, [held])).toBe(1);
    expect(await count(`SELECT 1 FROM stepwise.jobs WHERE organization_id = $1 AND completed_at >= $2`, [expiring, cutoff.toISOString()])).toBeGreaterThan(0);
    expect(await count(`SELECT 1 FROM stepwise.jobs WHERE organization_id = $1`, [keeping])).toBe(otherOrgJobs);
    // Blobs whose every record went are deleted by the same run, the stored result's too.
    expect((await listBlobFiles(dir)).length).toBeLessThan(blobsBefore);
    expect(await blobs.exists(resultKey)).toBe(false);
    // Analytics keep counting them: aggregates hold no job's detail.
    const statsAfter = await getDurationStats(t.db, expiring, { from: new Date(NOW.getTime() - 200 * DAY), to: NOW });
    expect(statsAfter.total).toBe(statsBefore.total);
    // Nothing left to do.
    expect((await runMaintenance(t.db, blobs, { asOf: NOW })).expiredRecords.jobs).toBe(0);
  });
});

describe('delete-after of PHI audit', () => {
  it('deletes rows past delete-after only once they are six years old, whatever the as-of date', async () => {
    const insert = (org: string, at: Date) =>
      t.db.query(
        `INSERT INTO stepwise.phi_audit_log (id, organization_id, at, actor, resource_type, resource_id, fields)
         VALUES ($1, $2, $3, 'test', 'JOB', $4, ARRAY['input'])`,
        [randomUUID(), org, at.toISOString(), randomUUID()],
      );
    const sevenYears = new Date(NOW.getTime() - 7 * 365 * DAY);
    const fiveYears = new Date(NOW.getTime() - 5 * 365 * DAY);
    for (const org of [expiring, keeping]) {
      await insert(org, sevenYears);
      await insert(org, fiveYears);
    }
    await setRetentionPolicy(t.db, expiring, 'phi_audit', { hotRetentionDays: 30, archiveRetentionDays: 2200, deleteAfterDays: 2200 });
    // As of two years ahead the five-year-old row would be past 2,200 days, but it is not six years old yet.
    const report = await runMaintenance(t.db, blobs, { asOf: new Date(NOW.getTime() + 2 * 365 * DAY) });
    expect(report.expiredRecords.phiAuditRows).toBe(1);
    const left = await t.db.query<{ organization_id: string; old: boolean }>(
      `SELECT organization_id, at < $1 AS old FROM stepwise.phi_audit_log ORDER BY organization_id, at`,
      [new Date(NOW.getTime() - 6 * 365 * DAY).toISOString()],
    );
    expect(left.rows.filter((r) => r.organization_id === expiring).map((r) => r.old)).toEqual([false]);
    expect(left.rows.filter((r) => r.organization_id === keeping)).toHaveLength(2);
  });
});
