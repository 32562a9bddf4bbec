import type { Db } from '../db/index.js';
import {
  completeJobs,
  handBackJobs,
  insertStreamRows,
  releaseOwned,
  type JobCompletion,
  type StreamRow,
} from '../store/index.js';
import type { Logger } from '../util/logger.js';

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
    const rows = this.rows;
    const completions = this.completions;
    const handBacks = this.handBacks;
    this.rows = [];
    this.completions = [];
    this.handBacks = [];
    try {
      await this.db.transaction(async (tx) => {
        const finishing = [...completions.map((c) => c.jobId)];
        const owned = await releaseOwned(tx, this.workerId, finishing);
        // A job whose lease was lost is finished by its new owner; its rows
        // from this worker would duplicate sequence numbers, so they go.
        const lost = new Set(finishing.filter((id) => !owned.has(id)));
        await insertStreamRows(tx, lost.size === 0 ? rows : rows.filter((r) => !lost.has(r.jobId)));
        await completeJobs(tx, lost.size === 0 ? completions : completions.filter((c) => owned.has(c.jobId)));
        await handBackJobs(tx, this.workerId, handBacks);
        if (lost.size > 0) this.logger.warn({ jobs: [...lost] }, 'lease lost before completion was recorded');
      });
      this.failures = 0;
      for (const listener of this.flushedListeners) listener();
    } catch (err) {
      this.failures++;
      this.rows = rows.concat(this.rows);
      this.completions = completions.concat(this.completions);
      this.handBacks = handBacks.concat(this.handBacks);
      this.logger.error({ err, attempt: this.failures }, 'recording batch failed; will retry');
    }
  }
}
