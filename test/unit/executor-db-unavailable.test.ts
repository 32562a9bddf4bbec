import { describe, expect, it } from 'vitest';
import { DATABASE_RETRY_AFTER_SECONDS, DatabaseUnavailableError } from '../../src/db/errors.js';
import { JobAbort } from '../../src/engine/aborts.js';
import { executeJob, type ExecutorOptions } from '../../src/engine/executor.js';
import type { Definition } from '../../src/engine/steps/registry.js';
import { Outbound } from '../../src/net/outbound.js';
import { claimedJob } from '../helpers/claimed-job.js';
import { MemorySink } from '../helpers/memory-sink.js';

/**
 * A job whose step (or the engine itself) finds Stepwise's own database
 * unavailable — a restart under a wait step's signal lookup — is handed back
 * to the queue whole, to run again when the database is back: neither the
 * step nor the job failed, and no retry is spent.
 */
function options(overrides: Partial<ExecutorOptions> = {}): ExecutorOptions {
  return {
    stepTimeoutMs: 1_000,
    httpMaxResponseBytes: 1_024,
    outbound: new Outbound(),
    checkpointTtlMs: 60_000,
    findSignal: async () => null,
    ...overrides,
  };
}

const unavailable = () => Promise.reject(new DatabaseUnavailableError('restarting'));

describe('the database unavailable under a running job', () => {
  it('a step whose own read finds it unavailable hands the job back, a moment later, without failing the step', async () => {
    const sink = new MemorySink();
    const definition: Definition = {
      steps: [
        { id: 'first', type: 'transform', expression: '1' },
        { id: 'gate', type: 'wait', signal: 'go', timeoutMs: 60_000, retry: { maxAttempts: 3, initialMs: 10 } },
        { id: 'after', type: 'noop' },
      ],
    };
    const before = Date.now();
    await executeJob(claimedJob({ maxRetries: 2 }), definition, sink, new JobAbort(), options({ findSignal: unavailable }));
    expect(sink.kinds()).toEqual(['JOB_STARTED', 'STEP_STARTED', 'STEP_COMPLETED', 'STEP_STARTED', 'JOB_HANDED_BACK']);
    expect(sink.rows.at(-1)!.message).toBe('the database was unavailable; job returned to the queue');
    expect(sink.completions).toEqual([]);
    expect(sink.suspensions).toHaveLength(1);
    const handedBack = sink.suspensions[0]!;
    expect(handedBack).toMatchObject({ jobId: 'job-1', status: 'PENDING', lastSeq: 5 });
    // Not a job-level retry: no error and no retry counted on it.
    expect(handedBack).not.toHaveProperty('retry');
    expect(handedBack.runAt.getTime()).toBeGreaterThanOrEqual(before + DATABASE_RETRY_AFTER_SECONDS * 1000);
    // The completed step stays completed: the job resumes at the wait.
    expect(sink.checkpoints.at(-1)!.checkpoint).toMatchObject({ nextStep: 1 });
  });

  it('the engine’s own read at the start of a run hands it back too', async () => {
    const sink = new MemorySink();
    const definition: Definition = { steps: [{ id: 'loop', type: 'forEach', items: '[1]', steps: [{ id: 'n', type: 'noop' }] }] };
    await executeJob(claimedJob({ attempts: 2 }), definition, sink, new JobAbort(), options({ findStepResults: unavailable }));
    expect(sink.completions).toEqual([]);
    expect(sink.suspensions).toEqual([expect.objectContaining({ status: 'PENDING' })]);
    expect(sink.kinds()).toEqual(['JOB_HANDED_BACK']);
  });

  it('any other error of a step still fails it as before', async () => {
    const sink = new MemorySink();
    const boom = () => Promise.reject(new Error('signal table on fire'));
    const definition: Definition = { steps: [{ id: 'gate', type: 'wait', signal: 'go', timeoutMs: 60_000 }] };
    await executeJob(claimedJob(), definition, sink, new JobAbort(), options({ findSignal: boom }));
    expect(sink.completions).toEqual([expect.objectContaining({ status: 'FAILED', errorCode: 'STEP_ERROR', errorStep: 'gate' })]);
  });
});
