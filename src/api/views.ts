import type { JobListItem } from '../read/index.js';
import type { Client, Job, Workflow } from '../store/index.js';

/** Domain objects → API JSON (explicit, so a new column is never exposed by accident). */
export function workflowView(w: Workflow) {
  return {
    id: w.id,
    name: w.name,
    description: w.description,
    category: w.category,
    status: w.status,
    version: w.version,
    definition: w.definition,
    maxConcurrentRuns: w.maxConcurrentRuns,
    createdAt: w.createdAt,
    updatedAt: w.updatedAt,
    archivedAt: w.deletedAt,
  };
}

export function jobView(j: Job) {
  return {
    id: j.id,
    runNumber: j.runNumber,
    workflowId: j.workflowId,
    workflowVersion: j.workflowVersion,
    clientId: j.clientId,
    status: j.status,
    initiatorType: j.initiatorType,
    retryOfJobId: j.retryOfJobId,
    priority: j.priority,
    attempts: j.attempts,
    idempotencyKey: j.idempotencyKey,
    input: j.input,
    result: j.result,
    error: j.errorCode ? { code: j.errorCode, message: j.errorMessage ?? '', step: j.errorStep } : null,
    stepsTotal: j.stepsTotal,
    stepsCompleted: j.stepsCompleted,
    createdAt: j.createdAt,
    startedAt: j.startedAt,
    completedAt: j.completedAt,
    durationMs: j.durationMs,
    retryCount: j.retryCount,
    maxRetries: j.maxRetries,
    maxRetriesReached: j.maxRetriesReached,
    deadlineAt: j.deadlineAt,
    cancelRequestedAt: j.cancelRequestedAt,
  };
}

export function clientView(c: Client) {
  return { id: c.id, name: c.name, externalId: c.externalId, createdAt: c.createdAt };
}

export function jobListItemView(j: JobListItem) {
  return { ...jobView(j), workflowName: j.workflowName, clientName: j.clientName };
}
