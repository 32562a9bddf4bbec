import { describe, expect, it } from 'vitest';
import { Recorder } from '../../src/engine/recorder.js';
import { LOG_LEVELS, STREAM_KINDS, type JobCompletion, type StreamRow } from '../../src/store/index.js';
import { silentLogger } from '../helpers/fixtures.js';
import { MemoryRecordStore } from '../helpers/memory-record-store.js';

const ORG = '00000000-0000-7000-8000-000000000001';
const WF = '00000000-0000-7000-8000-000000000002';
const WORKER = 'w1';

function recorder(store: MemoryRecordStore): Recorder {
  // A flush interval far away: every flush in these tests is called explicitly.
  return new Recorder(store, WORKER, { flushIntervalMs: 60_000, maxBufferedRows: 10_000, leaseMs: 30_000 }, silentLogger);
}

function row(jobId: string, seq: number, message = `row ${seq}`): StreamRow {
  return { organizationId: ORG, jobId, workflowId: WF, tsMs: 1_700_000_000_000 + seq, seq, stepIndex: null, kind: STREAM_KINDS.LOG, level: LOG_LEVELS.INFO, message, data: null };
}

function completion(jobId: string, lastSeq: number): JobCompletion {
  return { jobId, status: 'COMPLETED', completedAt: new Date(), result: { ok: true }, errorCode: null, errorMessage: null, errorStep: null, stepsCompleted: 1, lastSeq };
}

/** Claim `jobId` in the store for this worker and start it in the recorder. */
function begin(store: MemoryRecordStore, rec: Recorder, jobId: string): number {
  const lease = store.claim(jobId, WORKER);
  rec.start({ jobId, attempts: 1, startedAt: new Date(), deadlineAt: null, lease });
  return lease;
}

/** Flush `times` times in a row (each call is one attempt; queued faults make some fail). */
async function flushTimes(rec: Recorder, times: number): Promise<void> {
  for (let i = 0; i < times; i++) await rec.flush();
}

describe('Recorder against a store that fails', () => {
  it('a flush that fails mid-way is rolled back and retried: nothing lost, nothing twice', async () => {
    const store = new MemoryRecordStore();
    const rec = recorder(store);
    begin(store, rec, 'a');
    begin(store, rec, 'b');
    for (let seq = 1; seq <= 3; seq++) rec.append(row('a', seq));
    rec.append(row('b', 1));
    rec.complete(completion('a', 3));
    store.faults.push('insertStreamRows');
    await rec.flush();
    expect(rec.stats).toMatchObject({ flushes: 0, failedFlushes: 1 });
    expect(store.rows).toHaveLength(0);
    expect(rec.pendingJobIds()).toEqual(['a']);
    // More arrives while the failed batch waits; the retry writes both, in order.
    rec.append(row('b', 2));
    rec.complete(completion('b', 2));
    await rec.flush();
    expect(store.seqs('a')).toEqual([1, 2, 3]);
    expect(store.seqs('b')).toEqual([1, 2]);
    expect(store.completions.map((c) => c.jobId)).toEqual(['a', 'b']);
    expect(rec.stats).toMatchObject({ flushes: 1, failedFlushes: 1, fencedJobs: 0, rowsWritten: 5 });
  });

  it('a flush whose COMMIT answer was lost is not written twice when retried', async () => {
    const store = new MemoryRecordStore();
    const rec = recorder(store);
    begin(store, rec, 'a');
    begin(store, rec, 'b');
    rec.append(row('a', 1));
    rec.append(row('a', 2));
    rec.append(row('b', 1));
    rec.checkpoint({ jobId: 'a', organizationId: ORG, checkpoint: { nextStep: 1, outputs: {}, failedSteps: [], state: {}, carried: {} }, expiresAt: new Date() });
    rec.complete(completion('b', 1));
    store.faults.push('after-commit');
    await rec.flush();
    expect(rec.stats.failedFlushes).toBe(1);
    // The store has it all, yet the recorder must assume it may not.
    expect(store.rows).toHaveLength(3);
    rec.append(row('a', 3));
    rec.consumeSignal({ jobId: 'a', signalId: 's1' });
    await rec.flush();
    expect(store.seqs('a')).toEqual([1, 2, 3]);
    expect(store.seqs('b')).toEqual([1]);
    expect(store.completions.map((c) => c.jobId)).toEqual(['b']);
    expect(store.consumed).toEqual([{ jobId: 'a', signalId: 's1' }]);
    // b was recorded by the first try, not taken over: nothing counted as fenced.
    expect(rec.stats).toMatchObject({ fencedJobs: 0, fencedRows: 0 });
    // a is still this worker's and goes on normally.
    rec.append(row('a', 4));
    rec.complete(completion('a', 4));
    await rec.flush();
    expect(store.seqs('a')).toEqual([1, 2, 3, 4]);
    expect(store.completions.map((c) => c.jobId)).toEqual(['b', 'a']);
  });

  it('a row the store refuses costs only its own job: RECORD_REFUSED in place of its record', async () => {
    const store = new MemoryRecordStore();
    store.refuse = (r) => r.message === 'poison';
    const rec = recorder(store);
    begin(store, rec, 'bad');
    begin(store, rec, 'good');
    rec.append(row('bad', 1));
    rec.append(row('bad', 2, 'poison'));
    rec.complete({ ...completion('bad', 2), result: { secret: 'x' } });
    rec.append(row('good', 1));
    rec.complete(completion('good', 1));
    await rec.flush();
    expect(rec.stats).toMatchObject({ refusedJobs: 1, failedFlushes: 0, flushes: 1 });
    expect(store.seqs('good')).toEqual([1]);
    const bad = store.rows.filter((r) => r.jobId === 'bad');
    expect(bad).toHaveLength(1);
    expect(bad[0]).toMatchObject({ seq: 2, kind: STREAM_KINDS.JOB_FAILED, level: LOG_LEVELS.ERROR, data: { code: 'RECORD_REFUSED' } });
    expect(store.completions.find((c) => c.jobId === 'bad')).toMatchObject({ status: 'FAILED', errorCode: 'RECORD_REFUSED', result: null });
    expect(store.completions.find((c) => c.jobId === 'good')).toMatchObject({ status: 'COMPLETED' });
  });

  it('durable() waits across a failed flush until the record is committed', async () => {
    const store = new MemoryRecordStore();
    const rec = recorder(store);
    begin(store, rec, 'a');
    rec.append(row('a', 1));
    store.faults.push('completeJobs');
    let durable = false;
    const waiting = rec.durable().then(() => (durable = true));
    await rec.flush();
    expect(durable).toBe(false);
    await rec.flush();
    await waiting;
    expect(durable).toBe(true);
    expect(store.seqs('a')).toEqual([1]);
  });
});

