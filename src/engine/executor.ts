import type { ActionStep, DelayStep, WaitStep, WorkflowDefinition } from './definition/types.js';
import type { ClaimedJob, JobResultRef } from '../store/index.js';
import { storeLargeResult } from './results.js';
import type { Recorder } from './recorder.js';
import { CancelledError, JobAbort, JobTimeoutError, LeaseLostError, ShutdownError } from './aborts.js';
import { jobRetryDelayMs } from './backoff.js';
import { JobRun, type JobError } from './job-run.js';
import { runAttempts, type AttemptOptions, type StepFailureInfo } from './step-attempts.js';
import { jsonByteLength, storableJson } from '../util/json.js';
import { LIMITS } from './limits.js';

export { ShutdownError, LeaseLostError, CancelledError } from './aborts.js';

export interface ExecutorOptions extends AttemptOptions {
  /** How long a checkpoint is kept (seed 000 §2.2.3: they expire). */
  checkpointTtlMs: number;
  /**
   * A result whose JSON is larger goes to blob storage (`artifacts.blobs`) and the
   * jobs row keeps a reference; without a blob store results stay inline up to
   * LIMITS.resultBytes. Default 64 KB.
   */
  resultInlineBytes?: number;
}

const DEFAULT_RESULT_INLINE_BYTES = 64 * 1024;

/** What the executor needs from the database besides the recorder. */
export interface ExecutorPorts {
  findSignal(organizationId: string, jobId: string, name: string): Promise<{ id: string; payload: unknown } | null>;
}

/** A step failed and the job must fail with it (not continueOnError). */
class StepFailed extends Error {
  constructor(readonly error: JobError) {
    super(error.message);
  }
}

/** Steps whose effects reach outside Stepwise: their checkpoint is committed before the job moves on. */
function hasSideEffects(step: ActionStep): boolean {
  return step.type === 'http';
}

const FAR_FUTURE = 30 * 24 * 3600 * 1000;

/**
 * Run one claimed job from its checkpoint (or the start) to an outcome:
 * completed, partial success, failed (after compensation and job-level
 * retries), cancelled, timed out, suspended (delay, wait), handed back
 * (shutdown) or abandoned (lease lost). Never throws.
 */
export async function executeJob(
  job: ClaimedJob,
  definition: WorkflowDefinition,
  recorder: Recorder,
  abort: JobAbort,
  options: ExecutorOptions,
  ports: ExecutorPorts,
): Promise<void> {
  const run = new JobRun(job, definition, recorder, options.checkpointTtlMs);
  const deadline = job.deadlineAt?.getTime();
  // The deadline pulls the same switch as cancel and shutdown; whichever comes first is the outcome.
  const deadlineTimer =
    deadline === undefined ? undefined : setTimeout(() => abort.abort(new JobTimeoutError()), Math.max(0, deadline - Date.now()));
  try {
    if (job.cancelRequested) throw new CancelledError();
    if (deadline !== undefined && deadline <= Date.now()) throw new JobTimeoutError();
    if (job.priorStatus !== 'WAITING') {
      const data = run.resumed || job.attempts > 1 ? { attempt: job.attempts, resumeAt: run.nextStep, retry: job.retryCount || undefined } : null;
      run.emit('JOB_STARTED', 'INFO', null, `run ${job.runNumber} started`, data);
    }
    const steps = definition.steps;
    for (let i = run.nextStep; i < steps.length; i++) {
      const step = steps[i]!;
      const suspended =
        step.type === 'delay' ? delayStep(run, step, i) : step.type === 'wait' ? await waitStep(run, step, i, ports) : false;
      if (suspended) return;
      if (step.type !== 'delay' && step.type !== 'wait') await actionStep(run, step, i, abort, options);
    }
    await succeed(run, options);
  } catch (err) {
    const reason = abort.aborted ? abort.reason : err;
    if (reason instanceof LeaseLostError) return; // its new owner records it
    if (reason instanceof ShutdownError) {
      run.emit('JOB_HANDED_BACK', 'WARN', null, 'worker shutting down; job returned to the queue');
      run.saveCheckpoint();
      run.suspend('PENDING', new Date());
      return;
    }
    if (reason instanceof CancelledError) return end(run, 'CANCELLED', { code: 'CANCELLED', message: 'cancelled by request', step: null }, options);
    if (reason instanceof JobTimeoutError) return end(run, 'TIMED_OUT', { code: 'JOB_TIMEOUT', message: 'job deadline passed', step: null }, options);
    const error = reason instanceof StepFailed ? reason.error : { code: 'INTERNAL', message: String((reason as Error)?.message ?? reason), step: null };
    await fail(run, error, options);
  } finally {
    clearTimeout(deadlineTimer);
  }
}

