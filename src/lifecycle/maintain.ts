import { hostname } from 'node:os';
import type { BlobStore } from '../blob/index.js';
import { isLockNotAvailable, type Db } from '../db/index.js';
import { ConflictError, UnavailableError } from '../errors/index.js';
import {
  countExpiredStreamArchives,
  deleteArchivedRowsBefore,
  deleteExpiredStreamArchives,
  dropArchivedStreamPartition,
  listPoliciesForAllOrganizations,
  listStreamPartitions,
  tryAcquireMaintenanceLease,
} from '../store/index.js';
import { archiveExecutionLogs, DEFAULT_ARCHIVE_OPTIONS, type ArchiveHooks, type ArchiveReport } from './archiver.js';
import { collectUnreferencedBlobs, sweepOrphanArchiveBlobs } from './blob-gc.js';
import { expireRecords, type ExpiryReport } from './expiry.js';
import { compactReadModelIndexes, type IndexCompactionReport } from './index-compaction.js';
import { HeldMaintenanceLease } from './maintenance-lease.js';
import { archiveJobResults, type ResultArchiveReport } from './result-archiver.js';
import { cleanupScreenshots, type ScreenshotCleanupResult } from './screenshot-cleanup.js';
import { deleteCutoff, hotCutoff } from './retention.js';
import { utcMonthStart } from '../util/clock.js';
import { metrics, type MaintenanceRowKind } from '../metrics/index.js';
import { sweepEndedWebSessions } from '../store/sessions.js';

export const MAINTENANCE_LEASE = 'maintenance';
/** Renewed before every batch (seconds apart); a dead leader's lease frees up after this. */
export const MAINTENANCE_LEASE_MS = 10 * 60 * 1000;

export interface MaintenanceOptions {
  /** Apply the policies as on this date (default now): what a policy will do on a given day. */
  asOf?: Date;
  /** Report what would happen; change nothing (no blob written, no row deleted). */
  dryRun?: boolean;
  /** Lease holder name (default host:pid). */
  holder?: string;
  batchRows?: number;
  batchJobs?: number;
  hooks?: ArchiveHooks;
  /**
   * Aborted when the process shuts down: the run stops before its next batch
   * with MaintenanceStoppedError (every batch is idempotent, so the next run
   * continues), instead of keeping the process alive for the rest of the run.
   */
  signal?: AbortSignal;
  /** How long a partition drop waits for its locks (default PARTITION_DROP_LOCK_TIMEOUT_MS, store/stream-partitions.ts). */
  partitionLockTimeoutMs?: number;
}

/** The run was asked to stop (MaintenanceOptions.signal) and stopped before its next batch. */
export class MaintenanceStoppedError extends UnavailableError {
  constructor() {
    super('maintenance run stopped before its next batch: the process is shutting down; the next run continues');
  }
}

export interface MaintenanceReport {
  asOf: string;
  dryRun: boolean;
  executionLog: ArchiveReport;
  /** Results of jobs past the job_result hot window moved to blob storage. */
  jobResults: ResultArchiveReport;
  /** Screenshots past retain_until (null in a dry run). */
  screenshots: ScreenshotCleanupResult | null;
  partitions: {
    /** Month partitions dropped whole (or, in a dry run, those old enough to be). */
    dropped: string[];
    /** Partitions old enough whose rows are not all archived yet (a job still running, or on hold), or that were busy. */
    kept: string[];
    /** Of those kept: partitions whose locks were not granted within the drop's lock timeout (a long reader); tried again next run. */
    busy: string[];
    /** Archived rows deleted from partitions that stay and from the default partition. */
    rowsDeleted: number;
  };
  expired: { archives: number; rows: number };
  /** Jobs and PHI audit rows past their policies' delete-after. */
  expiredRecords: ExpiryReport;
  blobsDeleted: number;
  orphanBlobs: number;
  /** Dashboard sessions and invitations that ended by time, deleted (0 in a dry run). */
  webSessions: { sessions: number; invitations: number };
  /** The weekly rebuild of the read model's indexes (ran: false on the other days). */
  indexCompaction: IndexCompactionReport;
  ms: number;
}

/**
 * One maintenance run (`stepwise maintain`, and daily inside serve/worker):
 * archive streams past each organization's hot window, drop month partitions
 * whose rows are all archived, delete archives, jobs and PHI audit rows past
 * their delete-after, move old large job results to blob storage, clean up
 * expired screenshots, delete blobs nothing refers to, and once a week
 * rebuild the read model's indexes packed. Only one process runs it at a time (a lease row);
 * a second gets ConflictError. The lease is renewed before every batch that
 * writes or deletes; a run whose renewal finds another holder, or fails,
 * stops there with MaintenanceLeaseLostError (a ConflictError) and leaves the
 * lease to its holder. Every step is idempotent, so a run that died or stopped
 * anywhere is finished by the next one.
 */
