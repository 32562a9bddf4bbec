import type { Queryable } from '../db/index.js';

/** Where a job's result lives when it is not in the jobs row (seed 002 Phase 4 JobResultArchive). */
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
