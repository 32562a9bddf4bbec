import type { Db } from '../db/index.js';
import { ConflictError, NotFoundError, PayloadTooLargeError } from '../errors/index.js';
import {
  archiveWorkflow,
  assertWithinPlan,
  createWorkflow,
  enqueueJobs,
  findJobsByIdempotencyKeys,
  findClient,
  findWorkflow,
  updateWorkflow,
  type EnqueuedJob,
  type InitiatorType,
  type NewWorkflow,
  type Workflow,
  type WorkflowChanges,
} from '../store/index.js';
import { jsonByteLength } from '../util/json.js';
import { validateDefinition, type WorkflowDefinition } from './definition/index.js';
import { runFlowOf } from './flow-keys.js';

/**
 * What a job copies from the workflow version it pins: its step count and
 * the definition's job-level settings. Every path that enqueues (API, CLI,
 * schedules, webhooks, retries) goes through this, so none forgets one.
 */
export function jobSettings(workflowId: string, version: number, definition: WorkflowDefinition) {
  return {
    id: workflowId,
    version,
    stepsTotal: definition.steps.length,
    maxRetries: definition.maxRetries,
    timeoutMs: definition.timeoutMs,
    // Dedupe, debounce, priority and concurrency keys (undefined when the definition declares none).
    flow: runFlowOf(workflowId, definition),
    // Input paths indexed for the runs list's search (undefined when the definition declares none).
    searchKeys: definition.searchKeys,
  };
}

/** Largest run input accepted, as compact JSON text (the jobs CHECK constraint is a looser backstop). */
export const MAX_INPUT_BYTES = 1024 * 1024;

/**
 * Use cases shared by the API and the CLI. Every function takes the
 * organization first; validation happens before anything is written. A
 * workflow beyond the plan's limit is refused (PlanLimitError), as is a run
 * beyond the month's executions (store/jobs.ts enqueueJobs).
 */
export async function defineWorkflow(db: Db, organizationId: string, input: Omit<NewWorkflow, 'definition'> & { definition: unknown }): Promise<Workflow> {
  const definition = validateDefinition(input.definition);
  return db.transaction(async (tx) => {
    await assertWithinPlan(tx, organizationId, 'workflows', 1);
    return createWorkflow(tx, organizationId, { ...input, definition });
  });
}

export async function reviseWorkflow(
  db: Db,
  organizationId: string,
  workflowId: string,
  changes: Omit<WorkflowChanges, 'definition'> & { definition?: unknown },
): Promise<Workflow> {
  const definition = changes.definition === undefined ? undefined : validateDefinition(changes.definition);
  const updated = await db.transaction((tx) => updateWorkflow(tx, organizationId, workflowId, { ...changes, definition }));
  if (!updated) throw new NotFoundError('workflow', workflowId);
  return updated;
}

export async function retireWorkflow(db: Db, organizationId: string, workflowId: string): Promise<void> {
  if (!(await archiveWorkflow(db, organizationId, workflowId))) throw new NotFoundError('workflow', workflowId);
}

export interface RunRequest {
  input?: unknown;
  clientId?: string | null | undefined;
  idempotencyKey?: string | null | undefined;
  priority?: number | undefined;
  initiatorType?: InitiatorType | undefined;
  /** The user whose key starts the run (an approval may exclude them from deciding). */
  initiatedBy?: string | null | undefined;
}

/** Start runs of a workflow's current version (one transaction for the whole batch). */
export async function startRuns(db: Db, organizationId: string, workflowId: string, runs: RunRequest[]): Promise<EnqueuedJob[]> {
  runs.forEach((run, i) => {
    const bytes = jsonByteLength(run.input);
    if (bytes > MAX_INPUT_BYTES) throw new PayloadTooLargeError(runs.length === 1 ? 'input' : `runs/${i}/input`, bytes, MAX_INPUT_BYTES);
  });
  // A retry with keys that all ran before gets those jobs back, even if the
  // workflow was paused or archived since.
  const keys = runs.map((r) => r.idempotencyKey);
  if (keys.every((k): k is string => !!k)) {
    const found = await findJobsByIdempotencyKeys(db, organizationId, keys);
    if (keys.every((k) => found.get(k)?.workflowId === workflowId)) {
      return keys.map((k) => {
        const job = found.get(k)!;
        return { id: job.id, runNumber: job.runNumber, status: job.status, created: false };
      });
    }
  }
  const workflow = await findWorkflow(db, organizationId, workflowId);
  if (!workflow || workflow.deletedAt) throw new NotFoundError('workflow', workflowId);
  if (workflow.status !== 'ACTIVE') {
    throw new ConflictError(`workflow ${workflowId} is ${workflow.status}; only ACTIVE workflows can run`, {
      status: workflow.status,
    });
  }
  const clientIds = [...new Set(runs.map((r) => r.clientId).filter((c): c is string => !!c))];
  for (const clientId of clientIds) {
    if (!(await findClient(db, organizationId, clientId))) throw new NotFoundError('client', clientId);
  }
  const enqueue = () =>
    db.transaction((tx) =>
      enqueueJobs(
        tx,
        organizationId,
        jobSettings(workflow.id, workflow.version, workflow.definition),
        runs,
      ),
    );
  try {
    return await enqueue();
  } catch (err) {
    // Two requests with the same new idempotency key raced past the lookup and
    // the loser hit the unique index; its retry finds the winner's job.
    if (err instanceof ConflictError && String(err.details.constraint ?? '').includes('idempotency_key')) return enqueue();
    throw err;
  }
}
