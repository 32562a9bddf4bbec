import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureStreamPartitions, loadMigrations, migrate, PostgresDb } from '../../src/db/index.js';
import { ConflictError, DatabaseError, ValidationError } from '../../src/errors/index.js';
import { LOG_LEVELS, STREAM_KINDS } from '../../src/store/index.js';
import { backend, createEmptyDb, createTestDb, type TestDb } from '../helpers/db.js';

describe('migrations', () => {
  let t: TestDb;
  beforeAll(async () => {
    t = await createEmptyDb();
  });
  afterAll(() => t?.close());

  it('apply from empty, then re-run as a no-op', async () => {
    const all = await loadMigrations();
    const first = await migrate(t.db);
    expect(first.applied).toEqual(all.map((m) => m.version));
    const { rows } = await t.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM information_schema.tables WHERE table_schema = 'stepwise' AND table_name IN ('organizations','jobs','job_queue','execution_log','workflow_versions','api_keys','clients')`,
    );
    expect(rows[0]!.n).toBe(7);
    const second = await migrate(t.db);
    expect(second.applied).toEqual([]);
    const { rows: recorded } = await t.db.query<{ n: number }>('SELECT count(*)::int AS n FROM stepwise.schema_migrations');
    expect(recorded[0]!.n).toBe(all.length);
  });

  it('refuses an applied migration whose file changed', async () => {
    const all = await loadMigrations();
    const edited = all.map((m, i) => (i === 0 ? { ...m, checksum: 'x'.repeat(64), sql: `${m.sql}\n-- edited` } : m));
    await expect(migrate(t.db, edited)).rejects.toBeInstanceOf(DatabaseError);
  });

  it('stream codes in code match the reference tables', async () => {
    const levels = await t.db.query<{ level: number; name: string }>('SELECT level, name FROM stepwise.log_levels ORDER BY level');
    expect(Object.fromEntries(levels.rows.map((r) => [r.name, r.level]))).toEqual(LOG_LEVELS);
    const kinds = await t.db.query<{ kind: number; name: string }>('SELECT kind, name FROM stepwise.stream_kinds ORDER BY kind');
    expect(Object.fromEntries(kinds.rows.map((r) => [r.name, r.kind]))).toEqual(STREAM_KINDS);
  });
});

describe.runIf(backend === 'postgres')('concurrent migrators (server)', () => {
  let t: TestDb;
  beforeAll(async () => {
    t = await createEmptyDb();
  });
  afterAll(() => t?.close());

  it('four processes migrating at once apply each migration exactly once', async () => {
    const dbs = Array.from({ length: 4 }, () => new PostgresDb(t.url!, 2));
    try {
      const results = await Promise.all(dbs.map((db) => migrate(db)));
      const all = await loadMigrations();
      expect(results.flatMap((r) => r.applied).sort()).toEqual(all.map((m) => m.version).sort());
      const { rows } = await t.db.query<{ n: number }>('SELECT count(*)::int AS n FROM stepwise.schema_migrations');
      expect(rows[0]!.n).toBe(all.length);
    } finally {
      await Promise.all(dbs.map((db) => db.close()));
    }
  });
});

describe.runIf(backend === 'pglite')('concurrent migrators (embedded)', () => {
  let t: TestDb;
  beforeAll(async () => {
    t = await createEmptyDb();
  });
  afterAll(() => t?.close());

  it('concurrent migrate calls on the one connection apply each migration exactly once', async () => {
    const results = await Promise.all([migrate(t.db), migrate(t.db), migrate(t.db)]);
    const all = await loadMigrations();
    expect(results.flatMap((r) => r.applied).sort()).toEqual(all.map((m) => m.version).sort());
  });
});

describe('database layer', () => {
  let t: TestDb;
  beforeAll(async () => {
    t = await createTestDb();
  });
  afterAll(() => t?.close());

  it('recovers after a failed query and a rolled-back transaction', async () => {
    await expect(t.db.query('SELECT * FROM stepwise.no_such_table')).rejects.toBeInstanceOf(DatabaseError);
    await expect(
      t.db.transaction(async (tx) => {
        await tx.query(`INSERT INTO stepwise.organizations (id, name) VALUES ('00000000-0000-7000-8000-000000000001', 'rolled back')`);
        throw new Error('abort');
      }),
    ).rejects.toThrow('abort');
    await expect(
      t.db.transaction(async (tx) => {
        await tx.query(`INSERT INTO stepwise.organizations (id, name) VALUES ('00000000-0000-7000-8000-000000000002', 'also rolled back')`);
        await tx.query('SELECT 1/0');
      }),
    ).rejects.toBeInstanceOf(DatabaseError);
    const { rows } = await t.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM stepwise.organizations WHERE name LIKE '%rolled back'`);
    expect(rows[0]!.n).toBe(0);
    await t.db.transaction(async (tx) => {
      await tx.query(`INSERT INTO stepwise.organizations (id, name) VALUES ('00000000-0000-7000-8000-000000000003', 'kept')`);
    });
    const { rows: kept } = await t.db.query<{ name: string }>(`SELECT name FROM stepwise.organizations WHERE id = $1`, [
      '00000000-0000-7000-8000-000000000003',
    ]);
    expect(kept).toEqual([{ name: 'kept' }]);
  });

  it('maps SQLSTATEs to typed errors', async () => {
    const id = '00000000-0000-7000-8000-000000000010';
    await t.db.query(`INSERT INTO stepwise.organizations (id, name) VALUES ($1, 'dup')`, [id]);
    await expect(t.db.query(`INSERT INTO stepwise.organizations (id, name) VALUES ($1, 'dup')`, [id])).rejects.toBeInstanceOf(ConflictError);
    await expect(t.db.query(`INSERT INTO stepwise.organizations (id, name) VALUES ($1, '   ')`, ['00000000-0000-7000-8000-000000000011'])).rejects.toBeInstanceOf(ValidationError);
    await expect(t.db.query(`SELECT $1::uuid`, ['not-a-uuid'])).rejects.toBeInstanceOf(ValidationError);
  });

  it('serialises concurrent transactions (no interleaving on one connection)', async () => {
    await t.db.exec('CREATE TABLE stepwise.t_counter (n int NOT NULL); INSERT INTO stepwise.t_counter VALUES (0)');
    await Promise.all(
      Array.from({ length: 20 }, () =>
        t.db.transaction(async (tx) => {
          const { rows } = await tx.query<{ n: number }>('SELECT n FROM stepwise.t_counter FOR UPDATE');
          await new Promise((r) => setTimeout(r, 1));
          await tx.query('UPDATE stepwise.t_counter SET n = $1', [rows[0]!.n + 1]);
        }),
      ),
    );
    const { rows } = await t.db.query<{ n: number }>('SELECT n FROM stepwise.t_counter');
    expect(rows[0]!.n).toBe(20);
  });

  it('creates month partitions ahead and moves rows that landed in the default partition', async () => {
    const far = new Date(Date.UTC(2031, 4, 15));
    await t.db.query(
      `INSERT INTO stepwise.execution_log (organization_id, job_id, ts, seq, kind, level, message)
       VALUES (gen_random_uuid(), gen_random_uuid(), $1, 1, 0, 3, 'early row')`,
      [far.toISOString()],
    );
    const before = await t.db.query<{ n: number }>('SELECT count(*)::int AS n FROM stepwise.execution_log_default');
    expect(before.rows[0]!.n).toBe(1);
    const created = await ensureStreamPartitions(t.db, far, 1);
    expect(created).toContain('execution_log_2031_05');
    const moved = await t.db.query<{ part: string; message: string }>(
      `SELECT tableoid::regclass::text AS part, message FROM stepwise.execution_log WHERE message = 'early row'`,
    );
    expect(moved.rows).toEqual([{ part: 'stepwise.execution_log_2031_05', message: 'early row' }]);
    expect(await ensureStreamPartitions(t.db, far, 1)).toEqual([]);
  });
});

