import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import {
  DatabaseError,
  MigrationChangedError,
  MigrationIncompleteError,
  MigrationLockTimeoutError,
  SchemaTooNewError,
} from '../errors/index.js';
import { isLockNotAvailable } from './errors.js';
import { LOCK_KEYS } from './lock-keys.js';
import { compareChecksum, migrationChecksum } from './migration-checksums.js';
import { normaliseSql, splitStatements } from './sql-text.js';
import type { Logger } from '../util/logger.js';
import type { Db, Queryable } from './types.js';

const MIGRATIONS_DIR = fileURLToPath(new URL('./migrations/', import.meta.url));
const FILE_RE = /^(\d{4})_([a-z0-9_]+)\.sql$/;

/**
 * First line of a migration that must run outside a transaction (CREATE
 * INDEX CONCURRENTLY cannot run inside one). Its statements then run one by
 * one, each committing on its own, so a failure can leave the earlier ones
 * applied: write them to be re-runnable (IF NOT EXISTS).
 */
export const NO_TRANSACTION_MARKER = '-- stepwise:no-transaction';

/**
 * How long a migration statement waits for a table lock before giving up.
 * A waiting ALTER TABLE holds its place in the table's lock queue, so every
 * reader and writer that arrives after it waits too: a migration blocked by
 * one long transaction would stall the whole service. Failing after a few
 * seconds releases them, and the migration is retried at the next start.
 */
export const DEFAULT_MIGRATION_LOCK_TIMEOUT_MS = 5_000;

/** Mean pause between two tries of the migration lock while another process holds it. */
const LOCK_POLL_MS = 100;

const CONCURRENTLY = /\bCONCURRENTLY\b/i;

export interface Migration {
  version: number;
  name: string;
  sql: string;
  /** migrationChecksum(sql): comments and white space do not count. */
  checksum: string;
  /** Runs outside a transaction, statement by statement (the file's first line is NO_TRANSACTION_MARKER). */
  noTransaction?: boolean;
}

export interface MigrateResult {
  applied: number[];
  total: number;
}

export interface MigrateOptions {
  /** lock_timeout of each migration's statements, in ms (default DEFAULT_MIGRATION_LOCK_TIMEOUT_MS). */
  lockTimeoutMs?: number;
  /** Told when this process waits for another one's migrations. */
  logger?: Logger;
}

/** Read the numbered migration files of `dir` in order. */
export async function loadMigrations(dir: string = MIGRATIONS_DIR): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((f) => FILE_RE.test(f)).sort();
  const migrations: Migration[] = [];
  for (const file of files) {
    const m = FILE_RE.exec(file)!;
    const sql = await readFile(join(dir, file), 'utf8');
    const firstLine = sql.split('\n', 1)[0]!.trim();
    migrations.push({
      version: Number(m[1]),
      name: m[2]!,
      sql,
      checksum: migrationChecksum(sql),
      noTransaction: firstLine === NO_TRANSACTION_MARKER,
    });
  }
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw new DatabaseError(`migration numbering has a gap or duplicate at ${m.version}_${m.name}`);
  });
  return migrations;
}

/**
 * Apply pending migrations in order, on one session that holds the
 * migration advisory lock for the whole run: processes starting at once
 * take turns, and the later ones find everything recorded. A migration runs
 * in its own transaction (or, marked NO_TRANSACTION_MARKER, statement by
 * statement) with `lock_timeout` set, and is recorded only once it
 * succeeded.
 *
 * Refuses, with typed errors: a database whose schema is newer than these
 * migrations (SchemaTooNewError: this process is older than the schema), an
 * applied migration whose statements changed (MigrationChangedError), a
 * migration that could not get a table lock in time
 * (MigrationLockTimeoutError, nothing applied), and a failed migration run
 * outside a transaction (MigrationIncompleteError, may have left partial work).
 */
export async function migrate(db: Db, migrations?: Migration[], options: MigrateOptions = {}): Promise<MigrateResult> {
  const list = migrations ?? (await loadMigrations());
  const lockTimeoutMs = options.lockTimeoutMs ?? DEFAULT_MIGRATION_LOCK_TIMEOUT_MS;
  const known = list.reduce((max, m) => Math.max(max, m.version), 0);
  return db.session(async (conn) => {
    await takeMigrationLock(conn, options.logger);
    try {
      await inTransaction(conn, async () => {
        await conn.exec(`
          CREATE SCHEMA IF NOT EXISTS stepwise;
          CREATE TABLE IF NOT EXISTS stepwise.schema_migrations (
            version    integer PRIMARY KEY,
            name       text NOT NULL,
            checksum   text NOT NULL,
            applied_at timestamptz NOT NULL DEFAULT now()
          );`);
        const { rows } = await conn.query<{ version: number | null }>('SELECT max(version) AS version FROM stepwise.schema_migrations');
        const current = rows[0]?.version ?? 0;
        if (current > known) throw new SchemaTooNewError(current, known);
      });
      const applied: number[] = [];
      for (const m of list) {
        const didApply = m.noTransaction
          ? await applyOutsideTransaction(conn, m, lockTimeoutMs)
          : await applyInTransaction(conn, m, lockTimeoutMs);
        if (didApply) applied.push(m.version);
      }
      return { applied, total: list.length };
    } finally {
      await conn.query('SELECT pg_advisory_unlock($1)', [LOCK_KEYS.migrations]).catch(() => undefined);
    }
  });
}

