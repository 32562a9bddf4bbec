import type { Db } from '../../src/db/index.js';
import { loadConfig, type WorkerConfig } from '../../src/config/index.js';
import { createOrganizationWithOwner } from '../../src/security/index.js';
import { findJob, TERMINAL_STATUSES, type Job, type Plan } from '../../src/store/index.js';
import { Worker } from '../../src/engine/index.js';
import { createLogger } from '../../src/util/logger.js';
import { LOCAL_TEST_EGRESS_ENTRIES } from './local-egress.js';

export const silentLogger = createLogger('silent');

/**
 * An organization with an OWNER user and their key. ENTERPRISE (no plan
 * limits) unless a test is about plans: other tests create more workflows
 * and runs than STARTER allows.
 */
export async function seedOrg(db: Db, name = 'Acme', plan: Plan = 'ENTERPRISE'): Promise<{ organizationId: string; key: string; ownerId: string }> {
  const { organization, owner, apiKey } = await createOrganizationWithOwner(db, { name, plan, keyName: 'test owner' });
  return { organizationId: organization.id, key: apiKey.key, ownerId: owner.id };
}

export function workerConfig(overrides: Partial<WorkerConfig> = {}): WorkerConfig {
  return {
    ...loadConfig({}).worker,
    pollIntervalMs: 50,
    flushIntervalMs: 2,
    leaseMs: 5_000,
    shutdownGraceMs: 2_000,
    egressAllow: LOCAL_TEST_EGRESS_ENTRIES,
    ...overrides,
  };
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

/** Poll until the job reaches `status` (or fail after `timeoutMs`, naming the status it has). */
export async function waitForStatus(db: Db, organizationId: string, jobId: string, status: string, timeoutMs = 20_000): Promise<Job> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const job = await findJob(db, organizationId, jobId);
    if (job?.status === status) return job;
    if (Date.now() > deadline) throw new Error(`job ${jobId} never reached ${status} (is ${job?.status})`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
