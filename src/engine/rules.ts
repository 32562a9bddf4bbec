import { DATABASE_RETRY_AFTER_SECONDS, isDatabaseUnavailable } from '../db/errors.js';
import type { RetryPolicy } from '../model/definition.js';
import type { LogLevel, StreamKind } from '../store/index.js';
import { CancelledError, JobTimeoutError, LeaseLostError, ShutdownError } from './aborts.js';
import { isRetryable, jobRetryDelayMs, retryDelayMs } from './backoff.js';

/**
 * The step and outcome rules of a job run, as pure functions: what a failed
 * attempt, a failed step, a failed job, an abort and a finished run lead
 * to. The executor (executor.ts) applies them; they are unit-tested
 * without a database or a clock.
 */

/** Why a job failed, as recorded in jobs.error_code / error_message / error_step. */
export interface JobError {
  code: string;
  message: string;
  step: string | null;
}

/** A step failed and the job fails with it (the step did not say continueOnError). */
export class StepFailed extends Error {
  constructor(readonly error: JobError) {
    super(error.message);
    this.name = 'StepFailed';
  }
}

/** A stream row to write: kind, level, message and data. */
export interface StreamEvent {
  kind: StreamKind;
  level: LogLevel;
  message: string;
  data?: Record<string, unknown>;
}

export type AttemptVerdict = { retry: true; delayMs: number } | { retry: false };

/** After attempt `attempt` of a step failed with `code`: another attempt after delayMs, or give up. */
export function afterFailedAttempt(policy: RetryPolicy | undefined, code: string, attempt: number, random: () => number = Math.random): AttemptVerdict {
  if (!policy || !isRetryable(policy, code, attempt)) return { retry: false };
  return { retry: true, delayMs: retryDelayMs(policy, attempt, random) };
}

export type StepFailureVerdict = { kind: 'continue' } | { kind: 'fail'; error: JobError };

/** After a step's last attempt failed: the job goes on without its output (continueOnError) or fails. */
export function afterFailedStep(step: { id: string; continueOnError?: boolean }, failure: { code: string; message: string }): StepFailureVerdict {
  if (step.continueOnError) return { kind: 'continue' };
  return { kind: 'fail', error: { code: failure.code, message: failure.message, step: step.id } };
}

export type JobFailureVerdict =
  | { kind: 'retry'; delayMs: number; event: StreamEvent }
  | { kind: 'end'; maxRetriesReached: boolean };

/** After the job failed: run it again from the failed step later (job-level retries left) or end FAILED. */
export function afterJobFailure(job: { retryCount: number; maxRetries: number }, error: JobError): JobFailureVerdict {
  const { retryCount, maxRetries } = job;
  if (retryCount >= maxRetries) return { kind: 'end', maxRetriesReached: maxRetries > 0 };
  const delayMs = jobRetryDelayMs(retryCount);
  return {
    kind: 'retry',
    delayMs,
    event: {
      kind: 'RETRY_SCHEDULED',
      level: 'WARN',
      message: `job retry ${retryCount + 1} of ${maxRetries} in ${delayMs} ms`,
      data: { retry: retryCount + 1, of: maxRetries, delayMs, code: error.code },
    },
  };
}

export type EndStatus = 'FAILED' | 'CANCELLED' | 'TIMED_OUT';

export type InterruptionVerdict =
  /** The job's lease went to another worker: record nothing more, its new owner goes on. */
  | { kind: 'abandon' }
  /**
   * Not the job's doing: the worker is stopping, or Stepwise's own database
   * became unavailable under the run (a restart, a lost connection). Checkpoint
   * and put the job back in the queue, runnable after `delayMs`; it resumes
   * from its last committed checkpoint wherever it is claimed next.
   */
  | { kind: 'hand-back'; message: string; delayMs: number }
  /** Cancelled or past its deadline: compensate if configured, then end with this status. */
  | { kind: 'end'; status: 'CANCELLED' | 'TIMED_OUT'; error: JobError }
  /** A step failed (or the engine did): job-level retry or FAILED. */
  | { kind: 'fail'; error: JobError };

