import type { Queryable } from '../db/index.js';
import type { InitiatorType, JobStatus } from './jobs.js';

/**
 * Bulk operations on jobs (migration 0023): one row per POST /v1/jobs/bulk,
 * advanced chunk by chunk by the runner (engine/bulk.ts). The runner's own
 * look for work (`findRunnableBulkOperations`, the lease functions) runs as
 * the service across organizations; everything else takes the organization
 * first and runs inside a tenant transaction.
 */

export const BULK_ACTIONS = ['cancel', 'retry'] as const;
export type BulkAction = (typeof BULK_ACTIONS)[number];
export type BulkRetryFrom = 'failed-step' | 'start';
export type BulkOperationStatus = 'RUNNING' | 'COMPLETED' | 'FAILED';

/** At most this many refusals are kept per operation (the counters count them all). */
export const MAX_BULK_ERRORS = 50;

/** The job list's filter as an operation stores it (dates as ISO text). */
export interface BulkJobFilter {
  statuses?: JobStatus[] | undefined;
  workflowId?: string | undefined;
  clientId?: string | undefined;
  initiatorType?: InitiatorType | undefined;
  createdFrom?: string | undefined;
  /** Exclusive. */
  createdTo?: string | undefined;
  errorCode?: string | undefined;
  /** `key:value` pairs of the workflows' search keys; all must match. */
  search?: string[] | undefined;
}

/** A position in the newest-first job order: created_at as epoch microseconds, and the run number. */
export interface JobPagePosition {
  createdUs: string;
  runNumber: number;
}

/** Where an operation's paging stands: an offset into its ids, or the last job done in the filter's order. */
export type BulkCursor = { offset: number } | JobPagePosition;

export interface BulkError {
  jobId: string;
  code: string;
  message: string;
}

export interface BulkOperation {
  id: string;
  organizationId: string;
  createdBy: string;
  action: BulkAction;
  retryFrom: BulkRetryFrom | null;
  jobIds: string[] | null;
  filter: BulkJobFilter | null;
  status: BulkOperationStatus;
  total: number;
  done: number;
  succeeded: number;
  failed: number;
  errors: BulkError[];
  cursor: BulkCursor | null;
  chunkFailures: number;
  lastError: string | null;
  createdAt: Date;
  updatedAt: Date;
  finishedAt: Date | null;
}

interface BulkOperationRow {
  id: string;
  organization_id: string;
  created_by: string;
  action: BulkAction;
  retry_from: BulkRetryFrom | null;
  job_ids: string[] | null;
  filter: BulkJobFilter | null;
  status: BulkOperationStatus;
  total: number;
  done: number;
  succeeded: number;
  failed: number;
  errors: BulkError[];
  cursor: BulkCursor | null;
  chunk_failures: number;
  last_error: string | null;
  created_at: Date;
  updated_at: Date;
  finished_at: Date | null;
}

const COLUMNS = `id, organization_id, created_by, action, retry_from, job_ids, filter, status, total, done, succeeded,
  failed, errors, cursor, chunk_failures, last_error, created_at, updated_at, finished_at`;

function toOperation(r: BulkOperationRow): BulkOperation {
  return {
    id: r.id,
    organizationId: r.organization_id,
    createdBy: r.created_by,
    action: r.action,
    retryFrom: r.retry_from,
    jobIds: r.job_ids,
    filter: r.filter,
    status: r.status,
    total: r.total,
    done: r.done,
    succeeded: r.succeeded,
    failed: r.failed,
    errors: r.errors,
    cursor: r.cursor,
    chunkFailures: r.chunk_failures,
    lastError: r.last_error,
    createdAt: new Date(r.created_at),
    updatedAt: new Date(r.updated_at),
    finishedAt: r.finished_at ? new Date(r.finished_at) : null,
  };
}

export interface NewBulkOperation {
  id: string;
  createdBy: string;
  action: BulkAction;
  retryFrom: BulkRetryFrom | null;
  jobIds: string[] | null;
  filter: BulkJobFilter | null;
  total: number;
}

