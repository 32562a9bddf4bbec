import type { Queryable } from './types.js';

/**
 * The statements of an online base backup of the embedded database
 * (lifecycle/backup): PostgreSQL's own pg_backup_start / pg_backup_stop,
 * which PGlite's single backend runs (its wal_level is replica and
 * full_page_writes on, so pages torn by a copy taken while it writes are
 * rewritten from WAL on restore). Each function runs on the one PGlite
 * connection, inside `PgliteDb.session` so no transaction is open.
 */

/**
 * The physical replication slot that keeps the backup's WAL. Without it a
 * checkpoint during a long copy (PGlite checkpoints when max_wal_size, 1 GB,
 * of WAL has been written) may recycle the segments the restore needs. A
 * temporary slot would not do: PostgreSQL drops temporary slots at the
 * first error of any statement in the session (seen here: a division by
 * zero dropped it), and every API request shares that session. A permanent
 * slot survives errors; a process that died mid-backup leaves it behind,
 * which `startOnlineBackup` and `dropBackupSlot` (called at service start)
 * remove, since only one process ever owns the data directory.
 */
export const BACKUP_SLOT = 'stepwise_backup';

export interface OnlineBackupStart {
  startLsn: string;
}

export interface OnlineBackupStop {
  stopLsn: string;
  /** The backup_label file the copy must contain (recovery starts from its checkpoint). */
  labelFile: string;
  /** tablespace_map; empty without tablespaces. */
  spcmapFile: string;
}

/** Drop the backup slot if a process that died mid-backup left it (it would keep WAL for ever). */
export async function dropBackupSlot(conn: Queryable): Promise<boolean> {
  const { rows } = await conn.query<{ n: number }>(
    `SELECT count(pg_drop_replication_slot(slot_name))::int AS n FROM pg_replication_slots WHERE slot_name = $1`,
    [BACKUP_SLOT],
  );
  return (rows[0]?.n ?? 0) > 0;
}

/**
 * Reserve WAL from now on, then begin the backup with an immediate
 * checkpoint (the only part that takes time: it writes the dirty shared
 * buffers, at most 128 MB here).
 */
export async function startOnlineBackup(conn: Queryable, label: string): Promise<OnlineBackupStart> {
  await dropBackupSlot(conn);
  await conn.query(`SELECT pg_create_physical_replication_slot($1, true, false)`, [BACKUP_SLOT]);
  const { rows } = await conn.query<{ lsn: string }>(`SELECT pg_backup_start($1, true)::text AS lsn`, [label]);
  return { startLsn: rows[0]!.lsn };
}

/** End the backup: the returned label names the start checkpoint; WAL up to `stopLsn` makes the copy consistent. */
export async function stopOnlineBackup(conn: Queryable): Promise<OnlineBackupStop> {
  const { rows } = await conn.query<{ lsn: string; labelfile: string; spcmapfile: string | null }>(
    `SELECT lsn::text AS lsn, labelfile, spcmapfile FROM pg_backup_stop(false)`,
  );
  const r = rows[0]!;
  return { stopLsn: r.lsn, labelFile: r.labelfile, spcmapFile: r.spcmapfile ?? '' };
}

/** Leave backup mode after a failure (if still in it) and free the slot. */
export async function abortOnlineBackup(conn: Queryable): Promise<void> {
  // pg_backup_stop raises when no backup is running; either way the session ends up out of backup mode.
  await conn.query(`SELECT pg_backup_stop(false)`).catch(() => undefined);
  await dropBackupSlot(conn);
}

/**
 * The WAL segment files that hold the records from `startLsn` up to (not
 * including) `stopLsn`, in order: exactly what recovery of the copy reads.
 */
export async function walSegmentsBetween(conn: Queryable, startLsn: string, stopLsn: string): Promise<string[]> {
  const { rows } = await conn.query<{ file: string }>(
    `SELECT DISTINCT pg_walfile_name($1::pg_lsn + n) AS file
       FROM generate_series(0::numeric, ($2::pg_lsn - $1::pg_lsn - 1), (SELECT setting::numeric FROM pg_settings WHERE name = 'wal_segment_size')) AS n
     UNION
     SELECT pg_walfile_name($2::pg_lsn - 1)
     ORDER BY file`,
    [startLsn, stopLsn],
  );
  return rows.map((r) => r.file);
}

/** Jobs in the database, for the backup's report. */
export async function countJobsForBackup(conn: Queryable): Promise<number> {
  const { rows } = await conn.query<{ n: string }>(`SELECT count(*)::bigint::text AS n FROM stepwise.jobs`);
  return Number(rows[0]!.n);
}
