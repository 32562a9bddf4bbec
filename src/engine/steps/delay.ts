import type { StepBase } from '../../model/definition.js';
import { ValidationError } from '../../errors/index.js';
import { durationSchema } from './durations.js';
import { noChildren, noDirectCredentials, Suspend, stepTimeout, type StepType } from './types.js';

/** A durable timer: the job waits (WAITING, no worker held) for a duration or until a time. Output is null. */
export interface DelayStep extends StepBase {
  type: 'delay';
  durationMs?: number;
  until?: string;
}

export const delayStep: StepType<DelayStep> = {
  type: 'delay',
  properties: { durationMs: durationSchema, until: { type: 'string', format: 'date-time' } },
  required: [],
  sources: () => ({}),
  validate(step, path) {
    if ((step.durationMs === undefined) === (step.until === undefined)) {
      throw new ValidationError(`${path} needs exactly one of durationMs and until`, { path: `${path}/durationMs` });
    }
  },
  credentials: noDirectCredentials,
  children: noChildren,
  block: false,
  attemptTimeoutMs: stepTimeout,
  sideEffects: false,
  abortable: false,
  compensation: false,
  async run(step, ctx) {
    const now = Date.now();
    // The wake time is fixed when the delay starts and kept in the checkpoint,
    // so a job woken early (a cancel check, a takeover) sleeps again until then.
    const saved = ctx.resumed?.wakeAt;
    if (typeof saved === 'number') return now < saved ? new Suspend(saved, { wakeAt: saved }) : null;
    const wakeAt = step.until !== undefined ? Date.parse(step.until) : now + step.durationMs!;
    return now < wakeAt ? new Suspend(wakeAt, { wakeAt }, { until: new Date(wakeAt).toISOString() }) : null;
  },
};
