import type { WorkflowDefinition } from '../model/definition.js';
import type { ClaimedJob, JobResultRef, StepResult } from '../store/index.js';
import { storeLargeResult } from './results.js';
import { CancelledError, JobAbort, JobTimeoutError, LeaseLostError } from './aborts.js';
import { Frame } from './frame.js';
import { JobRun } from './job-run.js';
import type { RecordSink } from './record-sink.js';
import {
  afterInterruption,
  afterJobFailure,
  endEvent,
  resultPlacement,
  StepFailed,
  successOutcome,
  wakeTime,
  type EndStatus,
  type JobError,
  type StreamEvent,
} from './rules.js';
import { runStep } from './sequence.js';
import { runAttempts, type AttemptOptions } from './step-attempts.js';
import { isBlock, stepTypeOf } from './steps/registry.js';
import { compensationsOf } from './compensations.js';
import { jsonByteLength, storableJson } from '../util/json.js';
import { LIMITS } from './limits.js';

export { ShutdownError, LeaseLostError, CancelledError } from './aborts.js';

export interface ExecutorOptions extends AttemptOptions {
  /** How long a checkpoint is kept (a failed job's stays this long for a retry from its failed step). */
  checkpointTtlMs: number;
  /**
   * A result whose JSON is larger goes to blob storage (`artifacts.blobs`) and the
   * jobs row keeps a reference; without a blob store results stay inline up to
   * LIMITS.resultBytes. Default 64 KB.
   */
  resultInlineBytes?: number;
  /** What a resumed job recorded inside its blocks (execution_step_results); absent: nothing is read. */
  findStepResults?: ((organizationId: string, jobId: string) => Promise<Map<string, StepResult>>) | undefined;
}

const DEFAULT_RESULT_INLINE_BYTES = 64 * 1024;

/** A job that ran before (a takeover, a wake-up, a job-level retry, a retry from its failed step) may have recorded inside its blocks. */
function mayHaveResults(job: ClaimedJob, definition: WorkflowDefinition): boolean {
  return (job.checkpoint !== null || job.attempts > 1 || job.priorStatus === 'WAITING') && definition.steps.some(isBlock);
}

/**
 * Run one claimed job from its checkpoint (or the start) to an outcome:
 * completed, partial success, failed (after compensation and job-level
 * retries), cancelled, timed out, suspended (delay, wait, approval, a
 * sub-workflow, a throttle — anywhere inside its blocks), handed back
 * (shutdown) or abandoned (lease lost). Never throws.
 */
export async function executeJob(
  job: ClaimedJob,
  definition: WorkflowDefinition,
  sink: RecordSink,
  abort: JobAbort,
  options: ExecutorOptions,
): Promise<void> {
  const run = new JobRun(job, definition, sink, options.checkpointTtlMs, abort);
  const deadline = job.deadlineAt?.getTime();
  // The deadline pulls the same switch as cancel and shutdown; whichever comes first is the outcome.
  const deadlineTimer =
    deadline === undefined ? undefined : setTimeout(() => abort.abort(new JobTimeoutError()), Math.max(0, deadline - Date.now()));
  try {
    try {
      if (job.cancelRequested) throw new CancelledError();
      if (deadline !== undefined && deadline <= Date.now()) throw new JobTimeoutError();
      if (options.findStepResults && mayHaveResults(job, definition)) {
        run.results = await options.findStepResults(job.organizationId, job.id);
        run.hasResults = run.results.size > 0;
      }
      if (job.priorStatus !== 'WAITING') {
        const data = run.resumed || job.attempts > 1 ? { attempt: job.attempts, resumeAt: run.nextStep, retry: job.retryCount || undefined } : null;
        run.emit('JOB_STARTED', 'INFO', null, `run ${job.runNumber} started`, data);
      }
      const frame = Frame.top(run, options, abort);
      const steps = definition.steps;
      for (let i = run.nextStep; i < steps.length; i++) {
        const step = steps[i]!;
        const end = await runStep(frame, step, run.results.get(step.id));
        if (end.kind === 'suspended') {
          run.saveCheckpoint();
          run.suspend('WAITING', new Date(wakeTime(end.until, Date.now(), job.deadlineAt?.getTime() ?? null)));
          return;
        }
        if (end.kind === 'failed') throw new StepFailed(end.error);
        run.outputs[step.id] = end.kind === 'completed' ? end.output : null;
        run.nextStep = i + 1;
        run.saveCheckpoint();
        if (stepTypeOf(step)?.sideEffects) await run.durable();
      }
      await succeed(run, options);
    } catch (err) {
      await settle(run, abort.aborted ? abort.reason : err, options);
    }
  } catch (err) {
    // Compensations commit before and after each side effect; one that finds
    // the job taken over stops there: the new owner records the outcome.
    if (!(err instanceof LeaseLostError)) throw err;
  } finally {
    clearTimeout(deadlineTimer);
  }
}

