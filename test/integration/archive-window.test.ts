import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FsBlobStore } from '../../src/blob/index.js';
import { runMaintenance } from '../../src/lifecycle/index.js';
import { generateStorageDataset } from '../../bench/storage-data.js';
import { createTestDb, type TestDb } from '../helpers/db.js';
import { allArchivedRows, expectEveryRowOnce, hotRows, snapshotRows } from '../helpers/archive.js';

const DAY = 86_400_000;
const NOW = new Date();

let t: TestDb;
let dir: string;

beforeAll(async () => {
  t = await createTestDb();
  dir = await mkdtemp(join(tmpdir(), 'stepwise-archive-window-'));
  await generateStorageDataset(t.db, { months: 3, jobsPerMonth: 10, rowsPerJob: 6, organizations: 1, end: NOW });
});

afterAll(async () => {
  await t?.close();
  await rm(dir, { recursive: true, force: true });
});

/**
 * An archive batch reads and deletes only inside its window (oldest
 * creation to latest end, ± the clock skew). A row stamped outside it (a
 * worker clock days off) is neither archived nor deleted: it stays hot, and
 * no row is lost or kept twice.
 */
describe('archive batch window', () => {
  it('leaves a row stamped outside the window hot, and archives the rest of its job', async () => {
    const { rows: jobs } = await t.db.query<{ id: string; completed_at: Date }>(
      `SELECT id, completed_at FROM stepwise.jobs WHERE completed_at < $1 ORDER BY run_number LIMIT 1`,
      [new Date(NOW.getTime() - 60 * DAY).toISOString()],
    );
    const job = jobs[0]!;
    // A worker clock two days ahead of now: after every due job's end plus the skew, outside the batch window.
    const stray = new Date(NOW.getTime() + 2 * DAY);
    await t.db.query(`UPDATE stepwise.execution_log SET ts = $2 WHERE job_id = $1 AND seq = 3`, [job.id, stray.toISOString()]);
    const before = await snapshotRows(t.db);

    const report = await runMaintenance(t.db, new FsBlobStore(dir), { asOf: NOW });
    expect(report.executionLog.rows).toBeGreaterThan(0);

    const hot = await hotRows(t.db);
    const archived = await allArchivedRows(t.db, new FsBlobStore(dir));
    expect(hot.filter((r) => r.jobId === job.id).map((r) => r.seq)).toEqual([3]);
    expect(archived.filter((r) => r.jobId === job.id).map((r) => r.seq).sort()).toEqual([1, 2, 4, 5, 6]);
    await expectEveryRowOnce(t.db, new FsBlobStore(dir), before, true);
  });
});
