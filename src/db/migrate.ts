import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { DatabaseError } from '../errors/index.js';
import type { Db } from './types.js';

/** Key of the transaction-scoped advisory lock every migration takes (any constant, shared by all processes). */
const MIGRATION_LOCK_KEY = 727_001;
const MIGRATIONS_DIR = fileURLToPath(new URL('./migrations/', import.meta.url));
const FILE_RE = /^(\d{4})_([a-z0-9_]+)\.sql$/;

export interface Migration {
  version: number;
  name: string;
  sql: string;
  checksum: string;
}

export interface MigrateResult {
  applied: number[];
  total: number;
}

/** Read the numbered migration files in order. */
export async function loadMigrations(dir: string = MIGRATIONS_DIR): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((f) => FILE_RE.test(f)).sort();
  const migrations: Migration[] = [];
  for (const file of files) {
    const m = FILE_RE.exec(file)!;
    const sql = await readFile(`${dir}/${file}`, 'utf8');
    migrations.push({
      version: Number(m[1]),
      name: m[2]!,
      sql,
      checksum: createHash('sha256').update(sql).digest('hex'),
    });
  }
  // Numbers are reserved per branch (parallel work takes 0005…0011 ahead of
  // merging), so a gap is allowed; two files with one number never are.
  migrations.forEach((m, i) => {
    const prev = migrations[i - 1];
    if (prev && m.version === prev.version) throw new DatabaseError(`migration number ${m.version} is used twice (${prev.name}, ${m.name})`);
  });
  return migrations;
}

/**
 * Apply pending migrations, each in its own transaction under a
 * transaction-scoped advisory lock: two processes starting at once queue on
 * the lock, and the second finds the migration already recorded and skips it.
 * An applied migration whose file changed is refused (forward-only).
 */
export async function migrate(db: Db, migrations?: Migration[]): Promise<MigrateResult> {
  const list = migrations ?? (await loadMigrations());
  await db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK_KEY]);
    await tx.exec(`
      CREATE SCHEMA IF NOT EXISTS stepwise;
      CREATE TABLE IF NOT EXISTS stepwise.schema_migrations (
        version    integer PRIMARY KEY,
        name       text NOT NULL,
        checksum   text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now()
      );`);
  });
  const applied: number[] = [];
  for (const m of list) {
    const didApply = await db.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK_KEY]);
      const { rows } = await tx.query<{ checksum: string }>(
        'SELECT checksum FROM stepwise.schema_migrations WHERE version = $1',
        [m.version],
      );
      if (rows[0]) {
        if (rows[0].checksum !== m.checksum) {
          throw new DatabaseError(`migration ${m.version}_${m.name} was changed after it was applied`, {
            version: m.version,
          });
        }
        return false;
      }
      await tx.exec(m.sql);
      await tx.query('INSERT INTO stepwise.schema_migrations (version, name, checksum) VALUES ($1, $2, $3)', [
        m.version,
        m.name,
        m.checksum,
      ]);
      return true;
    });
    if (didApply) applied.push(m.version);
  }
  return { applied, total: list.length };
}

/** Versions recorded as applied (empty when the schema does not exist yet). */
export async function findAppliedMigrations(db: Db): Promise<number[]> {
  const { rows } = await db.query<{ version: number }>(
    `SELECT version FROM stepwise.schema_migrations ORDER BY version`,
  ).catch(() => ({ rows: [] as { version: number }[] }));
  return rows.map((r) => r.version);
}
