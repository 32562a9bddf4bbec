import { renderString } from '../definition/expressions.js';
import type { LogStep } from '../definition/types.js';
import type { StepHandler } from './types.js';

/** Writes one log line (templates rendered) to the stream. Output is null: the line itself is in the stream. */
export const runLog: StepHandler<LogStep> = async (step, ctx) => {
  const level = step.level ?? 'INFO';
  const message = await renderString(step.message, ctx.scope, `steps.${step.id}.message`);
  ctx.log(level, message);
  return null;
};
