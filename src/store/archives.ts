import type { Queryable } from '../db/index.js';
import { uuidv7 } from '../util/ids.js';
import { TERMINAL_STATUSES } from './jobs.js';

/**
 * SQL of stream archival (lifecycle/archiver.ts). Functions that take an
 * organization id serve that tenant; the few that do not are admin
 * functions of the maintenance run, named so.
 */

/** A job of the keyset page the archiver walks, and whether its stream is due for archival. */
export interface ArchiveCandidate {
  jobId: string;
  runNumber: number;
  createdAt: Date;
  /** When it ended (its creation if it never started): its stream rows lie before this plus the clock skew. */
  endedAt: Date;
  /** Highest seq already archived (0: none). */
  archivedSeq: number;
  due: boolean;
}

/**
 * One page of an organization's jobs in run-number order (the unique
 * (organization_id, run_number) index), each marked due when it has ended
 * before `cutoff`, has stream rows not yet archived and no restore hold.
 * Walking pages by run number rather than asking "which jobs are due" keeps
 * every statement an index range of `limit` rows however many jobs exist.
 */
export async function findArchiveCandidates(
  db: Queryable,
  organizationId: string,
  afterRunNumber: number,
  cutoff: Date,
  asOf: Date,
  limit: number,
): Promise<ArchiveCandidate[]> {
  const { rows } = await db.query<{ id: string; run_number: string; created_at: Date; ended_at: Date; archived_seq: number; due: boolean }>(
    `WITH page AS (
       SELECT id, run_number, status, created_at, completed_at, last_seq
         FROM stepwise.jobs
        WHERE organization_id = $1 AND run_number > $2
        ORDER BY run_number
        LIMIT $3)
     SELECT p.id, p.run_number, p.created_at, coalesce(p.completed_at, p.created_at) AS ended_at, coalesce(a.archived_seq, 0) AS archived_seq,
            (p.status = ANY($4::varchar[]) AND coalesce(p.completed_at, p.created_at) < $5
             AND p.last_seq > coalesce(a.archived_seq, 0) AND h.job_id IS NULL) AS due
       FROM page p
       LEFT JOIN LATERAL (
         SELECT max(x.last_seq) AS archived_seq FROM stepwise.execution_log_archives x
          WHERE x.organization_id = $1 AND x.job_id = p.id) a ON true
       LEFT JOIN stepwise.archive_holds h ON h.organization_id = $1 AND h.job_id = p.id AND h.hold_until > $6
      ORDER BY p.run_number`,
    [organizationId, afterRunNumber, limit, TERMINAL_STATUSES, cutoff.toISOString(), asOf.toISOString()],
  );
  return rows.map((r) => ({
    jobId: r.id,
    runNumber: Number(r.run_number),
    createdAt: r.created_at,
    endedAt: r.ended_at,
    archivedSeq: r.archived_seq,
    due: r.due,
  }));
}

/**
 * The time range an archive batch reads and deletes in: from its oldest
 * job's creation to its latest job's end, each widened by the clock skew.
 * Without the upper bound every read probed the job index of every month
 * partition after the batch's (12 at one year), and parallel workers
 * joined in. The delete keeps to the same range, so a row stamped outside
 * it (a clock far off) is neither archived nor deleted: it stays hot.
 */
export interface ArchiveWindow {
  notBefore: Date;
  notAfter: Date;
}

/** One job's stream rows ready for an archive: the JSON lines are built by PostgreSQL. */
export interface ArchiveJobRows {
  jobId: string;
  records: number;
  firstSeq: number;
  lastSeq: number;
  /** Extremes of the rows' timestamps (each worker stamps its own clock), epoch microseconds as text (exact). */
  minTsMicros: string;
  maxTsMicros: string;
  /** The rows' lines (archive-format.ts) in seq order, joined by newlines, no trailing newline. */
  lines: string;
}

/**
 * The stream rows of `jobs` after each one's archived seq, one result row
 * per job with its lines already joined, in job order. The lines are built
 * and joined in SQL: on a server that work runs in the PostgreSQL process,
 * in parallel with the compression here, and the driver parses one row per
 * job instead of one per stream row (60× fewer).
 * `job_id = ANY(array)` rather than a join to unnest(): with the join the
 * planner hashed every row of every month since the oldest job (2.2 s for
 * 800 jobs over 720,000 rows here); the array probes the job_id index of
 * each partition instead. Rows at or below a job's archived seq exist only
 * when a partition awaits its drop; jobs are read in one query per distinct
 * archived seq (nearly always one: 0).
 */
