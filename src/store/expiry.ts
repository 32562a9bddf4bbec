import type { Queryable } from '../db/index.js';
import { TERMINAL_STATUSES } from './jobs.js';
import { deleteRetrievalsOfJobs } from './retrievals.js';
import { deleteSearchKeysOf } from './search-keys.js';

/**
 * SQL of delete-after for the `job` and `phi_audit` retention policies
 * (lifecycle/expiry.ts). Aggregates, step metrics and usage are not touched:
 * they hold no job's detail, and analytics over old ranges stay answerable.
 */

/** A finished job (alias j) of organization $1 that ended before $3 and has no restore hold live at $4 ($2: the finished statuses). */
const EXPIRED_JOB = `j.organization_id = $1 AND j.status = ANY($2::varchar[]) AND j.completed_at < $3
        AND NOT EXISTS (SELECT 1 FROM stepwise.archive_holds h WHERE h.organization_id = $1 AND h.job_id = j.id AND h.hold_until > $4)`;

/** What deleting a batch of expired jobs removed. */
export interface ExpiredJobsDeleted {
  jobs: number;
  streamRows: number;
  archiveRecords: number;
}

/**
 * Delete up to `limit` of the organization's finished jobs that ended
 * before `before`, oldest run first, with everything kept per job: hot
 * stream rows (every partition: a row stamped by a clock far off is not
 * left behind), archive records (their blobs go with the last record, by
 * the blob collector), the read-model row, search keys, knowledge retrievals,
 * and through ON DELETE CASCADE
 * checkpoints, signals, screenshots and archived results. Jobs under a
 * restore hold are kept. Run in one transaction: all of a job or none.
 */
export async function deleteExpiredJobs(tx: Queryable, organizationId: string, before: Date, asOf: Date, limit: number): Promise<ExpiredJobsDeleted> {
  const { rows } = await tx.query<{ id: string }>(
    `SELECT j.id FROM stepwise.jobs j
      WHERE ${EXPIRED_JOB}
      ORDER BY j.run_number
      LIMIT $5
      FOR UPDATE SKIP LOCKED`,
    [organizationId, TERMINAL_STATUSES, before.toISOString(), asOf.toISOString(), limit],
  );
  const ids = rows.map((r) => r.id);
  if (ids.length === 0) return { jobs: 0, streamRows: 0, archiveRecords: 0 };
  const stream = await tx.query(`DELETE FROM stepwise.execution_log WHERE organization_id = $1 AND job_id = ANY($2::uuid[])`, [organizationId, ids]);
  const archives = await tx.query(`DELETE FROM stepwise.execution_log_archives WHERE organization_id = $1 AND job_id = ANY($2::uuid[])`, [
    organizationId,
    ids,
  ]);
  await tx.query(`DELETE FROM stepwise.execution_metadata WHERE organization_id = $1 AND job_id = ANY($2::uuid[])`, [organizationId, ids]);
  // Search keys have no foreign key to cascade from (migration 0022): they go here, by their primary key.
  await deleteSearchKeysOf(tx, organizationId, ids);
  // So have knowledge retrievals (migration 0024); their documents go by cascade.
  await deleteRetrievalsOfJobs(tx, organizationId, ids);
  const jobs = await tx.query(`DELETE FROM stepwise.jobs WHERE organization_id = $1 AND id = ANY($2::uuid[])`, [organizationId, ids]);
  return { jobs: jobs.rowCount, streamRows: stream.rowCount, archiveRecords: archives.rowCount };
}

/** How many finished jobs delete-after would remove (dry runs). */
export async function countExpiredJobs(db: Queryable, organizationId: string, before: Date, asOf: Date): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM stepwise.jobs j
      WHERE ${EXPIRED_JOB}`,
    [organizationId, TERMINAL_STATUSES, before.toISOString(), asOf.toISOString()],
  );
  return rows[0]!.n;
}

/**
 * The organization's PHI audit rows older than `before` and older than six
 * years by the database clock, whatever `before` says: the table's guard
 * refuses younger ones, and a run "as of" a future date must not trip it.
 */
const PHI_EXPIRED = `organization_id = $1 AND at < least($2::timestamptz, now() - interval '6 years')`;

export async function deleteExpiredPhiAudit(tx: Queryable, organizationId: string, before: Date): Promise<number> {
  const { rowCount } = await tx.query(`DELETE FROM stepwise.phi_audit_log WHERE ${PHI_EXPIRED}`, [organizationId, before.toISOString()]);
  return rowCount;
}

export async function countExpiredPhiAudit(db: Queryable, organizationId: string, before: Date): Promise<number> {
  const { rows } = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM stepwise.phi_audit_log WHERE ${PHI_EXPIRED}`, [
    organizationId,
    before.toISOString(),
  ]);
  return rows[0]!.n;
}
