import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { LOCK_KEYS, loadMigrations, migrate, migrationChecksum, NO_TRANSACTION_MARKER, PgliteDb, PostgresDb, type Migration } from '../../src/db/index.js';
import { LEGACY_CHECKSUMS } from '../../src/db/migration-checksums.js';
import {
  MigrationChangedError,
  MigrationIncompleteError,
  MigrationLockTimeoutError,
  SchemaTooNewError,
} from '../../src/errors/index.js';
import { backend, createEmptyDb, createTestDb, type TestDb } from '../helpers/db.js';
import { runCli } from '../helpers/cli.js';

/** A directory of numbered migration files, for loadMigrations. */
async function migrationDir(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'stepwise-migrations-'));
  for (const [name, sql] of Object.entries(files)) await writeFile(join(dir, name), sql);
  return dir;
}

async function recorded(t: TestDb): Promise<{ version: number; checksum: string }[]> {
  const { rows } = await t.db.query<{ version: number; checksum: string }>(
    'SELECT version, checksum FROM stepwise.schema_migrations ORDER BY version',
  );
  return rows;
}

async function indexState(t: TestDb, name: string): Promise<{ valid: boolean } | undefined> {
  const { rows } = await t.db.query<{ valid: boolean }>(
    `SELECT i.indisvalid AS valid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
      JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'stepwise' AND c.relname = $1`,
    [name],
  );
  return rows[0];
}

/** Resolve once `check` holds, polling; throw after 15 s so a failure does not hang the file. */
async function until(check: () => Promise<boolean> | boolean, what = 'condition'): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const CREATE_T = 'CREATE TABLE stepwise.mig_t (id int PRIMARY KEY, a int NOT NULL);\nINSERT INTO stepwise.mig_t VALUES (1, 1), (2, 1);\n';

describe('migrations: temporary migration lists', () => {
  let t: TestDb;
  const dirs: string[] = [];
  beforeAll(async () => {
    t = await createEmptyDb();
  });
  afterAll(() => t?.close());
  // Each test starts from a database with no schema (cheaper than a new database per test).
  afterEach(async () => {
    await t.db.exec('DROP SCHEMA IF EXISTS stepwise CASCADE');
    await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
  });
  const load = async (files: Record<string, string>): Promise<Migration[]> => {
    const dir = await migrationDir(files);
    dirs.push(dir);
    return loadMigrations(dir);
  };

  it('refuses to run against a schema newer than its migrations, naming both versions', async () => {
    const newer = await load({ '0001_t.sql': CREATE_T, '0002_b.sql': 'ALTER TABLE stepwise.mig_t ADD COLUMN b int;' });
    expect((await migrate(t.db, newer)).applied).toEqual([1, 2]);
    const older = newer.slice(0, 1);
    const err = await migrate(t.db, older).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SchemaTooNewError);
    expect((err as Error).message).toBe('database schema is at version 2, this Stepwise knows up to 1: upgrade this process');
  });

  it('runs a no-transaction migration statement by statement (CREATE INDEX CONCURRENTLY) and records it once', async () => {
    const list = await load({
      '0001_t.sql': CREATE_T,
      '0002_idx.sql': `${NO_TRANSACTION_MARKER}\n-- Built without blocking writers.\nCREATE INDEX CONCURRENTLY mig_t_a_idx ON stepwise.mig_t (a);\nCREATE INDEX CONCURRENTLY mig_t_id_a_idx ON stepwise.mig_t (id, a);\n`,
    });
    expect(list.map((m) => m.noTransaction)).toEqual([false, true]);
    expect((await migrate(t.db, list)).applied).toEqual([1, 2]);
    expect(await indexState(t, 'mig_t_a_idx')).toEqual({ valid: true });
    expect(await indexState(t, 'mig_t_id_a_idx')).toEqual({ valid: true });
    expect((await recorded(t)).map((r) => r.version)).toEqual([1, 2]);
    // Statements without IF NOT EXISTS: a second run would fail if the record did not stop it.
    expect((await migrate(t.db, list)).applied).toEqual([]);
    // The session gave back its setting and its session-level lock.
    const { rows } = await t.db.query<{ timeout: string }>("SELECT current_setting('lock_timeout') AS timeout");
    expect(rows[0]!.timeout).toBe('0');
    const locks = await t.db.query<{ n: number }>(
      // This database's locks only: other test files migrate their own databases at the same time.
      "SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND objid = $1 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
      [LOCK_KEYS.migrations],
    );
    expect(locks.rows[0]!.n).toBe(0);
  });

  it('a failed no-transaction migration says it may have left partial work, is not recorded, and re-runs once fixed', async () => {
    const broken = await load({
      '0001_t.sql': CREATE_T,
      // Two rows share a=1: the unique index fails after the first statement committed.
      '0002_idx.sql': `${NO_TRANSACTION_MARKER}\nCREATE INDEX CONCURRENTLY IF NOT EXISTS mig_t_a_idx ON stepwise.mig_t (a);\nCREATE UNIQUE INDEX CONCURRENTLY mig_t_a_key ON stepwise.mig_t (a);\n`,
    });
    const err = await migrate(t.db, broken).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MigrationIncompleteError);
    expect((err as Error).message).toMatch(/migration 0002_idx runs outside a transaction and failed at statement 2 of 2/);
    expect((err as Error).message).toMatch(/partial work/);
    expect((await recorded(t)).map((r) => r.version)).toEqual([1]);
    expect(await indexState(t, 'mig_t_a_idx')).toEqual({ valid: true });
    if (backend === 'postgres') {
      // The failed CREATE INDEX CONCURRENTLY left an INVALID index behind, as the error warns.
      expect(await indexState(t, 'mig_t_a_key')).toEqual({ valid: false });
    }
    await t.db.exec('UPDATE stepwise.mig_t SET a = id');
    const fixed = await load({
      '0001_t.sql': CREATE_T,
      '0002_idx.sql': `${NO_TRANSACTION_MARKER}\nCREATE INDEX CONCURRENTLY IF NOT EXISTS mig_t_a_idx ON stepwise.mig_t (a);\nDROP INDEX CONCURRENTLY IF EXISTS stepwise.mig_t_a_key;\nCREATE UNIQUE INDEX CONCURRENTLY mig_t_a_key ON stepwise.mig_t (a);\n`,
    });
    expect((await migrate(t.db, fixed)).applied).toEqual([2]);
    expect(await indexState(t, 'mig_t_a_key')).toEqual({ valid: true });
  });

  it('accepts a migration whose comments changed, refuses one whose statement changed', async () => {
    const first = await load({ '0001_t.sql': CREATE_T });
    await migrate(t.db, first);
    const reworded = await load({ '0001_t.sql': `-- The table of this test, explained.\n${CREATE_T.replace('(id int', '(\n  id int')}` });
    expect((await migrate(t.db, reworded)).applied).toEqual([]);
    const changed = await load({ '0001_t.sql': CREATE_T.replace('a int NOT NULL', 'a bigint NOT NULL') });
    const err = await migrate(t.db, changed).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MigrationChangedError);
    expect((err as Error).message).toMatch(/migration 0001_t was changed after it was applied/);
  });
});

