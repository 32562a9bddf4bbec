import type { Db } from '../../src/db/index.js';
import { loadConfig, type WorkerConfig } from '../../src/config/index.js';
import { createApiKey } from '../../src/security/index.js';
import { createOrganization, findJob, TERMINAL_STATUSES, type Job } from '../../src/store/index.js';
import { Worker } from '../../src/engine/index.js';
import { createLogger } from '../../src/util/logger.js';

export const silentLogger = createLogger('silent');

/** An organization with an owner key. */
export async function seedOrg(db: Db, name = 'Acme'): Promise<{ organizationId: string; key: string }> {
  const org = await createOrganization(db, { name });
  const { key } = await createApiKey(db, org.id, { name: 'test owner' });
  return { organizationId: org.id, key };
}

export function workerConfig(overrides: Partial<WorkerConfig> = {}): WorkerConfig {
  return { ...loadConfig({}).worker, pollIntervalMs: 50, flushIntervalMs: 2, leaseMs: 5_000, shutdownGraceMs: 2_000, ...overrides };
}

export function startWorker(db: Db, overrides: Partial<WorkerConfig> = {}, id?: string): Worker {
  const worker = new Worker(db, workerConfig(overrides), silentLogger, id);
  void worker.start();
  return worker;
}

/** Poll until the job reaches a terminal status (or fail after `timeoutMs`). */
export async function waitForJob(db: Db, organizationId: string, jobId: string, timeoutMs = 20_000): Promise<Job> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const job = await findJob(db, organizationId, jobId);
    if (job && TERMINAL_STATUSES.includes(job.status)) return job;
    if (Date.now() > deadline) throw new Error(`job ${jobId} still ${job?.status} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
