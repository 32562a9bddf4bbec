import net from 'node:net';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresDb, type Db } from '../../src/db/index.js';
import { backend, createTestDb, type TestDb } from '../helpers/db.js';

interface LogLine {
  level: number;
  msg: string;
  err?: { message?: string };
  attempts?: number;
  downMs?: number;
  applicationName?: string;
}

/** Resolve once `check` holds, polling; throw after 15 s so a failure does not hang the file. */
async function until(check: () => Promise<boolean> | boolean, what: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('listen (both backends)', () => {
  let t: TestDb;
  beforeAll(async () => {
    t = await createTestDb();
  });
  afterAll(() => t?.close());

  it('subscribers of one channel each get its notifications; leaving one keeps the others; re-subscribing works', async () => {
    const a: string[] = [];
    const b: string[] = [];
    const other: string[] = [];
    const offA = await t.db.listen('sw_listen_one', (p) => a.push(p), { onReconnect: () => undefined });
    const offB = await t.db.listen('sw_listen_one', (p) => b.push(p));
    const offOther = await t.db.listen('sw_listen_two', (p) => other.push(p));
    await t.db.query("SELECT pg_notify('sw_listen_one', 'x')");
    await until(() => a.includes('x') && b.includes('x'), 'both subscribers to get x');
    await offA();
    await t.db.query("SELECT pg_notify('sw_listen_one', 'y'), pg_notify('sw_listen_two', 'z')");
    await until(() => b.includes('y') && other.includes('z'), 'y and z');
    expect(a).toEqual(['x']);
    await offB();
    const again: string[] = [];
    const offAgain = await t.db.listen('sw_listen_one', (p) => again.push(p));
    await t.db.query("SELECT pg_notify('sw_listen_one', 'w')");
    await until(() => again.includes('w'), 'w after re-subscribing');
    expect(b).toEqual(['x', 'y']);
    await Promise.all([offAgain(), offOther()]);
  });
});

describe.skipIf(backend !== 'postgres')('listen on a server: one connection, reconnection', () => {
  let t: TestDb;
  beforeAll(async () => {
    t = await createTestDb();
  });
  afterAll(() => t?.close());

  /** Backends of this test's database with this application_name. */
  async function backends(name: string): Promise<number[]> {
    const { rows } = await t.db.query<{ pid: number }>(
      'SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database() ORDER BY pid',
      [name],
    );
    return rows.map((r) => r.pid);
  }

  /** The one backend with this application_name, once earlier tests' closed connections have gone. */
  async function onlyBackend(name: string, not?: number): Promise<number> {
    let pids: number[] = [];
    await until(async () => {
      pids = await backends(name);
      return pids.length === 1 && pids[0] !== not;
    }, `exactly one ${name} connection`);
    return pids[0]!;
  }

  function capture(poolSize = 2): { lines: LogLine[]; db: Db } {
    const lines: LogLine[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) });
    return { lines, db: new PostgresDb(t.url!, { poolSize, role: 'worker', logger }) };
  }

  it('names its connections by role and shares one LISTEN connection among all subscriptions', async () => {
    const { db } = capture();
    try {
      const { rows } = await db.query<{ name: string }>("SELECT current_setting('application_name') AS name");
      expect(rows[0]!.name).toBe('stepwise-worker');
      const offs = await Promise.all(['sw_a', 'sw_b', 'sw_c'].map((c) => db.listen(c, () => undefined)));
      offs.push(await db.listen('sw_a', () => undefined));
      await onlyBackend('stepwise-worker-listen');
      // Four subscriptions, one connection: a second one would show up here.
      expect(await backends('stepwise-worker-listen')).toHaveLength(1);
      await Promise.all(offs.map((off) => off()));
    } finally {
      await db.close();
    }
    // The backend goes a moment after the socket closes.
    await until(async () => (await backends('stepwise-worker-listen')).length === 0, 'the LISTEN connection to end');
  });

  it('after its connection is terminated: logs the drop, reconnects, logs that, calls onReconnect, and delivers again', async () => {
    const { lines, db } = capture();
    try {
      const received: string[] = [];
      let reconnects = 0;
      const off = await db.listen('sw_wake', (p) => received.push(p), { onReconnect: () => void reconnects++ });
      const offOther = await db.listen('sw_other', () => undefined, { onReconnect: () => void reconnects++ });
      const pid = await onlyBackend('stepwise-worker-listen');
      await t.db.query('SELECT pg_terminate_backend($1)', [pid]);
      await until(() => reconnects === 2, 'onReconnect of both subscriptions');
      const drop = lines.find((l) => l.msg.startsWith('LISTEN connection lost'));
      expect(drop?.level).toBe(40); // warn
      expect(drop?.err?.message).toMatch(/terminating connection due to administrator command/);
      expect(drop?.applicationName).toBe('stepwise-worker-listen');
      const back = lines.find((l) => l.msg === 'LISTEN connection restored');
      expect(back?.level).toBe(30); // info
      expect(back?.attempts).toBeGreaterThanOrEqual(1);
      expect(typeof back?.downMs).toBe('number');
      // A new connection, LISTENing again: a NOTIFY sent now is delivered.
      await onlyBackend('stepwise-worker-listen', pid);
      await t.db.query("SELECT pg_notify('sw_wake', 'after the drop')");
      await until(() => received.includes('after the drop'), 'the notification after reconnection');
      await Promise.all([off(), offOther()]);
    } finally {
      await db.close();
    }
  });

  it('while the server is unreachable it keeps retrying with backoff, then restores and delivers', async () => {
    // A TCP relay to the server that the test can cut and bring back: an outage, not just one killed backend.
    const target = new URL(t.url!);
    const sockets = new Set<net.Socket>();
    const relay = net.createServer((client) => {
      const upstream = net.connect(Number(target.port || 5432), target.hostname);
      for (const s of [client, upstream]) {
        sockets.add(s);
        s.on('error', () => undefined);
        s.on('close', () => {
          sockets.delete(s);
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream).pipe(client);
    });
    const listenOn = (port: number) => new Promise<void>((resolve) => relay.listen(port, '127.0.0.1', resolve));
    await listenOn(0);
    const port = (relay.address() as net.AddressInfo).port;
    const viaRelay = new URL(t.url!);
    viaRelay.hostname = '127.0.0.1';
    viaRelay.port = String(port);
    const lines: LogLine[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) });
    const db = new PostgresDb(viaRelay.toString(), { poolSize: 1, role: 'worker', logger });
    try {
      const received: string[] = [];
      let reconnected = false;
      const off = await db.listen('sw_outage', (p) => received.push(p), { onReconnect: () => void (reconnected = true) });
      // Outage: refuse new connections and cut the open one.
      await new Promise<void>((resolve) => {
        relay.close(() => resolve());
        for (const s of sockets) s.destroy();
      });
      await until(() => lines.some((l) => l.msg === 'LISTEN reconnection failed; retrying'), 'a failed reconnection attempt');
      expect(reconnected).toBe(false);
      await listenOn(port);
      await until(() => reconnected, 'onReconnect after the outage');
      const back = lines.find((l) => l.msg === 'LISTEN connection restored');
      expect(back?.attempts).toBeGreaterThanOrEqual(2);
      await t.db.query("SELECT pg_notify('sw_outage', 'back')");
      await until(() => received.includes('back'), 'the notification after the outage');
      await off();
    } finally {
      await db.close();
      await new Promise<void>((resolve) => relay.close(() => resolve()));
      for (const s of sockets) s.destroy();
    }
  });

  it('pool connection losses are logged, not swallowed', async () => {
    const { lines, db } = capture();
    try {
      await db.query('SELECT 1'); // one idle pooled connection
      const pid = await onlyBackend('stepwise-worker');
      await t.db.query('SELECT pg_terminate_backend($1)', [pid]);
      await until(() => lines.some((l) => l.msg.startsWith('idle database connection lost')), 'the pool error line');
      // The pool replaces it on demand.
      expect((await db.query<{ one: number }>('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    } finally {
      await db.close();
    }
  });

  it('a session gives its connection back reset: no session lock, no setting, same application_name', async () => {
    const { db } = capture(1); // one connection: the query after the session gets the same one
    try {
      await db.session(async (conn) => {
        await conn.query('SELECT pg_advisory_lock(4242)');
        await conn.query("SELECT set_config('lock_timeout', '1234ms', false)");
      });
      const { rows } = await db.query<{ timeout: string; name: string; locks: number }>(
        `SELECT current_setting('lock_timeout') AS timeout, current_setting('application_name') AS name,
                (SELECT count(*)::int FROM pg_locks WHERE locktype = 'advisory' AND objid = 4242
                   AND database = (SELECT oid FROM pg_database WHERE datname = current_database())) AS locks`,
      );
      expect(rows[0]).toEqual({ timeout: '0', name: 'stepwise-worker', locks: 0 });
    } finally {
      await db.close();
    }
  });
});
