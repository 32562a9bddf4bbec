import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureStreamPartitions, migrate, PgliteDb, type Db } from '../../src/db/index.js';
import { defineWorkflow, startRuns } from '../../src/engine/index.js';
import { backend, createTestDb, type TestDb } from '../helpers/db.js';
import { seedOrg } from '../helpers/fixtures.js';
import { runCli } from '../helpers/cli.js';

/** The CLI is a thin wrapper over reconcileReadModel (tested in read-model.test.ts): wiring, JSON, exit codes. */
describe('stepwise reconcile', () => {
  let dir: string;
  let t: TestDb | undefined;
  const target: string[] = [];
  let jobId: string;
  let organizationId: string;

  async function open(): Promise<Db> {
    return t ? t.db : PgliteDb.open({ dataDir: join(dir, 'data') });
  }
  async function done(db: Db): Promise<void> {
    if (!t) await db.close();
  }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'stepwise-cli-reconcile-'));
    if (backend === 'postgres') {
      t = await createTestDb();
      target.push('--database-url', t.url!);
    } else {
      target.push('--data-dir', join(dir, 'data'));
    }
    const db = await open();
    if (!t) {
      await migrate(db);
      await ensureStreamPartitions(db);
    }
    const seeded = await seedOrg(db, 'CLI reconcile');
    organizationId = seeded.organizationId;
    const wf = await defineWorkflow(db, organizationId, { name: 'n', definition: { steps: [{ id: 'a', type: 'noop' }] } });
    jobId = (await startRuns(db, organizationId, wf.id, [{}]))[0]!.id;
    // Finish it by hand (no worker runs here): the trigger writes its
    // metadata row, which is then lost.
    await db.query(`DELETE FROM stepwise.job_queue WHERE job_id = $1`, [jobId]);
    await db.query(
      `UPDATE stepwise.jobs SET status = 'COMPLETED', started_at = now(), completed_at = now(), duration_ms = 1 WHERE id = $1`,
      [jobId],
    );
    await db.query(`DELETE FROM stepwise.execution_metadata WHERE job_id = $1`, [jobId]);
    await done(db);
  }, 60_000);

  afterAll(async () => {
    await t?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('reports drift as JSON and exits 2, repairs with --repair and exits 0', async () => {
    const check = await runCli(['reconcile', ...target]);
    expect(check.code, check.stderr).toBe(2);
    const report = JSON.parse(check.stdout);
    expect(report).toMatchObject({ clean: false, metadata: { missing: { count: 1, sample: [jobId] } } });

    const repair = await runCli(['reconcile', '--repair', '--organization', organizationId, ...target]);
    expect(repair.code, repair.stderr).toBe(0);
    expect(JSON.parse(repair.stdout)).toMatchObject({ clean: true, organizationId, repaired: { metadataWritten: 1 } });
    expect((await runCli(['reconcile', ...target])).code).toBe(0);
  }, 240_000);

  it('refuses an organization that is not an id', async () => {
    const res = await runCli(['reconcile', '--organization', 'acme', ...target]);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('--organization');
  }, 60_000);
});
