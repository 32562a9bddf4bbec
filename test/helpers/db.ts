import { readFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';
import { PgliteDb, PostgresDb, type Db } from '../../src/db/index.js';

export interface TestDb {
  db: Db;
  /** postgres only: the URL of this file's database (for a second process or pool). */
  url: string | undefined;
  close(): Promise<void>;
}

/** The backend this run tests: pglite unless STEPWISE_TEST_DATABASE_URL is set. */
export const backend = inject('backend');

/** A fresh, migrated database for one test file, cloned from the run's template. */
export function createTestDb(): Promise<TestDb> {
  return create(true);
}

/** A database with nothing in it (no schema), for migration tests. */
export function createEmptyDb(): Promise<TestDb> {
  return create(false);
}

async function create(migrated: boolean): Promise<TestDb> {
  if (backend === 'postgres') {
    const adminUrl = inject('pgAdminUrl');
    const name = `stepwise_t_${process.ppid}_${randomBytes(4).toString('hex')}`;
    const admin = new pg.Client({ connectionString: adminUrl });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${name}${migrated ? ` TEMPLATE ${inject('pgTemplate')}` : ''}`);
    await admin.end();
    const u = new URL(adminUrl);
    u.pathname = `/${name}`;
    const url = u.toString();
    const db = new PostgresDb(url, { poolSize: 8, role: 'test' });
    return {
      db,
      url,
      close: async () => {
        await db.close();
        const c = new pg.Client({ connectionString: adminUrl });
        await c.connect();
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
        await c.end();
      },
    };
  }
  if (!migrated) {
    const db = await PgliteDb.open();
    return { db, url: undefined, close: () => db.close() };
  }
  const tar = await readFile(inject('pgliteTemplatePath'));
  const db = await PgliteDb.open({ loadDataDir: new Blob([tar]) });
  return { db, url: undefined, close: () => db.close() };
}
