import type { StepBase } from '../../model/definition.js';
import { durationSchema } from './durations.js';
import { noChildren, CompletedWithWarning, noDirectCredentials, noExtraChecks, StepError, Suspend, stepTimeout, type StepType } from './types.js';

/** Wait for a named signal (POST /v1/jobs/:id/signals/:name); the output is the signal's payload. */
export interface WaitStep extends StepBase {
  type: 'wait';
  signal: string;
  /** How long to wait; without it, for ever (or until the job's deadline). */
  timeoutMs?: number;
  /** What a timeout does: fail the step (WAIT_TIMEOUT, default) or complete it with a null output. */
  onTimeout?: 'fail' | 'continue';
}

export const waitStep: StepType<WaitStep> = {
  type: 'wait',
  properties: {
    signal: { type: 'string', pattern: '^[A-Za-z0-9_.:-]{1,100}$' },
    timeoutMs: durationSchema,
    onTimeout: { enum: ['fail', 'continue'] },
  },
  required: ['signal'],
  sources: () => ({}),
  validate: noExtraChecks,
  credentials: noDirectCredentials,
  children: noChildren,
  block: false,
  attemptTimeoutMs: stepTimeout,
  sideEffects: false,
  abortable: false,
  compensation: false,
  async run(step, ctx) {
    const now = Date.now();
    const until = ctx.resumed ? toDeadline(ctx.resumed.until) : step.timeoutMs !== undefined ? now + step.timeoutMs : null;
    const signal = await ctx.signals.find(step.signal);
    if (signal) {
      ctx.signals.consume(signal);
      return signal.payload ?? null;
    }
    if (until !== null && now >= until) {
      if (step.onTimeout === 'continue') return new CompletedWithWarning(null, { timedOut: true });
      throw new StepError('WAIT_TIMEOUT', `no "${step.signal}" signal within ${step.timeoutMs} ms`);
    }
    const waiting = ctx.resumed ? undefined : { signal: step.signal, ...(until !== null ? { until: new Date(until).toISOString() } : {}) };
    return new Suspend(until, { until }, waiting);
  },
};

function toDeadline(value: unknown): number | null {
  return typeof value === 'number' ? value : null;
}
