import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FsBlobStore } from '../../src/blob/index.js';
import type { Db } from '../../src/db/index.js';
import { MaintenanceLeaseLostError, MaintenanceStoppedError, runMaintenance, setRetentionPolicy, MAINTENANCE_LEASE } from '../../src/lifecycle/index.js';
import { listStreamPartitions } from '../../src/store/index.js';
import { generateStorageDataset } from '../../bench/storage-data.js';
import { createTestDb, type TestDb } from '../helpers/db.js';
import { hotRows } from '../helpers/archive.js';

/**
 * A maintenance run that loses its lease midway (another process took it
 * over, or renewing it failed) must stop before its next batch: two runs
 * deleting at once is what the lease exists to prevent.
 */
const NOW = new Date();
const BATCH_JOBS = 5;
const ROWS_PER_JOB = 6;

let t: TestDb;
let dir: string;
let blobs: FsBlobStore;
let org: string;

beforeAll(async () => {
  t = await createTestDb();
  dir = await mkdtemp(join(tmpdir(), 'stepwise-maintenance-lease-'));
  blobs = new FsBlobStore(dir);
  // Three months of jobs ending now: with the 30-day hot window about two months are due, many batches of five.
  const data = await generateStorageDataset(t.db, { months: 3, jobsPerMonth: 20, rowsPerJob: ROWS_PER_JOB, organizations: 1, end: NOW });
  org = data.organizationIds[0]!;
  // Jobs older than 60 days are deleted by a run that gets that far.
  await setRetentionPolicy(t.db, org, 'job', { hotRetentionDays: 30, archiveRetentionDays: 60, deleteAfterDays: 60 });
});

afterAll(async () => {
  await t?.close();
  await rm(dir, { recursive: true, force: true });
});

/** What a maintenance run changes: archived jobs, hot rows, jobs, partitions, and who holds the lease. */
async function state() {
  const q = async (sql: string) => (await t.db.query<{ n: number }>(sql)).rows[0]!.n;
  return {
    archivedJobs: await q('SELECT count(DISTINCT job_id)::int AS n FROM stepwise.execution_log_archives'),
    hotRows: (await hotRows(t.db)).length,
    jobs: await q('SELECT count(*)::int AS n FROM stepwise.jobs'),
    partitions: (await listStreamPartitions(t.db)).map((p) => p.name).sort(),
  };
}

/**
 * The batch in flight when the lease went committed, and nothing after it ran:
 * no further archive batch, no partition dropped, no archived row deleted, no
 * job expired. At most that batch's own rows left hot storage (older months'
 * rows wait for their partition to be dropped).
 */
async function expectOnlyOneBatch(before: Awaited<ReturnType<typeof state>>): Promise<void> {
  const after = await state();
  expect(after.archivedJobs).toBe(before.archivedJobs + BATCH_JOBS);
  expect(after.partitions).toEqual(before.partitions);
  expect(after.jobs).toBe(before.jobs);
  expect(after.hotRows).toBeGreaterThanOrEqual(before.hotRows - BATCH_JOBS * ROWS_PER_JOB);
}

async function leaseHolders(): Promise<string[]> {
  const { rows } = await t.db.query<{ holder: string }>('SELECT holder FROM stepwise.maintenance_leases WHERE name = $1', [MAINTENANCE_LEASE]);
  return rows.map((r) => r.holder);
}

/** `db` whose queries on the lease table fail once `broken()` is true, as a dropped connection would. */
function breakingLeaseQueries(db: Db, broken: () => boolean): Db {
  return {
    backend: db.backend,
    query: <R,>(text: string, params?: readonly unknown[]) =>
      broken() && text.includes('maintenance_leases') ? Promise.reject(new Error('connection lost')) : db.query<R>(text, params),
    exec: (sql) => db.exec(sql),
    transaction: (fn) => db.transaction(fn),
    session: (fn) => db.session(fn),
    listen: (channel, onNotify, options) => db.listen(channel, onNotify, options),
    close: () => db.close(),
  };
}

describe('maintenance that loses its lease', () => {
  it('stops after the batch in flight when another holder takes the lease, and leaves the lease to it', async () => {
    const before = await state();
    let batches = 0;
    const run = runMaintenance(t.db, blobs, {
      asOf: NOW,
      holder: 'me:1',
      batchJobs: BATCH_JOBS,
      hooks: {
        // The first batch's blob is written: hand the lease to another process before the batch commits.
        afterBlobWrite: async () => {
          if (batches++ > 0) return;
          await t.db.query(`UPDATE stepwise.maintenance_leases SET holder = 'thief:2', expires_at = now() + interval '5 minutes' WHERE name = $1`, [
            MAINTENANCE_LEASE,
          ]);
        },
      },
    });
    const err = await run.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MaintenanceLeaseLostError);
    expect(err).toMatchObject({ takenOver: true, holder: 'me:1' });
    expect(batches).toBe(1);
    await expectOnlyOneBatch(before);
    expect(await leaseHolders()).toEqual(['thief:2']);
  });

  it('stops when renewing the lease fails', async () => {
    const before = await state();
    await t.db.query('DELETE FROM stepwise.maintenance_leases WHERE name = $1', [MAINTENANCE_LEASE]);
    let batches = 0;
    const flaky = breakingLeaseQueries(t.db, () => batches > 0);
    const err = await runMaintenance(flaky, blobs, {
      asOf: NOW,
      holder: 'me:1',
      batchJobs: BATCH_JOBS,
      hooks: {
        afterBlobWrite: () => {
          batches++;
        },
      },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MaintenanceLeaseLostError);
    expect(err).toMatchObject({ takenOver: false, message: expect.stringContaining('connection lost') });
    expect(batches).toBe(1);
    await expectOnlyOneBatch(before);
    // Its lease could not be given back either (same broken queries): it stays until it expires.
    expect(await leaseHolders()).toEqual(['me:1']);
  });

  it('stops before its next batch when the process shuts down (its signal aborts), and gives the lease back', async () => {
    await t.db.query('DELETE FROM stepwise.maintenance_leases WHERE name = $1', [MAINTENANCE_LEASE]);
    const before = await state();
    const stopping = new AbortController();
    let batches = 0;
    const err = await runMaintenance(t.db, blobs, {
      asOf: NOW,
      holder: 'me:1',
      batchJobs: BATCH_JOBS,
      signal: stopping.signal,
      hooks: {
        // SIGTERM arrives while the first batch is in flight: that batch commits, no other starts.
        afterBlobWrite: () => {
          batches++;
          stopping.abort();
        },
      },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MaintenanceStoppedError);
    expect(batches).toBe(1);
    await expectOnlyOneBatch(before);
    expect(await leaseHolders()).toEqual([]);
  });

  it('with the lease held throughout, the same run goes on to archive the rest, drop partitions and expire jobs', async () => {
    // Shows the steps the runs above stopped short of really happen in a run that keeps its lease.
    await t.db.query('DELETE FROM stepwise.maintenance_leases WHERE name = $1', [MAINTENANCE_LEASE]);
    const before = await state();
    const report = await runMaintenance(t.db, blobs, { asOf: NOW, holder: 'me:1', batchJobs: BATCH_JOBS });
    const after = await state();
    expect(report.executionLog.jobs).toBeGreaterThan(BATCH_JOBS);
    expect(report.partitions.dropped.length).toBeGreaterThan(0);
    expect(report.expiredRecords.jobs).toBeGreaterThan(0);
    expect(after.jobs).toBeLessThan(before.jobs);
    expect(after.hotRows).toBeLessThan(before.hotRows);
    expect(await leaseHolders()).toEqual([]);
  });
});
