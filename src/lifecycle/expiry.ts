import type { Db } from '../db/index.js';
import {
  countExpiredJobs,
  countExpiredPhiAudit,
  deleteExpiredJobs,
  deleteExpiredPhiAudit,
  listPoliciesForAllOrganizations,
} from '../store/index.js';
import { deleteCutoff } from './retention.js';

export interface ExpiryReport {
  /** Finished jobs deleted (or, in a dry run, that would be) past the `job` policy's delete-after. */
  jobs: number;
  /** Their hot stream rows and archive records, deleted with them. */
  streamRows: number;
  archiveRecords: number;
  /** PHI audit rows past the `phi_audit` policy's delete-after (never younger than six years). */
  phiAuditRows: number;
}

/** Jobs deleted per transaction: a batch's locks and WAL stay small, and a crash loses no half-deleted job. */
export const EXPIRY_BATCH_JOBS = 1000;

/**
 * Delete-after of the `job` and `phi_audit` policies: per organization that
 * set one, its finished jobs that ended before the cutoff go in batches (see
 * deleteExpiredJobs for what goes with a job), and its PHI audit rows older
 * than both the cutoff and six years. Idempotent; a run that dies midway is
 * finished by the next.
 */
export async function expireRecords(
  db: Db,
  opts: {
    asOf: Date;
    dryRun: boolean;
    batchJobs?: number;
    /** Called before every delete (maintenance renews its lease here; when it throws, nothing more is deleted). */
    onBatch?: () => Promise<void>;
  },
): Promise<ExpiryReport> {
  const report: ExpiryReport = { jobs: 0, streamRows: 0, archiveRecords: 0, phiAuditRows: 0 };
  for (const policy of await listPoliciesForAllOrganizations(db, 'job')) {
    const before = deleteCutoff(policy, opts.asOf);
    if (!before) continue;
    if (opts.dryRun) {
      report.jobs += await countExpiredJobs(db, policy.organizationId, before, opts.asOf);
      continue;
    }
    for (;;) {
      await opts.onBatch?.();
      const d = await db.transaction((tx) => deleteExpiredJobs(tx, policy.organizationId, before, opts.asOf, opts.batchJobs ?? EXPIRY_BATCH_JOBS));
      report.jobs += d.jobs;
      report.streamRows += d.streamRows;
      report.archiveRecords += d.archiveRecords;
      if (d.jobs === 0) break;
    }
  }
  for (const policy of await listPoliciesForAllOrganizations(db, 'phi_audit')) {
    const before = deleteCutoff(policy, opts.asOf);
    if (!before) continue;
    if (opts.dryRun) {
      report.phiAuditRows += await countExpiredPhiAudit(db, policy.organizationId, before);
      continue;
    }
    await opts.onBatch?.();
    report.phiAuditRows += await db.transaction((tx) => deleteExpiredPhiAudit(tx, policy.organizationId, before));
  }
  return report;
}