async function actionStep(run: JobRun, step: ActionStep, index: number, abort: JobAbort, options: ExecutorOptions): Promise<void> {
  const result = await runAttempts(run, step, index, abort, options);
  if (result.ok) {
    run.outputs[step.id] = result.output;
    const bytes = result.output === null ? 0 : jsonByteLength(result.output);
    run.emit(
      'STEP_COMPLETED',
      'INFO',
      index,
      step.id,
      bytes === 0
        ? { durationMs: result.durationMs }
        : bytes <= LIMITS.inlineOutputBytes
          ? { durationMs: result.durationMs, output: result.output }
          : { durationMs: result.durationMs, outputBytes: bytes },
    );
  } else {
    if (!step.continueOnError) throw new StepFailed(stepError(step, result.failure));
    run.outputs[step.id] = null;
    run.failedSteps.push(step.id);
  }
  run.nextStep = index + 1;
  run.saveCheckpoint();
  if (hasSideEffects(step)) await run.durable();
}

function stepError(step: { id: string }, failure: StepFailureInfo): JobError {
  return { code: failure.code, message: failure.message, step: step.id };
}

/** A durable timer: suspend until the wake time, then complete. Returns true when suspended. */
function delayStep(run: JobRun, step: DelayStep, index: number): boolean {
  const now = Date.now();
  let wakeAt = run.state.step === step.id ? Number(run.state.wakeAt) : Number.NaN;
  if (Number.isNaN(wakeAt)) {
    wakeAt = step.until !== undefined ? Date.parse(step.until) : now + step.durationMs!;
    run.emit('STEP_STARTED', 'INFO', index, step.id);
    run.emit('WAITING', 'INFO', index, step.id, { until: new Date(wakeAt).toISOString() });
    run.state = { step: step.id, wakeAt, since: now };
  }
  if (now < wakeAt) {
    run.saveCheckpoint();
    run.suspend('WAITING', new Date(Math.min(wakeAt, run.job.deadlineAt?.getTime() ?? wakeAt)));
    return true;
  }
  run.outputs[step.id] = null;
  run.emit('STEP_COMPLETED', 'INFO', index, step.id, { durationMs: now - Number(run.state.since ?? now) });
  run.state = {};
  run.nextStep = index + 1;
  run.saveCheckpoint();
  return false;
}

/** Wait for a named signal (stored, so an early one counts). Returns true when suspended. */
async function waitStep(run: JobRun, step: WaitStep, index: number, ports: ExecutorPorts): Promise<boolean> {
  const now = Date.now();
  const waiting = run.state.step === step.id;
  if (!waiting) run.emit('STEP_STARTED', 'INFO', index, step.id);
  const since = waiting ? Number(run.state.since) : now;
  const signal = await ports.findSignal(run.job.organizationId, run.job.id, step.signal);
  if (signal) {
    run.consumeSignal(signal.id);
    run.outputs[step.id] = signal.payload ?? null;
    run.emit('SIGNAL_RECEIVED', 'INFO', index, step.signal);
    run.emit('STEP_COMPLETED', 'INFO', index, step.id, { durationMs: now - since });
    run.state = {};
    run.nextStep = index + 1;
    run.saveCheckpoint();
    return false;
  }
  const until = waiting ? (run.state.until as number | null) : step.timeoutMs !== undefined ? now + step.timeoutMs : null;
  if (until !== null && now >= until) {
    run.state = {};
    if (step.onTimeout === 'continue') {
      run.outputs[step.id] = null;
      run.emit('STEP_COMPLETED', 'WARN', index, step.id, { durationMs: now - since, timedOut: true });
      run.nextStep = index + 1;
      run.saveCheckpoint();
      return false;
    }
    const failure = { code: 'WAIT_TIMEOUT', message: `no "${step.signal}" signal within ${step.timeoutMs} ms` };
    run.emit('STEP_FAILED', 'ERROR', index, failure.message, { durationMs: now - since, code: failure.code });
    if (!step.continueOnError) throw new StepFailed(stepError(step, failure));
    run.outputs[step.id] = null;
    run.failedSteps.push(step.id);
    run.nextStep = index + 1;
    run.saveCheckpoint();
    return false;
  }
  if (!waiting) {
    run.emit('WAITING', 'INFO', index, step.id, { signal: step.signal, ...(until !== null ? { until: new Date(until).toISOString() } : {}) });
    run.state = { step: step.id, until, since };
  }
  run.saveCheckpoint();
  const wakeAt = Math.min(until ?? now + FAR_FUTURE, run.job.deadlineAt?.getTime() ?? Infinity);
  run.suspend('WAITING', new Date(wakeAt));
  return true;
}