export async function readStreamForArchive(
  db: Queryable,
  organizationId: string,
  jobs: { jobId: string; afterSeq: number }[],
  window: ArchiveWindow,
): Promise<ArchiveJobRows[]> {
  const byAfter = new Map<number, string[]>();
  for (const j of jobs) {
    const list = byAfter.get(j.afterSeq);
    if (list) list.push(j.jobId);
    else byAfter.set(j.afterSeq, [j.jobId]);
  }
  const out: ArchiveJobRows[] = [];
  for (const [afterSeq, jobIds] of byAfter) {
    const { rows } = await db.query<{ job_id: string; n: number; first: number; last: number; min_us: string; max_us: string; lines: string }>(
      `SELECT l.job_id, count(*)::int AS n, min(l.seq) AS first, max(l.seq) AS last,
              (extract(epoch FROM min(l.ts)) * 1000000)::bigint::text AS min_us,
              (extract(epoch FROM max(l.ts)) * 1000000)::bigint::text AS max_us,
              string_agg('{"seq":' || l.seq
                || ',"ts":"' || to_char(l.ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
                || '","stepIndex":' || coalesce(l.step_index::text, 'null')
                || ',"kind":' || l.kind || ',"level":' || l.level
                || ',"message":' || to_json(l.message)::text
                || ',"data":' || coalesce(l.data::text, 'null')
                -- Only rows of steps inside blocks have a path; top-level lines stay as they were.
                || CASE WHEN l.path IS NULL THEN '' ELSE ',"path":' || to_json(l.path)::text END || '}', E'\n' ORDER BY l.seq) AS lines
         FROM stepwise.execution_log l
        WHERE l.job_id = ANY($2::uuid[]) AND l.organization_id = $1 AND l.ts >= $3 AND l.ts < $5 AND l.seq > $4
        GROUP BY l.job_id`,
      [organizationId, jobIds, window.notBefore.toISOString(), afterSeq, window.notAfter.toISOString()],
    );
    for (const r of rows) {
      out.push({ jobId: r.job_id, records: r.n, firstSeq: r.first, lastSeq: r.last, minTsMicros: r.min_us, maxTsMicros: r.max_us, lines: r.lines });
    }
  }
  // Job order, so a blob's members come out the same on a rerun (its name is its hash).
  return out.sort((a, b) => (a.jobId < b.jobId ? -1 : a.jobId > b.jobId ? 1 : 0));
}

/** One job's stretch inside an archive blob. */
export interface ArchiveMember {
  jobId: string;
  byteOffset: number;
  compressedSize: number;
  recordCount: number;
  firstSeq: number;
  lastSeq: number;
  startDate: Date;
  endDate: Date;
  sha256: string;
}

export interface ArchiveBlobRecord {
  blobKey: string;
  organizationId: string;
  resourceType: string;
  bytes: number;
  sha256: string;
  recordCount: number;
}

/**
 * Record a verified blob and its members, then delete every hot row those
 * members (or earlier archives of the same jobs) cover — all in the caller's
 * one transaction, so rows are either hot or recorded as archived, never
 * neither. Idempotent: a member already recorded (a rerun after a crash) is
 * skipped by the unique (organization, job, first_seq) key and its rows are
 * deleted all the same. Rows before `keepBefore` are left for the month
 * partition to be dropped whole (lifecycle/partitions.ts); readers skip them
 * because they are covered. Returns the members newly recorded and rows deleted.
 */
export async function recordStreamArchive(
  tx: Queryable,
  blob: ArchiveBlobRecord,
  members: ArchiveMember[],
  window: ArchiveWindow,
  keepBefore: Date | null,
): Promise<{ recorded: number; deleted: number }> {
  await tx.query(
    `INSERT INTO stepwise.archive_blobs (blob_key, organization_id, resource_type, bytes, sha256, record_count)
     VALUES ($1, $2, $3, $4, decode($5, 'hex'), $6) ON CONFLICT (blob_key) DO NOTHING`,
    [blob.blobKey, blob.organizationId, blob.resourceType, blob.bytes, blob.sha256, blob.recordCount],
  );
  const inserted = await tx.query(
    `INSERT INTO stepwise.execution_log_archives
            (id, organization_id, job_id, blob_key, byte_offset, compressed_size, record_count,
             first_seq, last_seq, start_date, end_date, sha256)
     SELECT u.id, $1, u.job, $2, u.off, u.size, u.n, u.first, u.last,
            'epoch'::timestamptz + u.start_us * interval '1 microsecond',
            'epoch'::timestamptz + u.end_us * interval '1 microsecond', decode(u.hash, 'hex')
       FROM unnest($3::uuid[], $4::uuid[], $5::bigint[], $6::int[], $7::int[], $8::int[], $9::int[],
                   $10::bigint[], $11::bigint[], $12::text[])
            AS u(id, job, off, size, n, first, last, start_us, end_us, hash)
     ON CONFLICT (organization_id, job_id, first_seq) DO NOTHING`,
    [
      blob.organizationId,
      blob.blobKey,
      members.map(() => uuidv7()),
      members.map((m) => m.jobId),
      members.map((m) => m.byteOffset),
      members.map((m) => m.compressedSize),
      members.map((m) => m.recordCount),
      members.map((m) => m.firstSeq),
      members.map((m) => m.lastSeq),
      members.map((m) => String(m.startDate.getTime() * 1000)),
      members.map((m) => String(m.endDate.getTime() * 1000)),
      members.map((m) => m.sha256),
    ],
  );
  const deleted = await deleteArchivedRows(tx, blob.organizationId, members.map((m) => m.jobId), window, keepBefore);
  return { recorded: inserted.rowCount, deleted };
}

