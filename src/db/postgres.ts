import pg from 'pg';
import { createStderrLogger, type Logger } from '../util/logger.js';
import { DatabaseUnavailableError, mapConnectError, mapDbError } from './errors.js';
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

/**
 * Opening a connection gives up after this long unless a caller sets its
 * own bound. Unbounded (pg's default), a connect to a host that drops packets
 * waits for the OS to give up, about 2 minutes, holding the pool slot and
 * every caller queued behind it; a PostgreSQL server that answers at all
 * opens a connection in milliseconds.
 */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

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
   * Give up opening a connection after this long (default
   * DEFAULT_CONNECT_TIMEOUT_MS). The caller then gets a
   * DatabaseUnavailableError ('connect-timeout' or 'unreachable').
   */
  connectTimeoutMs?: number;
  /**
   * Give up waiting for a pooled connection after this long, whether it
   * waits for a busy pool or for a new connection to open (default: no bound
   * beyond connectTimeoutMs per connection). For callers that prefer a quick
   * 'try again' to waiting: the API (`withCheckoutTimeout`), a read replica
   * (whose callers fall back to the primary). Not the worker: its flushes,
   * claims and heartbeats retry anyway, and a step's service call that gave
   * up would fail the step.
   */
  checkoutTimeoutMs?: number;
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

/**
 * pg.Pool opens its connections with this client class, which bounds the
 * connect itself (pg.Client's connectionTimeoutMillis) and nothing else.
 * The pool's own `connectionTimeoutMillis` would also bound waiting for a
 * busy pool, for every caller of the pool alike; that wait is bounded per
 * caller instead (`checkoutTimeoutMs`).
 */
function boundedClient(connectTimeoutMs: number): new () => pg.ClientBase {
  class BoundedConnectClient extends pg.Client {
    constructor(config?: string | pg.ClientConfig) {
      super(typeof config === 'string' ? { connectionString: config, connectionTimeoutMillis: connectTimeoutMs } : { ...config, connectionTimeoutMillis: connectTimeoutMs });
    }
  }
  return BoundedConnectClient as unknown as new () => pg.ClientBase;
}

/**
 * Take a connection from `pool`, waiting at most `timeoutMs` when given. A
 * connection that arrives after the caller gave up goes straight back to
 * the pool, so a timed-out wait leaks nothing.
 */
async function checkout(pool: pg.Pool, timeoutMs: number | undefined): Promise<pg.PoolClient> {
  const pending = pool.connect();
  if (timeoutMs === undefined) {
    try {
      return await pending;
    } catch (err) {
      throw mapConnectError(err);
    }
  }
  let timer: NodeJS.Timeout | undefined;
  let timedOut = false;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      timedOut = true;
      reject(new DatabaseUnavailableError('checkout-timeout', { waitedMs: timeoutMs }));
    }, timeoutMs);
  });
  try {
    return await Promise.race([pending, deadline]);
  } catch (err) {
    if (timedOut) {
      pending.then(
        (late) => late.release(),
        () => undefined,
      );
      throw err;
    }
    throw mapConnectError(err);
  } finally {
    clearTimeout(timer);
  }
}

