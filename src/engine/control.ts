import type { Db } from '../db/index.js';
import { ConflictError, NotFoundError, PayloadTooLargeError, ValidationError } from '../errors/index.js';
import {
  createSignal,
  enqueueJobs,
  findCheckpoint,
  findDefinitions,
  findJob,
  notifyChanges,
  requestCancel,
  SUCCESSFUL_STATUSES,
  TERMINAL_STATUSES,
  upsertCheckpoints,
  copyStepResults,
  requestCancelDescendants,
  wakeJobs,
  versionKey,
  wakeJob,
  type EnqueuedJob,
  type Job,
  type JobStatus,
} from '../store/index.js';
import { jsonByteLength } from '../util/json.js';
import { jobSettings, MAX_INPUT_BYTES } from './service.js';

async function liveJob(db: Db, organizationId: string, jobId: string, action: string): Promise<Job> {
  const job = await findJob(db, organizationId, jobId);
  if (!job) throw new NotFoundError('job', jobId);
  if (TERMINAL_STATUSES.includes(job.status)) {
    throw new ConflictError(`job ${jobId} already ended ${job.status}; cannot ${action}`, { status: job.status });
  }
  return job;
}

/** Deliver a signal; stored, so it counts even if the job has not reached its wait step yet. */
export async function sendSignal(db: Db, organizationId: string, jobId: string, name: string, payload: unknown): Promise<{ signalId: string }> {
  const bytes = jsonByteLength(payload);
  if (bytes > MAX_INPUT_BYTES) throw new PayloadTooLargeError('payload', bytes, MAX_INPUT_BYTES);
  await liveJob(db, organizationId, jobId, 'signal it');
  const { id } = await db.transaction((tx) => createSignal(tx, organizationId, jobId, name, payload));
  return { signalId: id };
}

/**
 * Request cancellation. A worker running the job aborts it at once (NOTIFY,
 * or its next heartbeat); a queued or waiting job is woken so a worker
 * records the cancellation (and runs compensations if the workflow has them).
 */
export async function cancelJob(db: Db, organizationId: string, jobId: string): Promise<void> {
  await liveJob(db, organizationId, jobId, 'cancel it');
  await db.transaction(async (tx) => {
    if (!(await requestCancel(tx, organizationId, jobId))) throw new ConflictError(`job ${jobId} ended meanwhile; cannot cancel it`);
    await wakeJob(tx, jobId);
    // Its sub-workflows, and theirs, are cancelled with it.
    const descendants = await requestCancelDescendants(tx, organizationId, jobId);
    await wakeJobs(tx, descendants);
    // Live views show the request at once (cancelRequestedAt); the status follows with the worker's flush.
    await notifyChanges(tx, [[organizationId, [jobId, ...descendants]]]);
  });
}

export type RetryFrom = 'failed-step' | 'start';

/** A job can be retried once it ended without success (FAILED, CANCELLED, TIMED_OUT). */
export const RETRYABLE_STATUSES: readonly JobStatus[] = TERMINAL_STATUSES.filter((s) => !SUCCESSFUL_STATUSES.includes(s));

/** "A, B or C". */
function oneOf(items: readonly string[]): string {
  return items.length <= 1 ? items.join('') : `${items.slice(0, -1).join(', ')} or ${items[items.length - 1]}`;
}

export interface RetryOptions {
  /**
   * Run the new job with this input instead of the old job's (from the start
   * only: the outputs a failed-step retry reuses came from the old input).
   * The new job keeps its retry_of link, so the edit shows as the difference
   * between the two jobs' inputs.
   */
  input?: unknown;
}

/**
 * Run an ended, unsuccessful job again as a new job (initiator RETRY,
 * linked to the old one, same pinned workflow version and input unless
 * `options.input` replaces it). From the
 * failed step, the new job starts with a copy of the old job's checkpoint:
 * the steps that succeeded are not run again, their outputs are reused. The
 * copy lives `checkpointTtlMs` (config.worker.checkpointTtlMs,
 * STEPWISE_CHECKPOINT_TTL_MS), like every checkpoint the workers write.
 */
export async function retryJob(
  db: Db,
  organizationId: string,
  jobId: string,
  from: RetryFrom,
  checkpointTtlMs: number,
  options: RetryOptions = {},
): Promise<EnqueuedJob> {
  const edited = options.input !== undefined;
  if (edited) {
    if (from !== 'start') throw new ValidationError('input can only be given with from: "start"', { path: 'input' });
    const bytes = jsonByteLength(options.input);
    if (bytes > MAX_INPUT_BYTES) throw new PayloadTooLargeError('input', bytes, MAX_INPUT_BYTES);
  }
  const job = await findJob(db, organizationId, jobId);
  if (!job) throw new NotFoundError('job', jobId);
  if (!RETRYABLE_STATUSES.includes(job.status)) {
    throw new ConflictError(`job ${jobId} is ${job.status}; only ${oneOf(RETRYABLE_STATUSES)} jobs can be retried`, { status: job.status });
  }
  const checkpoint = from === 'failed-step' ? await findCheckpoint(db, organizationId, jobId) : null;
  if (from === 'failed-step' && !checkpoint) {
    throw new ConflictError(`job ${jobId} has no checkpoint left (expired or never written); retry with from: "start"`, { path: 'from' });
  }
  const defs = await findDefinitions(db, [{ organizationId, workflowId: job.workflowId, version: job.workflowVersion }]);
  const definition = defs.get(versionKey(job.workflowId, job.workflowVersion))!;
  return db.transaction(async (tx) => {
    const [created] = await enqueueJobs(
      tx,
      organizationId,
      jobSettings(job.workflowId, job.workflowVersion, definition),
      [{ input: edited ? options.input : (job.input ?? undefined), clientId: job.clientId, priority: job.priority, initiatorType: 'RETRY', retryOfJobId: job.id }],
    );
    if (checkpoint) {
      await upsertCheckpoints(tx, [
        {
          jobId: created!.id,
          organizationId,
          checkpoint: { nextStep: checkpoint.nextStep, outputs: checkpoint.outputs, failedSteps: checkpoint.failedSteps, state: {}, carried: checkpoint.carried },
          expiresAt: new Date(Date.now() + checkpointTtlMs),
        },
      ]);
      // Inside blocks too: completed iterations and branches are reused, only the failed ones run again.
      await copyStepResults(tx, organizationId, jobId, created!.id);
    }
    return created!;
  });
}
