/**
 * Regenerate src/db/schema.sql: migrate a scratch database on a PostgreSQL
 * server, dump its schema with pg_dump, normalise it, write it. Run with
 * `npm run schema:dump` after adding a migration. The server is
 * STEPWISE_TEST_DATABASE_URL (a role that may create databases), else the
 * local postgres://postgres@127.0.0.1:5432/postgres; DATABASE_URL is never
 * used, so a production database is not touched by mistake. Deterministic:
 * running it twice writes the same file.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { relative } from 'node:path';
import { dumpMigratedSchema, SCHEMA_FILE } from './lib/schema-dump.js';

const adminUrl = process.env.STEPWISE_TEST_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres';
const schema = await dumpMigratedSchema(adminUrl);
const before = await readFile(SCHEMA_FILE, 'utf8').catch(() => undefined);
await writeFile(SCHEMA_FILE, schema);
process.stdout.write(`${relative(process.cwd(), SCHEMA_FILE)} ${before === schema ? 'unchanged' : 'written'} (${schema.length} bytes)\n`);
