import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgliteDb } from '../../src/db/index.js';
import { defineWorkflow, startRuns } from '../../src/engine/index.js';
import { backend, createTestDb, type TestDb } from '../helpers/db.js';
import { seedOrg, startWorker, waitForJob } from '../helpers/fixtures.js';
import { runCli } from '../helpers/cli.js';

/** The job-control CLI is wired to the same use cases as the API (those are tested in durable/api-control). */
describe('stepwise job … and org limit', () => {
  let dir: string;
  let t: TestDb | undefined;
  const target: string[] = [];
  let key: string;
  let jobId: string;
  let failedJobId: string;

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
    // A job that failed at its second step, so it has a checkpoint to retry from. The worker is stopped
    // before the other jobs exist and any CLI runs: nothing but the CLI writes the retried job's checkpoint.
    const failing = await defineWorkflow(db, seeded.organizationId, {
      name: 'fails',
      definition: { steps: [{ id: 'first', type: 'noop' }, { id: 'boom', type: 'transform', expression: '$error("nope")' }] },
    });
    failedJobId = (await startRuns(db, seeded.organizationId, failing.id, [{}]))[0]!.id;
    const worker = startWorker(db, { pollIntervalMs: 20 });
    try {
      expect((await waitForJob(db, seeded.organizationId, failedJobId)).status).toBe('FAILED');
    } finally {
      await worker.stop();
    }
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
    expect(retry.stderr).toContain('only FAILED, CANCELLED or TIMED_OUT');

    const cancel = await runCli(['job', 'cancel', jobId, '--key', key, ...target]);
    expect(cancel.code, cancel.stderr).toBe(0);
    const after = await runCli(['job', 'get', jobId, '--key', key, ...target]);
    expect(JSON.parse(after.stdout).cancelRequestedAt).not.toBeNull();

    const bad = await runCli(['job', 'get', 'not-a-uuid', '--key', key, ...target]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('job id must be a UUID');
  });

  it('retry copies the checkpoint with the configured lifetime (STEPWISE_CHECKPOINT_TTL_MS)', async () => {
    const ttlMs = 2 * 3600 * 1000; // not the 24 h default
    const before = Date.now();
    const retry = await runCli(['job', 'retry', failedJobId, '--key', key, ...target], { STEPWISE_CHECKPOINT_TTL_MS: String(ttlMs) });
    const after = Date.now();
    expect(retry.code, retry.stderr).toBe(0);
    const created = JSON.parse(retry.stdout) as { jobId: string; retryOf: string };
    expect(created.retryOf).toBe(failedJobId);
    const db = t ? t.db : await PgliteDb.open({ dataDir: join(dir, 'data') });
    try {
      const { rows } = await db.query<{ next_step: number; expires_at: Date }>(
        'SELECT next_step, expires_at FROM stepwise.execution_checkpoints WHERE job_id = $1',
        [created.jobId],
      );
      expect(rows[0]?.next_step).toBe(1);
      const expiresAt = new Date(rows[0]!.expires_at).getTime();
      expect(expiresAt).toBeGreaterThanOrEqual(before + ttlMs);
      expect(expiresAt).toBeLessThanOrEqual(after + ttlMs);
    } finally {
      if (!t) await db.close();
    }
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
