import type { NoopStep } from '../definition/types.js';
import type { StepHandler } from './types.js';

/** Does nothing; useful as a placeholder and for measuring engine overhead. */
export const runNoop: StepHandler<NoopStep> = async () => null;
