/**
 * `npm run -s bench -- backup`: how long a backup takes and how long the
 * service waits for it, and how long a restore takes.
 *
 * PGlite (default): an embedded data directory (generated with the scale
 * dataset's generator, or reused with --data-dir), opened in this process as
 * `stepwise serve` opens it; the online backup runs while a probe runs
 * `SELECT 1` every 5 ms through the same connection queue, so the probe's
 * longest wait is the pause any API request or worker saw. Then the file is
 * restored into a fresh directory. With --compare, the two rejected methods
 * are measured on the same directory (see src/lifecycle/backup/create.ts).
 *
 * Server (--database NAME): pg_dump -Fc of that database and pg_restore into
 * a new one, as docs/operations.md prescribes, with sizes; the restored copy
 * is dropped.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { FsBlobStore } from '../src/blob/index.js';
import { migrate, PgliteDb } from '../src/db/index.js';
import { BlobDeletionGate, backupEmbedded, restoreBackup } from '../src/lifecycle/backup/index.js';
import { BenchUsageError, databaseFlag, eachFlag, intFlag, unknownFlag, datasetFlag } from './flags.js';
import { check, emit, log, nearestRank, now, round, serverUrl, sleep, urlForDatabase } from './lib.js';
import { generateScaleDataset } from './scale-data.js';

export const BACKUP_USAGE = `backup options: [--data-dir DIR] [--months N] [--jobs-per-month N] [--rows-per-job N] [--blobs N] [--compare] | --database NAME [--restore-jobs N]
  PGlite: --data-dir reuses (or generates into and keeps) a data directory; default a temporary one of 2 months × 20,000 jobs × 30 rows (~400 MB) and 200 blobs of 64 KB
  server: --database dumps that database with pg_dump -Fc and restores it into a new one (dropped afterwards)`;

interface BackupBenchOptions {
  dataDir: string | null;
  months: number;
  jobsPerMonth: number;
  rowsPerJob: number;
  blobs: number;
  compare: boolean;
  database: string | null;
  restoreJobs: number;
}

function parseOptions(args: string[]): BackupBenchOptions {
  const opts: BackupBenchOptions = { dataDir: null, months: 2, jobsPerMonth: 20_000, rowsPerJob: 30, blobs: 200, compare: false, database: null, restoreJobs: 2 };
  eachFlag(args, (flag, value, arg) => {
    if (datasetFlag(opts, flag, value, { months: 1, rowsPerJob: 3 })) return;
    switch (flag) {
      case '--data-dir': {
        const dir = value();
        if (!dir) throw new BenchUsageError('--data-dir needs a directory');
        opts.dataDir = dir;
        break;
      }
      case '--blobs':
        opts.blobs = intFlag(flag, value(), 0);
        break;
      case '--compare':
        opts.compare = true;
        break;
      case '--database':
        opts.database = databaseFlag(flag, value());
        break;
      case '--restore-jobs':
        opts.restoreJobs = intFlag(flag, value(), 1);
        break;
      default:
        unknownFlag(arg);
    }
  });
  return opts;
}

export async function backup(args: string[]): Promise<void> {
  const opts = parseOptions(args);
  if (opts.database) await serverBackup(opts.database, opts.restoreJobs);
  else await embeddedBackup(opts);
}

/** Bytes of every file under `dir`. */
async function treeBytes(dir: string): Promise<number> {
  let total = 0;
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, e.name);
    if (e.isDirectory()) total += await treeBytes(path);
    else if (e.isFile()) total += (await stat(path)).size;
  }
  return total;
}

const PROBE_EVERY_MS = 5;

/**
 * `SELECT 1` every 5 ms through the adapter's queue until stopped; resolves
 * to each call's delay in ms: from when it was due (5 ms after the previous
 * one returned) to when it returned. PGlite runs statements synchronously
 * on the event loop, so a statement of the backup's blocks the timer as
 * well as the queue: counting from the due time sees both.
 */
function probe(db: PgliteDb): { stop: () => Promise<number[]> } {
  const waits: number[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const due = now() + PROBE_EVERY_MS;
      await sleep(PROBE_EVERY_MS);
      await db.query('SELECT 1');
      waits.push(Math.max(0, now() - due));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return waits;
    },
  };
}

