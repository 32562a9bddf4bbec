import type { WorkflowDefinition } from './definition/types.js';
import {
  LOG_LEVELS,
  STREAM_KINDS,
  type Checkpoint,
  type ClaimedJob,
  type JobStatus,
  type JobResultRef,
  type JobSuspension,
  type LogLevel,
  type StreamKind,
} from '../store/index.js';
import { storableJson, truncate } from '../util/json.js';
import { preciseNow } from '../util/clock.js';
import { LIMITS } from './limits.js';
import type { Recorder } from './recorder.js';

export interface JobError {
  code: string;
  message: string;
  step: string | null;
}

/**
 * One execution of a claimed job: its position, step outputs and stream
 * sequence, and the calls that hand rows, checkpoints and outcomes to the
 * recorder. Pure bookkeeping; the executor decides what happens.
 */
export class JobRun {
  seq: number;
  nextStep: number;
  outputs: Record<string, unknown>;
  failedSteps: string[];
  /** Step-specific resumable state (a delay's wake time, a wait's deadline). */
  state: Record<string, unknown>;
  readonly resumed: boolean;

  constructor(
    readonly job: ClaimedJob,
    readonly definition: WorkflowDefinition,
    private readonly recorder: Recorder,
    private readonly checkpointTtlMs: number,
  ) {
    this.seq = job.lastSeq;
    const cp: Checkpoint | null = job.checkpoint;
    this.nextStep = cp?.nextStep ?? 0;
    this.outputs = { ...(cp?.outputs ?? {}) };
    this.failedSteps = [...(cp?.failedSteps ?? [])];
    this.state = { ...(cp?.state ?? {}) };
    this.resumed = cp !== null;
  }

  /** Expression scope: `{ input, steps }`, live (later steps see new outputs). */
  get scope(): { input: unknown; steps: Record<string, unknown> } {
    return { input: this.job.input ?? null, steps: this.outputs };
  }

  /** Append a stream row; returns its seq. */
  emit(kind: StreamKind, level: LogLevel, stepIndex: number | null, message: string, data?: unknown): number {
    if (message.includes('\u0000')) message = String(storableJson(message).value);
    // Every row's message is bounded, whatever produced it (a JOB_FAILED row quotes the step's error).
    if (message.length > LIMITS.logMessage) message = truncate(message, LIMITS.logMessage);
    if (data !== undefined && data !== null) data = storableJson(data).value;
    this.recorder.append({
      organizationId: this.job.organizationId,
      jobId: this.job.id,
      workflowId: this.job.workflowId,
      tsMs: preciseNow(),
      seq: ++this.seq,
      stepIndex,
      kind: STREAM_KINDS[kind],
      level: LOG_LEVELS[level],
      message,
      data: data ?? null,
    });
    return this.seq;
  }

  saveCheckpoint(): void {
    this.recorder.checkpoint({
      jobId: this.job.id,
      organizationId: this.job.organizationId,
      checkpoint: { nextStep: this.nextStep, outputs: this.outputs, failedSteps: this.failedSteps, state: this.state },
      expiresAt: new Date(Date.now() + this.checkpointTtlMs),
    });
  }

  finish(status: JobStatus, result: unknown, error?: JobError, maxRetriesReached = false, resultRef?: JobResultRef): void {
    this.recorder.complete({
      jobId: this.job.id,
      status,
      completedAt: new Date(),
      result,
      // jobs.error_code is varchar(100): a longer code would get the whole record refused.
      errorCode: error ? truncate(error.code, LIMITS.errorCode) : null,
      errorMessage: error ? truncate(String(storableJson(error.message).value), LIMITS.errorMessage) : null,
      errorStep: error?.step ?? null,
      stepsCompleted: this.nextStep,
      lastSeq: this.seq,
      maxRetriesReached,
      hasCheckpoint: this.resumed,
      ...(resultRef ? { resultRef } : {}),
    });
  }

  suspend(status: JobSuspension['status'], runAt: Date, retry?: JobError): void {
    this.recorder.suspend({
      jobId: this.job.id,
      status,
      runAt,
      lastSeq: this.seq,
      ...(retry ? { retry: { errorCode: truncate(retry.code, LIMITS.errorCode), errorMessage: truncate(retry.message, LIMITS.errorMessage), errorStep: retry.step } } : {}),
    });
  }

  /** Everything recorded so far is committed (after a step with side effects). */
  durable(): Promise<void> {
    return this.recorder.durable();
  }

  consumeSignal(id: string): void {
    this.recorder.consumeSignal(id);
  }
}
