import type { StepBase } from '../../model/definition.js';
import { LOG_LEVELS, type LogLevel } from '../../store/stream-codes.js';
import { renderString } from '../definition/expressions.js';
import { noChildren, noDirectCredentials, noExtraChecks, stepTimeout, type StepType } from './types.js';

/** Writes one log line (templates rendered) to the job's stream. Output is null: the line itself is in the stream. */
export interface LogStep extends StepBase {
  type: 'log';
  /** Default INFO. */
  level?: LogLevel;
  message: string;
}

export const logStep: StepType<LogStep> = {
  type: 'log',
  properties: {
    level: { enum: Object.keys(LOG_LEVELS) },
    message: { type: 'string', minLength: 1, maxLength: 10_000 },
  },
  required: ['message'],
  sources: (step) => ({ templates: { message: step.message } }),
  validate: noExtraChecks,
  credentials: noDirectCredentials,
  children: noChildren,
  block: false,
  attemptTimeoutMs: stepTimeout,
  sideEffects: false,
  abortable: false,
  compensation: true,
  async run(step, ctx) {
    ctx.log(step.level ?? 'INFO', await renderString(step.message, ctx.scope, `steps.${step.id}.message`));
    return null;
  },
};