/** The current transaction's time (now()): an operation's created_at, and the bound of the jobs its filter selects. */
export async function transactionTime(db: Queryable): Promise<Date> {
  const { rows } = await db.query<{ now: Date }>('SELECT now() AS now');
  return new Date(rows[0]!.now);
}

/** Insert an operation; one with nothing to do is COMPLETED at once. */
export async function insertBulkOperation(db: Queryable, organizationId: string, op: NewBulkOperation): Promise<BulkOperation> {
  const { rows } = await db.query<BulkOperationRow>(
    `INSERT INTO stepwise.bulk_operations (id, organization_id, created_by, action, retry_from, job_ids, filter, total, status, finished_at)
     VALUES ($1, $2, $3, $4, $5, $6::uuid[], $7::jsonb, $8,
             CASE WHEN $8 = 0 THEN 'COMPLETED' ELSE 'RUNNING' END, CASE WHEN $8 = 0 THEN now() END)
     RETURNING ${COLUMNS}`,
    [op.id, organizationId, op.createdBy, op.action, op.retryFrom, op.jobIds, op.filter === null ? null : JSON.stringify(op.filter), op.total],
  );
  return toOperation(rows[0]!);
}

export async function findBulkOperation(db: Queryable, organizationId: string, id: string): Promise<BulkOperation | null> {
  const { rows } = await db.query<BulkOperationRow>(
    `SELECT ${COLUMNS} FROM stepwise.bulk_operations WHERE organization_id = $1 AND id = $2`,
    [organizationId, id],
  );
  return rows[0] ? toOperation(rows[0]) : null;
}

/** The organization's operations, newest first. */
export async function listBulkOperations(db: Queryable, organizationId: string, limit: number): Promise<BulkOperation[]> {
  const { rows } = await db.query<BulkOperationRow>(
    `SELECT ${COLUMNS} FROM stepwise.bulk_operations WHERE organization_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2`,
    [organizationId, limit],
  );
  return rows.map(toOperation);
}

/** How many of these ids are the organization's jobs in one of `statuses`. */
export async function countJobsByIds(db: Queryable, organizationId: string, ids: readonly string[], statuses: readonly JobStatus[]): Promise<number> {
  if (ids.length === 0) return 0;
  const { rows } = await db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM stepwise.jobs WHERE organization_id = $1 AND id = ANY($2::uuid[]) AND status = ANY($3::text[])`,
    [organizationId, ids, statuses],
  );
  return rows[0]!.n;
}

/**
 * RUNNING operations this holder may work on (unleased, lease expired, or its
 * own), oldest first, of every organization: the runner's look for work.
 */
export async function findRunnableBulkOperations(db: Queryable, holder: string, limit: number): Promise<{ id: string; organizationId: string }[]> {
  const { rows } = await db.query<{ id: string; organization_id: string }>(
    `SELECT id, organization_id FROM stepwise.bulk_operations
      WHERE status = 'RUNNING' AND (lease_until IS NULL OR lease_until <= now() OR lease_holder = $1)
      ORDER BY created_at, id LIMIT $2`,
    [holder, limit],
  );
  return rows.map((r) => ({ id: r.id, organizationId: r.organization_id }));
}

/** Take or renew an operation's lease; false when another holder's lease has not expired or it is no longer RUNNING. */
export async function acquireBulkOperationLease(db: Queryable, id: string, holder: string, leaseMs: number): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE stepwise.bulk_operations SET lease_holder = $2, lease_until = now() + $3 * interval '1 millisecond'
      WHERE id = $1 AND status = 'RUNNING' AND (lease_until IS NULL OR lease_until <= now() OR lease_holder = $2)`,
    [id, holder, leaseMs],
  );
  return rowCount > 0;
}

/** Give the lease back (only if `holder` still has it). */
export async function releaseBulkOperationLease(db: Queryable, id: string, holder: string): Promise<void> {
  await db.query(
    `UPDATE stepwise.bulk_operations SET lease_holder = NULL, lease_until = NULL WHERE id = $1 AND lease_holder = $2`,
    [id, holder],
  );
}