/** What stopped a run (the abort's reason when the job's switch was pulled, else the error thrown) means for the job. */
export function afterInterruption(reason: unknown): InterruptionVerdict {
  if (reason instanceof LeaseLostError) return { kind: 'abandon' };
  if (reason instanceof ShutdownError) return { kind: 'hand-back', message: 'worker shutting down; job returned to the queue', delayMs: 0 };
  // A step's or the engine's own read or write that found the database unavailable: the job did nothing
  // wrong, so it neither fails nor spends a retry. Handed back, it is written when the database is back
  // (the recorder retries) and runs again after a short wait, not at once into the same outage.
  if (isDatabaseUnavailable(reason)) {
    return { kind: 'hand-back', message: 'the database was unavailable; job returned to the queue', delayMs: DATABASE_RETRY_AFTER_SECONDS * 1000 };
  }
  if (reason instanceof CancelledError) return { kind: 'end', status: 'CANCELLED', error: { code: 'CANCELLED', message: 'cancelled by request', step: null } };
  if (reason instanceof JobTimeoutError) return { kind: 'end', status: 'TIMED_OUT', error: { code: 'JOB_TIMEOUT', message: 'job deadline passed', step: null } };
  if (reason instanceof StepFailed) return { kind: 'fail', error: reason.error };
  const message = reason instanceof Error ? reason.message : String(reason);
  return { kind: 'fail', error: { code: 'INTERNAL', message, step: null } };
}

/** The terminal stream row of a job ending FAILED, CANCELLED or TIMED_OUT. */
export function endEvent(status: EndStatus, error: JobError): StreamEvent {
  const kind = status === 'FAILED' ? 'JOB_FAILED' : status === 'CANCELLED' ? 'JOB_CANCELLED' : 'JOB_TIMED_OUT';
  const message = status === 'FAILED' && error.step ? `step ${error.step} failed: ${error.message}` : error.message;
  return { kind, level: status === 'CANCELLED' ? 'WARN' : 'ERROR', message, data: { code: error.code } };
}

/** How a run that reached its end completes: COMPLETED, or PARTIAL_SUCCESS when continueOnError steps failed. */
export function successOutcome(failedSteps: readonly string[], runNumber: number): { status: 'COMPLETED' | 'PARTIAL_SUCCESS'; event: StreamEvent } {
  if (failedSteps.length === 0) {
    return { status: 'COMPLETED', event: { kind: 'JOB_COMPLETED', level: 'INFO', message: `run ${runNumber} completed` } };
  }
  return {
    status: 'PARTIAL_SUCCESS',
    event: {
      kind: 'JOB_PARTIAL_SUCCESS',
      level: 'WARN',
      message: `run ${runNumber} completed; failed steps: ${failedSteps.join(', ')}`,
      data: { failedSteps: [...failedSteps] },
    },
  };
}

/** Where a finished job's result goes: the jobs row, blob storage (a reference in the row), or nowhere (too large to keep). */
export function resultPlacement(bytes: number, limits: { inlineMax: number; maxBytes: number; hasBlobStore: boolean }): 'inline' | 'blob' | 'too-large' {
  if (bytes > limits.maxBytes) return 'too-large';
  if (bytes > limits.inlineMax && limits.hasBlobStore) return 'blob';
  return 'inline';
}

/** A suspension with no wake time still wakes after this long, to look at its job again. */
export const FAR_FUTURE_MS = 30 * 24 * 3600 * 1000;

/** When a suspended job is woken: its step's time (or far ahead when it waits to be woken), but never after its deadline. */
export function wakeTime(until: number | null, now: number, deadline: number | null): number {
  return Math.min(until ?? now + FAR_FUTURE_MS, deadline ?? Infinity);
}
