import type { RecordSink } from '../../src/engine/record-sink.js';
import {
  kindName,
  type CheckpointWrite,
  type JobCompletion,
  type JobSuspension,
  type SignalConsumption,
  type StepResultWrite,
  type StreamRow,
} from '../../src/store/index.js';

/** The executor's record in memory, so the executor runs in unit tests without a database. */
export class MemorySink implements RecordSink {
  rows: StreamRow[] = [];
  checkpoints: CheckpointWrite[] = [];
  consumed: SignalConsumption[] = [];
  completions: JobCompletion[] = [];
  suspensions: JobSuspension[] = [];
  /** Newest result per path. */
  results = new Map<string, StepResultWrite>();
  durableCalls = 0;
  /** Runs at each durable(), e.g. to take the job's lease away. */
  onDurable: () => void = () => undefined;

  append(row: StreamRow) {
    this.rows.push(row);
  }
  /** Rows counted into step metrics without being written. */
  counted: StreamRow[] = [];
  countOnly(row: StreamRow) {
    this.counted.push(row);
  }
  checkpoint(write: CheckpointWrite) {
    this.checkpoints.push(write);
  }
  consumeSignal(c: SignalConsumption) {
    this.consumed.push(c);
  }
  stepResult(r: StepResultWrite) {
    this.results.set(r.path, r);
  }
  complete(c: JobCompletion) {
    this.completions.push(c);
  }
  suspend(s: JobSuspension) {
    this.suspensions.push(s);
  }
  async durable() {
    this.durableCalls++;
    this.onDurable();
  }
  kinds(): string[] {
    return this.rows.map((r) => kindName(r.kind));
  }
}

