import { describe, expect, it } from 'vitest';
import { DATABASE_RETRY_AFTER_SECONDS, DatabaseUnavailableError } from '../../src/db/errors.js';
import { CancelledError, JobTimeoutError, LeaseLostError, ShutdownError } from '../../src/engine/aborts.js';
import {
  afterFailedAttempt,
  afterFailedStep,
  afterInterruption,
  afterJobFailure,
  endEvent,
  FAR_FUTURE_MS,
  resultPlacement,
  StepFailed,
  successOutcome,
  wakeTime,
} from '../../src/engine/rules.js';

describe('after a failed attempt', () => {
  it('gives up without a policy, past maxAttempts, or for a code outside `on`', () => {
    expect(afterFailedAttempt(undefined, 'HTTP_STATUS', 1)).toEqual({ retry: false });
    expect(afterFailedAttempt({ maxAttempts: 2 }, 'HTTP_STATUS', 2)).toEqual({ retry: false });
    expect(afterFailedAttempt({ maxAttempts: 5, on: ['HTTP_STATUS'] }, 'EXPRESSION_ERROR', 1)).toEqual({ retry: false });
  });

  it('retries with exponential, capped, jittered delays', () => {
    const policy = { maxAttempts: 10, initialMs: 100, maxMs: 1_000, multiplier: 3 };
    // random() = 0 gives the low end of full jitter (half the delay), 1 the high end.
    expect(afterFailedAttempt(policy, 'X', 1, () => 0)).toEqual({ retry: true, delayMs: 50 });
    expect(afterFailedAttempt(policy, 'X', 2, () => 1)).toEqual({ retry: true, delayMs: 300 });
    expect(afterFailedAttempt(policy, 'X', 5, () => 1)).toEqual({ retry: true, delayMs: 1_000 });
    expect(afterFailedAttempt({ ...policy, jitter: false }, 'X', 2, () => 0)).toEqual({ retry: true, delayMs: 300 });
  });
});

describe('after a failed step', () => {
  it('continues past a continueOnError step, else fails the job naming the step', () => {
    expect(afterFailedStep({ id: 's', continueOnError: true }, { code: 'C', message: 'm' })).toEqual({ kind: 'continue' });
    expect(afterFailedStep({ id: 's' }, { code: 'C', message: 'm' })).toEqual({ kind: 'fail', error: { code: 'C', message: 'm', step: 's' } });
  });
});

describe('after a failed job', () => {
  const error = { code: 'HTTP_STATUS', message: 'returned 500', step: 'call' };

  it('retries while job-level retries are left, with a doubling delay', () => {
    expect(afterJobFailure({ retryCount: 0, maxRetries: 2 }, error)).toEqual({
      kind: 'retry',
      delayMs: 1_000,
      event: { kind: 'RETRY_SCHEDULED', level: 'WARN', message: 'job retry 1 of 2 in 1000 ms', data: { retry: 1, of: 2, delayMs: 1_000, code: 'HTTP_STATUS' } },
    });
    expect(afterJobFailure({ retryCount: 1, maxRetries: 2 }, error)).toMatchObject({ kind: 'retry', delayMs: 2_000 });
    expect(afterJobFailure({ retryCount: 20, maxRetries: 30 }, error)).toMatchObject({ kind: 'retry', delayMs: 300_000 });
  });

  it('ends FAILED when none are left; max_retries_reached only if there were any', () => {
    expect(afterJobFailure({ retryCount: 2, maxRetries: 2 }, error)).toEqual({ kind: 'end', maxRetriesReached: true });
    expect(afterJobFailure({ retryCount: 0, maxRetries: 0 }, error)).toEqual({ kind: 'end', maxRetriesReached: false });
  });
});

describe('after an interruption', () => {
  it('tells each abort reason and error apart', () => {
    expect(afterInterruption(new LeaseLostError())).toEqual({ kind: 'abandon' });
    expect(afterInterruption(new ShutdownError())).toEqual({ kind: 'hand-back', message: 'worker shutting down; job returned to the queue', delayMs: 0 });
    // Stepwise's own database gone under the run is not the job's failure: back to the queue, a moment later.
    expect(afterInterruption(new DatabaseUnavailableError('restarting'))).toEqual({
      kind: 'hand-back',
      message: 'the database was unavailable; job returned to the queue',
      delayMs: DATABASE_RETRY_AFTER_SECONDS * 1000,
    });
    expect(afterInterruption(new CancelledError())).toEqual({
      kind: 'end',
      status: 'CANCELLED',
      error: { code: 'CANCELLED', message: 'cancelled by request', step: null },
    });
    expect(afterInterruption(new JobTimeoutError())).toMatchObject({ kind: 'end', status: 'TIMED_OUT', error: { code: 'JOB_TIMEOUT' } });
    const failed = { code: 'WAIT_TIMEOUT', message: 'no signal', step: 'w' };
    expect(afterInterruption(new StepFailed(failed))).toEqual({ kind: 'fail', error: failed });
    expect(afterInterruption(new Error('boom'))).toEqual({ kind: 'fail', error: { code: 'INTERNAL', message: 'boom', step: null } });
    expect(afterInterruption('odd')).toEqual({ kind: 'fail', error: { code: 'INTERNAL', message: 'odd', step: null } });
  });
});

describe('outcomes', () => {
  it('the terminal row names the failed step for FAILED, and warns for CANCELLED', () => {
    expect(endEvent('FAILED', { code: 'C', message: 'bad', step: 's' })).toEqual({ kind: 'JOB_FAILED', level: 'ERROR', message: 'step s failed: bad', data: { code: 'C' } });
    expect(endEvent('FAILED', { code: 'INTERNAL', message: 'bad', step: null })).toMatchObject({ message: 'bad' });
    expect(endEvent('CANCELLED', { code: 'CANCELLED', message: 'cancelled by request', step: null })).toMatchObject({ kind: 'JOB_CANCELLED', level: 'WARN' });
    expect(endEvent('TIMED_OUT', { code: 'JOB_TIMEOUT', message: 'job deadline passed', step: null })).toMatchObject({ kind: 'JOB_TIMED_OUT', level: 'ERROR' });
  });

  it('COMPLETED, or PARTIAL_SUCCESS listing the failed steps', () => {
    expect(successOutcome([], 7)).toEqual({ status: 'COMPLETED', event: { kind: 'JOB_COMPLETED', level: 'INFO', message: 'run 7 completed' } });
    expect(successOutcome(['a', 'b'], 8)).toEqual({
      status: 'PARTIAL_SUCCESS',
      event: { kind: 'JOB_PARTIAL_SUCCESS', level: 'WARN', message: 'run 8 completed; failed steps: a, b', data: { failedSteps: ['a', 'b'] } },
    });
  });

  it('results go inline, to blob storage past the inline size, or nowhere past the maximum', () => {
    const limits = { inlineMax: 100, maxBytes: 1_000, hasBlobStore: true };
    expect(resultPlacement(100, limits)).toBe('inline');
    expect(resultPlacement(101, limits)).toBe('blob');
    expect(resultPlacement(101, { ...limits, hasBlobStore: false })).toBe('inline');
    expect(resultPlacement(1_001, limits)).toBe('too-large');
  });

  it('a suspended job wakes at its step’s time, far ahead without one, never after its deadline', () => {
    expect(wakeTime(5_000, 1_000, null)).toBe(5_000);
    expect(wakeTime(null, 1_000, null)).toBe(1_000 + FAR_FUTURE_MS);
    expect(wakeTime(5_000, 1_000, 3_000)).toBe(3_000);
    expect(wakeTime(null, 1_000, 3_000)).toBe(3_000);
  });
});
