import type { Db } from '../db/index.js';
import { ConflictError, PayloadTooLargeError, ValidationError } from '../errors/index.js';
import {
  LOG_LEVELS,
  STREAM_KINDS,
  completeJobs,
  handBackJobs,
  insertStreamRows,
  releaseOwned,
  type JobCompletion,
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

/**
 * The worker's write path. Steps append stream rows and jobs report their
 * outcome here; everything buffered is written in one transaction per flush
 * (one INSERT for all rows, one UPDATE for all completions), so a flush of 500
 * finished jobs costs four statements, not thousands. Buffers survive a failed
 * flush and are retried: nothing is dropped while the process lives, and a
 * process that dies before a flush leaves its jobs leased, to be run again
 * when the lease expires.
 */
export class Recorder {
  private rows: StreamRow[] = [];
  private completions: JobCompletion[] = [];
  private handBacks: { jobId: string; lastSeq: number }[] = [];
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private failures = 0;
  private readonly flushedListeners = new Set<() => void>();

  constructor(
    private readonly db: Db,
    private readonly workerId: string,
    private readonly options: RecorderOptions,
    private readonly logger: Logger,
  ) {}

  append(row: StreamRow): void {
    this.rows.push(row);
    this.schedule();
  }

  complete(completion: JobCompletion): void {
    this.completions.push(completion);
    this.schedule();
  }

  handBack(jobId: string, lastSeq: number): void {
    this.handBacks.push({ jobId, lastSeq });
    this.schedule();
  }

  /** Jobs finished in memory but not yet recorded: their leases must still be renewed. */
  pendingJobIds(): string[] {
    return [...this.completions.map((c) => c.jobId), ...this.handBacks.map((h) => h.jobId)];
  }

  pendingCompletions(): number {
    return this.completions.length;
  }

  /** Called after every successful flush (the worker uses it to resume claiming). */
  onFlushed(listener: () => void): () => void {
    this.flushedListeners.add(listener);
    return () => this.flushedListeners.delete(listener);
  }

  private schedule(): void {
    if (this.rows.length >= this.options.maxBufferedRows) {
      void this.flush();
      return;
    }
    if (this.timer || this.flushing) return;
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
    if (this.rows.length === 0 && this.completions.length === 0 && this.handBacks.length === 0) return;
    this.flushing = this.writeBatch().finally(() => {
      this.flushing = undefined;
    });
    await this.flushing;
    if (this.rows.length > 0 || this.completions.length > 0 || this.handBacks.length > 0) this.schedule();
  }

  /** Flush until empty, retrying failures, for at most `timeoutMs`. Returns true when everything was written. */
  async drain(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      await this.flush();
      if (this.rows.length === 0 && this.completions.length === 0 && this.handBacks.length === 0) return true;
      if (Date.now() >= deadline) return false;
      await new Promise((r) => setTimeout(r, Math.min(500, Math.max(10, deadline - Date.now()))));
    }
  }

  private async writeBatch(): Promise<void> {
    const batch: Batch = { rows: this.rows, completions: this.completions, handBacks: this.handBacks };
    this.rows = [];
    this.completions = [];
    this.handBacks = [];
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
      for (const listener of this.flushedListeners) listener();
    } catch (err) {
      this.failures++;
      this.rows = batch.rows.concat(this.rows);
      this.completions = batch.completions.concat(this.completions);
      this.handBacks = batch.handBacks.concat(this.handBacks);
      this.logger.error({ err, attempt: this.failures }, 'recording batch failed; will retry');
    }
  }

  /** One job's part of a failed batch; if the database refuses it, record that refusal instead. */
  private async writeAlone(group: Batch): Promise<void> {
    try {
      await this.write(group);
    } catch (err) {
      if (!isDataError(err)) throw err;
      const jobId = group.rows[0]?.jobId ?? group.completions[0]?.jobId ?? group.handBacks[0]!.jobId;
      this.logger.error({ err, jobId }, 'job record refused by the database; recording the refusal');
      await this.write(refusal(group, err));
    }
  }

  private async write(batch: Batch): Promise<void> {
    const { rows, completions, handBacks } = batch;
    await this.db.transaction(async (tx) => {
      const finishing = completions.map((c) => c.jobId);
      const owned = await releaseOwned(tx, this.workerId, finishing);
      // A job whose lease was lost is finished by its new owner; its rows
      // from this worker would duplicate sequence numbers, so they go.
      const lost = new Set(finishing.filter((id) => !owned.has(id)));
      await insertStreamRows(tx, lost.size === 0 ? rows : rows.filter((r) => !lost.has(r.jobId)));
      await completeJobs(tx, lost.size === 0 ? completions : completions.filter((c) => owned.has(c.jobId)));
      await handBackJobs(tx, this.workerId, handBacks);
      if (lost.size > 0) this.logger.warn({ jobs: [...lost] }, 'lease lost before completion was recorded');
    });
  }
}

interface Batch {
  rows: StreamRow[];
  completions: JobCompletion[];
  handBacks: { jobId: string; lastSeq: number }[];
}

/** Errors caused by the data itself (retrying cannot help), as opposed to a lost connection. */
function isDataError(err: unknown): boolean {
  return err instanceof ValidationError || err instanceof PayloadTooLargeError || err instanceof ConflictError;
}

function splitByJob(batch: Batch): Batch[] {
  const groups = new Map<string, Batch>();
  const group = (jobId: string): Batch => {
    let g = groups.get(jobId);
    if (!g) groups.set(jobId, (g = { rows: [], completions: [], handBacks: [] }));
    return g;
  };
  for (const r of batch.rows) group(r.jobId).rows.push(r);
  for (const c of batch.completions) group(c.jobId).completions.push(c);
  for (const h of batch.handBacks) group(h.jobId).handBacks.push(h);
  return [...groups.values()];
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
    ? [{ ...finishing, status: 'FAILED', result: null, errorCode: 'RECORD_REFUSED', errorMessage: reason, errorStep: null }]
    : [];
  return { rows, completions, handBacks: group.handBacks };
}
