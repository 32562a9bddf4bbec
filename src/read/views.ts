import type { Client, Job, Schedule, Workflow } from '../store/index.js';
import type { JobListItem } from './dashboard.js';

/**
 * Domain objects → the JSON the API answers and the CLI prints (explicit, so a
 * new column is never exposed by accident). Shared by the API and the CLI, so a
 * command prints exactly what the matching route answers.
 */

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
    initiatedBy: j.initiatedBy,
    parentJobId: j.parentJobId,
    parentStepPath: j.parentStepPath,
    depth: j.depth,
  };
}

export function clientView(c: Client) {
  return { id: c.id, name: c.name, externalId: c.externalId, createdAt: c.createdAt };
}

export function jobListItemView(j: JobListItem) {
  return { ...jobView(j), workflowName: j.workflowName, clientName: j.clientName };
}

export function scheduleView(s: Schedule) {
  return {
    id: s.id,
    workflowId: s.workflowId,
    name: s.name,
    cron: s.cron,
    timezone: s.timezone,
    input: s.input,
    enabled: s.enabled,
    misfirePolicy: s.misfirePolicy,
    nextFireAt: s.nextFireAt,
    lastFiredAt: s.lastFiredAt,
    createdAt: s.createdAt,
    updatedAt: s.updatedAt,
  };
}
