import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/api/index.js';
import { Worker } from '../../src/engine/index.js';
import { credentialResolver } from '../../src/security/credentials.js';
import { generateKeyEntry, parseKeyRing } from '../../src/security/crypto.js';
import { client, expectError, type ApiClient, type Json } from '../helpers/api.js';
import { createTestDb, type TestDb } from '../helpers/db.js';
import { seedOrg, silentLogger, waitForJob, workerConfig } from '../helpers/fixtures.js';
import { haveLocalMysql, haveLocalPostgres, LOCAL_MYSQL, LOCAL_POSTGRES_URL } from '../helpers/local-databases.js';
import { EgressPolicy } from '../../src/net/address-policy.js';
import { LOCAL_TEST_EGRESS } from '../helpers/local-egress.js';

/**
 * The sql step against the local PostgreSQL server and MariaDB (the targets
 * are the same whichever backend Stepwise itself runs on). Every table lives
 * in a schema (PostgreSQL) or under a name prefix (MariaDB) unique to this
 * run, dropped at the end.
 */

const PASSWORD = `Pw-${randomBytes(6).toString('hex')}`;
const TAG = `sqlstep_${randomBytes(4).toString('hex')}`;
const PG_ADMIN = LOCAL_POSTGRES_URL;
const MY_ADMIN = LOCAL_MYSQL;
const HAVE_TARGETS = haveLocalPostgres && haveLocalMysql;
if (!HAVE_TARGETS) console.warn('sql step tests SKIPPED: they need PostgreSQL on 127.0.0.1:5432 and MariaDB on 127.0.0.1:3306 (.ci/run starts both)');
/** The step's output bound in this file's worker: a byte cut shows at ~60 rows of 1 kB. */
const MAX_BYTES = 64 * 1024;

let t: TestDb;
let app: FastifyInstance;
let api: ApiClient;
let orgId: string;
let worker: Worker;
let pgAdmin: pg.Client;
let myAdmin: mysql.Connection;
const ring = parseKeyRing(generateKeyEntry());

interface Engine {
  name: 'postgres' | 'mysql';
  credential: string;
  /** The items table, qualified. */
  items: string;
  /** Placeholder n (1-based). */
  p(n: number): string;
  sleep: string;
  /** A table that must not come into existence. */
  created: string;
  count(): Promise<number>;
  names(): Promise<string[]>;
  exists(table: string): Promise<boolean>;
  /** Statements running on the server whose text starts so. */
  running(prefix: string): Promise<number>;
}

const PG: Engine = {
  name: 'postgres',
  credential: 'pgdb',
  items: `${TAG}.items`,
  p: (n) => `$${n}`,
  sleep: 'SELECT pg_sleep(5) AS slept',
  created: `${TAG}.made`,
  count: async () => Number((await pgAdmin.query(`SELECT count(*) AS n FROM ${TAG}.items`)).rows[0].n),
  names: async () => (await pgAdmin.query(`SELECT name FROM ${TAG}.items ORDER BY id`)).rows.map((r) => r.name),
  exists: async (table) => (await pgAdmin.query('SELECT to_regclass($1) AS t', [table])).rows[0].t !== null,
  running: async (prefix) =>
    Number((await pgAdmin.query("SELECT count(*) AS n FROM pg_stat_activity WHERE state = 'active' AND starts_with(query, $1)", [prefix])).rows[0].n),
};

const MY: Engine = {
  name: 'mysql',
  credential: 'mydb',
  items: `${TAG}_items`,
  p: () => '?',
  sleep: 'SELECT SLEEP(5) AS slept',
  created: `${TAG}_made`,
  count: async () => Number(((await myAdmin.query(`SELECT count(*) AS n FROM ${TAG}_items`))[0] as Json[])[0].n),
  names: async () => ((await myAdmin.query(`SELECT name FROM ${TAG}_items ORDER BY id`))[0] as Json[]).map((r) => r.name),
  exists: async (table) => ((await myAdmin.query('SELECT count(*) AS n FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?', [table]))[0] as Json[])[0].n > 0,
  running: async (prefix) =>
    Number((((await myAdmin.query("SELECT count(*) AS n FROM information_schema.processlist WHERE command = 'Execute' AND info LIKE CONCAT(?, '%')", [prefix]))[0] as Json[])[0]).n),
};

