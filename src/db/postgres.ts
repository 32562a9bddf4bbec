import pg from 'pg';
import { mapDbError } from './errors.js';
import type { Db, Queryable, QueryResult } from './types.js';

// int8 (counts, run numbers) as JS numbers, matching PGlite; values here stay far below 2^53.
const INT8_OID = 20;
const typeParsers = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === INT8_OID && format !== 'binary') return (value: string) => Number(value);
    return pg.types.getTypeParser(oid, format);
  },
};

async function run<R>(client: pg.Pool | pg.PoolClient, text: string, params?: readonly unknown[]): Promise<QueryResult<R>> {
  try {
    const res = await client.query(text, params as unknown[] | undefined);
    return { rows: res.rows as R[], rowCount: res.rowCount ?? 0 };
  } catch (err) {
    throw mapDbError(err);
  }
}

function txQueryable(client: pg.PoolClient): Queryable {
  return {
    query: (text, params) => run(client, text, params),
    exec: async (sql) => {
      await run(client, sql);
    },
  };
}

/** PostgreSQL server adapter: a pooled connection per query, a dedicated one for LISTEN. */
export class PostgresDb implements Db {
  readonly backend = 'postgres' as const;
  private readonly pool: pg.Pool;
  private readonly listeners: pg.Client[] = [];

  constructor(
    private readonly connectionString: string,
    poolSize: number,
  ) {
    this.pool = new pg.Pool({ connectionString, max: poolSize, types: typeParsers });
    // An idle client that loses its connection emits here; without a handler the process dies.
    this.pool.on('error', () => undefined);
  }

  query<R = Record<string, unknown>>(text: string, params?: readonly unknown[]): Promise<QueryResult<R>> {
    return run<R>(this.pool, text, params);
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
      const result = await fn(txQueryable(client));
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

  async listen(channel: string, onNotify: (payload: string) => void): Promise<() => Promise<void>> {
    const client = new pg.Client({ connectionString: this.connectionString });
    client.on('error', () => undefined); // the caller polls too; a lost listener only delays wake-ups
    client.on('notification', (msg) => {
      if (msg.channel === channel) onNotify(msg.payload ?? '');
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
    } catch (err) {
      await client.end().catch(() => undefined);
      throw mapDbError(err);
    }
    this.listeners.push(client);
    return async () => {
      const i = this.listeners.indexOf(client);
      if (i >= 0) this.listeners.splice(i, 1);
      await client.end().catch(() => undefined);
    };
  }

  async close(): Promise<void> {
    await Promise.all(this.listeners.splice(0).map((c) => c.end().catch(() => undefined)));
    await this.pool.end();
  }
}
