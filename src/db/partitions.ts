import { utcMonthStart } from '../util/clock.js';
import { LOCK_KEYS } from './lock-keys.js';
import type { Db } from './types.js';

function partitionName(table: string, start: Date): string {
  return `${table}_${start.getUTCFullYear()}_${String(start.getUTCMonth() + 1).padStart(2, '0')}`;
}

/**
 * Month-partitioned tables: the column each is ranged on, whether rows that
 * already landed in the default partition may be moved (phi_audit_log rows
 * cannot be deleted for six years, not even to move them: such a month stays
 * in the default partition), and DDL each new partition needs (row triggers
 * are cloned to partitions by PostgreSQL; TRUNCATE triggers are not).
 */
const MONTHLY = {
  execution_log: { column: 'ts', movable: true, extra: (_name: string) => '' },
  phi_audit_log: {
    column: 'at',
    movable: false,
    extra: (name: string) =>
      `CREATE TRIGGER ${name}_no_truncate BEFORE TRUNCATE ON stepwise.${name}
         FOR EACH STATEMENT EXECUTE FUNCTION stepwise.phi_audit_no_truncate();`,
  },
} as const;
type MonthlyTable = keyof typeof MONTHLY;

/**
 * Create the monthly partitions of `execution_log` from last month to
 * `monthsAhead` months ahead (no pg_partman needed). If rows for a month
 * already landed in the default partition, they are moved into the new
 * partition in the same transaction, since PostgreSQL refuses to create a
 * partition whose range the default partition already holds rows for.
 * Returns the names created.
 */
export function ensureStreamPartitions(db: Db, now: Date = new Date(), monthsAhead = 3): Promise<string[]> {
  return ensureMonthlyPartitions(db, 'execution_log', now, monthsAhead);
}

/** The same for `phi_audit_log` (migration 0010), partitioned by month on `at`. */
export function ensurePhiAuditPartitions(db: Db, now: Date = new Date(), monthsAhead = 3): Promise<string[]> {
  return ensureMonthlyPartitions(db, 'phi_audit_log', now, monthsAhead);
}

async function ensureMonthlyPartitions(db: Db, table: MonthlyTable, now: Date, monthsAhead: number): Promise<string[]> {
  const { column, movable, extra } = MONTHLY[table];
  const created: string[] = [];
  for (let offset = -1; offset <= monthsAhead; offset++) {
    const from = utcMonthStart(now, offset);
    const to = utcMonthStart(now, offset + 1);
    const name = partitionName(table, from);
    const made = await db.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock($1)', [LOCK_KEYS.partitionMaintenance]);
      const { rows } = await tx.query(
        `SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = 'stepwise' AND c.relname = $1`,
        [name],
      );
      if (rows.length > 0) return false;
      // Names and bounds come from dates computed here, never from input.
      const fromIso = from.toISOString();
      const toIso = to.toISOString();
      if (!movable) {
        const stranded = await tx.query(
          `SELECT 1 FROM stepwise.${table}_default WHERE ${column} >= $1 AND ${column} < $2 LIMIT 1`,
          [fromIso, toIso],
        );
        if (stranded.rows.length > 0) return false;
      }
      // Table and column names come from the constant above, never from input.
      await tx.exec(`
        CREATE TABLE stepwise.${name} (LIKE stepwise.${table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
        WITH moved AS (
          DELETE FROM stepwise.${table}_default
           WHERE ${column} >= '${fromIso}' AND ${column} < '${toIso}'
          RETURNING *
        )
        INSERT INTO stepwise.${name} SELECT * FROM moved;
        ALTER TABLE stepwise.${table} ATTACH PARTITION stepwise.${name}
          FOR VALUES FROM ('${fromIso}') TO ('${toIso}');
        ${extra(name)}`);
      return true;
    });
    if (made) created.push(name);
  }
  return created;
}

/**
 * ANALYZE the partitioned parent of the stream. Autovacuum analyzes the
 * month partitions but never a partitioned parent, so without this the
 * planner has no statistics for queries over the parent (a query over such
 * a parent, in another PostgreSQL-backed workflow engine, went from 30 s to
 * 3 ms after ANALYZE of the parent).
 * On PostgreSQL 15 this also re-samples the partitions (ANALYZE ONLY is
 * 17+), ~30,000 rows each: run daily, not per request.
 */
export async function analyzeStreamParent(db: Db): Promise<void> {
  await db.exec('ANALYZE stepwise.execution_log');
}