const NAMES = Array.from({ length: 50 }, (_, i) => `item-${i + 1}`);

beforeAll(async () => {
  if (!HAVE_TARGETS) return;
  pgAdmin = new pg.Client({ connectionString: PG_ADMIN });
  await pgAdmin.connect();
  await pgAdmin.query(`CREATE SCHEMA ${TAG}`);
  await pgAdmin.query(`CREATE TABLE ${TAG}.items (id int PRIMARY KEY, name text NOT NULL)`);
  await pgAdmin.query(`INSERT INTO ${TAG}.items SELECT i, 'item-' || i FROM generate_series(1, 50) i`);

  myAdmin = await mysql.createConnection(MY_ADMIN);
  await myAdmin.query("SET time_zone = '+00:00'");
  await myAdmin.query(`CREATE TABLE ${TAG}_items (id INT PRIMARY KEY, name VARCHAR(100) NOT NULL)`);
  await myAdmin.query(`INSERT INTO ${TAG}_items (id, name) VALUES ${NAMES.map((_, i) => `(${i + 1}, 'item-${i + 1}')`).join(',')}`);
  await myAdmin.query(
    `CREATE TABLE ${TAG}_types (big BIGINT, num DECIMAL(10,2), flag TINYINT(1), at TIMESTAMP(3) NULL, day DATE, dt DATETIME, doc JSON, bytes VARBINARY(8), nothing VARCHAR(10), f DOUBLE)`,
  );
  await myAdmin.query(
    `INSERT INTO ${TAG}_types VALUES (9007199254740993, 12.50, 1, '2024-01-02 03:04:05.678', '2024-01-02', '2024-01-02 03:04:05', '{"a":[1,2]}', 0xDEADBEEF, NULL, 1.5)`,
  );

  t = await createTestDb();
  app = await buildApp({ db: t.db, logger: silentLogger, version: 'test', keyRing: ring, egressPolicy: new EgressPolicy(LOCAL_TEST_EGRESS) });
  const seeded = await seedOrg(t.db, 'SQL');
  orgId = seeded.organizationId;
  api = client(app, seeded.key);
  // PostgreSQL here trusts local connections: the password is sent nowhere, yet it is in the secret the step opens.
  await createCredential('postgres', PG.credential, `postgres://postgres:${PASSWORD}@127.0.0.1:5432/postgres`);
  await createCredential('mysql', MY.credential, 'mysql://root@127.0.0.1:3306/test');
  worker = new Worker(t.db, workerConfig({ httpMaxResponseBytes: MAX_BYTES }), silentLogger, 'sql-worker', { credentials: credentialResolver(t.db, ring) });
  void worker.start();
});

afterAll(async () => {
  await worker?.stop();
  await app?.close();
  await t?.close();
  await pgAdmin?.query(`DROP SCHEMA IF EXISTS ${TAG} CASCADE`).catch(() => undefined);
  await pgAdmin?.end();
  for (const table of ['items', 'types', 'made']) await myAdmin?.query(`DROP TABLE IF EXISTS ${TAG}_${table}`).catch(() => undefined);
  await myAdmin?.end();
});

async function createCredential(provider: string, name: string, connectionString: string): Promise<void> {
  const res = await api.post('/v1/credentials', { provider, name, secret: { connectionString } });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
}

async function start(steps: Json[], input: Json = {}): Promise<string> {
  const wf = await api.post('/v1/workflows', { name: `sql ${randomBytes(3).toString('hex')}`, definition: { steps } });
  expect(wf.status, JSON.stringify(wf.body)).toBe(201);
  const run = await api.post(`/v1/workflows/${wf.body.id}/runs`, { input });
  expect(run.status, JSON.stringify(run.body)).toBe(202);
  return run.body.jobId;
}

