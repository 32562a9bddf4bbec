import type { Db } from './types.js';

/** Key of the advisory lock that serialises partition maintenance across processes. */
const PARTITION_LOCK_KEY = 727_002;

function monthStart(d: Date, offset: number): Date {
  return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + offset, 1));
}

function partitionName(start: Date): string {
  return `execution_log_${start.getUTCFullYear()}_${String(start.getUTCMonth() + 1).padStart(2, '0')}`;
}

/**
 * Create the monthly partitions of `execution_log` from last month to
 * `monthsAhead` months ahead (no pg_partman needed). If rows for a month
 * already landed in the default partition, they are moved into the new
 * partition in the same transaction, since PostgreSQL refuses to create a
 * partition whose range the default partition already holds rows for.
 * Returns the names created.
 */
export async function ensureStreamPartitions(db: Db, now: Date = new Date(), monthsAhead = 3): Promise<string[]> {
  const created: string[] = [];
  for (let offset = -1; offset <= monthsAhead; offset++) {
    const from = monthStart(now, offset);
    const to = monthStart(now, offset + 1);
    const name = partitionName(from);
    const made = await db.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock($1)', [PARTITION_LOCK_KEY]);
      const { rows } = await tx.query(
        `SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = 'stepwise' AND c.relname = $1`,
        [name],
      );
      if (rows.length > 0) return false;
      // Names and bounds come from dates computed here, never from input.
      const fromIso = from.toISOString();
      const toIso = to.toISOString();
      await tx.exec(`
        CREATE TABLE stepwise.${name} (LIKE stepwise.execution_log INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
        WITH moved AS (
          DELETE FROM stepwise.execution_log_default
           WHERE ts >= '${fromIso}' AND ts < '${toIso}'
          RETURNING *
        )
        INSERT INTO stepwise.${name} SELECT * FROM moved;
        ALTER TABLE stepwise.execution_log ATTACH PARTITION stepwise.${name}
          FOR VALUES FROM ('${fromIso}') TO ('${toIso}');`);
      return true;
    });
    if (made) created.push(name);
  }
  return created;
}

/**
 * ANALYZE the partitioned parent of the stream. Autovacuum analyzes the
 * month partitions but never a partitioned parent, so without this the
 * planner has no statistics for queries over the parent (Hatchet issue
 * #5005: a query went from 30 s to 3 ms after ANALYZE of the parent).
 * On PostgreSQL 15 this also re-samples the partitions (ANALYZE ONLY is
 * 17+), ~30,000 rows each: run daily, not per request.
 */
export async function analyzeStreamParent(db: Db): Promise<void> {
  await db.exec('ANALYZE stepwise.execution_log');
}