/**
 * Delete the hot rows of `jobIds` that their archives cover (seq up to the
 * highest archived) inside the batch's window and, when `keepBefore` is
 * given, only rows at or after it.
 */
export async function deleteArchivedRows(
  tx: Queryable,
  organizationId: string,
  jobIds: string[],
  window: ArchiveWindow,
  keepBefore: Date | null,
): Promise<number> {
  const { rowCount } = await tx.query(
    `DELETE FROM stepwise.execution_log l
      USING (SELECT job_id, max(last_seq) AS last_seq FROM stepwise.execution_log_archives
              WHERE organization_id = $1 AND job_id = ANY($2::uuid[]) GROUP BY job_id) a
      WHERE l.organization_id = $1 AND l.job_id = a.job_id AND l.seq <= a.last_seq
        AND l.ts >= $3 AND l.ts < $5 AND ($4::timestamptz IS NULL OR l.ts >= $4)`,
    [organizationId, jobIds, window.notBefore.toISOString(), keepBefore?.toISOString() ?? null, window.notAfter.toISOString()],
  );
  return rowCount;
}

/**
 * Delete the archive records of an organization whose newest row is older
 * than `before` (delete-after reached); returns how many, and the blob keys
 * they pointed into.
 */
export async function deleteExpiredStreamArchives(
  db: Queryable,
  organizationId: string,
  before: Date,
): Promise<{ deleted: number; blobKeys: string[] }> {
  const { rows } = await db.query<{ blob_key: string }>(
    `DELETE FROM stepwise.execution_log_archives WHERE organization_id = $1 AND end_date < $2 RETURNING blob_key`,
    [organizationId, before.toISOString()],
  );
  return { deleted: rows.length, blobKeys: [...new Set(rows.map((r) => r.blob_key))] };
}

/** How many archive records (and rows in them) delete-after would remove; for dry runs. */
export async function countExpiredStreamArchives(
  db: Queryable,
  organizationId: string,
  before: Date,
): Promise<{ archives: number; rows: number }> {
  const { rows } = await db.query<{ n: number; r: string | null }>(
    `SELECT count(*)::int AS n, sum(record_count)::bigint::text AS r FROM stepwise.execution_log_archives
      WHERE organization_id = $1 AND end_date < $2`,
    [organizationId, before.toISOString()],
  );
  return { archives: rows[0]!.n, rows: Number(rows[0]!.r ?? 0) };
}

/** Admin: archive blobs no archive record points into any more (restored or expired), to delete. */
export async function findUnreferencedArchiveBlobs(db: Queryable, limit: number): Promise<string[]> {
  const { rows } = await db.query<{ blob_key: string }>(
    `SELECT b.blob_key FROM stepwise.archive_blobs b
      WHERE b.resource_type = 'execution_log'
        AND NOT EXISTS (SELECT 1 FROM stepwise.execution_log_archives a WHERE a.blob_key = b.blob_key)
      ORDER BY b.blob_key LIMIT $1`,
    [limit],
  );
  return rows.map((r) => r.blob_key);
}

/** Forget an archive blob once its bytes are deleted, unless a record points into it again. */
export async function deleteArchiveBlobRecord(db: Queryable, blobKey: string): Promise<boolean> {
  const { rowCount } = await db.query(
    `DELETE FROM stepwise.archive_blobs b WHERE b.blob_key = $1
        AND NOT EXISTS (SELECT 1 FROM stepwise.execution_log_archives a WHERE a.blob_key = b.blob_key)`,
    [blobKey],
  );
  return rowCount > 0;
}

/** Admin: which of `keys` are recorded blobs (the orphan sweep keeps those). */
export async function findRecordedBlobKeys(db: Queryable, keys: string[]): Promise<Set<string>> {
  const { rows } = await db.query<{ blob_key: string }>(
    `SELECT blob_key FROM stepwise.archive_blobs WHERE blob_key = ANY($1::varchar[])`,
    [keys],
  );
  return new Set(rows.map((r) => r.blob_key));
}
