import type { ClaimedJob } from '../../src/store/index.js';

/** A job as a claim hands it to the executor, for tests that run the executor without a database. */
export function claimedJob(overrides: Partial<ClaimedJob> = {}): ClaimedJob {
  return {
    id: 'job-1',
    organizationId: 'org-1',
    workflowId: 'wf-1',
    workflowVersion: 1,
    clientId: null,
    runNumber: 42,
    attempts: 1,
    lastSeq: 0,
    input: { member: 'M-1' },
    createdAt: new Date(),
    priorStatus: 'PENDING',
    retryCount: 0,
    maxRetries: 0,
    deadlineAt: null,
    startedAt: new Date(),
    cancelRequested: false,
    checkpoint: null,
    lease: 1,
    initiatedBy: null,
    parentJobId: null,
    depth: 0,
    ...overrides,
  };
}
