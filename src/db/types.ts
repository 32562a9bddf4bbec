/**
 * The one seam between Stepwise and a database. Two adapters implement it:
 * PostgreSQL server (pg.Pool) and embedded PGlite. Batching is done in SQL
 * (`INSERT … SELECT FROM unnest($1::…[])`), which both backends run, so the
 * interface needs no separate batch call.
 */
export type Backend = 'postgres' | 'pglite';

/**
 * What a process is, named in every server connection's application_name
 * (`stepwise-<role>`, the LISTEN connection `stepwise-<role>-listen`), so
 * pg_stat_activity and the server's logs tell API, worker, CLI, test and
 * benchmark connections apart. `api-read` is the API's pool on a read
 * replica (db/replica.ts), so the standby's pg_stat_activity shows which
 * reads it serves.
 */
export type ProcessRole = 'api' | 'api-read' | 'worker' | 'cli' | 'test' | 'bench';

export interface QueryResult<R> {
  rows: R[];
  rowCount: number;
}

/** How to run one statement. */
export interface QueryOptions {
  /**
   * Run it as a named prepared statement (server adapter; PGlite ignores
   * it): parsed and planned once per connection instead of on every call.
   * Only for a constant text run very often (the claim), and one name per
   * text.
   */
  name?: string | undefined;
}

export interface Queryable {
  /** One parameterised statement. Errors arrive already mapped to typed errors (db/errors.ts). */
  query<R = Record<string, unknown>>(text: string, params?: readonly unknown[], options?: QueryOptions): Promise<QueryResult<R>>;
  /** Several statements without parameters (migrations). */
  exec(sql: string): Promise<void>;
  /**
   * Whether a NOTIFY on `channel` can reach anyone. Only a backend that knows
   * every listener answers (PGlite: one process owns the database and its
   * listeners are in-process), so a caller may skip a NOTIFY nobody would
   * receive; absent, assume someone may be listening (a server's other
   * processes).
   */
  listening?(channel: string): boolean;
}

export interface ListenOptions {
  /**
   * Called once the listening connection is back after a drop and LISTENs
   * again. Notifications sent while it was down are not delivered, so a
   * caller polls here: work announced during the outage is then late, not
   * lost. Never called by the PGlite adapter (in-process, it cannot drop).
   */
  onReconnect?: () => void;
}

export interface Db extends Queryable {
  readonly backend: Backend;
  /** Run `fn` in one transaction: commit when it resolves, roll back when it throws. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /**
   * Run `fn` on one dedicated connection outside any transaction: each
   * statement commits on its own. For work a transaction cannot hold
   * (CREATE INDEX CONCURRENTLY) or that needs session-level advisory locks.
   * `fn` undoes the session state it sets (settings, session locks); the
   * server adapter also resets both before the connection goes back to
   * its pool.
   */
  session<T>(fn: (conn: Queryable) => Promise<T>): Promise<T>;
  /** Subscribe to NOTIFY on `channel`; resolves to an unsubscribe function. */
  listen(channel: string, onNotify: (payload: string) => void, options?: ListenOptions): Promise<() => Promise<void>>;
  /** The connection pool now, for the metrics (server adapter; PGlite has one connection and no pool). */
  poolStats?(): PoolStats;
  close(): Promise<void>;
}

/** A connection pool at one moment: connections open (busy or idle), idle, callers waiting for one, and the most it opens. */
export interface PoolStats {
  total: number;
  idle: number;
  waiting: number;
  max: number;
}
