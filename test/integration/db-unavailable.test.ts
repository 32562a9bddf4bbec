import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DatabaseUnavailableError, PostgresDb } from '../../src/db/index.js';
import { createLogger } from '../../src/util/logger.js';
import { backend, createTestDb, type TestDb } from '../helpers/db.js';
import { freePort } from '../helpers/postgres-os-user.js';

/**
 * The server adapter when connections break or cannot be had: a typed
 * DatabaseUnavailableError (a 503) every time, the process alive, the pool
 * whole again afterwards. The restart of a whole server under load is
 * test/integration/db-restart.test.ts.
 */
describe.skipIf(backend !== 'postgres')('the server adapter when the database goes away', () => {
  let t: TestDb;
  const logger = createLogger('silent');

  beforeAll(async () => {
    t = await createTestDb();
  });
  afterAll(() => t?.close());

  async function terminate(pid: number): Promise<void> {
    await t.db.query('SELECT pg_terminate_backend($1)', [pid]);
  }

  it('a connection terminated while a transaction holds it between statements fails that transaction, not the process', async () => {
    const db = new PostgresDb(t.url!, { poolSize: 2, role: 'test', logger });
    try {
      const failed = db
        .transaction(async (tx) => {
          const { rows } = await tx.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
          // Between statements nothing is waiting on the connection: pg emits its error on the client,
          // which without a listener is an uncaught exception that ends the process.
          await terminate(rows[0]!.pid);
          await new Promise((r) => setTimeout(r, 200));
          await tx.query('SELECT 1');
        })
        .then(
          () => null,
          (err: unknown) => err,
        );
      const err = await failed;
      expect(err).toBeInstanceOf(DatabaseUnavailableError);
      expect((err as DatabaseUnavailableError).details.reason).toMatch(/restarting|connection-lost/);
      // The broken connection left the pool; the next caller gets a working one.
      expect((await db.query<{ ok: number }>('SELECT 1 AS ok')).rows[0]!.ok).toBe(1);
      expect(db.poolStats()).toMatchObject({ total: 1, waiting: 0 });
    } finally {
      await db.close();
    }
  });

  it('the same for a session connection (session locks go with its backend)', async () => {
    const db = new PostgresDb(t.url!, { poolSize: 1, role: 'test', logger });
    try {
      const err = await db
        .session(async (conn) => {
          const { rows } = await conn.query<{ pid: number }>('SELECT pg_backend_pid() AS pid, pg_advisory_lock(424242)');
          await terminate(rows[0]!.pid);
          await new Promise((r) => setTimeout(r, 200));
          await conn.query('SELECT 1');
        })
        .then(
          () => null,
          (e: unknown) => e,
        );
      expect(err).toBeInstanceOf(DatabaseUnavailableError);
      const { rows } = await db.query<{ held: number }>(`SELECT count(*)::int AS held FROM pg_locks WHERE locktype = 'advisory' AND objid = 424242`);
      expect(rows[0]!.held).toBe(0);
    } finally {
      await db.close();
    }
  });

  it('a checkout bounded by withCheckoutTimeout gives up with checkout-timeout; the connection that comes later goes back to the pool', async () => {
    const db = new PostgresDb(t.url!, { poolSize: 1, role: 'test', logger });
    const bounded = db.withCheckoutTimeout(150);
    try {
      let release!: () => void;
      const held = db.transaction(() => new Promise<void>((r) => (release = r)));
      await new Promise((r) => setTimeout(r, 50));
      const waited = await bounded.query('SELECT 1').then(
        () => null,
        (e: unknown) => e,
      );
      expect(waited).toBeInstanceOf(DatabaseUnavailableError);
      expect((waited as DatabaseUnavailableError).details).toMatchObject({ reason: 'checkout-timeout', waitedMs: 150 });
      // The unbounded Db shares the pool: it waits its turn instead.
      const patient = db.query<{ ok: number }>('SELECT 1 AS ok');
      release();
      await held;
      expect((await patient).rows[0]!.ok).toBe(1);
      expect((await bounded.query<{ ok: number }>('SELECT 1 AS ok')).rows[0]!.ok).toBe(1);
      expect(db.poolStats()).toEqual({ total: 1, idle: 1, waiting: 0, max: 1 });
    } finally {
      await bounded.close();
      await db.close(); // the second close of the same pools is harmless
    }
  });

  it('a server that accepts the connection and never answers: connect-timeout after connectTimeoutMs, for a query and LISTEN, not the OS’s minutes', async () => {
    const silent = net.createServer((socket) => socket.on('error', () => undefined));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const url = new URL(t.url!);
    url.hostname = '127.0.0.1';
    url.port = String((silent.address() as net.AddressInfo).port);
    const db = new PostgresDb(url.toString(), { poolSize: 1, role: 'test', logger, connectTimeoutMs: 200 });
    try {
      for (const attempt of [() => db.query('SELECT 1'), () => db.listen('sw_nobody', () => undefined)]) {
        const err = await attempt().then(
          () => null,
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(DatabaseUnavailableError);
        expect((err as DatabaseUnavailableError).details.reason).toBe('connect-timeout');
      }
    } finally {
      await db.close();
      silent.close();
    }
  });

  it('a server that is not there answers at once with unreachable, for a query, a transaction and LISTEN', async () => {
    const url = new URL(t.url!);
    url.port = String(await freePort());
    const db = new PostgresDb(url.toString(), { poolSize: 2, role: 'test', logger });
    try {
      for (const attempt of [() => db.query('SELECT 1'), () => db.transaction(async () => undefined), () => db.listen('sw_nobody', () => undefined)]) {
        const err = await attempt().then(
          () => null,
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(DatabaseUnavailableError);
        expect((err as DatabaseUnavailableError).details.reason).toBe('unreachable');
      }
      expect(db.poolStats()).toMatchObject({ total: 0, waiting: 0 });
    } finally {
      await db.close();
    }
  });
});
