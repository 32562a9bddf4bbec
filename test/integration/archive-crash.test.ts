import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FsBlobStore } from '../../src/blob/index.js';
import { ensureStreamPartitions, migrate, PgliteDb, type Db } from '../../src/db/index.js';
import { generateStorageDataset } from '../../bench/storage-data.js';
import { backend, createTestDb, type TestDb } from '../helpers/db.js';
import { expectEveryRowOnce, snapshotRows, type RowSnapshot } from '../helpers/archive.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const NOW = new Date();
// 4 in the suite (each PGlite kill costs ~14 s of reopening); ARCHIVE_KILLS=10 for a longer loop.
const KILLS = Number(process.env.ARCHIVE_KILLS ?? '4');

/**
 * kill -9 of the archiver between blob write and commit, and between row
 * delete and commit, ten times in a row on the same data, then a run to the
 * end: at every point each stream row is in exactly one place (hot or an
 * archive), none twice, none lost; at the end no blob is left that nothing
 * records. On PGlite the killed process owned the data directory, so this
 * also shows an uncommitted transaction does not survive a kill.
 */
describe('archiver crash safety', () => {
  let t: TestDb | undefined;
  let dataDir: string | undefined;
  let blobDir: string;
  let before: Map<string, RowSnapshot>;

  async function open(): Promise<Db> {
    if (t) return t.db;
    const db = await PgliteDb.open({ dataDir: dataDir! });
    await migrate(db);
    await ensureStreamPartitions(db);
    return db;
  }
  async function done(db: Db): Promise<void> {
    if (!t) await db.close();
  }

  beforeAll(async () => {
    blobDir = await mkdtemp(join(tmpdir(), 'stepwise-archive-crash-blobs-'));
    if (backend === 'postgres') t = await createTestDb();
    else dataDir = await mkdtemp(join(tmpdir(), 'stepwise-archive-crash-'));
    const db = await open();
    await generateStorageDataset(db, { months: 4, jobsPerMonth: 25, rowsPerJob: 10, organizations: 1, end: NOW });
    before = await snapshotRows(db);
    await done(db);
  });
  afterAll(async () => {
    await t?.close();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
    await rm(blobDir, { recursive: true, force: true });
  });

  function runArchiver(env: Record<string, string>): Promise<{ signal: NodeJS.Signals | null; code: number | null; stdout: string; stderr: string }> {
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/archiver-process.ts'], {
      cwd: ROOT,
      env: {
        ...process.env,
        DATABASE_URL: t?.url ?? '',
        STEPWISE_DATA_DIR: dataDir ?? '',
        BLOB_DIR: blobDir,
        AS_OF: NOW.toISOString(),
        BATCH_JOBS: '4',
        LOG_LEVEL: 'silent',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal, stdout, stderr })));
  }

  it(`survives ${KILLS} kills at both points, then converges with nothing lost, duplicated or orphaned`, async () => {
    let lastArchived = 0;
    for (let i = 0; i < KILLS; i++) {
      const point = i % 2 === 0 ? 'after-blob-write' : 'before-commit';
      const r = await runArchiver({ KILL_AT: point, KILL_BATCH: '2' });
      expect(r.signal, `run ${i} (${point}) was not killed: ${r.stderr} ${r.stdout}`).toBe('SIGKILL');
      const db = await open();
      const { archived } = await expectEveryRowOnce(db, new FsBlobStore(blobDir), before, false);
      // Each killed run committed its first batch, and only that.
      expect(archived).toBeGreaterThan(lastArchived);
      lastArchived = archived;
      await done(db);
    }
    const last = await runArchiver({});
    expect(last.code, last.stderr).toBe(0);
    const report = JSON.parse(last.stdout);
    expect(report.executionLog.jobs).toBeGreaterThan(0);
    const db = await open();
    const { archived } = await expectEveryRowOnce(db, new FsBlobStore(blobDir), before, true);
    const { rows } = await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM stepwise.jobs WHERE completed_at < $1`,
      [new Date(NOW.getTime() - 30 * 86_400_000).toISOString()],
    );
    expect(archived).toBe(rows[0]!.n * 10);
    // Every blob on disk is recorded (blobs of killed batches were reused or swept).
    const store = new FsBlobStore(blobDir);
    const onDisk = (await store.list('archive/')).map((b) => b.key).sort();
    const recorded = (await db.query<{ blob_key: string }>(`SELECT blob_key FROM stepwise.archive_blobs ORDER BY blob_key`)).rows.map((r) => r.blob_key);
    expect(onDisk).toEqual(recorded);
    await done(db);
  }, 300_000);
});