export async function runMaintenance(db: Db, blobs: BlobStore, opts: MaintenanceOptions = {}): Promise<MaintenanceReport> {
  const started = performance.now();
  const asOf = opts.asOf ?? new Date();
  const dryRun = opts.dryRun ?? false;
  const holder = opts.holder ?? `${hostname()}:${process.pid}`;
  if (!dryRun && !(await tryAcquireMaintenanceLease(db, MAINTENANCE_LEASE, holder, MAINTENANCE_LEASE_MS))) {
    metrics.recordMaintenance('skipped');
    throw new ConflictError('another maintenance run holds the lease; try again when it has finished', { lease: MAINTENANCE_LEASE });
  }
  // A dry run changes nothing, so it needs no lease and never loses one.
  const lease = dryRun ? null : new HeldMaintenanceLease(db, MAINTENANCE_LEASE, holder, MAINTENANCE_LEASE_MS);
  // Before every batch that writes or deletes: throws MaintenanceLeaseLostError once the lease is gone.
  const renewLease = async (): Promise<void> => {
    if (opts.signal?.aborted) throw new MaintenanceStoppedError();
    await lease?.renew();
  };
  try {
    const policies = await listPoliciesForAllOrganizations(db, 'execution_log');
    // Month partitions wholly older than every organization's hot window are
    // dropped whole, so their rows are not deleted one by one.
    let keepBefore: Date | null = null;
    for (const p of policies) {
      const m = utcMonthStart(hotCutoff(p, asOf));
      if (keepBefore === null || m < keepBefore) keepBefore = m;
    }
    const executionLog = await archiveExecutionLogs(db, blobs, policies, {
      asOf,
      dryRun,
      keepBefore,
      batchRows: opts.batchRows ?? DEFAULT_ARCHIVE_OPTIONS.batchRows,
      batchJobs: opts.batchJobs ?? DEFAULT_ARCHIVE_OPTIONS.batchJobs,
      pageSize: DEFAULT_ARCHIVE_OPTIONS.pageSize,
      ...(opts.hooks ? { hooks: opts.hooks } : {}),
      onBatch: renewLease,
    });

    const partitions: MaintenanceReport['partitions'] = { dropped: [], kept: [], busy: [], rowsDeleted: 0 };
    if (keepBefore) {
      for (const part of await listStreamPartitions(db)) {
        if (part.to > keepBefore) continue;
        if (dryRun) {
          partitions.dropped.push(part.name);
          continue;
        }
        await renewLease();
        try {
          const r = await db.transaction((tx) => dropArchivedStreamPartition(tx, part.name, opts.partitionLockTimeoutMs));
          (r.dropped ? partitions.dropped : partitions.kept).push(part.name);
        } catch (err) {
          // A reader held the stream past the drop's lock timeout: the partition stays for the next run
          // rather than holding every worker's stream insert behind the waiting DETACH.
          if (!isLockNotAvailable(err)) throw err;
          partitions.kept.push(part.name);
          partitions.busy.push(part.name);
        }
      }
      if (!dryRun) {
        await renewLease();
        partitions.rowsDeleted = await db.transaction((tx) => deleteArchivedRowsBefore(tx, keepBefore));
      }
    }

    const expired = { archives: 0, rows: 0 };
    for (const p of policies) {
      const before = deleteCutoff(p, asOf);
      if (!before) continue;
      if (dryRun) {
        const c = await countExpiredStreamArchives(db, p.organizationId, before);
        expired.archives += c.archives;
        expired.rows += c.rows;
      } else {
        await renewLease();
        const c = await countExpiredStreamArchives(db, p.organizationId, before);
        const d = await deleteExpiredStreamArchives(db, p.organizationId, before);
        expired.archives += d.deleted;
        expired.rows += c.rows;
      }
    }
    const expiredRecords = await expireRecords(db, { asOf, dryRun, onBatch: renewLease });
    const jobResults = await archiveJobResults(db, blobs, await listPoliciesForAllOrganizations(db, 'job_result'), {
      asOf,
      dryRun,
      onBatch: renewLease,
    });
    const screenshots = dryRun ? null : await cleanupScreenshots(db, blobs, { asOf, onBatch: renewLease });
    const blobsDeleted = dryRun ? 0 : await collectUnreferencedBlobs(db, blobs, renewLease);
    await renewLease();
    const webSessions = dryRun ? { sessions: 0, invitations: 0 } : await sweepEndedWebSessions(db, asOf);
    await renewLease();
    const orphanBlobs = (await sweepOrphanArchiveBlobs(db, blobs, dryRun)).length;
    await renewLease();
    const indexCompaction = await compactReadModelIndexes(db, { holder, dryRun, onIndex: renewLease });
    const report: MaintenanceReport = {
      asOf: asOf.toISOString(),
      dryRun,
      executionLog,
      jobResults,
      screenshots,
      partitions,
      expired,
      expiredRecords,
      blobsDeleted,
      orphanBlobs,
      webSessions,
      indexCompaction,
      ms: Math.round(performance.now() - started),
    };
    if (!dryRun) metrics.recordMaintenance('completed', { seconds: (performance.now() - started) / 1000, rows: maintenanceFigures(report) });
    return report;
  } catch (err) {
    if (!dryRun) metrics.recordMaintenance(err instanceof MaintenanceStoppedError ? 'stopped' : 'failed');
    throw err;
  } finally {
    await lease?.release().catch(() => undefined);
  }
}

/** What a run did, as the maintenance metrics count it (stepwise_maintenance_rows_total by kind). */
export function maintenanceFigures(report: MaintenanceReport): Record<MaintenanceRowKind, number> {
  return {
    archived_stream_rows: report.executionLog.rows,
    deleted_stream_rows: report.executionLog.rowsDeleted + report.partitions.rowsDeleted,
    dropped_partitions: report.partitions.dropped.length,
    expired_archives: report.expired.archives,
    expired_jobs: report.expiredRecords.jobs,
    expired_stream_rows: report.expired.rows + report.expiredRecords.streamRows,
    expired_phi_audit_rows: report.expiredRecords.phiAuditRows,
    archived_results: report.jobResults.jobs,
    deleted_screenshots: report.screenshots?.softDeleted ?? 0,
    deleted_blobs: report.blobsDeleted + report.orphanBlobs + (report.screenshots?.blobsDeleted ?? 0),
    deleted_web_sessions: report.webSessions.sessions + report.webSessions.invitations,
  };
}
