import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FsBlobStore } from '../src/blob/index.js';
import { ensureStreamPartitions, migrate, PostgresDb } from '../src/db/index.js';
import { readJobStream, runMaintenance, setRetentionPolicy } from '../src/lifecycle/index.js';
import { findJob, getStreamHotBytes, listStreamPartitions } from '../src/store/index.js';
import { check, emit, log, now, round, settle, withScratchDatabase, type BenchOptions } from './lib.js';
import { generateStorageDataset, STORAGE_DATA_DEFAULTS } from './storage-data.js';

/** Archived jobs whose stream is read back for the read-time percentiles. */
const READ_SAMPLES = 200;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/**
 * `bench storage`: a year of streams at seed 002's volume (or --months /
 * --jobs-per-month), then one maintenance run that archives eleven of the
 * twelve months. Reports hot bytes before and after, archive bytes, the
 * compression ratio, archival rows/s and the time to read one archived
 * job's stream back (p50/p95, cold cache: every read reads its blob).
 * The data ends on the first of this month; the hot window is 31 days, so
 * exactly the last month stays hot.
 */
export async function storage(opts: BenchOptions): Promise<void> {
  const months = opts.months ?? STORAGE_DATA_DEFAULTS.months;
  const jobsPerMonth = opts.jobsPerMonth ?? STORAGE_DATA_DEFAULTS.jobsPerMonth;
  const rowsPerJob = opts.rowsPerJob ?? STORAGE_DATA_DEFAULTS.rowsPerJob;
  const today = new Date();
  const end = new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), 1));
  const blobDir = await mkdtemp(join(tmpdir(), 'stepwise-bench-storage-'));
  try {
    await withScratchDatabase('stepwise_storage', async (scratch) => {
      const db = new PostgresDb(scratch.url, 4);
      try {
        await migrate(db);
        await ensureStreamPartitions(db);
        log(`generating ${months} months × ${jobsPerMonth} jobs × ${rowsPerJob} rows`);
        const t0 = now();
        const data = await generateStorageDataset(db, {
          months, jobsPerMonth, rowsPerJob, organizations: STORAGE_DATA_DEFAULTS.organizations, end, onProgress: log,
        });
        const generationSeconds = round((now() - t0) / 1000, 1);
        for (const org of data.organizationIds) {
          await setRetentionPolicy(db, org, 'execution_log', { hotRetentionDays: 31, archiveRetentionDays: 365, deleteAfterDays: null });
        }
        await settle((sql) => db.query(sql), opts.stats);
        const hotBytesBefore = await getStreamHotBytes(db);
        const partitionsBefore = (await listStreamPartitions(db)).length;
        log(`hot: ${round(hotBytesBefore / 2 ** 20, 1)} MiB in ${partitionsBefore} partitions; archiving`);
        const blobs = new FsBlobStore(blobDir);
        const report = await runMaintenance(db, blobs, { asOf: end });
        await db.query('VACUUM');
        const hotBytesAfter = await getStreamHotBytes(db);
        const { rows: arch } = await db.query<{ bytes: string; n: string }>(
          `SELECT coalesce(sum(bytes), 0)::bigint::text AS bytes, coalesce(sum(record_count), 0)::bigint::text AS n FROM stepwise.archive_blobs`,
        );
        const archiveBytes = Number(arch[0]!.bytes);
        const archivedRows = Number(arch[0]!.n);
        const { rows: hotRows } = await db.query<{ n: string }>(`SELECT count(*)::bigint::text AS n FROM stepwise.execution_log`);
        check(archivedRows + Number(hotRows[0]!.n) === data.streamRows, `rows archived + hot (${archivedRows} + ${hotRows[0]!.n}) != generated (${data.streamRows})`);
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
          check(page.archived && page.items.length === rowsPerJob, `job ${s.job_id} read back ${page.items.length} rows`);
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
          months,
          jobsPerMonth,
          rowsPerJob,
          streamRows: data.streamRows,
          generationSeconds,
          hotBytesBefore,
          hotBytesAfter,
          hotBytesPerRow: round(hotBytesBefore / data.streamRows, 1),
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
      } finally {
        await db.close();
      }
    });
  } finally {
    await rm(blobDir, { recursive: true, force: true });
  }
}
