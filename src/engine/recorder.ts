import type { Db } from '../db/index.js';
import { ConflictError, PayloadTooLargeError, ValidationError } from '../errors/index.js';
import {
  LOG_LEVELS,
  STREAM_KINDS,
  completeJobs,
  insertJobResultArchives,
  insertStreamRows,
  markJobsRunning,
  markSignalsConsumed,
  releaseOwned,
  suspendJobs,
  upsertCheckpoints,
  type CheckpointWrite,
  type JobCompletion,
  type JobStart,
  type JobSuspension,
  type StreamRow,
} from '../store/index.js';
import type { Logger } from '../util/logger.js';
import { truncate } from '../util/json.js';
import { LIMITS } from './limits.js';

export interface RecorderOptions {
  /** Flush at least this often while anything is buffered. */
  flushIntervalMs: number;
  /** Flush at once when this many stream rows are buffered. */
  maxBufferedRows: number;
}

interface Batch {
  /** Claimed jobs whose start (RUNNING, attempt) is not written yet. */
  starts: Map<string, JobStart>;
  rows: StreamRow[];
  completions: JobCompletion[];
  suspensions: JobSuspension[];
  checkpoints: Map<string, CheckpointWrite>;
  signals: string[];
}

function emptyBatch(): Batch {
  return { starts: new Map(), rows: [], completions: [], suspensions: [], checkpoints: new Map(), signals: [] };
}

function isEmpty(b: Batch): boolean {
  return b.starts.size === 0 && b.rows.length === 0 && b.completions.length === 0 && b.suspensions.length === 0 && b.checkpoints.size === 0 && b.signals.length === 0;
}

/**
 * The worker's write path. Steps append stream rows, checkpoints and outcomes
 * here; everything buffered is written in one transaction per flush (one
 * INSERT for all rows, one upsert for all checkpoints, one UPDATE for all
 * completions), so a flush of 500 finished jobs costs a handful of
 * statements. Only the newest checkpoint per job is kept, and none is written
 * for a job that completes in the same flush. Buffers survive a failed flush
 * and are retried: nothing is dropped while the process lives, and a process
 * that dies before a flush leaves its jobs leased, to resume from their last
 * written checkpoint when the lease expires.
 */
export class Recorder {
  private pending: Batch = emptyBatch();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private failures = 0;
  private readonly flushedListeners = new Set<() => void>();
  /** Resolved when everything buffered before they were added is committed. */
  private durableWaiters: (() => void)[] = [];
  /** Jobs of this worker with a checkpoint row in the database (to delete it when they succeed). */
  private readonly persisted = new Set<string>();

  constructor(
    private readonly db: Db,
    private readonly workerId: string,
    private readonly options: RecorderOptions,
    private readonly logger: Logger,
  ) {}

  /** A claimed job started: RUNNING is written with its first flush (or with its outcome, if that comes first). */
  start(start: JobStart): void {
    this.pending.starts.set(start.jobId, start);
    this.schedule();
  }

  append(row: StreamRow): void {
    this.pending.rows.push(row);
    this.schedule();
  }

  checkpoint(write: CheckpointWrite): void {
    this.pending.checkpoints.set(write.jobId, write);
    this.schedule();
  }

  consumeSignal(signalId: string): void {
    this.pending.signals.push(signalId);
  }

  complete(completion: JobCompletion): void {
    this.pending.completions.push(completion);
    this.schedule();
  }

  suspend(suspension: JobSuspension): void {
    this.pending.suspensions.push(suspension);
    this.schedule();
  }

  /**
   * Resolves once everything appended so far is committed. Called after a
   * step with side effects, so the step is never run again after a crash.
   */
  durable(): Promise<void> {
    if (isEmpty(this.pending) && !this.flushing) return Promise.resolve();
    return new Promise((resolve) => {
      this.durableWaiters.push(resolve);
      this.schedule();
    });
  }

  /** Jobs finished or suspended in memory but not yet recorded: their leases must still be renewed. */
  pendingJobIds(): string[] {
    return [...this.pending.completions.map((c) => c.jobId), ...this.pending.suspensions.map((s) => s.jobId)];
  }

