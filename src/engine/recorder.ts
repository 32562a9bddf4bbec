import {
  SUCCESSFUL_STATUSES,
  type CheckpointWrite,
  type JobCompletion,
  type JobLease,
  type JobStart,
  type JobSuspension,
  type RecordStore,
  type SignalConsumption,
  type StepResultWrite,
  type StreamRow,
} from '../store/index.js';
import type { Logger } from '../util/logger.js';
import { metrics } from '../metrics/index.js';
import { emptyBatch, filterBatch, isDataError, isEmpty, refusal, splitByJob, type Batch, type RecorderStart } from './recorder-batch.js';
import { observeStep } from './recorder-metrics.js';
import type { RecordSink } from './record-sink.js';

export type { RecorderStart } from './recorder-batch.js';

export interface RecorderOptions {
  /**
   * The least time between the starts of two flushes. A write that finds the
   * recorder idle (no flush for this long) is flushed on the next turn of the
   * event loop, with whatever the runs append meanwhile; under load, writes
   * gather until this long after the previous flush started, or until it
   * ends if it takes longer (group commit).
   */
  flushIntervalMs: number;
  /** Flush at once when this many stream rows are buffered. */
  maxBufferedRows: number;
  /** The workers' lease length: a flush renews a held lease with less than half of it left. */
  leaseMs: number;
}

/** What a committed flush tells its listeners. */
export interface FlushedBatch {
  /** Jobs it handed back to the queue (waiting, or retrying later): a worker may claim them again. */
  suspensions: number;
  /** Jobs it ended. */
  completions: number;
}

/** What the recorder has done since it started (tests, and the metrics of later work). */
export interface RecorderStats {
  /** Flushes committed. */
  flushes: number;
  /** Flushes that failed and were retried. */
  failedFlushes: number;
  /** Stream rows committed. */
  rowsWritten: number;
  /** Jobs whose writes a flush dropped because this worker no longer held them. */
  fencedJobs: number;
  /** Stream rows dropped with them. */
  fencedRows: number;
  /** Jobs whose record the database refused (recorded as RECORD_REFUSED instead). */
  refusedJobs: number;
}

/**
 * The worker's write path, and its fence. Steps append stream rows,
 * checkpoints, consumed signals and outcomes here; everything buffered is
 * written in one transaction per flush (one INSERT for all rows, one upsert
 * for all checkpoints, one UPDATE for all completions), so a flush of 500
 * finished jobs costs a handful of statements.
 *
 * Every flush first locks the queue rows of the jobs it writes for and
 * keeps only the jobs this worker still holds under its claim's token
 * (RecordTx.holdLeases). Everything of a job it lost (its lease expired and
 * another claim took it) is dropped, logged and counted, and the job's run
 * here is aborted through `onLost`: its rows would reuse the new owner's
 * sequence numbers, its checkpoint would overwrite theirs, its consumed
 * signal would hide from their wait step.
 *
 * Only the newest checkpoint per job is kept, and none is written for a job
 * that completes in the same flush. Buffers survive a failed flush and are
 * retried (skipping rows a seemingly failed flush had in fact committed);
 * a job whose record the database refuses is recorded as RECORD_REFUSED
 * instead, alone, so it cannot hold the others hostage. A process that dies
 * before a flush leaves its jobs leased, to resume from their last written
 * checkpoint when the lease expires.
 */
export class Recorder implements RecordSink {
  private pending: Batch = emptyBatch();
  /** The batch a flush is writing now (its jobs' leases are still renewed by the heartbeat). */
  private writing: Batch | undefined;
  private timer: NodeJS.Timeout | undefined;
  private immediate: NodeJS.Immediate | undefined;
  private flushing: Promise<void> | undefined;
  private failures = 0;
  /** performance.now() when the last flush started (-Infinity before the first). */
  private lastFlushAt = Number.NEGATIVE_INFINITY;
  private readonly flushedListeners = new Set<(flushed: FlushedBatch) => void>();
  private readonly lostListeners = new Set<(jobIds: string[]) => void>();
  /** Resolved when everything buffered before they were added is committed (or dropped as fenced). */
  private durableWaiters: (() => void)[] = [];
  /** Jobs of this worker with a checkpoint row in the database (to delete it when they succeed). */
  private readonly persisted = new Set<string>();
  /** The claim of each job this worker runs or has outcomes pending for: its token (and what the metrics need). */
  private readonly held = new Map<string, RecorderStart>();
  readonly stats: RecorderStats = { flushes: 0, failedFlushes: 0, rowsWritten: 0, fencedJobs: 0, fencedRows: 0, refusedJobs: 0 };

