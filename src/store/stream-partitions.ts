import type { Queryable } from '../db/index.js';

/**
 * Admin SQL over the month partitions of execution_log, for the maintenance
 * run: find them, drop the ones whose rows are all archived, and measure hot
 * storage. Table names come from pg_class and are checked against the one
 * pattern db/partitions.ts creates before they are put into DDL.
 */

const PARTITION_RE = /^execution_log_(\d{4})_(\d{2})$/;

export interface StreamPartition {
  name: string;
  from: Date;
  to: Date;
}

/** The named month partitions of execution_log, oldest first (the default partition is not one). */
export async function listStreamPartitions(db: Queryable): Promise<StreamPartition[]> {
  const { rows } = await db.query<{ relname: string }>(
    `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
      WHERE i.inhparent = 'stepwise.execution_log'::regclass`,
  );
  const out: StreamPartition[] = [];
  for (const { relname } of rows) {
    const m = PARTITION_RE.exec(relname);
    if (!m) continue;
    const y = Number(m[1]);
    const mo = Number(m[2]) - 1;
    out.push({ name: relname, from: new Date(Date.UTC(y, mo, 1)), to: new Date(Date.UTC(y, mo + 1, 1)) });
  }
  return out.sort((a, b) => a.from.getTime() - b.from.getTime());
}

function checkedName(name: string): string {
  if (!PARTITION_RE.test(name)) throw new Error(`not a stream partition name: ${name}`);
  return name;
}

/**
 * How long a partition drop waits for its locks before giving up (the
 * partition then stays until the next maintenance run). The LOCK of the
 * partition and the DETACH's ACCESS EXCLUSIVE lock on the stream's parent
 * both wait behind any open reader, and while one waits every new insert
 * into the stream queues behind it: unbounded, one long analytics read
 * would stop every worker's flush. Two seconds of queued flushes is the
 * most a drop may cost them.
 */
export const PARTITION_DROP_LOCK_TIMEOUT_MS = 2_000;

/**
 * Drop a month partition if every row in it is covered by an archive, in one
 * transaction that first locks the partition (so no row can arrive between
 * the check and the drop; inserts into other months are not blocked).
 * Returns the number of rows it held when dropped, or null when some row is
 * not archived yet (the partition stays). Fails with a DatabaseError of
 * SQLSTATE 55P03 when its locks are not granted within `lockTimeoutMs`
 * (isLockNotAvailable); nothing has changed then.
 */
export async function dropArchivedStreamPartition(
  tx: Queryable,
  name: string,
  lockTimeoutMs: number = PARTITION_DROP_LOCK_TIMEOUT_MS,
): Promise<{ dropped: boolean; rows: number; uncoveredJobs: number }> {
  const table = `stepwise.${checkedName(name)}`;
  await tx.query(`SELECT set_config('lock_timeout', $1, true)`, [`${Math.max(1, Math.round(lockTimeoutMs))}ms`]);
  await tx.query(`LOCK TABLE ${table} IN ACCESS EXCLUSIVE MODE`);
  // Archives cover a job's seqs 1..max(last_seq) without gaps, so a job's
  // rows here are all archived when its highest seq here is at most that.
  const { rows } = await tx.query<{ uncovered: number; total: string }>(
    `WITH p AS (SELECT organization_id, job_id, max(seq) AS s, count(*) AS n FROM ${table} GROUP BY 1, 2)
     SELECT count(*) FILTER (WHERE a.m IS NULL OR a.m < p.s)::int AS uncovered, coalesce(sum(p.n), 0)::bigint::text AS total
       FROM p LEFT JOIN LATERAL (
         SELECT max(x.last_seq) AS m FROM stepwise.execution_log_archives x
          WHERE x.organization_id = p.organization_id AND x.job_id = p.job_id) a ON true`,
  );
  const uncoveredJobs = rows[0]!.uncovered;
  const total = Number(rows[0]!.total);
  if (uncoveredJobs > 0) return { dropped: false, rows: total, uncoveredJobs };
  await tx.query(`ALTER TABLE stepwise.execution_log DETACH PARTITION ${table}`);
  await tx.query(`DROP TABLE ${table}`);
  return { dropped: true, rows: total, uncoveredJobs: 0 };
}

/**
 * Delete every hot row written before `before` that an archive covers: the
 * rows left behind for partitions that could not be dropped whole and those
 * in the default partition.
 */
export async function deleteArchivedRowsBefore(tx: Queryable, before: Date): Promise<number> {
  const { rowCount } = await tx.query(
    `DELETE FROM stepwise.execution_log l
      USING (SELECT organization_id, job_id, max(last_seq) AS m FROM stepwise.execution_log_archives GROUP BY 1, 2) a
      WHERE l.ts < $1 AND l.organization_id = a.organization_id AND l.job_id = a.job_id AND l.seq <= a.m`,
    [before.toISOString()],
  );
  return rowCount;
}

/** Bytes execution_log takes on disk (heap, indexes, TOAST of every partition): the hot storage. */
export async function getStreamHotBytes(db: Queryable): Promise<number> {
  const { rows } = await db.query<{ bytes: string }>(
    `SELECT coalesce(sum(pg_total_relation_size(i.inhrelid)), 0)::bigint::text AS bytes
       FROM pg_inherits i WHERE i.inhparent = 'stepwise.execution_log'::regclass`,
  );
  return Number(rows[0]!.bytes);
}