describe('Recorder fence', () => {
  it('drops every write of a job another worker took over, once, and reports it', async () => {
    const store = new MemoryRecordStore();
    const rec = recorder(store);
    const lost: string[][] = [];
    rec.onLost((ids) => lost.push(ids));
    begin(store, rec, 'kept');
    begin(store, rec, 'taken');
    rec.append(row('kept', 1));
    rec.append(row('taken', 1));
    rec.append(row('taken', 2));
    rec.checkpoint({ jobId: 'taken', organizationId: ORG, checkpoint: { nextStep: 2, outputs: {}, failedSteps: [], state: {}, carried: {} }, expiresAt: new Date() });
    rec.consumeSignal({ jobId: 'taken', signalId: 'sig' });
    store.claim('taken', 'w2');
    await rec.flush();
    expect(store.seqs('kept')).toEqual([1]);
    expect(store.seqs('taken')).toEqual([]);
    expect(store.checkpoints.has('taken')).toBe(false);
    expect(store.consumed).toEqual([]);
    expect(lost).toEqual([['taken']]);
    expect(rec.stats).toMatchObject({ fencedJobs: 1, fencedRows: 2 });
    // Later writes for it are not this worker's to make.
    rec.append(row('taken', 3));
    await rec.flush();
    expect(store.seqs('taken')).toEqual([]);
    expect(rec.stats.fencedJobs).toBe(1);
  });

  it('a job claimed again by the same worker keeps none of its old run’s writes', async () => {
    const store = new MemoryRecordStore();
    const rec = recorder(store);
    begin(store, rec, 'j');
    rec.append(row('j', 1, 'old run'));
    // The lease expired, another worker ran the job and put it back; this worker claims it again.
    store.claim('j', 'w2');
    begin(store, rec, 'j');
    rec.append(row('j', 1, 'new run'));
    await rec.flush();
    expect(store.rows.map((r) => r.message)).toEqual(['new run']);
  });

  it('a batch written while the job was re-claimed does not pass under the new token', async () => {
    const store = new MemoryRecordStore();
    const rec = recorder(store);
    begin(store, rec, 'j');
    rec.append(row('j', 1, 'old run'));
    store.faults.push('insertStreamRows');
    const failing = rec.flush(); // takes the batch, then fails: the old run's row waits for a retry
    store.claim('j', 'w2');
    begin(store, rec, 'j');
    rec.append(row('j', 5, 'new run'));
    await failing;
    await rec.flush();
    expect(store.rows.map((r) => r.message)).toEqual(['new run']);
  });

  it('abandon() drops buffered writes of jobs a heartbeat found lost', async () => {
    const store = new MemoryRecordStore();
    const rec = recorder(store);
    begin(store, rec, 'j');
    rec.append(row('j', 1));
    rec.abandon(['j']);
    await rec.flush();
    expect(store.rows).toEqual([]);
    expect(rec.stats).toMatchObject({ fencedJobs: 1, fencedRows: 1 });
    expect(store.transactions).toBe(0);
  });
});

describe('Recorder under repeated faults', () => {
  it('a lost connection, a lost COMMIT answer and a rolled-back write in a row still record everything once', async () => {
    const store = new MemoryRecordStore();
    const rec = recorder(store);
    begin(store, rec, 'x');
    for (let seq = 1; seq <= 10; seq++) rec.append(row('x', seq));
    rec.complete(completion('x', 10));
    store.faults.push('holdLeases', 'after-commit', 'insertStreamRows');
    await flushTimes(rec, 4);
    expect(rec.stats.failedFlushes).toBe(3);
    expect(store.seqs('x')).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(store.completions).toHaveLength(1);
    expect(rec.pendingJobIds()).toEqual([]);
  });
});