  constructor(
    private readonly store: RecordStore,
    private readonly workerId: string,
    private readonly options: RecorderOptions,
    private readonly logger: Logger,
  ) {}

  /**
   * A claimed job started under `lease`: RUNNING is written with its first
   * flush (or with its outcome, if that comes first). A new claim of a job
   * this worker still had writes buffered for (an earlier run that lost its
   * lease) drops those writes: they belong to the old run.
   */
  start(start: RecorderStart): void {
    const { lease, stepType: _stepType, ...jobStart } = start;
    const previous = this.pending.leases.get(start.jobId);
    if (previous !== undefined && previous !== lease) this.pending = filterBatch(this.pending, (jobId) => jobId !== start.jobId);
    this.held.set(start.jobId, start);
    this.track(start.jobId);
    this.pending.starts.set(start.jobId, jobStart);
    this.schedule();
  }

  append(row: StreamRow): void {
    const held = this.track(row.jobId);
    if (!held) return;
    observeStep(held, row);
    this.pending.rows.push(row);
    this.schedule();
  }

  countOnly(row: StreamRow): void {
    const held = this.track(row.jobId);
    if (!held) return;
    observeStep(held, row);
    this.pending.counted.push(row);
  }

  checkpoint(write: CheckpointWrite): void {
    if (!this.track(write.jobId)) return;
    this.pending.checkpoints.set(write.jobId, write);
    this.schedule();
  }

  consumeSignal(consumed: SignalConsumption): void {
    if (!this.track(consumed.jobId)) return;
    this.pending.signals.push(consumed);
  }

  stepResult(write: StepResultWrite): void {
    if (!this.track(write.jobId)) return;
    this.pending.results.set(`${write.jobId} ${write.path}`, write);
    this.schedule();
  }

  complete(completion: JobCompletion): void {
    if (!this.track(completion.jobId)) return;
    this.pending.completions.push(completion);
    this.schedule();
  }

  suspend(suspension: JobSuspension): void {
    if (!this.track(suspension.jobId)) return;
    this.pending.suspensions.push(suspension);
    this.schedule();
  }

  /** Note the job's token in the pending batch; its claim, or undefined (the write is dropped) for a job this worker does not hold. */
  private track(jobId: string): RecorderStart | undefined {
    const held = this.held.get(jobId);
    if (held === undefined) {
      this.logger.warn({ jobId }, 'write for a job this worker does not hold; dropped');
      return undefined;
    }
    this.pending.leases.set(jobId, held.lease);
    return held;
  }

  /**
   * Resolves once everything appended so far is committed (or dropped
   * because its job was lost). Called before and after a step with side
   * effects, so the step starts only under a held lease and is never run
   * again after a crash.
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
    const ids = (b: Batch) => [...b.completions.map((c) => c.jobId), ...b.suspensions.map((s) => s.jobId)];
    return this.writing ? [...ids(this.pending), ...ids(this.writing)] : ids(this.pending);
  }

  /** The lease token of the claim this worker holds the job under now (undefined once it no longer tracks the job). */
  leaseOf(jobId: string): number | undefined {
    return this.held.get(jobId)?.lease;
  }

  pendingCompletions(): number {
    return this.pending.completions.length + (this.writing?.completions.length ?? 0);
  }

  /** Called after every successful flush (the worker uses it to resume claiming). */
  onFlushed(listener: (flushed: FlushedBatch) => void): () => void {
    this.flushedListeners.add(listener);
    return () => this.flushedListeners.delete(listener);
  }

  /**
   * The worker learned (from a heartbeat) that it lost these jobs: drop
   * whatever is buffered for them now, without waiting for a flush to find out.
   */
  abandon(jobIds: string[]): void {
    const gone = new Set(jobIds.filter((id) => this.held.has(id)));
    if (gone.size === 0) return;
    const dropped = this.pending.rows.filter((r) => gone.has(r.jobId)).length;
    this.pending = filterBatch(this.pending, (jobId) => !gone.has(jobId));
    for (const jobId of gone) {
      this.held.delete(jobId);
      this.persisted.delete(jobId);
    }
    this.stats.fencedJobs += gone.size;
    this.stats.fencedRows += dropped;
    metrics.recordFenced(gone.size, dropped);
    this.logger.warn({ jobs: [...gone], droppedRows: dropped }, 'lease lost: dropped the buffered writes of jobs this worker no longer holds');
  }

  /** Called with the jobs a flush found this worker no longer holds (the worker aborts their runs). */
  onLost(listener: (jobIds: string[]) => void): () => void {
    this.lostListeners.add(listener);
    return () => this.lostListeners.delete(listener);
  }

