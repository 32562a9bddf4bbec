import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isLockNotAvailable } from '../../src/db/index.js';
import { dropArchivedStreamPartition, listStreamPartitions } from '../../src/store/index.js';
import { backend, createTestDb, type TestDb } from '../helpers/db.js';

/**
 * A partition drop must not wait behind a long reader of the stream without
 * bound: while its DETACH waits for the parent's ACCESS EXCLUSIVE lock, every
 * worker's stream insert queues behind it. Server only: PGlite has one
 * connection, so no reader can hold a lock while maintenance runs.
 */
describe.skipIf(backend !== 'postgres')('partition drop under a long reader (server)', () => {
  let t: TestDb;
  beforeAll(async () => {
    t = await createTestDb();
  });
  afterAll(async () => {
    await t?.close();
  });

  it('gives up after its lock timeout, changing nothing, and drops once the reader is gone', async () => {
    const [part] = await listStreamPartitions(t.db);
    expect(part).toBeDefined();
    const reader = new pg.Client({ connectionString: t.url! });
    await reader.connect();
    try {
      // An open transaction that read the stream: ACCESS SHARE on the parent and its partitions until it ends.
      await reader.query('BEGIN');
      await reader.query('SELECT count(*) FROM stepwise.execution_log');
      const err = await t.db.transaction((tx) => dropArchivedStreamPartition(tx, part!.name, 50)).catch((e: unknown) => e);
      expect(isLockNotAvailable(err)).toBe(true);
      expect((await listStreamPartitions(t.db)).map((p) => p.name)).toContain(part!.name);
      // The stream stays writable and readable by others meanwhile.
      const { rows } = await t.db.query<{ n: number }>('SELECT count(*)::int AS n FROM stepwise.execution_log');
      expect(rows[0]!.n).toBe(0);
      await reader.query('COMMIT');
    } finally {
      await reader.end();
    }
    const r = await t.db.transaction((tx) => dropArchivedStreamPartition(tx, part!.name, 50));
    expect(r.dropped).toBe(true);
    expect((await listStreamPartitions(t.db)).map((p) => p.name)).not.toContain(part!.name);
  });
});
