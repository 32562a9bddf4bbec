import { LOCK_KEYS, type Db } from '../db/index.js';

/**
 * Finished jobs per roll-up transaction. A batch of 5,000 one-workflow jobs
 * collapses to a few hundred aggregate rows before the upsert; larger
 * batches only lengthen the transaction.
 */
export const ROLLUP_BATCH = 5_000;

/**
 * Move finished jobs from aggregate_outbox into aggregate_metrics
 * (migration 0027): each batch's rows are deleted and added in one
 * transaction, so a crash anywhere counts every job exactly once.
 *
 * One roll-up runs at a time, under an advisory lock: with `wait: false`
 * (the workers) a roll-up that finds the lock taken returns null at once,
 * so no worker ever waits for another's aggregate rows; with `wait: true`
 * (a repair) it waits its turn. Rows of an organization deleted meanwhile
 * are dropped. Returns the jobs rolled up, or null when another roll-up
 * held the lock.
 */
export async function rollUpAggregates(db: Db, options: { wait: boolean; batch?: number }): Promise<number | null> {
  const batch = options.batch ?? ROLLUP_BATCH;
  let total = 0;
  for (;;) {
    const taken = await db.transaction(async (tx) => {
      if (options.wait) {
        await tx.query('SELECT pg_advisory_xact_lock($1)', [LOCK_KEYS.aggregateRollup]);
      } else {
        const { rows } = await tx.query<{ ok: boolean }>('SELECT pg_try_advisory_xact_lock($1) AS ok', [LOCK_KEYS.aggregateRollup]);
        if (!rows[0]!.ok) return null;
      }
      const { rows } = await tx.query<{ n: number }>(
        // ctid: the outbox has no key, and needs none: the lock makes this
        // the only statement deleting from it.
        `WITH taken AS (
           DELETE FROM stepwise.aggregate_outbox
            WHERE ctid = ANY (ARRAY(SELECT ctid FROM stepwise.aggregate_outbox LIMIT $1))
           RETURNING *
         ), kept AS (
           SELECT t.* FROM taken t WHERE EXISTS (SELECT 1 FROM stepwise.organizations o WHERE o.id = t.organization_id)
         ), added AS (
           SELECT stepwise.add_to_aggregates(
             array_agg(organization_id), array_agg(workflow_id), array_agg(client_id), array_agg(initiator_type),
             array_agg(status), array_agg(completed_at), array_agg(duration_ms))
             FROM kept
           HAVING count(*) > 0
         )
         -- added is selected so that it runs: a CTE that only SELECTs runs only when referenced.
         SELECT (SELECT count(*) FROM taken)::int AS n, (SELECT count(*) FROM added)::int AS added`,
        [batch],
      );
      return rows[0]!.n;
    });
    if (taken === null) return total > 0 ? total : null;
    total += taken;
    if (taken < batch) return total;
  }
}

/** Jobs finished but not yet rolled up into aggregate_metrics (all organizations). */
export async function pendingAggregateRows(db: Db): Promise<number> {
  const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM stepwise.aggregate_outbox');
  return rows[0]!.n;
}