  private schedule(): void {
    // A flush in progress schedules the next one when it ends: calling flush()
    // here would park one more waiter per appended row until then.
    if (this.flushing) return;
    if (this.pending.rows.length >= this.options.maxBufferedRows) {
      void this.flush();
      return;
    }
    if (this.timer || this.immediate) return;
    // After a failure, back off. Otherwise an idle recorder flushes on the
    // next turn, so a lone run's outcome is written as soon as its steps are
    // done instead of after a timer (at 50 runs/s a fixed 5 ms timer was a
    // quarter of the time from start call to completion); setImmediate runs
    // after the microtasks of the runs in progress, so a run whose steps do no
    // I/O still lands in one flush with its start.
    const wait =
      this.failures > 0 ? Math.min(5_000, 100 * 2 ** this.failures) : this.lastFlushAt + this.options.flushIntervalMs - performance.now();
    if (wait <= 0) {
      this.immediate = setImmediate(() => {
        this.immediate = undefined;
        void this.flush();
      });
      return;
    }
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, wait);
  }

  /** Write everything buffered now. Resolves when the buffers are empty or a flush failed (it is retried later). */
  async flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.immediate) {
      clearImmediate(this.immediate);
      this.immediate = undefined;
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
    this.writing = batch;
    this.lastFlushAt = performance.now();
    try {
      let lost: string[];
      try {
        lost = await this.write(batch);
      } catch (err) {
        if (!isDataError(err)) throw err;
        // Some job's record is unstorable (a value the database refuses). Write
        // job by job so one bad job cannot hold every other job's record hostage.
        lost = [];
        for (const group of splitByJob(batch)) lost.push(...(await this.writeAlone(group)));
      }
      this.failures = 0;
      this.stats.flushes++;
      this.afterCommit(batch, lost);
      this.release(waiters);
      const flushed: FlushedBatch = { suspensions: batch.suspensions.length, completions: batch.completions.length };
      for (const listener of this.flushedListeners) listener(flushed);
    } catch (err) {
      this.failures++;
      this.stats.failedFlushes++;
      metrics.recordFlushFailure();
      this.requeue(batch);
      this.durableWaiters.unshift(...waiters);
      this.logger.error({ err, attempt: this.failures }, 'recording batch failed; will retry');
    } finally {
      this.writing = undefined;
    }
  }

  /** Bookkeeping once a batch is committed: checkpoints written, jobs ended or suspended, jobs lost. */
  private afterCommit(batch: Batch, lost: string[]): void {
    const lostSet = new Set(lost);
    for (const [jobId] of batch.checkpoints) if (!lostSet.has(jobId)) this.persisted.add(jobId);
    // A suspended job may resume on another worker; its claim reports the checkpoint then.
    for (const { jobId } of [...batch.completions, ...batch.suspensions]) {
      this.persisted.delete(jobId);
      this.forget(jobId, batch.leases.get(jobId));
    }
    if (lost.length === 0) return;
    // What the lost jobs' runs appended while this flush was in flight is just as fenced.
    const stale = (jobId: string) => lostSet.has(jobId) && this.pending.leases.get(jobId) === batch.leases.get(jobId);
    const staleRows = this.pending.rows.filter((r) => stale(r.jobId)).length;
    this.pending = filterBatch(this.pending, (jobId) => !stale(jobId));
    this.reportFenced(batch, lost, staleRows);
    for (const jobId of lost) {
      this.persisted.delete(jobId);
      this.forget(jobId, batch.leases.get(jobId));
    }
    for (const listener of this.lostListeners) listener(lost);
  }

  private reportFenced(batch: Batch, lost: string[], staleRows: number): void {
    // A retried batch whose first try committed after all finds its ended jobs
    // gone from the queue: those were recorded, not taken over.
    const recorded = batch.uncertain ? new Set([...batch.completions, ...batch.suspensions].map((o) => o.jobId)) : new Set<string>();
    const fenced = new Set(lost.filter((id) => !recorded.has(id)));
    if (fenced.size === 0) return;
    const rows = batch.rows.filter((r) => fenced.has(r.jobId)).length + staleRows;
    this.stats.fencedJobs += fenced.size;
    this.stats.fencedRows += rows;
    metrics.recordFenced(fenced.size, rows);
    this.logger.warn({ jobs: [...fenced], droppedRows: rows }, 'lease lost: dropped the writes of jobs this worker no longer holds');
  }

  /** Stop tracking a job, unless a newer claim of it has started since. */
  private forget(jobId: string, lease: number | undefined): void {
    if (this.held.get(jobId)?.lease === lease) this.held.delete(jobId);
  }

  /**
   * Put a failed batch back in front of anything appended since. A job that
   * was claimed again meanwhile (a new token) loses the old batch's writes.
   */
  private requeue(failed: Batch): void {
    const batch = filterBatch(failed, (jobId) => this.held.get(jobId)?.lease === failed.leases.get(jobId));
    const newer = this.pending;
    for (const [jobId, cp] of newer.checkpoints) batch.checkpoints.set(jobId, cp);
    for (const [jobId, s] of newer.starts) batch.starts.set(jobId, s);
    for (const [key, r] of newer.results) batch.results.set(key, r);
    for (const [jobId, lease] of newer.leases) batch.leases.set(jobId, lease);
    this.pending = {
      leases: batch.leases,
      starts: batch.starts,
      rows: batch.rows.concat(newer.rows),
      counted: batch.counted.concat(newer.counted),
      completions: batch.completions.concat(newer.completions),
      suspensions: batch.suspensions.concat(newer.suspensions),
      checkpoints: batch.checkpoints,
      results: batch.results,
      signals: batch.signals.concat(newer.signals),
      uncertain: true,
    };
  }

  /** One job's part of a failed batch; if the database refuses it, record that refusal instead. Returns the jobs found lost. */
  private async writeAlone(group: Batch): Promise<string[]> {
    try {
      return await this.write(group);
    } catch (err) {
      if (!isDataError(err)) throw err;
      this.stats.refusedJobs++;
      this.logger.error({ err, jobs: [...group.leases.keys()] }, 'job record refused by the database; recording the refusal');
      return this.write(refusal(group, err));
    }
  }

  /** One flush transaction. Returns the jobs whose writes were dropped because this worker no longer holds them. */
  private async write(batch: Batch): Promise<string[]> {
    const leases: JobLease[] = [...batch.leases].map(([jobId, lease]) => ({ jobId, lease }));
    const began = performance.now();
    const { lost, rows, kept } = await this.store.transaction(async (tx) => {
      const held = await tx.holdLeases(this.workerId, leases, this.options.leaseMs);
      const kept = filterBatch(batch, (jobId) => held.has(jobId));
      let rows = kept.rows;
      if (batch.uncertain && rows.length > 0) {
        const stored = await tx.findLastSeqs([...new Set(rows.map((r) => r.jobId))]);
        rows = rows.filter((r) => r.seq > (stored.get(r.jobId) ?? 0));
      }
      // A start travels with the job's outcome when both are in this batch: one UPDATE per job, not two.
      const starts = new Map(kept.starts);
      const withStart = <T extends { jobId: string; start?: JobStart }>(item: T): T => {
        const start = starts.get(item.jobId);
        if (!start) return item;
        starts.delete(item.jobId);
        return { ...item, start };
      };
      const completions = kept.completions.map(withStart);
      const suspensions = kept.suspensions.map(withStart);
      // A retried batch whose first try may have committed does not count its quiet rows again (at worst they go uncounted).
      await tx.insertStreamRows(rows, batch.uncertain ? [] : kept.counted);
      // A job that succeeds in this batch needs no checkpoint; an unsuccessful
      // one keeps it so a retry can resume from the failed step.
      const succeeding = new Set(completions.filter((c) => SUCCESSFUL_STATUSES.includes(c.status)).map((c) => c.jobId));
      await tx.upsertCheckpoints([...kept.checkpoints.values()].filter((w) => !succeeding.has(w.jobId)));
      await tx.upsertStepResults([...kept.results.values()].filter((r) => !succeeding.has(r.jobId)));
      await tx.markSignalsConsumed(kept.signals);
      await tx.markJobsRunning([...starts.values()]);
      await tx.completeJobs(completions.map((c) => (this.persisted.has(c.jobId) ? { ...c, hasCheckpoint: true } : c)));
      await tx.suspendJobs(this.workerId, suspensions);
      return { lost: leases.filter((l) => !held.has(l.jobId)).map((l) => l.jobId), rows: rows.length, kept };
    });
    this.stats.rowsWritten += rows;
    this.recordCommitted(performance.now() - began, leases.length - lost.length, rows, kept, batch.uncertain);
    return lost;
  }

  /**
   * The metrics of a committed flush: its size and time, the runs it started
   * (a retried batch whose first try may have committed counts none, like its
   * quiet rows: at worst they go uncounted) and the outcomes it recorded (a
   * retried batch's jobs that did end in the first try are no longer held,
   * so they are not among `kept` and count once).
   */
  private recordCommitted(ms: number, jobs: number, rows: number, kept: Batch, uncertain: boolean): void {
    metrics.recordFlush(ms / 1000, jobs, rows);
    if (!uncertain && kept.starts.size > 0) metrics.recordRunsStarted(kept.starts.values());
    metrics.recordRunsFinished(kept.completions, (jobId) => this.held.get(jobId)?.organizationId);
  }
}
