import pg from 'pg';
import { createStderrLogger, type Logger } from '../util/logger.js';
import { mapDbError } from './errors.js';
import { NotificationListener } from './listener.js';
import type { Db, ListenOptions, PoolStats, ProcessRole, Queryable, QueryOptions, QueryResult } from './types.js';

// int8 (counts, run numbers) as JS numbers, matching PGlite; values here stay far below 2^53.
const INT8_OID = 20;
const typeParsers = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === INT8_OID && format !== 'binary') return (value: string) => Number(value);
    return pg.types.getTypeParser(oid, format);
  },
};

const DEFAULT_POOL_SIZE = 10;

export interface PostgresDbOptions {
  /** Most pooled connections (default 10). The LISTEN connection is one more. */
  poolSize?: number;
  /** Named in application_name; without one, connections are named plain `stepwise`. */
  role?: ProcessRole;
  /**
   * Where connection drops, reconnections and pool errors are logged.
   * Default: a logger on stderr at info, not a silent one: a lost
   * connection that nobody hears about is the failure this logging exists
   * to expose, and stderr leaves the CLI's stdout output alone.
   */
  logger?: Logger;
  /**
   * Give up opening a connection after this long (default: wait as long as
   * the OS does, ~2 min for an address that drops packets). Set for a read
   * replica, whose callers fall back to the primary instead of waiting.
   */
  connectTimeoutMs?: number;
  /**
   * The same database without a transaction-pooling PgBouncer in between
   * (STEPWISE_DIRECT_DATABASE_URL), for what must keep one server connection
   * for a while: the LISTEN connection (a notification reaches only the
   * server connection that listened, which transaction pooling lends to
   * others between statements) and `session` (session-level advisory locks).
   * Default: the pool's own URL.
   */
  directUrl?: string | undefined;
  /**
   * false: run statements named in QueryOptions unnamed (STEPWISE_DB_PREPARED_STATEMENTS),
   * for a transaction-pooling PgBouncer before 1.21, which would hand a
   * statement's parse and its executions to different server connections
   * (42P05 / 26000). Costs the claim its cached plan. Default true.
   */
  preparedStatements?: boolean | undefined;
}

/** application_name of a role's pooled connections. */
export function applicationName(role: ProcessRole | undefined): string {
  return role ? `stepwise-${role}` : 'stepwise';
}

async function run<R>(client: pg.Pool | pg.PoolClient, text: string, params?: readonly unknown[], options?: QueryOptions): Promise<QueryResult<R>> {
  try {
    const res = options?.name
      ? await client.query({ name: options.name, text, values: params as unknown[] | undefined })
      : await client.query(text, params as unknown[] | undefined);
    return { rows: res.rows as R[], rowCount: res.rowCount ?? 0 };
  } catch (err) {
    throw mapDbError(err);
  }
}

function clientQueryable(client: pg.PoolClient, named: boolean): Queryable {
  return {
    query: (text, params, options) => run(client, text, params, named || options?.name === undefined ? options : undefined),
    exec: async (sql) => {
      await run(client, sql);
    },
  };
}

/**
 * PostgreSQL server adapter: a pooled connection per query or transaction,
 * and one more connection, shared by every `listen`, for LISTEN.
 */
export class PostgresDb implements Db {
  readonly backend = 'postgres' as const;
  private readonly pool: pg.Pool;
  private readonly listener: NotificationListener;
  /** For `session` when a direct URL is set: a separate, small pool on it, opened on first use. */
  private directPool: pg.Pool | undefined;
  private readonly directPoolConfig: pg.PoolConfig | undefined;
  private readonly preparedStatements: boolean;
  private readonly logger: Logger;

