import type { FastifyInstance } from 'fastify';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRuntime, type Runtime } from '../../src/cli/runtime.js';
import { loadConfig } from '../../src/config/index.js';
import { PostgresDb, type Db, type QueryOptions } from '../../src/db/index.js';
import { Worker } from '../../src/engine/index.js';
import { DatabaseError } from '../../src/errors/index.js';
import { claimJobs, NIL_UUID } from '../../src/store/index.js';
import { client, collectPages, createTestApp, expectError, type ApiClient, type Json } from '../helpers/api.js';
import { backend, createEmptyDb, createTestDb, type TestDb } from '../helpers/db.js';
import { seedOrg } from '../helpers/fixtures.js';
import { pgbouncerUnavailable, startPgBouncer, type PgBouncer } from '../helpers/pgbouncer.js';

/**
 * Stepwise with DATABASE_URL at a PgBouncer in transaction pooling mode (a
 * PgBouncer of our own, test/helpers/pgbouncer.ts: 3 server connections per
 * database, no max_prepared_statements), first as documented — LISTEN and
 * `Db.session` on STEPWISE_DIRECT_DATABASE_URL, named statements sent
 * unnamed — then without those settings, to show what they prevent.
 */
const unavailable = backend !== 'postgres' ? 'server backend only (set STEPWISE_TEST_DATABASE_URL)' : pgbouncerUnavailable();

/** Runs per organization; two organizations. */
const RUNS_EACH = 150;
/** PgBouncer's server connections per database (default_pool_size). */
const SERVER_POOL = 3;
/** Client connections of the Stepwise process to PgBouncer: many more than its server connections. */
const CLIENT_POOL = 24;
/** The fallback poll, as long as config allows: within the test's bounded waits only a NOTIFY can wake the worker. */
const POLL_MS = 600_000;
/** Bounds on waits for a condition (a broken setup fails here instead of hanging), not measurements. */
const RUNS_TIMEOUT_MS = 120_000;
const WAIT_TIMEOUT_MS = 30_000;

/** What PgBouncer logs for a packet from a server connection no client is linked to (a notification it drops). */
const DROPPED_PACKET = /got packet 'A' from server when not linked/g;

