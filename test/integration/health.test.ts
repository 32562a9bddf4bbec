import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkReadiness, type WorkerLiveness } from '../../src/api/readiness.js';
import { loadMigrations } from '../../src/db/index.js';
import { loopStaleAfterMs, Worker } from '../../src/engine/worker.js';
import { client, createTestApp } from '../helpers/api.js';
import { createTestDb, type TestDb } from '../helpers/db.js';
import { silentLogger, workerConfig } from '../helpers/fixtures.js';

let t: TestDb;
let app: FastifyInstance;
/** What the app's readiness reads as the worker's loop; each test sets it. */
let loop: WorkerLiveness | undefined;

beforeAll(async () => {
  t = await createTestDb();
  app = await createTestApp(t.db, undefined, { workerLiveness: () => loop ?? { running: false, lastRoundAt: 0, staleAfterMs: 30_000 } });
});

afterAll(async () => {
  await app?.close();
  await t?.close();
});

async function until(what: string, probe: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('GET /health/live', () => {
  it('answers 200 without a key and without asking the database', async () => {
    const closed = await createTestDb();
    await closed.close();
    const dead = await createTestApp(closed.db);
    try {
      const res = await client(dead, undefined).get('/health/live');
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ status: 'ok' });
    } finally {
      await dead.close();
    }
  });
});

describe('GET /health/ready', () => {
  it('is 200 with every check passing while the worker loop goes round', async () => {
    loop = { running: true, lastRoundAt: Date.now(), staleAfterMs: 30_000 };
    const res = await client(app, undefined).get('/health/ready');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      status: 'ready',
      checks: [
        { name: 'database', ok: true },
        { name: 'migrations', ok: true },
        { name: 'worker', ok: true },
      ],
    });
  });

  it('is 503 naming the worker check when its loop has not gone round within its bound', async () => {
    loop = { running: true, lastRoundAt: Date.now() - 95_000, staleAfterMs: 30_000 };
    const res = await client(app, undefined).get('/health/ready');
    expect(res.status).toBe(503);
    expect(res.body.status).toBe('not ready');
    expect(res.body.checks).toEqual([
      { name: 'database', ok: true },
      { name: 'migrations', ok: true },
      { name: 'worker', ok: false, reason: expect.stringMatching(/last went round 95 s ago \(stuck after 30 s\)/) },
    ]);
  });

  it('follows a real worker: not ready before it starts and after it stops, ready while it runs', async () => {
    const worker = new Worker(t.db, workerConfig(), silentLogger);
    const check = async () => (await checkReadiness({ db: t.db, workerLiveness: () => worker.liveness() })).checks.find((c) => c.name === 'worker')!;
    expect(await check()).toEqual({ name: 'worker', ok: false, reason: 'the worker is not running (stopped or stopping)' });
    await worker.start();
    try {
      await until('the loop to go round', () => worker.liveness().lastRoundAt > 0);
      expect(await check()).toEqual({ name: 'worker', ok: true });
      expect(worker.liveness().staleAfterMs).toBe(loopStaleAfterMs(workerConfig().pollIntervalMs));
    } finally {
      await worker.stop();
    }
    expect((await check()).ok).toBe(false);
  });

  it('the staleness bound comes from the poll interval: three intervals, at least 30 s', () => {
    expect(loopStaleAfterMs(50)).toBe(30_000);
    expect(loopStaleAfterMs(1_000)).toBe(30_000);
    expect(loopStaleAfterMs(60_000)).toBe(180_000);
  });

  it('judges staleness by the clock it is given', async () => {
    const source = () => ({ running: true, lastRoundAt: 1_000_000, staleAfterMs: 30_000 });
    const at = async (now: number) => (await checkReadiness({ db: t.db, workerLiveness: source, now: () => now })).ready;
    expect(await at(1_000_000 + 30_000)).toBe(true);
    expect(await at(1_000_000 + 30_001)).toBe(false);
  });

  it('is 503 naming the migrations check while one this code knows is not applied', async () => {
    loop = { running: true, lastRoundAt: Date.now(), staleAfterMs: 30_000 };
    const latest = (await loadMigrations()).at(-1)!;
    const { rows } = await t.db.query<{ version: number; name: string; checksum: string; applied_at: Date }>(
      'DELETE FROM stepwise.schema_migrations WHERE version = $1 RETURNING version, name, checksum, applied_at',
      [latest.version],
    );
    expect(rows).toHaveLength(1);
    try {
      const res = await client(app, undefined).get('/health/ready');
      expect(res.status).toBe(503);
      expect(res.body.checks).toEqual([
        { name: 'database', ok: true },
        { name: 'migrations', ok: false, reason: `1 migration(s) not applied: ${latest.version}` },
        { name: 'worker', ok: true },
      ]);
    } finally {
      const r = rows[0]!;
      await t.db.query('INSERT INTO stepwise.schema_migrations (version, name, checksum, applied_at) VALUES ($1, $2, $3, $4)', [
        r.version,
        r.name,
        r.checksum,
        r.applied_at,
      ]);
    }
    expect((await client(app, undefined).get('/health/ready')).status).toBe(200);
  });

  it('is 503 when the database does not answer, and says the migrations could not be checked', async () => {
    const closed = await createTestDb();
    await closed.close();
    const dead = await createTestApp(closed.db);
    try {
      const res = await client(dead, undefined).get('/health/ready');
      expect(res.status).toBe(503);
      expect(res.body.checks).toEqual([
        { name: 'database', ok: false, reason: expect.any(String) },
        { name: 'migrations', ok: false, reason: 'not checked: the database did not answer' },
      ]);
    } finally {
      await dead.close();
    }
  });

  it('is 503 when the database takes longer than its timeout', async () => {
    let answer!: () => void;
    const hung = new Promise<void>((resolve) => (answer = resolve));
    // A database whose every query waits until the test lets it go.
    const slow = new Proxy(t.db, {
      get(target, prop, receiver) {
        if (prop === 'query') return async (...args: Parameters<typeof t.db.query>) => {
          await hung;
          return target.query(...args);
        };
        const value: unknown = Reflect.get(target, prop, receiver);
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    try {
      const result = await checkReadiness({ db: slow, databaseTimeoutMs: 20 });
      expect(result.ready).toBe(false);
      expect(result.checks[0]).toEqual({ name: 'database', ok: false, reason: 'the database did not answer within 20 ms' });
    } finally {
      answer();
    }
  });

  it('keeps GET /health as it was', async () => {
    const res = await client(app, undefined).get('/health');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: 'ok', version: 'test', migrations: { applied: (await loadMigrations()).length } });
  });
});