function waitFigures(waits: number[]): Record<string, number> {
  const sorted = [...waits].sort((a, b) => a - b);
  return { samples: sorted.length, p50: round(nearestRank(sorted, 50), 2), p99: round(nearestRank(sorted, 99), 2), max: round(sorted[sorted.length - 1] ?? 0, 2) };
}

async function embeddedBackup(opts: BackupBenchOptions): Promise<void> {
  const scratch = await mkdtemp(join(tmpdir(), 'stepwise-bench-backup-'));
  const dataDir = opts.dataDir ?? join(scratch, 'data');
  try {
    const generate = !existsSync(join(dataDir, 'PG_VERSION'));
    let db = await PgliteDb.open({ dataDir });
    const blobDir = join(dataDir, 'blobs');
    if (generate) {
      log(`generating ${opts.months} months × ${opts.jobsPerMonth} jobs × ${opts.rowsPerJob} rows into ${dataDir}`);
      await migrate(db);
      const ds = await generateScaleDataset(db, {
        months: opts.months,
        jobsPerMonth: opts.jobsPerMonth,
        rowsPerJob: opts.rowsPerJob,
        organizations: 4,
        workflows: 20,
        clients: 40,
        onProgress: log,
      });
      const store = new FsBlobStore(blobDir);
      for (let i = 0; i < opts.blobs; i++) await store.put(`results/bench/${String(i).padStart(6, '0')}.json.gz`, randomBytes(64 * 1024));
      log(`generated ${ds.jobs} jobs, ${ds.streamRows} stream rows and ${opts.blobs} blobs in ${round(ds.generationSeconds, 1)} s`);
      // Closed and reopened, as a service restarts: the backup starts from a checkpointed directory.
      await db.close();
      db = await PgliteDb.open({ dataDir });
    } else log(`reusing ${dataDir}`);
    const dataDirBytes = await treeBytes(dataDir);
    const blobs = new FsBlobStore(blobDir);
    const gate = new BlobDeletionGate();
    const out = join(scratch, 'bench.backup');

    const waits = probe(db);
    await sleep(200);
    const t0 = now();
    const report = await backupEmbedded(
      { db, dataDir, blobConfig: { backend: 'fs', dir: blobDir, azureConnectionString: undefined, azureContainer: 'stepwise' }, blobs, gate, stepwiseVersion: 'bench' },
      out,
    );
    const backupSeconds = (now() - t0) / 1000;
    await sleep(200);
    const probeWaits = waitFigures(await waits.stop());
    const copied = report.database.bytes + report.database.walBytes + report.blobs.bytes;
    emit({
      scenario: 'backup',
      backend: 'pglite',
      method: 'online-base-backup',
      dataDirBytes,
      jobs: report.jobs,
      databaseBytes: report.database.bytes,
      walBytes: report.database.walBytes,
      blobBytes: report.blobs.bytes,
      backupBytes: report.bytes,
      compression: round(copied / report.bytes, 2),
      backupSeconds: round(backupSeconds, 2),
      backupMBps: round(copied / 1e6 / backupSeconds, 1),
      pauseMs: report.pause,
      probeWaitMs: probeWaits,
      rssMB: Math.round(process.memoryUsage().rss / 1e6),
    });

    const restored = join(scratch, 'restored');
    const t1 = now();
    const r = await restoreBackup({ file: out, dataDir: restored });
    const restoreSeconds = (now() - t1) / 1000;
    check(r.jobs === report.jobs, `restored ${r.jobs} jobs, the backup reported ${report.jobs}`);
    emit({
      scenario: 'backup',
      backend: 'pglite',
      phase: 'restore',
      backupBytes: report.bytes,
      restoredBytes: r.database.bytes + r.blobs.bytes,
      jobs: r.jobs,
      restoreSeconds: round(restoreSeconds, 2),
      restoreMBps: round((r.database.bytes + r.blobs.bytes) / 1e6 / restoreSeconds, 1),
    });
    await rm(restored, { recursive: true, force: true });
    if (opts.compare) await compareMethods(db, dataDir, scratch);
    await db.close();
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/**
 * The two methods the backup does not use, on the same directory: (a) a
 * CHECKPOINT and a copy of the data directory with the queue held (no
 * statement runs meanwhile), (b) PGlite's dumpDataDir (the whole tarball in memory).
 */
async function compareMethods(db: PgliteDb, dataDir: string, scratch: string): Promise<void> {
  const copyTo = join(scratch, 'copy-a');
  const t0 = now();
  let checkpointMs = 0;
  const bytes = await db.session(async (conn) => {
    const tc = now();
    await conn.query('CHECKPOINT');
    checkpointMs = now() - tc;
    return copyTree(dataDir, copyTo);
  });
  emit({ scenario: 'backup', backend: 'pglite', method: 'checkpoint-and-copy-in-queue', bytes, checkpointMs: round(checkpointMs, 1), pauseMs: round(now() - t0, 1) });
  await rm(copyTo, { recursive: true, force: true });
  const rss0 = process.memoryUsage().rss;
  const t1 = now();
  const dump = await db.dumpDataDir();
  emit({
    scenario: 'backup',
    backend: 'pglite',
    method: 'dumpDataDir',
    bytes: dump.size,
    pauseMs: round(now() - t1, 1),
    rssGrowthMB: Math.round((process.memoryUsage().rss - rss0) / 1e6),
  });
}

async function copyTree(from: string, to: string): Promise<number> {
  await mkdir(to, { recursive: true });
  let bytes = 0;
  for (const e of await readdir(from, { withFileTypes: true })) {
    if (e.isDirectory()) bytes += await copyTree(join(from, e.name), join(to, e.name));
    else if (e.isFile()) {
      await copyFile(join(from, e.name), join(to, e.name));
      bytes += (await stat(join(to, e.name))).size;
    }
  }
  return bytes;
}

const PG_BIN = '/usr/lib/postgresql/15/bin';

function pgTool(name: string, args: string[]): Promise<void> {
  const cmd = existsSync(join(PG_BIN, name)) ? join(PG_BIN, name) : name;
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${name} exited ${code}: ${stderr.trim()}`))));
  });
}

async function databaseBytes(url: string, name: string): Promise<number> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const { rows } = await c.query<{ n: string }>('SELECT pg_database_size($1)::text AS n', [name]);
    return Number(rows[0]!.n);
  } finally {
    await c.end();
  }
}

/** pg_dump -Fc of `database`, then createdb + pg_restore into `<database>_restore_<pid>`, dropped at the end. */
async function serverBackup(database: string, restoreJobs: number): Promise<void> {
  const admin = serverUrl();
  const source = urlForDatabase(admin, database);
  const target = `${database}_restore_${process.pid}`.slice(0, 63);
  const scratch = await mkdtemp(join(tmpdir(), 'stepwise-bench-pgdump-'));
  const dump = join(scratch, `${database}.dump`);
  try {
    const sourceBytes = await databaseBytes(admin, database);
    log(`pg_dump -Fc ${database} (${Math.round(sourceBytes / 1e6)} MB)`);
    const t0 = now();
    await pgTool('pg_dump', ['--format=custom', `--file=${dump}`, `--dbname=${source}`]);
    const dumpSeconds = (now() - t0) / 1000;
    const dumpBytes = (await stat(dump)).size;
    emit({ scenario: 'backup', backend: 'postgres', database, phase: 'pg_dump', databaseBytes: sourceBytes, dumpBytes, dumpSeconds: round(dumpSeconds, 2), dumpMBps: round(sourceBytes / 1e6 / dumpSeconds, 1) });
    log(`createdb ${target}; pg_restore --jobs=${restoreJobs}`);
    const t1 = now();
    await pgTool('createdb', [`--maintenance-db=${admin}`, '--template=template0', target]);
    await pgTool('pg_restore', ['--exit-on-error', `--jobs=${restoreJobs}`, `--dbname=${urlForDatabase(admin, target)}`, dump]);
    const restoreSeconds = (now() - t1) / 1000;
    const restoredBytes = await databaseBytes(admin, target);
    emit({
      scenario: 'backup',
      backend: 'postgres',
      database,
      phase: 'pg_restore',
      restoreJobs,
      dumpBytes,
      restoredBytes,
      restoreSeconds: round(restoreSeconds, 2),
      restoreMBps: round(restoredBytes / 1e6 / restoreSeconds, 1),
    });
  } finally {
    const c = new pg.Client({ connectionString: admin });
    await c.connect();
    await c.query(`DROP DATABASE IF EXISTS ${target} WITH (FORCE)`).catch((err: unknown) => log(`could not drop ${target}: ${String(err)}`));
    await c.end();
    await rm(scratch, { recursive: true, force: true });
  }
}