describe('queue order and housekeeping', () => {
  let t: TestDb;
  beforeAll(async () => {
    t = await createTestDb();
  });
  afterAll(() => t?.close());

  it('claims higher priority first, then oldest first', async () => {
    const { seedOrg } = await import('../helpers/fixtures.js');
    const { defineWorkflow, startRuns } = await import('../../src/engine/index.js');
    const { claimJobs } = await import('../../src/store/index.js');
    const { organizationId } = await seedOrg(t.db);
    const wf = await defineWorkflow(t.db, organizationId, { name: 'p', definition: { steps: [{ id: 'n', type: 'noop' }] } });
    const [low1, low2] = await startRuns(t.db, organizationId, wf.id, [{}, {}]);
    const [high] = await startRuns(t.db, organizationId, wf.id, [{ priority: 10 }]);
    const order: string[] = [];
    for (let i = 0; i < 3; i++) order.push(...(await claimJobs(t.db, 'w', 1, 30_000)).map((j) => j.id));
    expect(order).toEqual([high!.id, low1!.id, low2!.id]);
  });

  it('deletes expired checkpoints and keeps live ones', async () => {
    const { deleteExpiredCheckpoints, upsertCheckpoints } = await import('../../src/store/index.js');
    const { rows } = await t.db.query<{ id: string; organization_id: string }>('SELECT id, organization_id FROM stepwise.jobs ORDER BY run_number LIMIT 2');
    const cp = { nextStep: 1, outputs: {}, failedSteps: [], state: {}, carried: {} };
    await t.db.transaction((tx) =>
      upsertCheckpoints(tx, [
        { jobId: rows[0]!.id, organizationId: rows[0]!.organization_id, checkpoint: cp, expiresAt: new Date(Date.now() - 1000) },
        { jobId: rows[1]!.id, organizationId: rows[1]!.organization_id, checkpoint: cp, expiresAt: new Date(Date.now() + 3600_000) },
      ]),
    );
    expect(await deleteExpiredCheckpoints(t.db)).toBe(1);
    const left = await t.db.query<{ job_id: string }>('SELECT job_id FROM stepwise.execution_checkpoints');
    expect(left.rows.map((r) => r.job_id)).toEqual([rows[1]!.id]);
  });

  it('writes carried values only from checkpoints that carry them; a plain checkpoint leaves them as they are', async () => {
    const { findCheckpoint, upsertCheckpoints } = await import('../../src/store/index.js');
    const { rows } = await t.db.query<{ id: string; organization_id: string }>('SELECT id, organization_id FROM stepwise.jobs ORDER BY run_number LIMIT 1');
    const job = { jobId: rows[0]!.id, organizationId: rows[0]!.organization_id, expiresAt: new Date(Date.now() + 3600_000) };
    const base = { outputs: {}, failedSteps: [], state: {} };
    const read = async () => (await findCheckpoint(t.db, job.organizationId, job.jobId))!;
    await t.db.transaction((tx) => upsertCheckpoints(tx, [{ ...job, checkpoint: { ...base, nextStep: 1 } }]));
    expect(await read()).toMatchObject({ nextStep: 1, carried: {} });
    await t.db.transaction((tx) => upsertCheckpoints(tx, [{ ...job, checkpoint: { ...base, nextStep: 2, carried: { 'browser:a': 'sealed' } } }]));
    expect(await read()).toMatchObject({ nextStep: 2, carried: { 'browser:a': 'sealed' } });
    // A checkpoint without carried (a job that never carried anything in this run) does not erase them.
    await t.db.transaction((tx) => upsertCheckpoints(tx, [{ ...job, checkpoint: { ...base, nextStep: 3 } }]));
    expect(await read()).toMatchObject({ nextStep: 3, carried: { 'browser:a': 'sealed' } });
    // Carried values all deleted: gone.
    await t.db.transaction((tx) => upsertCheckpoints(tx, [{ ...job, checkpoint: { ...base, nextStep: 4, carried: {} } }]));
    expect(await read()).toMatchObject({ nextStep: 4, carried: {} });
    await t.db.query('DELETE FROM stepwise.execution_checkpoints WHERE job_id = $1', [job.jobId]);
  });
});