/**
 * Take the session-level migration lock, polling. Polled rather than
 * waited for: a session blocked in pg_advisory_lock holds a snapshot while
 * it waits, and a CREATE INDEX CONCURRENTLY run by the lock's holder waits
 * for every older snapshot to go, so the two would deadlock. Between polls
 * this session holds nothing.
 */
async function takeMigrationLock(conn: Queryable, logger: Logger | undefined): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const { rows } = await conn.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1) AS ok', [LOCK_KEYS.migrations]);
    if (rows[0]?.ok) return;
    if (attempt === 0) logger?.info('waiting for another process to finish migrating the database');
    await sleep(LOCK_POLL_MS / 2 + Math.random() * LOCK_POLL_MS);
  }
}

/** Run `fn` between BEGIN and COMMIT on the session, rolling back when it throws. */
async function inTransaction<T>(conn: Queryable, fn: () => Promise<T>): Promise<T> {
  await conn.query('BEGIN');
  try {
    const result = await fn();
    await conn.query('COMMIT');
    return result;
  } catch (err) {
    await conn.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

function label(m: Migration): string {
  return `${String(m.version).padStart(4, '0')}_${m.name}`;
}

function isLockTimeout(err: unknown): boolean {
  return isLockNotAvailable(err);
}

/**
 * Whether `m` is already applied. A record made under the old full-text
 * checksum of the same statements is rewritten to the current checksum.
 */
async function isRecorded(q: Queryable, m: Migration): Promise<boolean> {
  const { rows } = await q.query<{ checksum: string }>('SELECT checksum FROM stepwise.schema_migrations WHERE version = $1', [m.version]);
  const recorded = rows[0]?.checksum;
  if (recorded === undefined) return false;
  switch (compareChecksum(m.version, recorded, m.checksum)) {
    case 'match':
      return true;
    case 'legacy':
      await q.query('UPDATE stepwise.schema_migrations SET checksum = $2 WHERE version = $1', [m.version, m.checksum]);
      return true;
    case 'changed':
      throw new MigrationChangedError(label(m), m.version);
  }
}

async function record(q: Queryable, m: Migration): Promise<void> {
  await q.query('INSERT INTO stepwise.schema_migrations (version, name, checksum) VALUES ($1, $2, $3)', [m.version, m.name, m.checksum]);
}

async function applyInTransaction(conn: Queryable, m: Migration, lockTimeoutMs: number): Promise<boolean> {
  return inTransaction(conn, async () => {
    if (await isRecorded(conn, m)) return false;
    await conn.query("SELECT set_config('lock_timeout', $1, true)", [`${lockTimeoutMs}ms`]);
    try {
      await conn.exec(m.sql);
    } catch (err) {
      if (isLockTimeout(err)) throw new MigrationLockTimeoutError(label(m), lockTimeoutMs, { cause: err });
      throw err;
    }
    await record(conn, m);
    return true;
  });
}

/**
 * A migration no transaction can hold: its statements one by one, each
 * committing on its own (a multi-statement string would run as one implicit
 * transaction), recorded after the last one succeeded. CONCURRENTLY
 * statements run without lock_timeout: they wait for other transactions by
 * design, without blocking writers, and one that timed out would leave an
 * INVALID index behind.
 */
async function applyOutsideTransaction(conn: Queryable, m: Migration, lockTimeoutMs: number): Promise<boolean> {
  if (await isRecorded(conn, m)) return false;
  const statements = splitStatements(m.sql);
  try {
    for (let i = 0; i < statements.length; i++) {
      const statement = statements[i]!;
      const timeout = CONCURRENTLY.test(normaliseSql(statement)) ? '0' : `${lockTimeoutMs}ms`;
      await conn.query("SELECT set_config('lock_timeout', $1, false)", [timeout]);
      try {
        await conn.exec(statement);
      } catch (err) {
        throw new MigrationIncompleteError(label(m), i + 1, statements.length, { cause: err });
      }
    }
  } finally {
    await conn.query('RESET lock_timeout').catch(() => undefined);
  }
  await record(conn, m);
  return true;
}

/** Versions recorded as applied (empty when the schema does not exist yet). */
export async function findAppliedMigrations(db: Db): Promise<number[]> {
  const { rows } = await db.query<{ version: number }>(
    `SELECT version FROM stepwise.schema_migrations ORDER BY version`,
  ).catch(() => ({ rows: [] as { version: number }[] }));
  return rows.map((r) => r.version);
}
