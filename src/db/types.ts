/**
 * The one seam between Stepwise and a database. Two adapters implement it:
 * PostgreSQL server (pg.Pool) and embedded PGlite. Batching is done in SQL
 * (`INSERT … SELECT FROM unnest($1::…[])`), which both backends run, so the
 * interface needs no separate batch call.
 */
export type Backend = 'postgres' | 'pglite';

export interface QueryResult<R> {
  rows: R[];
  rowCount: number;
}

export interface Queryable {
  /** One parameterised statement. Errors arrive already mapped to typed errors (db/errors.ts). */
  query<R = Record<string, unknown>>(text: string, params?: readonly unknown[]): Promise<QueryResult<R>>;
  /** Several statements without parameters (migrations). */
  exec(sql: string): Promise<void>;
}

export interface Db extends Queryable {
  readonly backend: Backend;
  /** Run `fn` in one transaction: commit when it resolves, roll back when it throws. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /** Subscribe to NOTIFY on `channel`; resolves to an unsubscribe function. */
  listen(channel: string, onNotify: (payload: string) => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}