/** Poll `condition` until it holds; fail naming `what` after `timeoutMs` (a bound, not a measurement). */
async function waitUntil(what: string, condition: () => Promise<boolean> | boolean, timeoutMs = WAIT_TIMEOUT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`still not ${what} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const databaseOf = (url: string): string => new URL(url).pathname.slice(1);

/** Counts the worker's claim statements (named `stepwise_claim`; the Db sends them unnamed here) as they start and end. */
interface ClaimWatch {
  db: Db;
  started: number;
  finished: number;
  lastRows: number;
}

function watchClaims(base: Db): ClaimWatch {
  const watch = { started: 0, finished: 0, lastRows: -1 } as ClaimWatch;
  const query: Db['query'] = async <R>(text: string, params?: readonly unknown[], options?: QueryOptions) => {
    if (options?.name !== 'stepwise_claim') return base.query<R>(text, params, options);
    watch.started++;
    try {
      const result = await base.query<R>(text, params, options);
      watch.lastRows = result.rows.length;
      return result;
    } finally {
      watch.finished++;
    }
  };
  watch.db = new Proxy(base, {
    get(target, prop, receiver) {
      if (prop === 'query') return query;
      const value: unknown = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return watch;
}

interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

/** A connection of its own straight to PostgreSQL, past PgBouncer. */
async function directClient(url: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url, application_name: 'stepwise-test-direct' });
  await c.connect();
  return c;
}

describe.skipIf(unavailable !== null)(`through PgBouncer in transaction pooling${unavailable ? ` (skipped: ${unavailable})` : ''}`, () => {
  let bouncer: PgBouncer;

  beforeAll(async () => {
    bouncer = await startPgBouncer({ poolSize: SERVER_POOL });
  });
  afterAll(async () => {
    await bouncer?.stop();
  });

  describe('with STEPWISE_DIRECT_DATABASE_URL and STEPWISE_DB_PREPARED_STATEMENTS=false', () => {
    let t: TestDb;
    let runtime: Runtime | undefined;

    beforeAll(async () => {
      // Empty: the runtime applies every migration itself, on its session.
      t = await createEmptyDb();
      const database = databaseOf(t.url!);
      const config = loadConfig({
        DATABASE_URL: bouncer.url(database),
        STEPWISE_DIRECT_DATABASE_URL: t.url!,
        STEPWISE_DB_PREPARED_STATEMENTS: 'false',
        STEPWISE_DB_POOL_SIZE: String(CLIENT_POOL),
        STEPWISE_POLL_INTERVAL_MS: String(POLL_MS),
        LOG_LEVEL: 'silent',
      });
      // As `stepwise worker` opens it: migrations and partitions first.
      runtime = await openRuntime(config, { role: 'worker' });
    });
    afterAll(async () => {
      await runtime?.db.close();
      await t?.close();
    });

    it('migrated the empty database and left no session lock behind', async () => {
      const { rows: applied } = await runtime!.db.query<{ n: number }>('SELECT count(*)::int AS n FROM stepwise.schema_migrations');
      expect(applied[0]!.n).toBeGreaterThan(0);
      // The migration lock is session-level: taken and released on one direct connection. Through
      // transaction pooling the unlock can land on another server connection and the lock stays.
      const { rows: locks } = await t.db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
      );
      expect(locks[0]!.n).toBe(0);
    });

    it(`shares PgBouncer's ${SERVER_POOL} server connections among the process's ${CLIENT_POOL} client connections`, async () => {
      // Issued together: pg-pool hands the idle client connections (left from creating partitions) to the
      // first calls and opens one for each of the others (none idle, the pool not full), in callbacks queued
      // as they are asked for, all of which have run once setImmediate fires.
      const calls = Array.from({ length: CLIENT_POOL }, () => runtime!.db.query<{ pid: number }>('SELECT pg_backend_pid() AS pid'));
      await new Promise((r) => setImmediate(r));
      expect(runtime!.db.poolStats!().total).toBe(CLIENT_POOL);
      const pids = (await Promise.all(calls)).map((r) => r.rows[0]!.pid);
      expect(new Set(pids).size).toBeLessThanOrEqual(bouncer.poolSize);
    });

    it('runs every run of two organizations, woken by NOTIFY alone, with tenant isolation and no prepared-statement error', async () => {
      const db = runtime!.db;
      const lines: LogLine[] = [];
      const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line) as LogLine) });
      const claims = watchClaims(db);
      let jobsNotified = 0;
      // The same LISTEN connection as the worker's: it shows the enqueue notifications reached the process.
      const unlisten = await db.listen('stepwise_jobs', () => jobsNotified++);

      const app: FastifyInstance = await createTestApp(db);
      const worker = new Worker(claims.db, runtime!.config.worker, logger, 'pgbouncer-worker');
      try {
        const a: ApiClient = client(app, (await seedOrg(db, 'Org A')).key);
        const b: ApiClient = client(app, (await seedOrg(db, 'Org B')).key);
        const definition = { steps: [{ id: 'start', type: 'noop' }, { id: 'double', type: 'transform', expression: '{ "n": input.n * 2 }' }] };
        const createdA = await a.post('/v1/workflows', { name: 'A doubles', definition });
        const createdB = await b.post('/v1/workflows', { name: 'B doubles', definition });
        expect(createdA.status, JSON.stringify(createdA.body)).toBe(201);
        expect(createdB.status, JSON.stringify(createdB.body)).toBe(201);
        const wfA: Json = createdA.body;
        const wfB: Json = createdB.body;

        // Each organization lists its own workflow only, and cannot see the other's.
        expect((await a.get('/v1/workflows')).body.items.map((w: Json) => w.id)).toEqual([wfA.id]);
        expect((await b.get('/v1/workflows')).body.items.map((w: Json) => w.id)).toEqual([wfB.id]);
        expectError(await b.get(`/v1/workflows/${wfA.id}`), 404, 'NOT_FOUND');
        expectError(await a.post(`/v1/workflows/${wfB.id}/runs`, {}), 404, 'NOT_FOUND');

        await worker.start();
        // Its first claim found the queue empty: it now waits for a wake-up, with its poll 10 minutes away.
        await waitUntil('idle after an empty claim', () => claims.finished >= 1 && claims.started === claims.finished && claims.lastRows === 0);
        const claimsWhenIdle = claims.finished;
        expect(claimsWhenIdle).toBe(1);

        // Enqueued through the API (tenant transactions through PgBouncer), as 150 runs per organization at once.
        const runs = (from: number) => ({ runs: Array.from({ length: RUNS_EACH }, (_, i) => ({ input: { n: from + i } })) });
        const [batchA, batchB] = await Promise.all([a.post(`/v1/workflows/${wfA.id}/runs/batch`, runs(0)), b.post(`/v1/workflows/${wfB.id}/runs/batch`, runs(1000))]);
        expect(batchA.status, JSON.stringify(batchA.body)).toBe(202);
        expect(batchB.status, JSON.stringify(batchB.body)).toBe(202);

        const completed = async () =>
          (await t.db.query<{ n: number }>("SELECT count(*)::int AS n FROM stepwise.jobs WHERE status = 'COMPLETED'")).rows[0]!.n;
        await waitUntil(`all ${2 * RUNS_EACH} runs completed`, async () => (await completed()) === 2 * RUNS_EACH, RUNS_TIMEOUT_MS);
        const { rows: statuses } = await t.db.query<{ status: string; n: number }>('SELECT status, count(*)::int AS n FROM stepwise.jobs GROUP BY status');
        expect(statuses).toEqual([{ status: 'COMPLETED', n: 2 * RUNS_EACH }]);
        // Nothing but a notification could have ended the wait that began after the empty claim.
        expect(claims.finished).toBeGreaterThan(claimsWhenIdle);
        // Both enqueues' notifications reached the process's LISTEN connection (on the direct URL).
        await waitUntil('both enqueue notifications received', () => jobsNotified >= 2);

        // Each organization's run list (the list's statement budget and tenant scope, through PgBouncer) holds its own runs only.
        const jobsA = (await collectPages(a, '/v1/jobs', 100)).items;
        const jobsB = (await collectPages(b, '/v1/jobs', 100)).items;
        expect(jobsA).toHaveLength(RUNS_EACH);
        expect(jobsB).toHaveLength(RUNS_EACH);
        expect(new Set(jobsA.map((j: Json) => j.workflowId))).toEqual(new Set([wfA.id]));
        expect(new Set(jobsB.map((j: Json) => j.workflowId))).toEqual(new Set([wfB.id]));
        const one = await a.get(`/v1/jobs/${batchA.body.jobs[7].jobId}`);
        expect(one.body.result).toEqual({ n: 14 });
        expectError(await b.get(`/v1/jobs/${batchA.body.jobs[7].jobId}`), 404, 'NOT_FOUND');
      } finally {
        await worker.stop();
        await unlisten();
        await app.close();
      }

      const errors = lines.filter((l) => l.level >= 50);
      expect(errors, JSON.stringify(errors.slice(0, 3))).toEqual([]);
      expect(lines.filter((l) => /42P05|26000|prepared statement/.test(JSON.stringify(l)))).toEqual([]);
      expect(lines.map((l) => l.msg)).not.toContain('listener reconnected; polling for work and checking held jobs now');
      // No notification reached a server connection behind PgBouncer: every LISTEN was direct.
      expect((await bouncer.log()).match(DROPPED_PACKET)).toBeNull();
    });
  });

  describe('without them (the controls)', () => {
    let t: TestDb;

    beforeAll(async () => {
      t = await createTestDb();
    });
    afterAll(async () => {
      await t?.close();
    });

    it('a LISTEN through PgBouncer never receives a NOTIFY sent after it, while a direct one does', async () => {
      const channel = 'pgbouncer_control';
      const url = bouncer.url(databaseOf(t.url!));
      // DATABASE_URL at PgBouncer and no direct URL: the LISTEN connection goes through PgBouncer too.
      const bounced = new PostgresDb(url, { poolSize: 2, role: 'test' });
      // The documented configuration: its LISTEN connection goes to PostgreSQL directly.
      const direct = new PostgresDb(url, { poolSize: 2, role: 'test', directUrl: t.url! });
      const notifier = await directClient(t.url!);
      try {
        const viaBouncer: string[] = [];
        const viaDirect: string[] = [];
        await bounced.listen(channel, (p) => viaBouncer.push(p));
        await direct.listen(channel, (p) => viaDirect.push(p));
        const droppedBefore = ((await bouncer.log()).match(DROPPED_PACKET) ?? []).length;

        // Sent past PgBouncer, so no client of its pool is linked to a server connection meanwhile.
        await notifier.query('SELECT pg_notify($1, $2)', [channel, 'first']);
        await waitUntil('the direct listener notified', () => viaDirect.includes('first'));
        // The server connection that ran the LISTEN got it too, while lent to nobody: PgBouncer dropped it.
        // PostgreSQL sends a notification to a listening connection once, so it can never arrive later.
        await waitUntil('PgBouncer dropping the notification', async () => ((await bouncer.log()).match(DROPPED_PACKET) ?? []).length > droppedBefore);
        // A round trip on the bounced listener's own connection (a LISTEN of another channel): a notification
        // delivered to that connection would have been read before this statement's answer.
        await bounced.listen(`${channel}_other`, () => undefined);

        // The second notification, in order after the first on the direct listener.
        await notifier.query('SELECT pg_notify($1, $2)', [channel, 'second']);
        await waitUntil('the direct listener notified again', () => viaDirect.includes('second'));
        expect(viaDirect).toEqual(['first', 'second']);
        expect(viaBouncer).toEqual([]);
      } finally {
        await notifier.end();
        await bounced.close();
        await direct.close();
      }
    });

    it(`the named claim fails (42P05 or 26000) once more clients than PgBouncer's server connections prepare it; unnamed, it never does`, async () => {
      const url = bouncer.url(databaseOf(t.url!));
      // One client connection more than the pool has server connections. Each new client connection sends
      // Parse for `stepwise_claim`; PgBouncer 1.18 in transaction mode lends any server connection and keeps
      // what was prepared on it (no reset, none closed: server_idle_timeout = 0). A successful Parse leaves
      // the statement on its server connection for good, so at most poolSize of them can succeed and at
      // least one of poolSize + 1 meets a server connection that has it already: 42P05. Certain, not likely.
      const clients = bouncer.poolSize + 1;
      /** The claims at once, and how many client connections the pool opened for them (counted as they are asked for). */
      const claimAtOnce = async (db: PostgresDb) => {
        const calls = Array.from({ length: clients }, () => claimJobs(db, 'pgbouncer-control', 1, 30_000, NIL_UUID));
        const opened = db.poolStats().total;
        return { opened, results: await Promise.allSettled(calls) };
      };
      const off = new PostgresDb(url, { poolSize: clients, role: 'test', preparedStatements: false });
      const on = new PostgresDb(url, { poolSize: clients, role: 'test' });
      try {
        // Unnamed first (nothing is ever left on a server connection), twice: every claim answers.
        for (let round = 0; round < 2; round++) {
          const { opened, results } = await claimAtOnce(off);
          expect(opened).toBe(clients);
          expect(results.map((r) => r.status)).toEqual(Array(clients).fill('fulfilled'));
        }
        // Named, as STEPWISE_DB_PREPARED_STATEMENTS defaults to: the first round on new client connections, each
        // sending Parse; a second round, where the client connections that survived send Bind without Parse.
        const failures: string[] = [];
        for (let round = 0; round < 2; round++) {
          const { opened, results } = await claimAtOnce(on);
          if (round === 0) expect(opened).toBe(clients);
          for (const r of results) {
            if (r.status === 'fulfilled') continue;
            expect(r.reason).toBeInstanceOf(DatabaseError);
            failures.push(String((r.reason as DatabaseError).details.sqlstate));
          }
        }
        expect(failures.length).toBeGreaterThanOrEqual(1);
        expect(failures.every((code) => code === '42P05' || code === '26000'), failures.join(', ')).toBe(true);
      } finally {
        await off.close();
        await on.close();
      }
    });
  });
});