/**
 * Lock an operation for one chunk (FOR UPDATE, held to the chunk's commit) and
 * read where it stands. Null when it is gone, no longer RUNNING, or leased by
 * another holder: then the chunk does nothing. The lock serialises chunks of
 * one operation, and the cursor read under it is the committed truth, so no
 * chunk is ever applied twice.
 */
export async function lockBulkOperation(tx: Queryable, organizationId: string, id: string, holder: string): Promise<BulkOperation | null> {
  const { rows } = await tx.query<BulkOperationRow>(
    `SELECT ${COLUMNS} FROM stepwise.bulk_operations
      WHERE organization_id = $1 AND id = $2 AND status = 'RUNNING' AND lease_holder = $3
      FOR UPDATE`,
    [organizationId, id, holder],
  );
  return rows[0] ? toOperation(rows[0]) : null;
}

export interface BulkProgress {
  succeeded: number;
  failed: number;
  /** Refusals of this chunk; appended, keeping the first MAX_BULK_ERRORS. */
  errors: readonly BulkError[];
  cursor: BulkCursor | null;
  /** The last chunk: the operation is COMPLETED. */
  finished: boolean;
  /** Replaces total when set (a filter's jobs that stopped matching were never reached). */
  total?: number | undefined;
}

/** Record a chunk's results; runs in the chunk's transaction, under lockBulkOperation's lock. */
export async function advanceBulkOperation(tx: Queryable, organizationId: string, id: string, progress: BulkProgress): Promise<BulkOperation> {
  const { rows } = await tx.query<BulkOperationRow>(
    `UPDATE stepwise.bulk_operations
        SET succeeded = succeeded + $3, failed = failed + $4, done = done + $3 + $4,
            errors = CASE WHEN jsonb_array_length(errors) >= $7 THEN errors
                          ELSE (SELECT coalesce(jsonb_agg(e ORDER BY n), '[]'::jsonb)
                                  FROM jsonb_array_elements(errors || $5::jsonb) WITH ORDINALITY AS x(e, n) WHERE n <= $7) END,
            cursor = $6::jsonb, chunk_failures = 0, last_error = NULL,
            total = coalesce($9, total),
            status = CASE WHEN $8 THEN 'COMPLETED' ELSE status END,
            finished_at = CASE WHEN $8 THEN now() END,
            lease_holder = CASE WHEN $8 THEN NULL ELSE lease_holder END,
            lease_until = CASE WHEN $8 THEN NULL ELSE lease_until END,
            updated_at = now()
      WHERE organization_id = $1 AND id = $2
      RETURNING ${COLUMNS}`,
    [
      organizationId,
      id,
      progress.succeeded,
      progress.failed,
      JSON.stringify(progress.errors.slice(0, MAX_BULK_ERRORS)),
      progress.cursor === null ? null : JSON.stringify(progress.cursor),
      MAX_BULK_ERRORS,
      progress.finished,
      progress.total ?? null,
    ],
  );
  return toOperation(rows[0]!);
}

/**
 * Count a chunk that failed (its transaction rolled back, nothing of it kept);
 * after `maxFailures` in a row the operation is FAILED, keeping what earlier
 * chunks did. Returns the operation's status afterwards.
 */
export async function recordBulkChunkFailure(
  db: Queryable,
  id: string,
  holder: string,
  message: string,
  maxFailures: number,
): Promise<BulkOperationStatus | null> {
  const { rows } = await db.query<{ status: BulkOperationStatus }>(
    `UPDATE stepwise.bulk_operations
        SET chunk_failures = chunk_failures + 1, last_error = left($3, 2000),
            status = CASE WHEN chunk_failures + 1 >= $4 THEN 'FAILED' ELSE status END,
            finished_at = CASE WHEN chunk_failures + 1 >= $4 THEN now() END,
            updated_at = now()
      WHERE id = $1 AND status = 'RUNNING' AND lease_holder = $2
      RETURNING status`,
    [id, holder, message, maxFailures],
  );
  return rows[0]?.status ?? null;
}
