import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FsBlobStore } from '../src/blob/index.js';
import { ensureStreamPartitions, migrate, PostgresDb } from '../src/db/index.js';
import { readJobStream, runMaintenance, setRetentionPolicy } from '../src/lifecycle/index.js';
import { findJob, getStreamHotBytes, listStreamPartitions } from '../src/store/index.js';
import { check, emit, log, now, round, serverUrl, settle, urlForDatabase, withScratchDatabase, type BenchOptions } from './lib.js';
import { generateStorageDataset, STORAGE_DATA_DEFAULTS } from './storage-data.js';

/** Archived jobs whose stream is read back for the read-time percentiles. */
const READ_SAMPLES = 200;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const DAY_MS = 24 * 3600 * 1000;

/** What the archival is measured on: a database holding streams, and when its last month starts. */
interface StorageTarget {
  db: PostgresDb;
  organizationIds: string[];
  streamRows: number;
  /** The first day of the dataset's last month: that month stays hot, the ones before are archived. */
  lastMonth: Date;
  generationSeconds: number | null;
  label: Record<string, unknown>;
}

/**
 * `bench storage`: a year of streams at a busy tenant's volume (or --months /
 * --jobs-per-month), or with --database the kept scale dataset of `bench
 * scale --keep` (36 M rows; archiving changes it for good), then one
 * maintenance run that archives every month but the last. Reports hot
 * bytes before and after, archive bytes, the compression ratio, archival
 * rows/s and the time to read one archived job's stream back (p50/p95,
 * cold cache: every read reads its blob). The hot window is 31 days, the
 * run is "as of" 31 days after the last month's first day, so exactly the
 * last month stays hot.
 */
export async function storage(opts: BenchOptions): Promise<void> {
  const blobDir = await mkdtemp(join(tmpdir(), 'stepwise-bench-storage-'));
  try {
    if (opts.database) {
      const db = new PostgresDb(urlForDatabase(serverUrl(), opts.database), { poolSize: 4, role: 'bench' });
      try {
        await migrate(db);
        const { rows } = await db.query<{ orgs: string[]; n: string; last: Date | null }>(
          `SELECT array(SELECT DISTINCT organization_id FROM stepwise.jobs) AS orgs,
                  (SELECT count(*) FROM stepwise.execution_log)::bigint::text AS n,
                  (SELECT date_trunc('month', max(created_at), 'UTC') FROM stepwise.jobs) AS last`,
        );
        const r = rows[0]!;
        check(r.last !== null && Number(r.n) > 0, `${opts.database} holds no stream rows`);
        log(`archiving the kept dataset ${opts.database}: ${r.n} stream rows`);
        await measureArchival(
          { db, organizationIds: r.orgs, streamRows: Number(r.n), lastMonth: r.last!, generationSeconds: null, label: { database: opts.database } },
          blobDir,
          opts,
        );
      } finally {
        await db.close();
      }
      return;
    }
    const months = opts.months ?? STORAGE_DATA_DEFAULTS.months;
    const jobsPerMonth = opts.jobsPerMonth ?? STORAGE_DATA_DEFAULTS.jobsPerMonth;
    const rowsPerJob = opts.rowsPerJob ?? STORAGE_DATA_DEFAULTS.rowsPerJob;
    const today = new Date();
    const end = new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), 1));
    await withScratchDatabase('stepwise_storage', async (scratch) => {
      const db = new PostgresDb(scratch.url, { poolSize: 4, role: 'bench' });
      try {
        await migrate(db);
        await ensureStreamPartitions(db);
        log(`generating ${months} months × ${jobsPerMonth} jobs × ${rowsPerJob} rows`);
        const t0 = now();
        const data = await generateStorageDataset(db, {
          months, jobsPerMonth, rowsPerJob, organizations: STORAGE_DATA_DEFAULTS.organizations, end, onProgress: log,
        });
        await measureArchival(
          {
            db,
            organizationIds: data.organizationIds,
            streamRows: data.streamRows,
            lastMonth: new Date(Date.UTC(end.getUTCFullYear(), end.getUTCMonth() - 1, 1)),
            generationSeconds: round((now() - t0) / 1000, 1),
            label: { months, jobsPerMonth, rowsPerJob },
          },
          blobDir,
          opts,
        );
      } finally {
        await db.close();
      }
    });
  } finally {
    await rm(blobDir, { recursive: true, force: true });
  }
}

