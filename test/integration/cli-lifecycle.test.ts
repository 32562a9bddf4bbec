import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureStreamPartitions, migrate, PgliteDb, type Db } from '../../src/db/index.js';
import { createApiKey } from '../../src/security/index.js';
import { generateStorageDataset } from '../../bench/storage-data.js';
import { backend, createTestDb, type TestDb } from '../helpers/db.js';
import { runCli } from '../helpers/cli.js';

const NOW = new Date();
// Each CLI run opens the database (PGlite: ~2-10 s on a loaded machine); a test makes up to four.
const TEST_MS = 240_000;
const cli = (args: string[], env: Record<string, string>) => runCli(args, env, 120_000);

/** The lifecycle CLI is wired to the functions tested in archive.test.ts; this checks the wiring, flags and errors. */
describe('stepwise maintain / restore / retention', () => {
  let dir: string;
  let t: TestDb | undefined;
  const target: string[] = [];
  let env: Record<string, string>;
  let key: string;
  let oldJob: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'stepwise-cli-lifecycle-'));
    env = { STEPWISE_BLOB_DIR: join(dir, 'blobs') };
    let db: Db;
    if (backend === 'postgres') {
      t = await createTestDb();
      db = t.db;
      target.push('--database-url', t.url!);
    } else {
      db = await PgliteDb.open({ dataDir: join(dir, 'data') });
      await migrate(db);
      await ensureStreamPartitions(db);
      target.push('--data-dir', join(dir, 'data'));
    }
    const data = await generateStorageDataset(db, { months: 3, jobsPerMonth: 10, rowsPerJob: 6, organizations: 1, end: NOW });
    key = (await createApiKey(db, data.organizationIds[0]!, { name: 'cli' })).key;
    oldJob = (await db.query<{ id: string }>(`SELECT id FROM stepwise.jobs ORDER BY run_number LIMIT 1`)).rows[0]!.id;
    if (!t) await db.close();
  }, TEST_MS);
  afterAll(async () => {
    await t?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('maintain --dry-run prints the plan as JSON and changes nothing; maintain archives; --as-of looks ahead', async () => {
    const dry = await cli(['maintain', '--dry-run', ...target], env);
    expect(dry.code, dry.stderr).toBe(0);
    const plan = JSON.parse(dry.stdout);
    expect(plan.dryRun).toBe(true);
    expect(plan.executionLog.jobs).toBeGreaterThan(0);
    const real = await cli(['maintain', ...target], env);
    expect(real.code, real.stderr).toBe(0);
    expect(JSON.parse(real.stdout).executionLog.jobs).toBe(plan.executionLog.jobs);
    const ahead = await cli(['maintain', '--dry-run', '--as-of', new Date(NOW.getTime() + 90 * 86_400_000).toISOString(), ...target], env);
    expect(JSON.parse(ahead.stdout).executionLog.jobs).toBeGreaterThan(0);
    const bad = await cli(['maintain', '--as-of', 'yesterday-ish', ...target], env);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/--as-of must be a date/);
  }, TEST_MS);

  it('restore --job brings a job back, and a second restore finds nothing', async () => {
    const r = await cli(['restore', '--job', oldJob, ...target], env);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ jobs: 1, rows: 6 });
    const again = await cli(['restore', '--job', oldJob, ...target], env);
    expect(JSON.parse(again.stdout)).toMatchObject({ jobs: 0, rows: 0 });
    const none = await cli(['restore', ...target], env);
    expect(none.code).not.toBe(0);
    expect(none.stderr).toMatch(/--job/);
  }, TEST_MS);

  it('retention set/list by key; PHI under six years is refused', async () => {
    const set = await cli(['retention', 'set', 'execution_log', '--hot-days', '10', '--delete-after-days', 'never', '--key', key, ...target], env);
    expect(set.code, set.stderr).toBe(0);
    expect(JSON.parse(set.stdout)).toMatchObject({ resourceType: 'execution_log', hotRetentionDays: 10, deleteAfterDays: null });
    const list = await cli(['retention', 'list', '--key', key, ...target], env);
    expect(JSON.parse(list.stdout).items[0]).toMatchObject({ hotRetentionDays: 10 });
    const phi = await cli(['retention', 'set', 'phi_audit', '--archive-days', '400', '--key', key, ...target], env);
    expect(phi.code).not.toBe(0);
    expect(phi.stderr).toMatch(/six years/);
  }, TEST_MS);
});
