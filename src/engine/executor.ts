import type { WorkflowDefinition } from './definition/types.js';
import { ExpressionError } from './definition/expressions.js';
import { runStep, StepError } from './steps/index.js';
import { LOG_LEVELS, STREAM_KINDS, type ClaimedJob, type JobStatus, type LogLevel, type StreamKind } from '../store/index.js';
import type { Recorder } from './recorder.js';
import { jsonByteLength, storableJson, truncate } from '../util/json.js';
import { LIMITS } from './limits.js';

export interface ExecutorOptions {
  stepTimeoutMs: number;
  httpMaxResponseBytes: number;
}

/** Thrown into a step when the worker is shutting down: the job is handed back, not failed. */
export class ShutdownError extends Error {
  constructor() {
    super('worker is shutting down');
    this.name = 'ShutdownError';
  }
}

/** Thrown into a step when this worker no longer holds the job's lease: it is abandoned silently. */
export class LeaseLostError extends Error {
  constructor() {
    super('lease lost');
    this.name = 'LeaseLostError';
  }
}

function describeError(err: unknown, stepSignal: AbortSignal): { code: string; message: string; data?: Record<string, unknown> } {
  if (stepSignal.aborted && (stepSignal.reason as Error | undefined)?.name === 'TimeoutError') {
    return { code: 'STEP_TIMEOUT', message: 'step timed out' };
  }
  if (err instanceof StepError) return { code: err.code, message: err.message, ...(err.data ? { data: err.data } : {}) };
  if (err instanceof ExpressionError) return { code: err.code, message: err.message };
  return { code: 'STEP_ERROR', message: err instanceof Error ? err.message : String(err) };
}

/**
 * Run one claimed job's steps in order, appending its stream to the recorder
 * and reporting the outcome there. Never throws: every failure becomes a
 * recorded outcome (FAILED, handed back, or abandoned when the lease is lost).
 */
export async function executeJob(
  job: ClaimedJob,
  definition: WorkflowDefinition,
  recorder: Recorder,
  abort: AbortSignal,
  options: ExecutorOptions,
): Promise<void> {
  let seq = job.lastSeq;
  const emit = (kind: StreamKind, level: LogLevel, stepIndex: number | null, message: string, data?: unknown): void => {
    if (message.includes('\u0000')) message = String(storableJson(message).value);
    if (data !== undefined && data !== null) data = storableJson(data).value;
    recorder.append({
      organizationId: job.organizationId,
      jobId: job.id,
      ts: new Date(),
      seq: ++seq,
      stepIndex,
      kind: STREAM_KINDS[kind],
      level: LOG_LEVELS[level],
      message,
      data: data ?? null,
    });
  };
  const finish = (status: JobStatus, result: unknown, stepsCompleted: number, error?: { code: string; message: string; step: string | null }): void => {
    recorder.complete({
      jobId: job.id,
      status,
      completedAt: new Date(),
      result,
      errorCode: error?.code ?? null,
      errorMessage: error ? truncate(String(storableJson(error.message).value), LIMITS.errorMessage) : null,
      errorStep: error?.step ?? null,
      stepsCompleted,
      lastSeq: seq,
    });
  };
  const stopHere = (): boolean => {
    if (!abort.aborted) return false;
    if (abort.reason instanceof LeaseLostError) return true; // its new owner records it
    emit('JOB_HANDED_BACK', 'WARN', null, 'worker shutting down; job returned to the queue');
    recorder.handBack(job.id, seq);
    return true;
  };

  emit('JOB_STARTED', 'INFO', null, `run ${job.runNumber} started`, job.attempts > 1 ? { attempt: job.attempts } : null);
  const outputs: Record<string, unknown> = {};
  const scope = { input: job.input ?? null, steps: outputs };
  const steps = definition.steps;

  for (let i = 0; i < steps.length; i++) {
    if (stopHere()) return;
    const step = steps[i]!;
    emit('STEP_STARTED', 'INFO', i, step.id);
    const stepSignal = AbortSignal.any([abort, AbortSignal.timeout(options.stepTimeoutMs)]);
    const t0 = performance.now();
    try {
      const output = await runStep(step, {
        scope,
        signal: stepSignal,
        log: (level, message, data) => emit('LOG', level, i, truncate(message, LIMITS.logMessage), data),
        limits: { httpMaxResponseBytes: options.httpMaxResponseBytes },
      });
      outputs[step.id] = output;
      const durationMs = Math.round(performance.now() - t0);
      const bytes = output === null || output === undefined ? 0 : jsonByteLength(output);
      emit(
        'STEP_COMPLETED',
        'INFO',
        i,
        step.id,
        bytes === 0 ? { durationMs } : bytes <= LIMITS.inlineOutputBytes ? { durationMs, output } : { durationMs, outputBytes: bytes },
      );
    } catch (err) {
      if (stopHere()) return;
      const failure = describeError(err, stepSignal);
      const message = truncate(failure.message, LIMITS.errorMessage);
      emit('STEP_FAILED', 'ERROR', i, message, {
        durationMs: Math.round(performance.now() - t0),
        code: failure.code,
        ...failure.data,
      });
      emit('JOB_FAILED', 'ERROR', null, `step ${step.id} failed: ${message}`, { code: failure.code });
      finish('FAILED', null, i, { code: failure.code, message, step: step.id });
      return;
    }
  }

  const storable = storableJson(outputs[steps[steps.length - 1]!.id] ?? null);
  let result = storable.value;
  if (storable.changed) emit('LOG', 'WARN', null, 'result held U+0000 characters, which were replaced with U+FFFD to be storable');
  const resultBytes = jsonByteLength(result);
  if (resultBytes > LIMITS.resultBytes) {
    emit('LOG', 'WARN', null, `result of ${resultBytes} bytes exceeds ${LIMITS.resultBytes}; not stored`);
    result = { truncated: true, bytes: resultBytes };
  }
  emit('JOB_COMPLETED', 'INFO', null, `run ${job.runNumber} completed`);
  finish('COMPLETED', result, steps.length);
}