describe('migrations: databases recorded with the old full-text checksums', () => {
  let t: TestDb;
  beforeAll(async () => {
    t = await createTestDb();
  });
  afterAll(() => t?.close());

  const recordLegacy = async () => {
    for (const [version, legacy] of Object.entries(LEGACY_CHECKSUMS)) {
      await t.db.query('UPDATE stepwise.schema_migrations SET checksum = $2 WHERE version = $1', [Number(version), legacy.fullText]);
    }
  };

  it('migrate without error and end with the current checksums', async () => {
    await recordLegacy();
    const list = await loadMigrations();
    expect((await migrate(t.db, list)).applied).toEqual([]);
    const current = new Map(list.map((m) => [m.version, m.checksum]));
    const rows = await recorded(t);
    expect(rows.length).toBe(list.length);
    for (const r of rows) expect(r.checksum).toBe(current.get(r.version));
  });

  it('still refuse a real change of a statement', async () => {
    await recordLegacy();
    const list = await loadMigrations();
    const edited = list.map((m) =>
      m.version === 3 ? { ...m, sql: m.sql.replace('retry_count         integer NOT NULL DEFAULT 0', 'retry_count bigint NOT NULL DEFAULT 0') } : m,
    ).map((m) => ({ ...m, checksum: migrationChecksum(m.sql) }));
    expect(edited[2]!.checksum).not.toBe(list[2]!.checksum);
    const err = await migrate(t.db, edited).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MigrationChangedError);
    expect((err as Error).message).toMatch(/^migration 0003_durable was changed/);
    // Versions before the refused one were rewritten; the refused one keeps its record.
    const rows = new Map((await recorded(t)).map((r) => [r.version, r.checksum]));
    expect(rows.get(3)).toBe(LEGACY_CHECKSUMS[3]!.fullText);
    expect(rows.get(2)).toBe(list[1]!.checksum);
  });
});

