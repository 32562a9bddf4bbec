import type { WorkflowDefinition } from '../model/definition.js';
import {
  LOG_LEVELS,
  STREAM_KINDS,
  type Checkpoint,
  type ClaimedJob,
  type JobResultRef,
  type JobSuspension,
  type LogLevel,
  type StreamKind,
} from '../store/index.js';
import { storableJson, truncate } from '../util/json.js';
import { preciseNow } from '../util/clock.js';
import { LeaseLostError, type JobAbort } from './aborts.js';
import { LIMITS } from './limits.js';
import type { RecordSink } from './record-sink.js';
import type { JobError } from './rules.js';

/** How a job ends, as JobRun.finish records it. */
export interface JobOutcome {
  status: 'COMPLETED' | 'PARTIAL_SUCCESS' | 'FAILED' | 'CANCELLED' | 'TIMED_OUT';
  /** The job's result (undefined: SQL NULL, e.g. when it is kept in blob storage by `resultRef`). */
  result?: unknown;
  error?: JobError;
  /** Job-level retries ran out. */
  maxRetriesReached?: boolean;
  /** The result is in blob storage. */
  resultRef?: JobResultRef;
}

/**
 * One execution of a claimed job: its position, step outputs and stream
 * sequence, and the calls that hand rows, checkpoints and outcomes to the
 * record sink. Pure bookkeeping; the executor decides what happens. Once
 * the job's lease is lost, nothing more is handed over: those writes would
 * belong to a run that no longer owns the job.
 */
export class JobRun {
  seq: number;
  nextStep: number;
  outputs: Record<string, unknown>;
  failedSteps: string[];
  /** The current step's resumable state (a delay's wake time, a wait's deadline) with the executor's own keys. */
  state: Record<string, unknown>;
  readonly resumed: boolean;

  constructor(
    readonly job: ClaimedJob,
    readonly definition: WorkflowDefinition,
    private readonly sink: RecordSink,
    private readonly checkpointTtlMs: number,
    private readonly abort?: JobAbort,
  ) {
    this.seq = job.lastSeq;
    const cp: Checkpoint | null = job.checkpoint;
    this.nextStep = cp?.nextStep ?? 0;
    this.outputs = { ...(cp?.outputs ?? {}) };
    this.failedSteps = [...(cp?.failedSteps ?? [])];
    this.state = { ...(cp?.state ?? {}) };
    this.resumed = cp !== null;
  }

  /** True once this worker lost the job: its writes are dropped here, before they reach the sink. */
  get fenced(): boolean {
    return this.abort?.lost === true;
  }

  /** Expression scope: `{ input, steps }`, live (later steps see new outputs). */
  get scope(): { input: unknown; steps: Record<string, unknown> } {
    return { input: this.job.input ?? null, steps: this.outputs };
  }

  /** Append a stream row; returns its seq. */
  emit(kind: StreamKind, level: LogLevel, stepIndex: number | null, message: string, data?: unknown): number {
    if (this.fenced) return this.seq;
    if (message.includes('\u0000')) message = String(storableJson(message).value);
    // Every row's message is bounded, whatever produced it (a JOB_FAILED row quotes the step's error).
    if (message.length > LIMITS.logMessage) message = truncate(message, LIMITS.logMessage);
    if (data !== undefined && data !== null) data = storableJson(data).value;
    this.sink.append({
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
    if (this.fenced) return;
    this.sink.checkpoint({
      jobId: this.job.id,
      organizationId: this.job.organizationId,
      checkpoint: { nextStep: this.nextStep, outputs: this.outputs, failedSteps: this.failedSteps, state: this.state },
      expiresAt: new Date(Date.now() + this.checkpointTtlMs),
    });
  }

  finish(outcome: JobOutcome): void {
    if (this.fenced) return;
    const { error } = outcome;
    this.sink.complete({
      jobId: this.job.id,
      status: outcome.status,
      completedAt: new Date(),
      result: outcome.result,
      // jobs.error_code is varchar(100): a longer code would get the whole record refused.
      errorCode: error ? truncate(error.code, LIMITS.errorCode) : null,
      errorMessage: error ? truncate(String(storableJson(error.message).value), LIMITS.errorMessage) : null,
      errorStep: error?.step ?? null,
      stepsCompleted: this.nextStep,
      lastSeq: this.seq,
      maxRetriesReached: outcome.maxRetriesReached ?? false,
      hasCheckpoint: this.resumed,
      ...(outcome.resultRef ? { resultRef: outcome.resultRef } : {}),
    });
  }

  suspend(status: JobSuspension['status'], runAt: Date, retry?: JobError): void {
    if (this.fenced) return;
    this.sink.suspend({
      jobId: this.job.id,
      status,
      runAt,
      lastSeq: this.seq,
      ...(retry ? { retry: { errorCode: truncate(retry.code, LIMITS.errorCode), errorMessage: truncate(retry.message, LIMITS.errorMessage), errorStep: retry.step } } : {}),
    });
  }

  /**
   * Everything recorded so far is committed (before and after a step with
   * side effects). Throws LeaseLostError when the flush found that this
   * worker no longer holds the job: the step must not run.
   */
  async durable(): Promise<void> {
    await this.sink.durable();
    if (this.fenced) throw new LeaseLostError();
  }

  consumeSignal(signalId: string): void {
    if (this.fenced) return;
    this.sink.consumeSignal({ jobId: this.job.id, signalId });
  }
}
