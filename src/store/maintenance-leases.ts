import type { Queryable } from '../db/index.js';

/**
 * Named leases in stepwise.maintenance_leases: one process at a time runs
 * the daily maintenance; the weekly index rebuild holds its lease for a
 * week as its schedule (lifecycle/index-compaction.ts).
 */

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