  pendingCompletions(): number {
    return this.pending.completions.length;
  }

  /** Called after every successful flush (the worker uses it to resume claiming). */
  onFlushed(listener: () => void): () => void {
    this.flushedListeners.add(listener);
    return () => this.flushedListeners.delete(listener);
  }

  private schedule(): void {
    // A flush in progress schedules the next one when it ends: calling flush()
    // here would park one more waiter per appended row until then.
    if (this.flushing) return;
    if (this.pending.rows.length >= this.options.maxBufferedRows) {
      void this.flush();
      return;
    }
    if (this.timer) return;
    const delay = this.failures === 0 ? this.options.flushIntervalMs : Math.min(5_000, 100 * 2 ** this.failures);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, delay);
  }

  /** Write everything buffered now. Resolves when the buffers are empty or a flush failed (it is retried later). */
  async flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    while (this.flushing) await this.flushing;
    if (isEmpty(this.pending)) {
      this.release(this.durableWaiters.splice(0));
      return;
    }
    this.flushing = this.writeBatch().finally(() => {
      this.flushing = undefined;
    });
    await this.flushing;
    if (!isEmpty(this.pending) || this.durableWaiters.length > 0) this.schedule();
  }

  /** Flush until empty, retrying failures, for at most `timeoutMs`. Returns true when everything was written. */
  async drain(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      await this.flush();
      if (isEmpty(this.pending)) return true;
      if (Date.now() >= deadline) return false;
      await new Promise((r) => setTimeout(r, Math.min(500, Math.max(10, deadline - Date.now()))));
    }
  }

  private release(waiters: (() => void)[]): void {
    for (const w of waiters) w();
  }

  private async writeBatch(): Promise<void> {
    const batch = this.pending;
    const waiters = this.durableWaiters.splice(0);
    this.pending = emptyBatch();
    try {
      try {
        await this.write(batch);
      } catch (err) {
        if (!isDataError(err)) throw err;
        // Some job's record is unstorable (a value the database refuses). Write
        // job by job so one bad job cannot hold every other job's record hostage.
        for (const group of splitByJob(batch)) await this.writeAlone(group);
      }
      this.failures = 0;
      this.release(waiters);
      for (const listener of this.flushedListeners) listener();
    } catch (err) {
      this.failures++;
      this.requeue(batch);
      this.durableWaiters.unshift(...waiters);
      this.logger.error({ err, attempt: this.failures }, 'recording batch failed; will retry');
    }
  }

  /** Put a failed batch back in front of anything appended since. */
  private requeue(batch: Batch): void {
    const newer = this.pending;
    for (const [jobId, cp] of newer.checkpoints) batch.checkpoints.set(jobId, cp);
    for (const [jobId, s] of newer.starts) batch.starts.set(jobId, s);
    this.pending = {
      starts: batch.starts,
      rows: batch.rows.concat(newer.rows),
      completions: batch.completions.concat(newer.completions),
      suspensions: batch.suspensions.concat(newer.suspensions),
      checkpoints: batch.checkpoints,
      signals: batch.signals.concat(newer.signals),
    };
  }

  /** One job's part of a failed batch; if the database refuses it, record that refusal instead. */
  private async writeAlone(group: Batch): Promise<void> {
    try {
      await this.write(group);
    } catch (err) {
      if (!isDataError(err)) throw err;
      this.logger.error({ err }, 'job record refused by the database; recording the refusal');
      await this.write(refusal(group, err));
    }
  }

  private async write(batch: Batch): Promise<void> {
    const { rows, checkpoints, signals } = batch;
    // A start travels with the job's outcome when both are in this batch: one UPDATE per job, not two.
    const starts = new Map(batch.starts);
    const withStart = <T extends { jobId: string; start?: JobStart }>(item: T): T => {
      const start = starts.get(item.jobId);
      if (!start) return item;
      starts.delete(item.jobId);
      return { ...item, start };
    };
    const completions = batch.completions.map(withStart);
    const suspensions = batch.suspensions.map(withStart);
    await this.db.transaction(async (tx) => {
      const finishing = completions.map((c) => c.jobId);
      const owned = await releaseOwned(tx, this.workerId, finishing);
      // A job whose lease was lost is finished by its new owner; its rows
      // from this worker would duplicate sequence numbers, so they go.
      const lost = new Set(finishing.filter((id) => !owned.has(id)));
      await insertStreamRows(tx, lost.size === 0 ? rows : rows.filter((r) => !lost.has(r.jobId)));
      // A job that succeeds in this batch needs no checkpoint; an unsuccessful
      // one keeps it so a retry can resume from the failed step.
      const succeeding = new Set(
        completions.filter((c) => c.status === 'COMPLETED' || c.status === 'PARTIAL_SUCCESS').map((c) => c.jobId),
      );
      await upsertCheckpoints(
        tx,
        [...checkpoints.values()].filter((w) => !lost.has(w.jobId) && !succeeding.has(w.jobId)),
      );
      await markSignalsConsumed(tx, signals);
      await markJobsRunning(tx, this.workerId, [...starts.values()]);
      const finished = (lost.size === 0 ? completions : completions.filter((c) => owned.has(c.jobId))).map((c) =>
        this.persisted.has(c.jobId) ? { ...c, hasCheckpoint: true } : c,
      );
      await completeJobs(tx, finished);
      await insertJobResultArchives(
        tx,
        finished.flatMap((c) => (c.resultRef ? [{ jobId: c.jobId, ref: c.resultRef }] : [])),
      );
      await suspendJobs(tx, this.workerId, suspensions);
      if (lost.size > 0) this.logger.warn({ jobs: [...lost] }, 'lease lost before completion was recorded');
    });
    for (const w of checkpoints.values()) this.persisted.add(w.jobId);
    for (const c of completions) this.persisted.delete(c.jobId);
    // A suspended job may resume on another worker; its claim reports the checkpoint then.
    for (const s of suspensions) this.persisted.delete(s.jobId);
  }
}