async function succeed(run: JobRun, options: ExecutorOptions): Promise<void> {
  const steps = run.definition.steps;
  const storable = storableJson(run.outputs[steps[steps.length - 1]!.id] ?? null);
  let result = storable.value;
  let resultRef: JobResultRef | undefined;
  if (storable.changed) run.emit('LOG', 'WARN', null, 'result held U+0000 characters, which were replaced with U+FFFD to be storable');
  const resultBytes = jsonByteLength(result);
  const inlineMax = options.resultInlineBytes ?? DEFAULT_RESULT_INLINE_BYTES;
  if (resultBytes > LIMITS.resultBytes) {
    run.emit('LOG', 'WARN', null, `result of ${resultBytes} bytes exceeds ${LIMITS.resultBytes}; not stored`);
    result = { truncated: true, bytes: resultBytes };
  } else if (resultBytes > inlineMax && options.artifacts) {
    // Seed 002 Phase 4: large results live in blob storage; the jobs row keeps a reference.
    try {
      resultRef = await storeLargeResult(options.artifacts.blobs, run.job.organizationId, run.job.id, JSON.stringify(result));
      // SQL NULL (not JSON null) in the row: the reference in job_result_archives is the result.
      result = undefined;
    } catch (err) {
      // The result still fits the jobs row (<= 1 MB): keep it there rather than fail a finished job.
      run.emit('LOG', 'WARN', null, `result of ${resultBytes} bytes kept inline: blob store failed (${err instanceof Error ? err.message : String(err)})`, {
        code: 'RESULT_BLOB_UNAVAILABLE',
      });
    }
  }
  if (run.failedSteps.length > 0) {
    run.emit('JOB_PARTIAL_SUCCESS', 'WARN', null, `run ${run.job.runNumber} completed; failed steps: ${run.failedSteps.join(', ')}`, {
      failedSteps: run.failedSteps,
    });
    run.finish('PARTIAL_SUCCESS', result, undefined, false, resultRef);
    return;
  }
  run.emit('JOB_COMPLETED', 'INFO', null, `run ${run.job.runNumber} completed`);
  run.finish('COMPLETED', result, undefined, false, resultRef);
}

/** A step failed: retry the job if it has retries left, else compensate and end FAILED. */
async function fail(run: JobRun, error: JobError, options: ExecutorOptions): Promise<void> {
  const { retryCount, maxRetries } = run.job;
  if (retryCount < maxRetries) {
    const delayMs = jobRetryDelayMs(retryCount);
    run.emit('RETRY_SCHEDULED', 'WARN', null, `job retry ${retryCount + 1} of ${maxRetries} in ${delayMs} ms`, {
      retry: retryCount + 1,
      of: maxRetries,
      delayMs,
      code: error.code,
    });
    run.saveCheckpoint();
    run.suspend('PENDING', new Date(Date.now() + delayMs), error);
    return;
  }
  await end(run, 'FAILED', error, options, maxRetries > 0);
}

/** Final failure-like outcome: compensations first (if configured), then the terminal event. */
async function end(
  run: JobRun,
  status: 'FAILED' | 'CANCELLED' | 'TIMED_OUT',
  error: JobError,
  options: ExecutorOptions,
  maxRetriesReached = false,
): Promise<void> {
  if (run.definition.onFailure === 'compensate') await compensate(run, options);
  const kind = status === 'FAILED' ? 'JOB_FAILED' : status === 'CANCELLED' ? 'JOB_CANCELLED' : 'JOB_TIMED_OUT';
  const message = status === 'FAILED' && error.step ? `step ${error.step} failed: ${error.message}` : error.message;
  run.emit(kind, status === 'CANCELLED' ? 'WARN' : 'ERROR', null, message, { code: error.code });
  run.saveCheckpoint();
  run.finish(status, null, error, maxRetriesReached);
}

/**
 * Saga: run the compensations of the completed steps in reverse order. Each
 * runs with its own timeout, not under the job's signal (which may be the
 * very cancellation or deadline being compensated for).
 */
async function compensate(run: JobRun, options: ExecutorOptions): Promise<void> {
  const steps = run.definition.steps;
  for (let i = run.nextStep - 1; i >= 0; i--) {
    const step = steps[i]!;
    if (!step.compensate || run.failedSteps.includes(step.id)) continue;
    const action = step.compensate.step;
    const result = await runAttempts(run, action, i, new JobAbort(), options, 'compensation');
    run.emit('COMPENSATED', result.ok ? 'INFO' : 'ERROR', i, step.id, {
      compensation: action.id,
      ok: result.ok,
      ...(result.ok ? {} : { code: result.failure.code, message: result.failure.message }),
    });
    if (result.ok && hasSideEffects(action)) await run.durable();
  }
}