async function run<R>(client: pg.PoolClient, text: string, params?: readonly unknown[], options?: QueryOptions): Promise<QueryResult<R>> {
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

/** What a PostgresDb and its views (`withCheckoutTimeout`) share: every mutable part lives here. */
interface Connections {
  readonly pool: pg.Pool;
  readonly listener: NotificationListener;
  /** For `session` when a direct URL is set: a separate, small pool on it, opened on first use. */
  readonly direct: { readonly config: pg.PoolConfig; pool?: pg.Pool } | undefined;
  readonly preparedStatements: boolean;
  readonly logger: Logger;
}

/**
 * Keep a pool's connections from taking the process down when their server
 * goes away. pg.Pool listens for errors only on idle connections; one
 * checked out (a transaction waiting on its caller, an API request's tenant
 * transaction between statements) that the server terminates — a restart,
 * pg_terminate_backend — emits 'error' with nobody listening, which Node
 * turns into an uncaught exception: the whole process exits. With this
 * listener the error reaches its caller instead, through the statement that
 * failed or the next one ("not queryable"), and the pool drops the
 * connection when it is released.
 */
function survivePoolConnectionErrors(pool: pg.Pool, logger: Logger, applicationName: string): void {
  pool.on('connect', (client) => {
    client.on('error', (err) => logger.debug({ err, applicationName }, 'database connection lost; its caller gets the error and the pool replaces it'));
  });
}

/**
 * PostgreSQL server adapter: a pooled connection per query or transaction,
 * and one more connection, shared by every `listen`, for LISTEN.
 */
export class PostgresDb implements Db {
  readonly backend = 'postgres' as const;
  private readonly conns: Connections;
  /** How long a checkout may wait (undefined: as long as it takes); set per view by withCheckoutTimeout. */
  private readonly checkoutTimeoutMs: number | undefined;

  /**
   * `options` may be a plain number, the pool size (the older form, still
   * used by tests and benchmarks).
   */
  constructor(connectionString: string, options: number | PostgresDbOptions = {}) {
    const opts: PostgresDbOptions = typeof options === 'number' ? { poolSize: options } : options;
    const logger = opts.logger ?? createStderrLogger();
    const name = applicationName(opts.role);
    const connectTimeoutMs = opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    const pool = new pg.Pool({
      connectionString,
      max: opts.poolSize ?? DEFAULT_POOL_SIZE,
      types: typeParsers,
      application_name: name,
      keepAlive: true,
      Client: boundedClient(connectTimeoutMs),
    });
    // An idle pooled client that loses its connection emits here (the pool
    // then drops it and opens a new one on demand); without a handler the
    // process would die.
    pool.on('error', (err) => logger.warn({ err, applicationName: name }, 'idle database connection lost; the pool will replace it'));
    survivePoolConnectionErrors(pool, logger, name);
    this.conns = {
      pool,
      // Only migrations use `session` on the server, one at a time: two connections are plenty.
      direct:
        opts.directUrl !== undefined && opts.directUrl !== connectionString
          ? {
              config: {
                connectionString: opts.directUrl,
                max: 2,
                types: typeParsers,
                application_name: `${name}-session`,
                keepAlive: true,
                Client: boundedClient(connectTimeoutMs),
              },
            }
          : undefined,
      listener: new NotificationListener({ connectionString: opts.directUrl ?? connectionString, applicationName: `${name}-listen`, logger, connectTimeoutMs }),
      preparedStatements: opts.preparedStatements ?? true,
      logger,
    };
    this.checkoutTimeoutMs = opts.checkoutTimeoutMs;
  }

  /**
   * This database with every checkout (query, transaction, session) waiting
   * at most `ms` for a connection, then failing with DatabaseUnavailableError
   * ('checkout-timeout', a 503). A view, not a second pool: the same
   * connections, LISTEN connection and counters, so `serve` can bound its
   * API's waits while the worker in the same process waits as long as it
   * takes. Closing either closes both.
   */
  withCheckoutTimeout(ms: number): PostgresDb {
    const view = Object.create(this) as PostgresDb;
    Object.defineProperty(view, 'checkoutTimeoutMs', { value: ms });
    return view;
  }

  /** The statement options to send: without its name when prepared statements are off. */
  private options(options: QueryOptions | undefined): QueryOptions | undefined {
    return this.conns.preparedStatements || options?.name === undefined ? options : undefined;
  }

  /** Where `session` takes its connection: the direct pool when a direct URL is set, else the main pool. */
  private sessionPool(): pg.Pool {
    const direct = this.conns.direct;
    if (!direct) return this.conns.pool;
    if (!direct.pool) {
      const pool = new pg.Pool(direct.config);
      const name = String(direct.config.application_name);
      pool.on('error', (err) => this.conns.logger.warn({ err }, 'idle direct database connection lost; the pool will replace it'));
      survivePoolConnectionErrors(pool, this.conns.logger, name);
      direct.pool = pool;
    }
    return direct.pool;
  }

  /**
   * One statement on a pooled connection. A connection that failed under it
   * is not put back: like pg.Pool.query, any error releases it as broken
   * (the pool opens another on demand).
   */
  async query<R = Record<string, unknown>>(text: string, params?: readonly unknown[], options?: QueryOptions): Promise<QueryResult<R>> {
    const client = await checkout(this.conns.pool, this.checkoutTimeoutMs);
    try {
      const result = await run<R>(client, text, params, this.options(options));
      client.release();
      return result;
    } catch (err) {
      client.release(err as Error);
      throw err;
    }
  }

  async exec(sql: string): Promise<void> {
    await this.query(sql);
  }

  async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    const client = await checkout(this.conns.pool, this.checkoutTimeoutMs);
    let broken: Error | undefined;
    try {
      await run(client, 'BEGIN');
      const result = await fn(clientQueryable(client, this.conns.preparedStatements));
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
    const client = await checkout(this.sessionPool(), this.checkoutTimeoutMs);
    let broken: Error | undefined;
    try {
      return await fn(clientQueryable(client, this.conns.preparedStatements));
    } finally {
      // Whatever `fn` left behind (a session lock, a setting, an open
      // transaction) must not reach the pool's next user; a connection that
      // cannot be reset is destroyed instead (and its session locks go with
      // its backend).
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
    return this.conns.listener.subscribe(channel, onNotify, options.onReconnect);
  }

  /** pg.Pool's own counters, read when metrics are scraped (the LISTEN connection is not pooled and not counted). */
  poolStats(): PoolStats {
    const pool = this.conns.pool;
    return { total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount, max: pool.options.max };
  }

  async close(): Promise<void> {
    const { listener, pool, direct } = this.conns;
    await listener.close();
    // A second close (the API's view and the process's Db are the same pools) finds them ended already.
    if (!pool.ending) await pool.end();
    if (direct?.pool && !direct.pool.ending) await direct.pool.end();
  }
}