  /**
   * `options` may be a plain number, the pool size (the older form, still
   * used by tests and benchmarks).
   */
  constructor(connectionString: string, options: number | PostgresDbOptions = {}) {
    const opts: PostgresDbOptions = typeof options === 'number' ? { poolSize: options } : options;
    const logger = opts.logger ?? createStderrLogger();
    const name = applicationName(opts.role);
    this.pool = new pg.Pool({
      connectionString,
      max: opts.poolSize ?? DEFAULT_POOL_SIZE,
      types: typeParsers,
      application_name: name,
      keepAlive: true,
      ...(opts.connectTimeoutMs !== undefined ? { connectionTimeoutMillis: opts.connectTimeoutMs } : {}),
    });
    // An idle pooled client that loses its connection emits here (the pool
    // then drops it and opens a new one on demand); without a handler the
    // process would die.
    this.pool.on('error', (err) => logger.warn({ err, applicationName: name }, 'idle database connection lost; the pool will replace it'));
    this.preparedStatements = opts.preparedStatements ?? true;
    if (opts.directUrl !== undefined && opts.directUrl !== connectionString) {
      // Only migrations use `session` on the server, one at a time: two connections are plenty.
      this.directPoolConfig = { connectionString: opts.directUrl, max: 2, types: typeParsers, application_name: `${name}-session`, keepAlive: true };
    }
    this.listener = new NotificationListener({ connectionString: opts.directUrl ?? connectionString, applicationName: `${name}-listen`, logger });
    this.logger = logger;
  }

  /** The statement options to send: without its name when prepared statements are off. */
  private options(options: QueryOptions | undefined): QueryOptions | undefined {
    return this.preparedStatements || options?.name === undefined ? options : undefined;
  }

  /** Where `session` takes its connection: the direct pool when a direct URL is set, else the main pool. */
  private sessionPool(): pg.Pool {
    if (!this.directPoolConfig) return this.pool;
    if (!this.directPool) {
      this.directPool = new pg.Pool(this.directPoolConfig);
      this.directPool.on('error', (err) => this.logger.warn({ err }, 'idle direct database connection lost; the pool will replace it'));
    }
    return this.directPool;
  }

  query<R = Record<string, unknown>>(text: string, params?: readonly unknown[], options?: QueryOptions): Promise<QueryResult<R>> {
    return run<R>(this.pool, text, params, this.options(options));
  }

  async exec(sql: string): Promise<void> {
    await run(this.pool, sql);
  }

  async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw mapDbError(err);
    }
    let broken: Error | undefined;
    try {
      await run(client, 'BEGIN');
      const result = await fn(clientQueryable(client, this.preparedStatements));
      await run(client, 'COMMIT');
      return result;
    } catch (err) {
      try {
        await client.query('ROLLBACK');
      } catch (rollbackErr) {
        // The connection is unusable; destroy it instead of returning it to the pool.
        broken = rollbackErr as Error;
      }
      throw err;
    } finally {
      client.release(broken);
    }
  }

  async session<T>(fn: (conn: Queryable) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.sessionPool().connect();
    } catch (err) {
      throw mapDbError(err);
    }
    let broken: Error | undefined;
    try {
      return await fn(clientQueryable(client, this.preparedStatements));
    } finally {
      // Whatever `fn` left behind (a session lock, a setting, an open
      // transaction) must not reach the pool's next user; a connection that
      // cannot be reset is destroyed instead.
      try {
        await client.query('ROLLBACK');
        await client.query('SELECT pg_advisory_unlock_all()');
        await client.query('RESET ALL');
      } catch (resetErr) {
        broken = resetErr as Error;
      }
      client.release(broken);
    }
  }

  listen(channel: string, onNotify: (payload: string) => void, options: ListenOptions = {}): Promise<() => Promise<void>> {
    return this.listener.subscribe(channel, onNotify, options.onReconnect);
  }

  /** pg.Pool's own counters, read when metrics are scraped (the LISTEN connection is not pooled and not counted). */
  poolStats(): PoolStats {
    return { total: this.pool.totalCount, idle: this.pool.idleCount, waiting: this.pool.waitingCount, max: this.pool.options.max };
  }

  async close(): Promise<void> {
    await this.listener.close();
    await this.pool.end();
    await this.directPool?.end();
  }
}
