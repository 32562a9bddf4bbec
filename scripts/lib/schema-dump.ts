/**
 * The schema of a freshly migrated database as pg_dump prints it, made
 * comparable across runs: shared by `npm run schema:dump` (which writes
 * src/db/schema.sql) and the test that fails when that file is out of date.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { migrate, PostgresDb, type ProcessRole } from '../../src/db/index.js';
import { createLogger } from '../../src/util/logger.js';

const run = promisify(execFile);

/** Where the dump is kept. */
export const SCHEMA_FILE = fileURLToPath(new URL('../../src/db/schema.sql', import.meta.url));

/** The first lines of the file, saying where it comes from. */
export const SCHEMA_HEADER = [
  '-- The whole Stepwise schema as the migrations in src/db/migrations leave a fresh',
  '-- database, for reading and reviewing. Generated: do not edit; run',
  '-- `npm run schema:dump` after adding a migration (a test fails until then).',
  '',
].join('\n');

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

/**
 * Lines that differ between runs, servers or pg_dump builds without any
 * schema difference: pg_dump's version lines, its session SETs and
 * search_path reset, and the random-keyed \restrict guards of newer
 * pg_dump builds.
 */
const VOLATILE_LINE = /^(-- Dumped (from database|by pg_dump) version |SET |SELECT pg_catalog\.set_config\('search_path'|\\(un)?restrict )/;

/**
 * Objects named after a month (execution_log_2031_05, its indexes…) are
 * partitions created at run time for the months around "now", not by a
 * migration: a dump taken in another month would differ.
 */
const MONTH_OBJECT = /^-- Name: [^;]*_\d{4}_\d{2}\b/;

/**
 * Normalise pg_dump's plain-text output: volatile lines and month objects
 * removed, runs of blank lines collapsed, the header prepended. Pure.
 */
export function normaliseDump(dump: string): string {
  // pg_dump separates objects with a "--\n-- Name: …; Type: …\n--" block.
  const blocks = dump.replace(/\r\n/g, '\n').split(/\n(?=--\n-- (?:Name|Data for Name): )/);
  const kept = blocks.filter((block) => !MONTH_OBJECT.test(block.split('\n')[1] ?? ''));
  const lines = kept
    .join('\n')
    .split('\n')
    .filter((line) => !VOLATILE_LINE.test(line))
    .map((line) => line.replace(/\s+$/, ''));
  const body = lines.join('\n').replace(/\n{3,}/g, '\n\n').trim();
  return `${SCHEMA_HEADER}\n${body}\n`;
}

/** pg_dump --schema-only of `databaseUrl`, owners left out (they depend on who migrated). */
export async function pgDumpSchema(databaseUrl: string, pgDump: string = process.env.PG_DUMP ?? 'pg_dump'): Promise<string> {
  const { stdout } = await run(pgDump, ['--schema-only', '--no-owner', `--dbname=${databaseUrl}`], {
    maxBuffer: 64 * 1024 * 1024,
  });
  return stdout;
}

/**
 * Create a scratch database on the server at `adminUrl` (from template0,
 * so nothing added to template1 leaks in), apply every migration, dump its
 * schema, drop it, and return the normalised dump.
 */
export async function dumpMigratedSchema(adminUrl: string, role: ProcessRole = 'cli'): Promise<string> {
  const name = `stepwise_schema_${process.pid}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name} TEMPLATE template0`);
    try {
      const url = withDatabase(adminUrl, name);
      const db = new PostgresDb(url, { poolSize: 2, role, logger: createLogger('warn') });
      try {
        await migrate(db);
      } finally {
        await db.close();
      }
      return normaliseDump(await pgDumpSchema(url));
    } finally {
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    }
  } finally {
    await admin.end();
  }
}
