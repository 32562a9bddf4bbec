import type { Queryable } from '../db/index.js';
import { TERMINAL_STATUSES } from './jobs.js';

/** Where a job's result lives when it is not in the jobs row (too large to keep inline, or past the hot window). */
export interface JobResultRef {
  blobKey: string;
  /** Bytes of the result's JSON text. */
  sizeBytes: number;
  /** Bytes stored in the blob (gzip). */
  storedBytes: number;
  contentEncoding: 'gzip' | 'identity';
  /** Lowercase hex sha256 of the stored bytes. */
  sha256: string;
}

export interface JobResultArchive extends JobResultRef {
  jobId: string;
  organizationId: string;
  archivedAt: Date;
}

/**
 * Record results stored in blob storage, in one statement (the recorder calls it in
 * the flush that completes the jobs, so the jobs row's NULL result and its
 * reference commit together).
 */
export async function insertJobResultArchives(
  tx: Queryable,
  refs: { jobId: string; ref: JobResultRef }[],
): Promise<void> {
  if (refs.length === 0) return;
  await tx.query(
    `INSERT INTO stepwise.job_result_archives
       (job_id, organization_id, blob_key, size_bytes, stored_bytes, content_encoding, sha256)
     SELECT u.job_id, j.organization_id, u.blob_key, u.size_bytes, u.stored_bytes, u.enc, decode(u.sha, 'hex')
       FROM unnest($1::uuid[], $2::text[], $3::bigint[], $4::bigint[], $5::text[], $6::text[])
         AS u(job_id, blob_key, size_bytes, stored_bytes, enc, sha)
       JOIN stepwise.jobs j ON j.id = u.job_id
     ON CONFLICT (job_id) DO UPDATE
       SET blob_key = excluded.blob_key, size_bytes = excluded.size_bytes, stored_bytes = excluded.stored_bytes,
           content_encoding = excluded.content_encoding, sha256 = excluded.sha256, archived_at = now()`,
    [
      refs.map((r) => r.jobId),
      refs.map((r) => r.ref.blobKey),
      refs.map((r) => r.ref.sizeBytes),
      refs.map((r) => r.ref.storedBytes),
      refs.map((r) => r.ref.contentEncoding),
      refs.map((r) => r.ref.sha256),
    ],
  );
}

interface ArchiveRow {
  job_id: string;
  organization_id: string;
  blob_key: string;
  size_bytes: string | number;
  stored_bytes: string | number;
  content_encoding: string;
  sha256: string;
  archived_at: Date;
}

/** The organization's job's result reference, or null when its result is in the jobs row. */
export async function findJobResultArchive(db: Queryable, organizationId: string, jobId: string): Promise<JobResultArchive | null> {
  const { rows } = await db.query<ArchiveRow>(
    `SELECT job_id, organization_id, blob_key, size_bytes, stored_bytes, content_encoding,
            encode(sha256, 'hex') AS sha256, archived_at
       FROM stepwise.job_result_archives WHERE organization_id = $1 AND job_id = $2`,
    [organizationId, jobId],
  );
  const r = rows[0];
  if (!r) return null;
  return {
    jobId: r.job_id,
    organizationId: r.organization_id,
    blobKey: r.blob_key,
    sizeBytes: Number(r.size_bytes),
    storedBytes: Number(r.stored_bytes),
    contentEncoding: r.content_encoding === 'identity' ? 'identity' : 'gzip',
    sha256: r.sha256,
    archivedAt: r.archived_at,
  };
}

/**
 * One page of an organization's jobs whose inline result is due for blob
 * storage: ended before `cutoff`, result text over `minBytes`, in run-number
 * order after `afterRunNumber`. Results already stored by reference (NULL
 * in the row) are not in it.
 */
export async function findResultsToArchive(
  db: Queryable,
  organizationId: string,
  afterRunNumber: number,
  cutoff: Date,
  minBytes: number,
  limit: number,
): Promise<{ rows: { jobId: string; result: string }[]; lastRunNumber: number | null; scanned: number }> {
  const { rows } = await db.query<{ id: string; run_number: string; result: string | null; created_at: Date }>(
    `WITH page AS (
       SELECT id, run_number, created_at, status, completed_at, result
         FROM stepwise.jobs WHERE organization_id = $1 AND run_number > $2 ORDER BY run_number LIMIT $5)
     SELECT id, run_number, created_at,
            CASE WHEN result IS NOT NULL AND status = ANY($6::varchar[]) AND completed_at < $3
                      AND octet_length(result::text) > $4 THEN result::text END AS result
       FROM page ORDER BY run_number`,
    [organizationId, afterRunNumber, cutoff.toISOString(), minBytes, limit, TERMINAL_STATUSES],
  );
  const last = rows[rows.length - 1];
  return {
    rows: rows.filter((r) => r.result !== null).map((r) => ({ jobId: r.id, result: r.result! })),
    lastRunNumber: last && last.created_at < cutoff ? Number(last.run_number) : null,
    scanned: rows.length,
  };
}

/**
 * Record results moved to blob storage and clear them from the jobs rows, in
 * the caller's one transaction (job_result_archives is the table large
 * results use at completion time, so GET /v1/jobs/:id reads both alike).
 * Only rows still holding a result are cleared; returns how many.
 */
export async function recordResultArchives(
  tx: Queryable,
  organizationId: string,
  refs: { jobId: string; blobKey: string; sizeBytes: number; storedBytes: number; sha256: string }[],
): Promise<number> {
  if (refs.length === 0) return 0;
  await tx.query(
    `INSERT INTO stepwise.job_result_archives (job_id, organization_id, blob_key, size_bytes, stored_bytes, content_encoding, sha256)
     SELECT u.job, $1, u.key, u.size, u.stored, 'gzip', decode(u.sha, 'hex')
       FROM unnest($2::uuid[], $3::text[], $4::bigint[], $5::bigint[], $6::text[]) AS u(job, key, size, stored, sha)
     ON CONFLICT (job_id) DO NOTHING`,
    [organizationId, refs.map((r) => r.jobId), refs.map((r) => r.blobKey), refs.map((r) => r.sizeBytes), refs.map((r) => r.storedBytes), refs.map((r) => r.sha256)],
  );
  const { rowCount } = await tx.query(
    `UPDATE stepwise.jobs SET result = NULL
      WHERE organization_id = $1 AND id = ANY($2::uuid[]) AND result IS NOT NULL
        AND EXISTS (SELECT 1 FROM stepwise.job_result_archives a WHERE a.job_id = jobs.id)`,
    [organizationId, refs.map((r) => r.jobId)],
  );
  return rowCount;
}
