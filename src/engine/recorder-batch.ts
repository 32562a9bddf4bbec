import { ConflictError, PayloadTooLargeError, ValidationError } from '../errors/index.js';
import {
  LOG_LEVELS,
  STREAM_KINDS,
  type CheckpointWrite,
  type JobCompletion,
  type JobStart,
  type JobSuspension,
  type SignalConsumption,
  type StepResultWrite,
  type StreamRow,
} from '../store/index.js';
import { truncate } from '../util/json.js';
import { LIMITS } from './limits.js';
import type { StepTypeOf } from './step-type-index.js';

/**
 * What the recorder buffers between flushes (engine/recorder.ts): a batch of
 * writes by job, and the pure operations on it — keeping some jobs' part,
 * splitting it per job, and what is written instead of a refused record.
 */

/** A claimed job's start as the worker hands it over: what is written, the claim's token, and what the metrics count. */
export interface RecorderStart extends JobStart {
  lease: number;
  /** The job's organization (the per-run counters' label, when organization labels are on). */
  organizationId?: string | undefined;
  /** This claim starts the run's first attempt (it was PENDING and never started): its committed start counts once as a run started. */
  firstRun?: boolean | undefined;
  /** The step types of the job's workflow version (labels the step duration metric). */
  stepType?: StepTypeOf | undefined;
}

/** A start waiting in a batch: the JobStart written, with the figures the metrics count once it commits. */
export type PendingStart = JobStart & Pick<RecorderStart, 'organizationId' | 'firstRun'>;

export interface Batch {
  /** The fencing token of every job with something in this batch. */
  leases: Map<string, number>;
  /** Claimed jobs whose start (RUNNING, attempt) is not written yet. */
  starts: Map<string, PendingStart>;
  rows: StreamRow[];
  /** Step rows only counted into step_metrics, never written. */
  counted: StreamRow[];
  completions: JobCompletion[];
  suspensions: JobSuspension[];
  checkpoints: Map<string, CheckpointWrite>;
  /** Newest result per job and path (key `jobId path`). */
  results: Map<string, StepResultWrite>;
  signals: SignalConsumption[];
  /**
   * A flush of this batch failed without saying whether it committed (the
   * connection can drop after COMMIT reached the server): the next attempt
   * skips the stream rows already stored.
   */
  uncertain: boolean;
}

export function emptyBatch(): Batch {
  return {
    leases: new Map(),
    starts: new Map(),
    rows: [],
    counted: [],
    completions: [],
    suspensions: [],
    checkpoints: new Map(),
    results: new Map(),
    signals: [],
    uncertain: false,
  };
}

export function isEmpty(b: Batch): boolean {
  return b.leases.size === 0;
}

/** Everything of `batch` that belongs to the jobs `keep` admits (the same batch when it admits all). */
export function filterBatch(batch: Batch, keep: (jobId: string) => boolean): Batch {
  const jobs = [...batch.leases.keys()];
  if (jobs.every(keep)) return batch;
  const by = <T extends { jobId: string }>(items: T[]) => items.filter((i) => keep(i.jobId));
  const map = <V>(m: Map<string, V>) => new Map([...m].filter(([jobId]) => keep(jobId)));
  return {
    leases: map(batch.leases),
    starts: map(batch.starts),
    rows: by(batch.rows),
    counted: by(batch.counted),
    completions: by(batch.completions),
    suspensions: by(batch.suspensions),
    checkpoints: map(batch.checkpoints),
    results: new Map([...batch.results].filter(([, r]) => keep(r.jobId))),
    signals: by(batch.signals),
    uncertain: batch.uncertain,
  };
}

/** Errors caused by the data itself (retrying cannot help), as opposed to a lost connection. */
export function isDataError(err: unknown): boolean {
  return err instanceof ValidationError || err instanceof PayloadTooLargeError || err instanceof ConflictError;
}

export function splitByJob(batch: Batch): Batch[] {
  return [...batch.leases.keys()].map((jobId) => filterBatch(batch, (id) => id === jobId));
}

/**
 * What is written instead of a job's refused record: one ERROR row in place
 * of the refused rows (keeping the sequence), and, if the job was finishing,
 * FAILED with RECORD_REFUSED instead of its outcome.
 */
export function refusal(group: Batch, err: unknown): Batch {
  const reason = truncate(`the database refused this job's record: ${err instanceof Error ? err.message : String(err)}`, LIMITS.errorMessage);
  const last = group.rows[group.rows.length - 1];
  const finishing = group.completions[0];
  const rows: StreamRow[] = last
    ? [{ ...last, kind: STREAM_KINDS[finishing ? 'JOB_FAILED' : 'LOG'], level: LOG_LEVELS.ERROR, stepIndex: null, message: reason, data: { code: 'RECORD_REFUSED' } }]
    : [];
  const completions: JobCompletion[] = finishing
    ? [{ ...finishing, status: 'FAILED', result: null, resultRef: undefined, errorCode: 'RECORD_REFUSED', errorMessage: reason, errorStep: null }]
    : [];
  return { ...emptyBatch(), leases: group.leases, starts: group.starts, rows, completions, suspensions: group.suspensions, uncertain: group.uncertain };
}