/** Poll until `check` holds (or fail after 15 s). */
async function until(check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition never held');
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Run one sql step to the job's end; returns the job. */
async function runSql(step: Json, input: Json = {}) {
  const jobId = await start([{ id: 'q', type: 'sql', ...step }], input);
  return waitForJob(t.db, orgId, jobId);
}

describe.skipIf(!HAVE_TARGETS).each([PG, MY])('sql step on $name', (db) => {
  it('binds params from the input: an injection attempt stays data', async () => {
    const attack = "x' OR '1'='1";
    const job = await runSql(
      {
        credential: db.credential,
        query: `SELECT id, name FROM ${db.items} WHERE id = ${db.p(1)} OR name = ${db.p(2)} ORDER BY id`,
        params: ['input.id', 'input.name'],
      },
      { id: 2, name: attack },
    );
    expect(job.status, job.errorMessage ?? '').toBe('COMPLETED');
    expect(job.result).toEqual({ rows: [{ id: 2, name: 'item-2' }], rowCount: 1, truncated: false, fields: [{ name: 'id' }, { name: 'name' }] });

    // Echoed back unchanged: the text never reached the SQL.
    const echo = await runSql({ credential: db.credential, query: `SELECT count(*) AS n, ${db.p(1)} AS echoed FROM ${db.items} WHERE name = ${db.p(2)}`, params: ['input.name', 'input.name'] }, { name: attack });
    expect(echo.status, echo.errorMessage ?? '').toBe('COMPLETED');
    expect((echo.result as Json).rows).toEqual([{ n: '0', echoed: attack }]);
    expect(await db.count()).toBe(50);
  });

  it('returns typed values JSON-safe', async () => {
    const query =
      db.name === 'postgres'
        ? `SELECT 9007199254740993::bigint AS big, 12.50::numeric AS num, true AS flag, '2024-01-02T03:04:05.678Z'::timestamptz AS at,
                  '2024-01-02'::date AS day, '2024-01-02 03:04:05'::timestamp AS dt, '{"a":[1,2]}'::jsonb AS doc, '\\xdeadbeef'::bytea AS bytes,
                  NULL::text AS nothing, 1.5::float8 AS f, ARRAY[1,2,3] AS ints, 'NaN'::float8 AS nan`
        : `SELECT big, num, flag, at, day, dt, doc, bytes, nothing, f FROM ${TAG}_types`;
    const job = await runSql({ credential: db.credential, query });
    expect(job.status, job.errorMessage ?? '').toBe('COMPLETED');
    const row = (job.result as Json).rows[0];
    const common = {
      big: '9007199254740993',
      num: '12.50',
      at: '2024-01-02T03:04:05.678Z',
      day: '2024-01-02',
      dt: '2024-01-02 03:04:05',
      doc: { a: [1, 2] },
      bytes: '3q2+7w==',
      nothing: null,
      f: 1.5,
    };
    if (db.name === 'postgres') expect(row).toEqual({ ...common, flag: true, ints: [1, 2, 3], nan: 'NaN' });
    else expect(row).toEqual({ ...common, flag: 1 });
  });

  it('cuts at maxRows and at the output byte bound, saying truncated', async () => {
    // Ten million rows, five kept: read as a stream and stopped, never loaded (either would run out of time or memory here).
    const huge = db.name === 'postgres' ? 'SELECT g FROM generate_series(1, 10000000) g' : 'SELECT seq AS g FROM seq_1_to_10000000';
    // 1,000 rows of ~1 kB against a 64 KiB bound: cut by bytes long before maxRows.
    const wideQuery =
      db.name === 'postgres' ? "SELECT g AS id, repeat('x', 1000) AS pad FROM generate_series(1, 1000) g" : "SELECT seq AS id, REPEAT('x', 1000) AS pad FROM seq_1_to_1000";
    const [capped, exact, streamed, wide] = await Promise.all(
      [
        { query: `SELECT id FROM ${db.items} ORDER BY id`, maxRows: 10 },
        { query: `SELECT id FROM ${db.items}`, maxRows: 50 },
        { query: huge, maxRows: 5 },
        { query: wideQuery, maxRows: 1000 },
      ].map((step) => runSql({ credential: db.credential, ...step })),
    );
    expect(capped!.result).toMatchObject({ rowCount: 10, truncated: true });
    expect((capped!.result as Json).rows.map((r: Json) => r.id)).toEqual(Array.from({ length: 10 }, (_, i) => i + 1));
    expect(exact!.result).toMatchObject({ rowCount: 50, truncated: false });

    expect(streamed!.status, streamed!.errorMessage ?? '').toBe('COMPLETED');
    // generate_series gives int4; MariaDB's seq is BIGINT UNSIGNED, which comes as a string.
    const g = (n: number) => (db.name === 'postgres' ? n : String(n));
    expect(streamed!.result).toEqual({ rows: [1, 2, 3, 4, 5].map((n) => ({ g: g(n) })), rowCount: 5, truncated: true, fields: [{ name: 'g' }] });

    const out = wide!.result as Json;
    expect(out.truncated).toBe(true);
    expect(out.rowCount).toBe(out.rows.length);
    // 64 KiB / ~1,020 bytes a row.
    expect(out.rowCount).toBeGreaterThan(50);
    expect(out.rowCount).toBeLessThan(70);
    expect(Buffer.byteLength(JSON.stringify(out.rows))).toBeLessThanOrEqual(MAX_BYTES);
  });

  it('refuses INSERT, UPDATE, DELETE and CREATE with SQL_READ_ONLY, changing nothing', async () => {
    const writes = [
      `INSERT INTO ${db.items} (id, name) VALUES (999, 'new')`,
      `UPDATE ${db.items} SET name = 'changed'`,
      `DELETE FROM ${db.items}`,
      `CREATE TABLE ${db.created} (id int)`,
    ];
    const jobs = await Promise.all(writes.map((query) => start([{ id: 'q', type: 'sql', credential: db.credential, query }])));
    for (const [i, jobId] of jobs.entries()) {
      const job = await waitForJob(t.db, orgId, jobId);
      expect(job.status, writes[i]).toBe('FAILED');
      expect(job.errorCode, `${writes[i]}: ${job.errorMessage}`).toBe('SQL_READ_ONLY');
    }
    expect(await db.count()).toBe(50);
    expect(await db.names()).toEqual(NAMES);
    expect(await db.exists(db.name === 'postgres' ? db.created : `${TAG}_made`)).toBe(false);
    const stream = await api.get(`/v1/jobs/${jobs[0]}/stream`);
    const failed = stream.body.items.find((r: Json) => r.kind === 'STEP_FAILED');
    expect(failed.data).toMatchObject({ code: 'SQL_READ_ONLY' });
  });

  it('refuses more than one statement', async () => {
    const [both, reads] = await Promise.all([
      runSql({ credential: db.credential, query: `SELECT 1; DELETE FROM ${db.items}` }),
      runSql({ credential: db.credential, query: 'SELECT 1 AS a; SELECT 2 AS b' }),
    ]);
    expect(both!.status).toBe('FAILED');
    expect(both!.errorCode).toBe('SQL_ERROR');
    expect(reads!.errorCode).toBe('SQL_ERROR');
    expect(await db.count()).toBe(50);
    const stream = await api.get(`/v1/jobs/${reads!.id}/stream`);
    const failed = stream.body.items.find((r: Json) => r.kind === 'STEP_FAILED');
    expect(failed.data).toMatchObject(db.name === 'postgres' ? { sqlstate: '42601' } : { errno: 1064 });
  });

  it('stops a statement past timeoutMs with SQL_TIMEOUT', async () => {
    const job = await runSql({ credential: db.credential, query: db.sleep, timeoutMs: 300 });
    expect(job.status).toBe('FAILED');
    expect(job.errorCode, job.errorMessage ?? '').toBe('SQL_TIMEOUT');
    expect(job.errorMessage).toContain('300 ms');
  });

  it('a cancelled job stops its statement on the server too', async () => {
    const marker = `SELECT ${db.name === 'postgres' ? 'pg_sleep' : 'SLEEP'}(60) AS ${TAG}`;
    const jobId = await start([{ id: 'q', type: 'sql', credential: db.credential, query: marker, timeoutMs: 120_000 }]);
    await until(async () => (await db.running(marker)) === 1);
    expect((await api.post(`/v1/jobs/${jobId}/cancel`)).status).toBe(202);
    // Without the abort the step would sleep 60 s: past waitForJob's 20 s.
    const job = await waitForJob(t.db, orgId, jobId);
    expect(job.status).toBe('CANCELLED');
    await until(async () => (await db.running(marker)) === 0);
  });

  it('fails SQL_CONNECTION without the password when the server does not answer', async () => {
    const name = `${db.name}_down`;
    const scheme = db.name === 'postgres' ? 'postgres' : 'mysql';
    await createCredential(db.name, name, `${scheme}://someone:${PASSWORD}@127.0.0.1:1/somedb`);
    const job = await runSql({ credential: name, query: 'SELECT 1', params: [] });
    expect(job.status).toBe('FAILED');
    expect(job.errorCode).toBe('SQL_CONNECTION');
    expect(job.errorMessage).toContain('127.0.0.1:1');
    expect(job.errorMessage).not.toContain(PASSWORD);
    const stream = await api.get(`/v1/jobs/${job.id}/stream`);
    expect(JSON.stringify(stream.body)).not.toContain(PASSWORD);
  });
});

describe.skipIf(!HAVE_TARGETS)('sql step credentials and definitions', () => {
  it('a refused login is SQL_CONNECTION naming the user, not the password', async () => {
    await createCredential('mysql', 'my_denied', `mysql://nobody:${PASSWORD}@127.0.0.1:3306/test`);
    const job = await runSql({ credential: 'my_denied', query: 'SELECT 1' });
    expect(job.errorCode).toBe('SQL_CONNECTION');
    expect(job.errorMessage).toContain('nobody');
    expect(job.errorMessage).not.toContain(PASSWORD);
  });

  it('a connection string URL parsing refuses fails SQL_CREDENTIAL without echoing it', async () => {
    await createCredential('postgres', 'pg_malformed', `postgres://u:${PASSWORD}@[not-a-host/db`);
    const job = await runSql({ credential: 'pg_malformed', query: 'SELECT 1' });
    expect(job.errorCode).toBe('SQL_CREDENTIAL');
    expect(job.errorMessage).not.toContain(PASSWORD);
    const res = await api.post('/v1/credentials', { provider: 'openai', name: 'not_sql', secret: { apiKey: 'sk-test-key-1234' } });
    expect(res.status).toBe(201);
    const wrong = await runSql({ credential: 'not_sql', query: 'SELECT 1' });
    expect(wrong.errorCode).toBe('SQL_CREDENTIAL');
    expect(wrong.errorMessage).toContain('openai');
  });

  it('the output never holds the password, even where the database echoes it', async () => {
    // current_setting would not show it; the param carries it back from the step's own scope.
    const job = await runSql({ credential: PG.credential, query: 'SELECT $1::text AS leaked', params: ['credentials.pgdb.connectionString'] });
    expect(job.status, job.errorMessage ?? '').toBe('COMPLETED');
    expect(JSON.stringify(job.result)).not.toContain(PASSWORD);
  });

  it('refuses bad definitions at save with 400 naming the field', async () => {
    const save = (step: Json) => api.post('/v1/workflows', { name: 'bad sql', definition: { steps: [{ id: 'q', type: 'sql', ...step }] } });
    const cases: [Json, string, string][] = [
      [{ query: 'SELECT 1' }, '/definition/steps/0/credential', 'required'],
      [{ credential: 'pgdb' }, '/definition/steps/0/query', 'required'],
      [{ credential: 'pgdb', query: '   ' }, '/definition/steps/0/query', 'pattern'],
      [{ credential: 'pgdb', query: 'SELECT 1', maxRows: 10_001 }, '/definition/steps/0/maxRows', '10000'],
      [{ credential: 'pgdb', query: 'SELECT 1', timeoutMs: 600_001 }, '/definition/steps/0/timeoutMs', '600000'],
      [{ credential: 'pgdb', query: 'SELECT $1', params: ['input.('] }, '/definition/steps/0/params/0', 'JSONata'],
      [{ credential: 'not a name', query: 'SELECT 1' }, '/definition/steps/0/credential', 'pattern'],
      [{ credential: 'pgdb', query: 'SELECT 1', params: Array.from({ length: 101 }, () => 'input.x') }, '/definition/steps/0/params', '100'],
    ];
    for (const [step, path, words] of cases) {
      const error = expectError(await save(step), 400, 'VALIDATION');
      expect(error.details.path, JSON.stringify(step)).toBe(path);
      expect(error.message, JSON.stringify(step)).toContain(words);
    }
  });
});