function emitEvent(run: JobRun, stepIndex: number | null, event: StreamEvent): void {
  run.emit(event.kind, event.level, stepIndex, event.message, event.data);
}

async function succeed(run: JobRun, options: ExecutorOptions): Promise<void> {
  const steps = run.definition.steps;
  const storable = storableJson(run.outputs[steps[steps.length - 1]!.id] ?? null);
  let result = storable.value;
  let resultRef: JobResultRef | undefined;
  if (storable.changed) run.emit('LOG', 'WARN', null, 'result held U+0000 characters, which were replaced with U+FFFD to be storable');
  const resultBytes = jsonByteLength(result);
  const placement = resultPlacement(resultBytes, {
    inlineMax: options.resultInlineBytes ?? DEFAULT_RESULT_INLINE_BYTES,
    maxBytes: LIMITS.resultBytes,
    hasBlobStore: options.artifacts !== undefined,
  });
  if (placement === 'too-large') {
    run.emit('LOG', 'WARN', null, `result of ${resultBytes} bytes exceeds ${LIMITS.resultBytes}; not stored`);
    result = { truncated: true, bytes: resultBytes };
  } else if (placement === 'blob') {
    // Large results live in blob storage, so the jobs row (read by every list) stays small.
    try {
      resultRef = await storeLargeResult(options.artifacts!.blobs, run.job.organizationId, run.job.id, JSON.stringify(result));
      // SQL NULL (not JSON null) in the row: the reference in job_result_archives is the result.
      result = undefined;
    } catch (err) {
      // The result still fits the jobs row (<= 1 MB): keep it there rather than fail a finished job.
      run.emit('LOG', 'WARN', null, `result of ${resultBytes} bytes kept inline: blob store failed (${err instanceof Error ? err.message : String(err)})`, {
        code: 'RESULT_BLOB_UNAVAILABLE',
      });
    }
  }
  const outcome = successOutcome(run.failedSteps, run.job.runNumber);
  emitEvent(run, null, outcome.event);
  run.finish({ status: outcome.status, result, ...(resultRef ? { resultRef } : {}) });
}

/** The run stopped before its end: hand back, abandon, retry the job, or end it. */
async function settle(run: JobRun, reason: unknown, options: ExecutorOptions): Promise<void> {
  const verdict = afterInterruption(reason);
  switch (verdict.kind) {
    case 'abandon':
      return; // its new owner records it
    case 'hand-back':
      run.emit('JOB_HANDED_BACK', 'WARN', null, verdict.message);
      run.saveCheckpoint();
      run.suspend('PENDING', new Date(Date.now() + verdict.delayMs));
      return;
    case 'end':
      return end(run, verdict.status, verdict.error, options);
    case 'fail': {
      const next = afterJobFailure(run.job, verdict.error);
      if (next.kind === 'end') return end(run, 'FAILED', verdict.error, options, next.maxRetriesReached);
      emitEvent(run, null, next.event);
      run.saveCheckpoint();
      run.suspend('PENDING', new Date(Date.now() + next.delayMs), verdict.error);
      return;
    }
  }
}

/** Final failure-like outcome: compensations first (if configured), then the terminal event. */
async function end(run: JobRun, status: EndStatus, error: JobError, options: ExecutorOptions, maxRetriesReached = false): Promise<void> {
  if (run.definition.onFailure === 'compensate') await compensate(run, options);
  emitEvent(run, null, endEvent(status, error));
  run.saveCheckpoint();
  run.finish({ status, result: null, error, maxRetriesReached });
}

/**
 * Saga: run the compensations of the completed steps in reverse completion
 * order, steps inside blocks included (iterations and branches). Each runs
 * with its own timeout, not under the job's signal (which may be the very
 * cancellation or deadline being compensated for).
 */
async function compensate(run: JobRun, options: ExecutorOptions): Promise<void> {
  for (const { frame, step, action } of compensationsOf(run, options)) {
    const result = await runAttempts(frame, action, new JobAbort(), 'compensation');
    const ok = result.kind === 'completed';
    frame.emit(step.id, 'COMPENSATED', ok ? 'INFO' : 'ERROR', step.id, {
      compensation: action.id,
      ok,
      ...(result.kind === 'failed' ? { code: result.failure.code, message: result.failure.message } : {}),
    });
    if (ok && stepTypeOf(action)?.sideEffects) await run.durable();
  }
}
