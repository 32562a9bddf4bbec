import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PgliteDb, type Db } from '../../src/db/index.js';
import { backend, createTestDb, type TestDb } from './db.js';

export { runCli, type CliResult } from './run-cli.js';

/**
 * Where a test file's CLI calls point: the server database (a fresh test
 * database) or an embedded data directory. `withDb` reads it from the test:
 * the test database as it is, or the data directory opened only for the
 * call (PGlite allows one process at a time, so never while a CLI runs).
 */
export interface CliTarget {
  /** `--database-url …` or `--data-dir …`, to append to every CLI call. */
  args: string[];
  /** A scratch directory of the file's (the data directory is inside it). */
  dir: string;
  withDb<T>(fn: (db: Db) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

export async function cliTarget(prefix: string): Promise<CliTarget> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  const t: TestDb | undefined = backend === 'postgres' ? await createTestDb() : undefined;
  const dataDir = join(dir, 'data');
  return {
    args: t ? ['--database-url', t.url!] : ['--data-dir', dataDir],
    dir,
    async withDb(fn) {
      if (t) return fn(t.db);
      const db = await PgliteDb.open({ dataDir });
      try {
        return await fn(db);
      } finally {
        await db.close();
      }
    },
    async close() {
      await t?.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
