import pg from 'pg';
import { createStderrLogger, type Logger } from '../util/logger.js';
import { mapDbError } from './errors.js';
import { NotificationListener } from './listener.js';
import type { Db, ListenOptions, ProcessRole, Queryable, QueryOptions, QueryResult } from './types.js';

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

function clientQueryable(client: pg.PoolClient): Queryable {
  return {
    query: (text, params, options) => run(client, text, params, options),
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
    });
    // An idle pooled client that loses its connection emits here (the pool
    // then drops it and opens a new one on demand); without a handler the
    // process would die.
    this.pool.on('error', (err) => logger.warn({ err, applicationName: name }, 'idle database connection lost; the pool will replace it'));
    this.listener = new NotificationListener({ connectionString, applicationName: `${name}-listen`, logger });
  }

  query<R = Record<string, unknown>>(text: string, params?: readonly unknown[], options?: QueryOptions): Promise<QueryResult<R>> {
    return run<R>(this.pool, text, params, options);
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
      const result = await fn(clientQueryable(client));
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
      client = await this.pool.connect();
    } catch (err) {
      throw mapDbError(err);
    }
    let broken: Error | undefined;
    try {
      return await fn(clientQueryable(client));
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

  async close(): Promise<void> {
    await this.listener.close();
    await this.pool.end();
  }
}
