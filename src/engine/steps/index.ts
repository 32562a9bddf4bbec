import type { ActionStep } from '../definition/types.js';
import { runHttp } from './http.js';
import { runLog } from './log.js';
import { runNoop } from './noop.js';
import { runTransform } from './transform.js';
import type { StepContext } from './types.js';

export { StepError, type StepContext, type StepHandler } from './types.js';
export type { HttpOutput } from './http.js';

/** Dispatch one action step to its handler (exhaustive; delay and wait are handled by the executor). */
export function runStep(step: ActionStep, ctx: StepContext): Promise<unknown> {
  switch (step.type) {
    case 'transform':
      return runTransform(step, ctx);
    case 'http':
      return runHttp(step, ctx);
    case 'log':
      return runLog(step, ctx);
    case 'noop':
      return runNoop(step, ctx);
  }
}
