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
                || ',"data":' || coalesce(l.data::text, 'null') || '}', E'\n' ORDER BY l.seq) AS lines
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

/**
 * Take or renew the named maintenance lease for `holder`; false when another
 * holder's lease has not expired.
 */
export async function tryAcquireMaintenanceLease(db: Queryable, name: string, holder: string, leaseMs: number): Promise<boolean> {
  const { rows } = await db.query<{ holder: string }>(
    `INSERT INTO stepwise.maintenance_leases (name, holder, expires_at)
     VALUES ($1, $2, now() + $3 * interval '1 millisecond')
     ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
      WHERE stepwise.maintenance_leases.expires_at < now() OR stepwise.maintenance_leases.holder = EXCLUDED.holder
     RETURNING holder`,
    [name, holder, leaseMs],
  );
  return rows.length > 0;
}

/** Give the lease back (only if `holder` still has it). */
export async function releaseMaintenanceLease(db: Queryable, name: string, holder: string): Promise<void> {
  await db.query(`DELETE FROM stepwise.maintenance_leases WHERE name = $1 AND holder = $2`, [name, holder]);
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
}

/**
 * Put a job's archived rows back into hot storage: first delete any hot copy
 * of the same seqs (rows left for a month partition drop that has not
 * happened yet), so a restore never makes a row appear twice. The
 * transaction is marked as a replay, so the step-metrics trigger does not
 * count these step results a second time (migration 0013); run it inside
 * a transaction.
 */
export async function insertRestoredRows(tx: Queryable, organizationId: string, jobId: string, rows: RestoredRow[]): Promise<void> {
  if (rows.length === 0) return;
  await tx.query(`SELECT set_config('stepwise.replaying_stream', 'on', true)`);
  await tx.query(
    `DELETE FROM stepwise.execution_log WHERE organization_id = $1 AND job_id = $2 AND seq = ANY($3::int[])`,
    [organizationId, jobId, rows.map((r) => r.seq)],
  );
  await tx.query(
    `INSERT INTO stepwise.execution_log (organization_id, job_id, ts, seq, step_index, kind, level, message, data)
     SELECT $1, $2, u.ts::timestamptz, u.seq, u.step, u.kind, u.level, u.message, u.data
       FROM unnest($3::text[], $4::int[], $5::smallint[], $6::smallint[], $7::smallint[], $8::text[], $9::jsonb[])
            AS u(ts, seq, step, kind, level, message, data)`,
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
    ],
  );
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
