import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { PostgresDb } from '../../src/db/index.js';
import { ValidationError } from '../../src/errors/index.js';
import { backend, createEmptyDb, type TestDb } from '../helpers/db.js';

/**
 * The settings that let DATABASE_URL point at a transaction-pooling
 * PgBouncer: STEPWISE_DIRECT_DATABASE_URL takes LISTEN and `session` (session
 * locks) past it, and STEPWISE_DB_PREPARED_STATEMENTS=false sends named
 * statements unnamed. Without a PgBouncer here, two databases of one server
 * stand in for "pooled" and "direct": what ran where shows in
 * current_database(), and a NOTIFY reaches only listeners of its database.
 */
describe.skipIf(backend !== 'postgres')('direct URL and prepared statements (server)', () => {
  let pooled: TestDb;
  let direct: TestDb;

  beforeAll(async () => {
    pooled = await createEmptyDb();
    direct = await createEmptyDb();
  });
  afterAll(async () => {
    await pooled?.close();
    await direct?.close();
  });

  const databaseOf = (url: string): string => new URL(url).pathname.slice(1);

  it('runs queries and transactions on DATABASE_URL, session work and LISTEN on the direct URL', async () => {
    const db = new PostgresDb(pooled.url!, { poolSize: 2, role: 'test', directUrl: direct.url! });
    try {
      const { rows: q } = await db.query<{ db: string }>('SELECT current_database() AS db');
      expect(q[0]!.db).toBe(databaseOf(pooled.url!));
      const inTx = await db.transaction(async (tx) => (await tx.query<{ db: string }>('SELECT current_database() AS db')).rows[0]!.db);
      expect(inTx).toBe(databaseOf(pooled.url!));
      const inSession = await db.session(async (conn) => (await conn.query<{ db: string }>('SELECT current_database() AS db')).rows[0]!.db);
      expect(inSession).toBe(databaseOf(direct.url!));

      const received: string[] = [];
      let arrived!: () => void;
      const got = new Promise<void>((resolve) => (arrived = resolve));
      const unlisten = await db.listen('direct_check', (payload) => {
        received.push(payload);
        arrived();
      });
      // Sent on the pooled database: no listener there, so it must not arrive.
      await db.query("SELECT pg_notify('direct_check', 'pooled')");
      // Sent on the direct database: the LISTEN connection is there.
      const c = new pg.Client({ connectionString: direct.url! });
      await c.connect();
      await c.query("SELECT pg_notify('direct_check', 'direct')");
      await c.end();
      await got;
      // The pooled NOTIFY committed before the direct one was sent; had it reached the listener, it would have come first.
      expect(received).toEqual(['direct']);
      await unlisten();
    } finally {
      await db.close();
    }
  });

  it('without a direct URL, session work stays on DATABASE_URL', async () => {
    const db = new PostgresDb(pooled.url!, { poolSize: 2, role: 'test' });
    try {
      const inSession = await db.session(async (conn) => (await conn.query<{ db: string }>('SELECT current_database() AS db')).rows[0]!.db);
      expect(inSession).toBe(databaseOf(pooled.url!));
    } finally {
      await db.close();
    }
  });

  it('sends named statements unnamed when prepared statements are off, named otherwise', async () => {
    const preparedOn = async (db: PostgresDb) =>
      db.transaction(async (tx) => {
        await tx.query('SELECT $1::int AS one', [1], { name: 'direct_url_check' });
        const { rows } = await tx.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_prepared_statements WHERE name = 'direct_url_check'");
        return rows[0]!.n;
      });
    const off = new PostgresDb(pooled.url!, { poolSize: 1, role: 'test', preparedStatements: false });
    const on = new PostgresDb(pooled.url!, { poolSize: 1, role: 'test' });
    try {
      expect(await preparedOn(off)).toBe(0);
      expect(await preparedOn(on)).toBe(1);
      // Outside a transaction too (the claim runs on the pool).
      await off.query('SELECT $1::int AS one', [1], { name: 'direct_url_check' });
      const { rows } = await off.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_prepared_statements WHERE name = 'direct_url_check'");
      expect(rows[0]!.n).toBe(0);
    } finally {
      await off.close();
      await on.close();
    }
  });
});

describe('direct URL settings', () => {
  it('are read and validated from the environment', () => {
    const config = loadConfig({
      DATABASE_URL: 'postgres://bouncer:6432/stepwise',
      STEPWISE_DIRECT_DATABASE_URL: 'postgres://db:5432/stepwise',
      STEPWISE_DB_PREPARED_STATEMENTS: 'false',
    });
    expect(config.directDatabaseUrl).toBe('postgres://db:5432/stepwise');
    expect(config.dbPreparedStatements).toBe(false);
    expect(loadConfig({ DATABASE_URL: 'postgres://db/stepwise' }).dbPreparedStatements).toBe(true);
    expect(() => loadConfig({ STEPWISE_DIRECT_DATABASE_URL: 'postgres://db/stepwise' })).toThrow(ValidationError);
    expect(() => loadConfig({ DATABASE_URL: 'postgres://db/x', STEPWISE_DIRECT_DATABASE_URL: 'mysql://db/x' })).toThrow(/STEPWISE_DIRECT_DATABASE_URL/);
    expect(() => loadConfig({ DATABASE_URL: 'postgres://db/x', STEPWISE_DB_PREPARED_STATEMENTS: 'maybe' })).toThrow(/STEPWISE_DB_PREPARED_STATEMENTS/);
    // --database-url naming another database than the environment's: the direct URL would point elsewhere.
    const env = { DATABASE_URL: 'postgres://bouncer/x', STEPWISE_DIRECT_DATABASE_URL: 'postgres://db/x' };
    expect(() => loadConfig(env, { databaseUrl: 'postgres://other/y' })).toThrow(/--database-url/);
    expect(loadConfig(env, { databaseUrl: 'postgres://bouncer/x' }).directDatabaseUrl).toBe('postgres://db/x');
  });
});
