import type { CheckpointWrite, JobCompletion, JobSuspension, SignalConsumption, StepResultWrite, StreamRow } from '../store/index.js';

/**
 * Where a job run hands what it records. The Recorder implements it over
 * the database (batched, fenced by the job's lease); tests implement it in
 * memory, so the executor runs without a database.
 */
export interface RecordSink {
  append(row: StreamRow): void;
  /** Step rows not written to the stream (a loop's quiet iterations) that still count into step_metrics. */
  countOnly(row: StreamRow): void;
  /** The job's newest resumable state (only the last one per flush is written). */
  checkpoint(write: CheckpointWrite): void;
  consumeSignal(consumed: SignalConsumption): void;
  /** Where a nested step, iteration, branch or block stands (only the newest per path is written). */
  stepResult(write: StepResultWrite): void;
  complete(completion: JobCompletion): void;
  suspend(suspension: JobSuspension): void;
  /**
   * Resolves once everything handed over so far is committed, or dropped
   * because this worker no longer holds the job (the run is aborted then).
   */
  durable(): Promise<void>;
}
