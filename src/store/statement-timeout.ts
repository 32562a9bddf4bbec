import type { Queryable } from '../db/index.js';

/**
 * Run `fn`'s statements under a statement_timeout of `ms`, set as SET LOCAL
 * does (set_config(…, true)) and put back afterwards, so statements the
 * caller's transaction runs after it (audit rows, …) keep the budget they
 * had. Must run inside a transaction (an API request's tenant transaction
 * is one); a statement past the budget fails with SQLSTATE 57014, which
 * db/errors.ts makes a QueryTimeoutError (503 QUERY_TIMEOUT) — and aborts
 * the transaction, so nothing after it is kept anyway.
 */
export async function withStatementTimeout<T>(db: Queryable, ms: number, fn: () => Promise<T>): Promise<T> {
  const { rows } = await db.query<{ previous: string }>(
    `SELECT current_setting('statement_timeout') AS previous, set_config('statement_timeout', $1, true) AS now`,
    [`${Math.max(1, Math.round(ms))}ms`],
  );
  const result = await fn();
  await db.query(`SELECT set_config('statement_timeout', $1, true)`, [rows[0]!.previous]);
  return result;
}