/** Errors caused by the data itself (retrying cannot help), as opposed to a lost connection. */
function isDataError(err: unknown): boolean {
  return err instanceof ValidationError || err instanceof PayloadTooLargeError || err instanceof ConflictError;
}

function splitByJob(batch: Batch): Batch[] {
  const groups = new Map<string, Batch>();
  const group = (jobId: string): Batch => {
    let g = groups.get(jobId);
    if (!g) groups.set(jobId, (g = emptyBatch()));
    return g;
  };
  for (const r of batch.rows) group(r.jobId).rows.push(r);
  for (const c of batch.completions) group(c.jobId).completions.push(c);
  for (const s of batch.suspensions) group(s.jobId).suspensions.push(s);
  for (const [jobId, cp] of batch.checkpoints) group(jobId).checkpoints.set(jobId, cp);
  for (const [jobId, s] of batch.starts) group(jobId).starts.set(jobId, s);
  // Signal ids carry no job id; they ride with the first group (a refused group drops them, to be re-read).
  const all = [...groups.values()];
  if (all[0]) all[0].signals.push(...batch.signals);
  return all;
}

/**
 * What is written instead of a job's refused record: one ERROR row in place
 * of the refused rows (keeping the sequence), and, if the job was finishing,
 * FAILED with RECORD_REFUSED instead of its outcome.
 */
function refusal(group: Batch, err: unknown): Batch {
  const reason = truncate(`the database refused this job's record: ${err instanceof Error ? err.message : String(err)}`, LIMITS.errorMessage);
  const last = group.rows[group.rows.length - 1];
  const finishing = group.completions[0];
  const rows: StreamRow[] = last
    ? [{ ...last, kind: STREAM_KINDS[finishing ? 'JOB_FAILED' : 'LOG'], level: LOG_LEVELS.ERROR, stepIndex: null, message: reason, data: { code: 'RECORD_REFUSED' } }]
    : [];
  const completions: JobCompletion[] = finishing
    ? [{ ...finishing, status: 'FAILED', result: null, resultRef: undefined, errorCode: 'RECORD_REFUSED', errorMessage: reason, errorStep: null }]
    : [];
  return { ...emptyBatch(), starts: group.starts, rows, completions, suspensions: group.suspensions };
}
