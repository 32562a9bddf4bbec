import type { Queryable } from '../db/index.js';
import type { ArchiveMember } from './archives.js';

/**
 * SQL of reading recorded stream archives back and of restore
 * (lifecycle/stream-reader.ts, lifecycle/restore.ts): a job's archive
 * stretches, the jobs archived in a time range, holds, and putting rows
 * back into hot storage.
 */

/** A recorded archive stretch of one job, for readers and restore. */
export interface StreamArchive extends ArchiveMember {
  id: string;
  organizationId: string;
  blobKey: string;
}

interface StreamArchiveRow {
  id: string;
  organization_id: string;
  job_id: string;
  blob_key: string;
  byte_offset: string;
  compressed_size: number;
  record_count: number;
  first_seq: number;
  last_seq: number;
  start_date: Date;
  end_date: Date;
  sha256: string;
}

const ARCHIVE_COLUMNS = `id, organization_id, job_id, blob_key, byte_offset, compressed_size, record_count,
  first_seq, last_seq, start_date, end_date, encode(sha256, 'hex') AS sha256`;

function toArchive(r: StreamArchiveRow): StreamArchive {
  return {
    id: r.id,
    organizationId: r.organization_id,
    jobId: r.job_id,
    blobKey: r.blob_key,
    byteOffset: Number(r.byte_offset),
    compressedSize: r.compressed_size,
    recordCount: r.record_count,
    firstSeq: r.first_seq,
    lastSeq: r.last_seq,
    startDate: r.start_date,
    endDate: r.end_date,
    sha256: r.sha256,
  };
}

/** A job's archive stretches in seq order (empty when nothing is archived). */
export async function listJobArchives(db: Queryable, organizationId: string, jobId: string): Promise<StreamArchive[]> {
  const { rows } = await db.query<StreamArchiveRow>(
    `SELECT ${ARCHIVE_COLUMNS} FROM stepwise.execution_log_archives
      WHERE organization_id = $1 AND job_id = $2 ORDER BY first_seq`,
    [organizationId, jobId],
  );
  return rows.map(toArchive);
}

/**
 * Admin (restore by time range): the jobs with archived rows written in
 * [from, to), optionally of one organization, oldest first.
 */
export async function findArchivedJobsInRange(
  db: Queryable,
  from: Date,
  to: Date,
  organizationId: string | null,
  limit: number,
): Promise<{ organizationId: string; jobId: string }[]> {
  const { rows } = await db.query<{ organization_id: string; job_id: string }>(
    `SELECT organization_id, job_id FROM stepwise.execution_log_archives
      WHERE end_date >= $1 AND start_date < $2 AND ($3::uuid IS NULL OR organization_id = $3)
      GROUP BY organization_id, job_id
      ORDER BY min(start_date), job_id
      LIMIT $4`,
    [from.toISOString(), to.toISOString(), organizationId, limit],
  );
  return rows.map((r) => ({ organizationId: r.organization_id, jobId: r.job_id }));
}

/** Admin (restore by job id): the organization a job belongs to, or null. */
export async function findJobOrganization(db: Queryable, jobId: string): Promise<string | null> {
  const { rows } = await db.query<{ organization_id: string }>(`SELECT organization_id FROM stepwise.jobs WHERE id = $1`, [jobId]);
  return rows[0]?.organization_id ?? null;
}

/** Delete a job's archive records (restore); returns the blob keys they pointed into. */
export async function deleteJobArchives(tx: Queryable, organizationId: string, jobId: string): Promise<string[]> {
  const { rows } = await tx.query<{ blob_key: string }>(
    `DELETE FROM stepwise.execution_log_archives WHERE organization_id = $1 AND job_id = $2 RETURNING blob_key`,
    [organizationId, jobId],
  );
  return [...new Set(rows.map((r) => r.blob_key))];
}

/** Keep a restored job hot until `holdUntil` (the archiver skips it till then). */
export async function upsertArchiveHold(tx: Queryable, organizationId: string, jobId: string, holdUntil: Date): Promise<void> {
  await tx.query(
    `INSERT INTO stepwise.archive_holds (organization_id, job_id, hold_until) VALUES ($1, $2, $3)
     ON CONFLICT (organization_id, job_id) DO UPDATE SET hold_until = EXCLUDED.hold_until`,
    [organizationId, jobId, holdUntil.toISOString()],
  );
}

/** A stream row brought back from an archive, timestamp kept to the microsecond as text. */
export interface RestoredRow {
  seq: number;
  /** ISO 8601 with microseconds, as written in the archive. */
  ts: string;
  stepIndex: number | null;
  kind: number;
  level: number;
  message: string;
  data: unknown;
  /** The step's path inside its blocks (absent for top-level rows and in archives written before paths). */
  path?: string | null;
}

/**
 * Put a job's archived rows back into hot storage: first delete any hot copy
 * of the same seqs (rows left for a month partition drop that has not
 * happened yet), so a restore never makes a row appear twice. The step
 * results among them were counted into step_metrics when first written and
 * are not counted again (only a flush and insertStreamRows count). Run it inside a
 * transaction.
 */
export async function insertRestoredRows(tx: Queryable, organizationId: string, jobId: string, rows: RestoredRow[]): Promise<void> {
  if (rows.length === 0) return;
  await tx.query(
    `DELETE FROM stepwise.execution_log WHERE organization_id = $1 AND job_id = $2 AND seq = ANY($3::int[])`,
    [organizationId, jobId, rows.map((r) => r.seq)],
  );
  await tx.query(
    `INSERT INTO stepwise.execution_log (organization_id, job_id, ts, seq, step_index, kind, level, message, data, path)
     SELECT $1, $2, u.ts::timestamptz, u.seq, u.step, u.kind, u.level, u.message, u.data, u.path
       FROM unnest($3::text[], $4::int[], $5::smallint[], $6::smallint[], $7::smallint[], $8::text[], $9::jsonb[], $10::text[])
            AS u(ts, seq, step, kind, level, message, data, path)`,
    [
      organizationId,
      jobId,
      rows.map((r) => r.ts),
      rows.map((r) => r.seq),
      rows.map((r) => r.stepIndex),
      rows.map((r) => r.kind),
      rows.map((r) => r.level),
      rows.map((r) => r.message),
      rows.map((r) => (r.data === null || r.data === undefined ? null : JSON.stringify(r.data))),
      rows.map((r) => r.path ?? null),
    ],
  );
}