describe('a process started against a newer schema', () => {
  let t: TestDb | undefined;
  let dataDir: string | undefined;
  afterAll(async () => {
    await t?.close();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('refuses to start, naming both versions', async () => {
    const known = (await loadMigrations()).length;
    const target: string[] = [];
    const recordFuture = "INSERT INTO stepwise.schema_migrations (version, name, checksum) VALUES (999, 'from_the_future', 'x')";
    if (backend === 'postgres') {
      t = await createTestDb();
      await t.db.exec(recordFuture);
      target.push('--database-url', t.url!);
    } else {
      dataDir = await mkdtemp(join(tmpdir(), 'stepwise-newer-'));
      const db = await PgliteDb.open({ dataDir });
      await migrate(db);
      await db.exec(recordFuture);
      await db.close();
      target.push('--data-dir', dataDir);
    }
    const res = await runCli(['org', 'create', '--name', 'too old', ...target]);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(`database schema is at version 999, this Stepwise knows up to ${known}: upgrade this process`);
    expect(res.stdout).not.toContain('apiKey');
  });
});

describe.skipIf(backend !== 'postgres')('migrations on a server: locks', () => {
  let t: TestDb;
  let dir: string;
  beforeAll(async () => {
    t = await createEmptyDb();
  });
  afterAll(async () => {
    await t?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });
  afterEach(async () => {
    await t.db.exec('DROP SCHEMA IF EXISTS stepwise CASCADE');
  });

  it('a migration waiting on a busy table fails with a clear error, applies nothing, and applies once the table is free', async () => {
    dir = await migrationDir({
      '0001_t.sql': CREATE_T,
      '0002_alter.sql': 'CREATE TABLE stepwise.mig_side (id int);\nALTER TABLE stepwise.mig_t ADD COLUMN b int;\n',
    });
    const list = await loadMigrations(dir);
    await migrate(t.db, list.slice(0, 1));
    const holder = new pg.Client({ connectionString: t.url! });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT * FROM stepwise.mig_t'); // ACCESS SHARE until commit: ALTER TABLE must wait
      const err = await migrate(t.db, list, { lockTimeoutMs: 200 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(MigrationLockTimeoutError);
      expect((err as Error).message).toMatch(/^migration 0002_alter could not lock a table within its 200 ms lock timeout/);
      expect((await recorded(t)).map((r) => r.version)).toEqual([1]);
      const side = await t.db.query("SELECT to_regclass('stepwise.mig_side') AS t");
      expect(side.rows[0]).toEqual({ t: null });
      await holder.query('COMMIT');
    } finally {
      await holder.end();
    }
    expect((await migrate(t.db, list, { lockTimeoutMs: 200 })).applied).toEqual([2]);
  });

  it('a process waiting to migrate does not deadlock with CREATE INDEX CONCURRENTLY in the one migrating', async () => {
    const files = {
      '0001_t.sql': CREATE_T,
      '0002_idx.sql': `${NO_TRANSACTION_MARKER}\nCREATE INDEX CONCURRENTLY mig_t_a_idx ON stepwise.mig_t (a);\n`,
    };
    const d = await migrationDir(files);
    const list = await loadMigrations(d);
    await migrate(t.db, list.slice(0, 1));
    const lines: { msg?: string }[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as { msg?: string }) });
    const [a, b] = [new PostgresDb(t.url!, { poolSize: 1, role: 'test' }), new PostgresDb(t.url!, { poolSize: 1, role: 'test' })];
    // An open write on the table makes the index build wait, with the migration lock held.
    const writer = new pg.Client({ connectionString: t.url! });
    await writer.connect();
    try {
      await writer.query('BEGIN');
      await writer.query('UPDATE stepwise.mig_t SET a = a');
      const first = migrate(a, list);
      await until(async () => {
        const { rows } = await t.db.query(
          "SELECT 1 FROM pg_stat_activity WHERE query LIKE '%CREATE INDEX CONCURRENTLY%' AND wait_event_type = 'Lock' AND datname = current_database() AND pid <> pg_backend_pid()",
        );
        return rows.length > 0;
      }, 'the index build to wait');
      // A second process arrives while the index is being built, and waits its turn.
      const second = migrate(b, list, { logger });
      await until(() => lines.some((l) => l.msg === 'waiting for another process to finish migrating the database'), 'the second process to wait');
      await writer.query('COMMIT');
      // The build then waits for every older snapshot: a waiter holding one would deadlock it.
      const results = await Promise.all([first, second]);
      expect(results.map((r) => r.applied)).toEqual([[2], []]);
      expect(await indexState(t, 'mig_t_a_idx')).toEqual({ valid: true });
    } finally {
      await writer.end();
      await Promise.all([a.close(), b.close()]);
      await rm(d, { recursive: true, force: true });
    }
  });

  it('processes migrating at once run a no-transaction migration exactly once', async () => {
    const more = await migrationDir({
      '0001_t.sql': CREATE_T,
      '0002_alter.sql': 'CREATE TABLE stepwise.mig_side (id int);\nALTER TABLE stepwise.mig_t ADD COLUMN b int;\n',
      // No IF NOT EXISTS: a second concurrent run would fail on the existing index.
      '0003_idx.sql': `${NO_TRANSACTION_MARKER}\nCREATE INDEX CONCURRENTLY mig_t_b_idx ON stepwise.mig_t (b);\n`,
      '0004_after.sql': 'ALTER TABLE stepwise.mig_t ADD COLUMN c int;\n',
    });
    const list = await loadMigrations(more);
    const dbs = Array.from({ length: 3 }, () => new PostgresDb(t.url!, { poolSize: 2, role: 'test' }));
    try {
      const results = await Promise.all(dbs.map((db) => migrate(db, list)));
      expect(results.flatMap((r) => r.applied).sort()).toEqual([1, 2, 3, 4]);
      expect(await indexState(t, 'mig_t_b_idx')).toEqual({ valid: true });
    } finally {
      await Promise.all(dbs.map((db) => db.close()));
      await rm(more, { recursive: true, force: true });
    }
  });
});
