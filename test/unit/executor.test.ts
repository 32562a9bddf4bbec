import { afterEach, describe, expect, it, vi } from 'vitest';
import { JobAbort } from '../../src/engine/aborts.js';
import { Outbound } from '../../src/net/outbound.js';
import { executeJob, type ExecutorOptions } from '../../src/engine/executor.js';
import type { Definition } from '../../src/engine/steps/registry.js';
import { kindName, type ClaimedJob } from '../../src/store/index.js';
import { MemorySink } from '../helpers/memory-sink.js';
import { claimedJob } from '../helpers/claimed-job.js';

function claimed(overrides: Partial<ClaimedJob> = {}): ClaimedJob {
  return claimedJob(overrides);
}

function options(signals: Record<string, { id: string; payload: unknown }> = {}, outbound = new Outbound()): ExecutorOptions {
  return {
    stepTimeoutMs: 1_000,
    httpMaxResponseBytes: 1_024,
    outbound,
    checkpointTtlMs: 60_000,
    findSignal: async (_org, _job, name) => signals[name] ?? null,
  };
}

/** A definition literal checked against the registry's step types. */
const def = (d: Definition): Definition => d;

afterEach(() => {
  vi.unstubAllGlobals();
});

describe('executeJob without a database', () => {
  it('runs steps in order, passing outputs forward, and completes with the last output', async () => {
    const sink = new MemorySink();
    const definition: Definition = {
      steps: [
        { id: 'shape', type: 'transform', expression: '{ "id": input.member }' },
        { id: 'note', type: 'log', message: 'member {{ steps.shape.id }}' },
        { id: 'done', type: 'transform', expression: 'steps.shape' },
      ],
    };
    await executeJob(claimed(), definition, sink, new JobAbort(), options());
    expect(sink.kinds()).toEqual([
      'JOB_STARTED',
      'STEP_STARTED', 'STEP_COMPLETED',
      'STEP_STARTED', 'LOG', 'STEP_COMPLETED',
      'STEP_STARTED', 'STEP_COMPLETED',
      'JOB_COMPLETED',
    ]);
    expect(sink.rows.map((r) => r.seq)).toEqual(sink.rows.map((_, i) => i + 1));
    expect(sink.rows.find((r) => kindName(r.kind) === 'LOG')!.message).toBe('member M-1');
    expect(sink.completions).toEqual([
      expect.objectContaining({ jobId: 'job-1', status: 'COMPLETED', result: { id: 'M-1' }, stepsCompleted: 3, lastSeq: 9, errorCode: null, maxRetriesReached: false }),
    ]);
    // Steps without side effects never wait for the record.
    expect(sink.durableCalls).toBe(0);
  });

  it('a failing continueOnError step gives PARTIAL_SUCCESS; a failing step fails the job naming it', async () => {
    const partial = new MemorySink();
    await executeJob(
      claimed(),
      def({ steps: [{ id: 'bad', type: 'transform', expression: '$error("nope")', continueOnError: true }, { id: 'ok', type: 'noop' }] }),
      partial,
      new JobAbort(),
      options(),
    );
    expect(partial.completions[0]).toMatchObject({ status: 'PARTIAL_SUCCESS', stepsCompleted: 2 });
    const failed = new MemorySink();
    await executeJob(claimed(), def({ steps: [{ id: 'bad', type: 'transform', expression: '$error("nope")' }, { id: 'never', type: 'noop' }] }), failed, new JobAbort(), options());
    expect(failed.completions[0]).toMatchObject({ status: 'FAILED', errorCode: 'EXPRESSION_ERROR', errorStep: 'bad', stepsCompleted: 0 });
    expect(failed.kinds()).toEqual(['JOB_STARTED', 'STEP_STARTED', 'STEP_FAILED', 'JOB_FAILED']);
  });

  it('a wait suspends the job with its state; resumed with the signal there, it consumes it and goes on', async () => {
    const definition: Definition = { steps: [{ id: 'w', type: 'wait', signal: 'approved', timeoutMs: 60_000 }, { id: 'r', type: 'transform', expression: 'steps.w' }] };
    const first = new MemorySink();
    await executeJob(claimed(), definition, first, new JobAbort(), options());
    expect(first.kinds()).toEqual(['JOB_STARTED', 'STEP_STARTED', 'WAITING']);
    expect(first.suspensions).toEqual([expect.objectContaining({ jobId: 'job-1', status: 'WAITING', lastSeq: 3 })]);
    const saved = first.checkpoints.at(-1)!.checkpoint;
    expect(saved).toMatchObject({ nextStep: 0, state: { step: 'w', attempt: 1 } });
    expect(saved.state.until).toBeGreaterThan(Date.now());

    const second = new MemorySink();
    await executeJob(
      claimed({ priorStatus: 'WAITING', lastSeq: 3, checkpoint: { ...saved, carried: saved.carried ?? {} } }),
      definition,
      second,
      new JobAbort(),
      options({ approved: { id: 'sig-1', payload: { by: 'ada' } } }),
    );
    expect(second.kinds()).toEqual(['SIGNAL_RECEIVED', 'STEP_COMPLETED', 'STEP_STARTED', 'STEP_COMPLETED', 'JOB_COMPLETED']);
    expect(second.rows[0]!.seq).toBe(4);
    expect(second.consumed).toEqual([{ jobId: 'job-1', signalId: 'sig-1' }]);
    expect(second.completions[0]).toMatchObject({ status: 'COMPLETED', result: { by: 'ada' } });
  });

  it('a side-effecting step commits its start first, and does not run when that finds the lease lost', async () => {
    const outbound = new Outbound();
    const request = vi.spyOn(outbound, 'request');
    const sink = new MemorySink();
    const abort = new JobAbort();
    sink.onDurable = () => abort.markLost();
    await executeJob(claimed(), def({ steps: [{ id: 'pay', type: 'http', method: 'POST', url: 'https://payments.example/charge' }] }), sink, abort, options({}, outbound));
    expect(request).not.toHaveBeenCalled();
    expect(sink.durableCalls).toBe(1);
    // Nothing after the loss reaches the record: the new owner writes the outcome.
    expect(sink.kinds()).toEqual(['JOB_STARTED', 'STEP_STARTED']);
    expect(sink.completions).toEqual([]);
    expect(sink.suspensions).toEqual([]);
  });

  it('job-level retries suspend the job PENDING with the error; the last failure ends it with max_retries_reached', async () => {
    const definition: Definition = { maxRetries: 1, steps: [{ id: 'bad', type: 'transform', expression: '$error("nope")' }] };
    const first = new MemorySink();
    await executeJob(claimed({ maxRetries: 1 }), definition, first, new JobAbort(), options());
    expect(first.kinds().at(-1)).toBe('RETRY_SCHEDULED');
    expect(first.suspensions[0]).toMatchObject({ status: 'PENDING', retry: { errorCode: 'EXPRESSION_ERROR', errorStep: 'bad' } });
    const last = new MemorySink();
    await executeJob(claimed({ maxRetries: 1, retryCount: 1, attempts: 2 }), definition, last, new JobAbort(), options());
    expect(last.completions[0]).toMatchObject({ status: 'FAILED', maxRetriesReached: true });
  });

  it('a job started past its deadline ends TIMED_OUT; a cancelled one CANCELLED', async () => {
    const late = new MemorySink();
    await executeJob(claimed({ deadlineAt: new Date(Date.now() - 1) }), { steps: [{ id: 'n', type: 'noop' }] }, late, new JobAbort(), options());
    expect(late.completions[0]).toMatchObject({ status: 'TIMED_OUT', errorCode: 'JOB_TIMEOUT' });
    const cancelled = new MemorySink();
    await executeJob(claimed({ cancelRequested: true }), { steps: [{ id: 'n', type: 'noop' }] }, cancelled, new JobAbort(), options());
    expect(cancelled.completions[0]).toMatchObject({ status: 'CANCELLED', errorCode: 'CANCELLED' });
    expect(cancelled.kinds()).toEqual(['JOB_CANCELLED']);
  });
});
