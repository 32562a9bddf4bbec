import { DatabaseError, ValidationError } from '../../src/errors/index.js';
import type {
  CheckpointWrite,
  JobCompletion,
  JobLease,
  JobStart,
  JobSuspension,
  RecordStore,
  RecordTx,
  SignalConsumption,
  StepResultWrite,
  StreamRow,
} from '../../src/store/index.js';

/** Where a flush breaks: before a write (rolled back), or after COMMIT reached the store but before the caller heard of it. */
export type FaultPoint = 'holdLeases' | 'insertStreamRows' | 'completeJobs' | 'after-commit';

interface QueueRow {
  lockedBy: string | null;
  lease: number;
}

/**
 * The recorder's store in memory, with transactions (writes are staged and
 * applied at commit) and faults on demand: a write that fails (connection
 * lost mid-flush: nothing applied), a COMMIT whose answer is lost (applied,
 * yet the caller sees an error), and rows the "database" refuses (a data
 * error, as PostgreSQL gives for a value it cannot store).
 */
export class MemoryRecordStore implements RecordStore {
  readonly queue = new Map<string, QueueRow>();
  readonly rows: StreamRow[] = [];
  /** Rows counted into step metrics without being written. */
  readonly counted: StreamRow[] = [];
  readonly checkpoints = new Map<string, CheckpointWrite>();
  /** Step results by `jobId|path`. */
  readonly stepResults = new Map<string, StepResultWrite>();
  readonly consumed: SignalConsumption[] = [];
  readonly started = new Map<string, JobStart>();
  readonly completions: JobCompletion[] = [];
  readonly suspensions: JobSuspension[] = [];
  /** Faults to inject, one per transaction, in order. */
  readonly faults: FaultPoint[] = [];
  /** Rows the store refuses as unstorable. */
  refuse: (row: StreamRow) => boolean = () => false;
  transactions = 0;

  /** A worker claims a job: the queue row gets its id and a new token. */
  claim(jobId: string, workerId: string): number {
    const lease = (this.queue.get(jobId)?.lease ?? 0) + 1;
    this.queue.set(jobId, { lockedBy: workerId, lease });
    return lease;
  }

  async transaction<T>(fn: (tx: RecordTx) => Promise<T>): Promise<T> {
    this.transactions++;
    const fault = this.faults.shift();
    const staged: (() => void)[] = [];
    const breakAt = (point: FaultPoint) => {
      if (fault === point) throw new DatabaseError(`connection lost during ${point}`);
    };
    const tx: RecordTx = {
      holdLeases: async (workerId: string, leases: readonly JobLease[]) => {
        breakAt('holdLeases');
        return new Set(leases.filter((l) => this.queue.get(l.jobId)?.lockedBy === workerId && this.queue.get(l.jobId)?.lease === l.lease).map((l) => l.jobId));
      },
      findLastSeqs: async (jobIds) => {
        const out = new Map<string, number>();
        for (const r of this.rows) if (jobIds.includes(r.jobId)) out.set(r.jobId, Math.max(out.get(r.jobId) ?? 0, r.seq));
        return out;
      },
      insertStreamRows: async (rows, countedOnly) => {
        staged.push(() => this.counted.push(...countedOnly));
        breakAt('insertStreamRows');
        const bad = rows.find((r) => this.refuse(r));
        if (bad) throw new ValidationError(`row ${bad.seq} of job ${bad.jobId} cannot be stored`);
        staged.push(() => this.rows.push(...rows));
      },
      upsertCheckpoints: async (writes) => {
        staged.push(() => writes.forEach((w) => this.checkpoints.set(w.jobId, w)));
      },
      upsertStepResults: async (writes) => {
        staged.push(() => writes.forEach((w) => this.stepResults.set(`${w.jobId}|${w.path}`, w)));
      },
      markSignalsConsumed: async (consumed) => {
        staged.push(() => this.consumed.push(...consumed));
      },
      markJobsRunning: async (starts) => {
        staged.push(() => starts.forEach((s) => this.started.set(s.jobId, s)));
      },
      completeJobs: async (completions) => {
        breakAt('completeJobs');
        staged.push(() => {
          for (const c of completions) {
            this.completions.push(c);
            if (c.start) this.started.set(c.jobId, c.start);
            this.queue.delete(c.jobId);
          }
        });
      },
      suspendJobs: async (workerId, suspensions) => {
        staged.push(() => {
          for (const s of suspensions) {
            const row = this.queue.get(s.jobId);
            if (row?.lockedBy === workerId) row.lockedBy = null;
            this.suspensions.push(s);
          }
        });
      },
    };
    const result = await fn(tx);
    for (const apply of staged) apply();
    if (fault === 'after-commit') throw new DatabaseError('connection lost before the COMMIT was acknowledged');
    return result;
  }

  /** A job's stored stream seqs, in order of insertion. */
  seqs(jobId: string): number[] {
    return this.rows.filter((r) => r.jobId === jobId).map((r) => r.seq);
  }
}
