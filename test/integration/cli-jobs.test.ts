import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgliteDb } from '../../src/db/index.js';
import { defineWorkflow, startRuns } from '../../src/engine/index.js';
import { backend, createTestDb, type TestDb } from '../helpers/db.js';
import { seedOrg } from '../helpers/fixtures.js';
import { runCli } from '../helpers/cli.js';

/** The job-control CLI is wired to the same use cases as the API (those are tested in durable/api-control). */
describe('stepwise job … and org limit', () => {
  let dir: string;
  let t: TestDb | undefined;
  const target: string[] = [];
  let key: string;
  let jobId: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'stepwise-cli-jobs-'));
    let db;
    if (backend === 'postgres') {
      t = await createTestDb();
      db = t.db;
      target.push('--database-url', t.url!);
    } else {
      db = await PgliteDb.open({ dataDir: join(dir, 'data') });
      const { migrate, ensureStreamPartitions } = await import('../../src/db/index.js');
      await migrate(db);
      await ensureStreamPartitions(db);
      target.push('--data-dir', join(dir, 'data'));
    }
    const seeded = await seedOrg(db, 'CLI jobs');
    key = seeded.key;
    const wf = await defineWorkflow(db, seeded.organizationId, {
      name: 'wait',
      definition: { steps: [{ id: 'w', type: 'wait', signal: 'go', timeoutMs: 60_000 }] },
    });
    jobId = (await startRuns(db, seeded.organizationId, wf.id, [{}]))[0]!.id;
    if (!t) await db.close();
  });
  afterAll(async () => {
    await t?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('gets, signals and cancels a job; retry of a live job is refused; bad ids are named', async () => {
    const got = await runCli(['job', 'get', jobId, '--key', key, ...target]);
    expect(got.code, got.stderr).toBe(0);
    expect(JSON.parse(got.stdout)).toMatchObject({ id: jobId, status: 'PENDING' });

    const signal = await runCli(['job', 'signal', jobId, 'go', '--payload', '{"ok":true}', '--key', key, ...target]);
    expect(signal.code, signal.stderr).toBe(0);
    expect(JSON.parse(signal.stdout).signalId).toMatch(/^[0-9a-f-]{36}$/);

    const retry = await runCli(['job', 'retry', jobId, '--key', key, ...target]);
    expect(retry.code).toBe(1);
    expect(retry.stderr).toContain('only FAILED, TIMED_OUT or CANCELLED');

    const cancel = await runCli(['job', 'cancel', jobId, '--key', key, ...target]);
    expect(cancel.code, cancel.stderr).toBe(0);
    const after = await runCli(['job', 'get', jobId, '--key', key, ...target]);
    expect(JSON.parse(after.stdout).cancelRequestedAt).not.toBeNull();

    const bad = await runCli(['job', 'get', 'not-a-uuid', '--key', key, ...target]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('job id must be a UUID');
  });

  it('sets and clears the organization concurrency limit', async () => {
    const set = await runCli(['org', 'limit', '--max-concurrent-runs', '4', '--key', key, ...target]);
    expect(set.code, set.stderr).toBe(0);
    expect(JSON.parse(set.stdout).maxConcurrentRuns).toBe(4);
    const bad = await runCli(['org', 'limit', '--max-concurrent-runs', '0', '--key', key, ...target]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('integer from 1 to 100000');
  });
}, 240_000);