async function measureArchival(target: StorageTarget, blobDir: string, opts: BenchOptions): Promise<void> {
  const { db } = target;
  const asOf = new Date(target.lastMonth.getTime() + 31 * DAY_MS);
  for (const org of target.organizationIds) {
    await setRetentionPolicy(db, org, 'execution_log', { hotRetentionDays: 31, archiveRetentionDays: 365, deleteAfterDays: null });
  }
  await settle((sql) => db.query(sql), opts.stats);
  const hotBytesBefore = await getStreamHotBytes(db);
  const partitionsBefore = (await listStreamPartitions(db)).length;
  log(`hot: ${round(hotBytesBefore / 2 ** 20, 1)} MiB in ${partitionsBefore} partitions; archiving as of ${asOf.toISOString()}`);
  const blobs = new FsBlobStore(blobDir);
  const report = await runMaintenance(db, blobs, { asOf });
  await db.query('VACUUM');
  const hotBytesAfter = await getStreamHotBytes(db);
  const { rows: arch } = await db.query<{ bytes: string; n: string }>(
    `SELECT coalesce(sum(bytes), 0)::bigint::text AS bytes, coalesce(sum(record_count), 0)::bigint::text AS n FROM stepwise.archive_blobs`,
  );
  const archiveBytes = Number(arch[0]!.bytes);
  const archivedRows = Number(arch[0]!.n);
  const { rows: hotRows } = await db.query<{ n: string }>(`SELECT count(*)::bigint::text AS n FROM stepwise.execution_log`);
  check(archivedRows + Number(hotRows[0]!.n) === target.streamRows, `rows archived + hot (${archivedRows} + ${hotRows[0]!.n}) != before (${target.streamRows})`);
  check(archivedRows === report.executionLog.rows, 'archived rows differ from the report');

  // Read-back: random archived jobs, each through a fresh store (cold cache: the blob is read every time).
  const { rows: sample } = await db.query<{ organization_id: string; job_id: string }>(
    `SELECT organization_id, job_id FROM stepwise.execution_log_archives ORDER BY random() LIMIT $1`,
    [READ_SAMPLES],
  );
  const cold: number[] = [];
  const warm: number[] = [];
  const shared = new FsBlobStore(blobDir);
  for (const s of sample) {
    const job = (await findJob(db, s.organization_id, s.job_id))!;
    const t1 = now();
    const page = await readJobStream(db, new FsBlobStore(blobDir), s.organization_id, job, { limit: 5000 });
    cold.push(now() - t1);
    // Every job of both datasets writes seq 1..last_seq.
    check(page.archived && page.items.length === job.lastSeq, `job ${s.job_id} read back ${page.items.length} of ${job.lastSeq} rows`);
    await readJobStream(db, shared, s.organization_id, job, { limit: 5000 });
    const t2 = now();
    await readJobStream(db, shared, s.organization_id, job, { limit: 5000 });
    warm.push(now() - t2);
  }
  cold.sort((a, b) => a - b);
  warm.sort((a, b) => a - b);
  emit({
    scenario: 'storage',
    backend: 'postgres',
    ...target.label,
    streamRows: target.streamRows,
    generationSeconds: target.generationSeconds,
    hotBytesBefore,
    hotBytesAfter,
    hotBytesPerRow: round(hotBytesBefore / target.streamRows, 1),
    partitionsBefore,
    partitionsDropped: report.partitions.dropped.length,
    archivedRows,
    archiveBytes,
    archiveBytesPerRow: round(archiveBytes / archivedRows, 1),
    // What archiving freed in PostgreSQL per byte it put in blob storage.
    compressionRatio: round((hotBytesBefore - hotBytesAfter) / archiveBytes, 1),
    jsonCompressionRatio: round(report.executionLog.rawBytes / report.executionLog.compressedBytes, 1),
    archivalSeconds: round(report.executionLog.ms / 1000, 2),
    archivalRowsPerSecond: report.executionLog.rowsPerSecond,
    maintenanceSeconds: round(report.ms / 1000, 2),
    maintenanceRowsPerSecond: Math.round(archivedRows / (report.ms / 1000)),
    blobs: report.executionLog.blobs,
    readBackMs: { samples: cold.length, p50: round(percentile(cold, 50), 2), p95: round(percentile(cold, 95), 2), max: round(cold[cold.length - 1]!, 2) },
    readBackWarmMs: { p50: round(percentile(warm, 50), 2), p95: round(percentile(warm, 95), 2) },
  });
}
