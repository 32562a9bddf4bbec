import type { WorkflowDefinition } from '../model/definition.js';
import {
  LOG_LEVELS,
  STREAM_KINDS,
  type Checkpoint,
  type ClaimedJob,
  type JobResultRef,
  type JobSuspension,
  type LogLevel,
  type StepResult,
  type StepResultStatus,
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
  /** Values kept across steps (a browser session's sealed state), saved with the checkpoint. Change them with carry(). */
  readonly carried: Record<string, unknown>;
  /**
   * Whether this job has carried anything: only then do its checkpoints write the carried column
   * (store/checkpoints.ts). Once set it stays set, so the newest checkpoint, which replaces older
   * unflushed ones, always has the values.
   */
  private carries: boolean;
  readonly resumed: boolean;
  /** Results of nested steps, iterations, branches and blocks, by path (loaded on resume, kept up to date). */
  results: Map<string, StepResult> = new Map();
  /** Rows of execution_step_results may exist for this job (deleted when it succeeds). */
  hasResults = false;
  private capNoted = false;

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
    this.carried = { ...(cp?.carried ?? {}) };
    this.carries = Object.keys(this.carried).length > 0;
    this.resumed = cp !== null;
  }

  private topIndexes: Map<string, number> | undefined;

  /**
   * The index of a top-level step, or of the step a top-level compensation
   * belongs to (stream rows of steps inside a block carry their block's).
   */
  topIndex(stepId: string): number | null {
    if (!this.topIndexes) {
      this.topIndexes = new Map();
      this.definition.steps.forEach((s, i) => {
        this.topIndexes!.set(s.id, i);
        if (s.compensate) this.topIndexes!.set(s.compensate.step.id, i);
      });
    }
    return this.topIndexes.get(stepId) ?? null;
  }

  /** A step that failed under continueOnError, anywhere: the job will end PARTIAL_SUCCESS. */
  noteFailed(path: string): void {
    if (!this.failedSteps.includes(path)) this.failedSteps.push(path);
  }

  /** True once this worker lost the job: its writes are dropped here, before they reach the sink. */
  get fenced(): boolean {
    return this.abort?.lost === true;
  }

  /** Append a stream row; returns its seq (the previous one when the row was dropped). */
  emit(kind: StreamKind, level: LogLevel, stepIndex: number | null, message: string, data?: unknown, path?: string | null): number {
    return this.append(prepareRow(kind, level, stepIndex, message, data, path ?? null, preciseNow()));
  }

  /** Rows a quiet iteration held back and, as it succeeded, drops: its step results still count into step_metrics. */
  countHeld(rows: readonly HeldRow[]): void {
    if (this.fenced) return;
    for (const row of rows) {
      if (row.kind !== STREAM_KINDS.STEP_COMPLETED && row.kind !== STREAM_KINDS.STEP_FAILED) continue;
      this.sink.countOnly({
        organizationId: this.job.organizationId,
        jobId: this.job.id,
        workflowId: this.job.workflowId,
        tsMs: row.tsMs,
        seq: 0,
        stepIndex: row.stepIndex,
        kind: row.kind,
        level: row.level,
        message: row.message,
        data: row.data,
        path: row.path,
      });
    }
  }

  /** Append rows held back until now (a quiet iteration that failed), in their order, with seqs from here on. */
  emitHeld(rows: readonly HeldRow[]): void {
    for (const row of rows) this.append(row);
  }

  private append(row: HeldRow): number {
    if (this.fenced) return this.seq;
    // Past the cap a job keeps running and keeps its outcome, rollups and
    // waits in the stream; per-step detail stops, so one runaway loop cannot
    // write without bound.
    if (this.seq >= LIMITS.streamRowsPerJob && CAPPED_KINDS.has(row.kind)) {
      if (!this.capNoted) {
        this.capNoted = true;
        this.write(prepareRow('LOG', 'WARN', null, `stream row cap of ${LIMITS.streamRowsPerJob} reached: step rows are no longer written for this job`, null, null, preciseNow()));
      }
      return this.seq;
    }
    return this.write(row);
  }

  private write(row: HeldRow): number {
    this.sink.append({
      organizationId: this.job.organizationId,
      jobId: this.job.id,
      workflowId: this.job.workflowId,
      tsMs: row.tsMs,
      seq: ++this.seq,
      stepIndex: row.stepIndex,
      kind: row.kind,
      level: row.level,
      message: row.message,
      data: row.data,
      ...(row.path ? { path: row.path } : {}),
    });
    return this.seq;
  }

  /** Record where a nested step, iteration, branch or block stands (execution_step_results). */
  recordResult(path: string, status: StepResultStatus, output: unknown, state: Record<string, unknown> | null): void {
    if (this.fenced) return;
    const result: StepResult = { path, status, output: output === undefined ? null : output, state, seq: this.seq };
    this.results.set(path, result);
    this.hasResults = true;
    this.sink.stepResult({ ...result, jobId: this.job.id, organizationId: this.job.organizationId });
  }

  /** Set (or, with undefined, delete) a carried value and save the checkpoint. */
  carry(key: string, value: unknown): void {
    if (value === undefined) delete this.carried[key];
    else this.carried[key] = value;
    this.carries = true;
    this.saveCheckpoint();
  }

  saveCheckpoint(): void {
    if (this.fenced) return;
    this.sink.checkpoint({
      jobId: this.job.id,
      organizationId: this.job.organizationId,
      checkpoint: { nextStep: this.nextStep, outputs: this.outputs, failedSteps: this.failedSteps, state: this.state, carried: this.carries ? this.carried : undefined },
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
      hasStepResults: this.hasResults,
      parentJobId: this.job.parentJobId,
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

  /** Signals a step of this run found and took (their consumption may not be committed yet): no other wait gets them. */
  readonly takenSignals: string[] = [];

  consumeSignal(signalId: string): void {
    if (this.fenced) return;
    this.sink.consumeSignal({ jobId: this.job.id, signalId });
  }
}

/** A stream row before its seq: held back by a quiet iteration, or about to be appended. */
export interface HeldRow {
  tsMs: number;
  stepIndex: number | null;
  kind: number;
  level: number;
  message: string;
  data: unknown;
  path: string | null;
}

/** Rows dropped once a job has written LIMITS.streamRowsPerJob rows (per-step detail; outcomes, waits and rollups stay). */
const CAPPED_KINDS: ReadonlySet<number> = new Set(
  (['LOG', 'STEP_STARTED', 'STEP_COMPLETED', 'STEP_FAILED', 'RETRY_SCHEDULED', 'BRANCH_TAKEN', 'ITERATION_STARTED', 'ITERATION_COMPLETED', 'ITERATION_FAILED'] as const).map(
    (k) => STREAM_KINDS[k],
  ),
);

/** Bound and sanitise a row: every message is bounded whatever produced it, and no U+0000 reaches the database. */
export function prepareRow(kind: StreamKind, level: LogLevel, stepIndex: number | null, message: string, data: unknown, path: string | null, tsMs: number): HeldRow {
  if (message.includes('\u0000')) message = String(storableJson(message).value);
  if (message.length > LIMITS.logMessage) message = truncate(message, LIMITS.logMessage);
  if (data !== undefined && data !== null) data = storableJson(data).value;
  return { tsMs, stepIndex, kind: STREAM_KINDS[kind], level: LOG_LEVELS[level], message, data: data ?? null, path };
}
