import mysql from 'mysql2/promise';
import pg from 'pg';

/**
 * Whether the database servers the sql step's tests query are on this
 * machine: PostgreSQL on 127.0.0.1:5432 (user postgres, trust) and MariaDB
 * or MySQL on 127.0.0.1:3306 (root, no password, database `test`). They are
 * the targets of the step whichever backend Stepwise itself runs on. `npm
 * test` on a machine with Node alone skips those tests with a warning, as
 * browser tests skip without Chromium; `.ci/run` starts both servers and
 * fails when either does not answer, so CI always runs them.
 */
export const LOCAL_POSTGRES_URL = 'postgres://postgres@127.0.0.1:5432/postgres';
export const LOCAL_MYSQL = { host: '127.0.0.1', port: 3306, user: 'root', database: 'test' } as const;

async function answers(probe: () => Promise<void>): Promise<boolean> {
  try {
    await probe();
    return true;
  } catch {
    return false;
  }
}

export const haveLocalPostgres: boolean = await answers(async () => {
  const c = new pg.Client({ connectionString: LOCAL_POSTGRES_URL, connectionTimeoutMillis: 3_000 });
  await c.connect();
  await c.end();
});

export const haveLocalMysql: boolean = await answers(async () => {
  const c = await mysql.createConnection({ ...LOCAL_MYSQL, connectTimeout: 3_000 });
  await c.end();
});
