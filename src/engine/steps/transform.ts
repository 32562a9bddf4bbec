import { compileExpression, evaluate } from '../definition/expressions.js';
import type { TransformStep } from '../definition/types.js';
import type { StepHandler } from './types.js';

/** Output is the JSONata expression's value over `{ input, steps }` (undefined becomes null). */
export const runTransform: StepHandler<TransformStep> = async (step, ctx) => {
  const value = await evaluate(compileExpression(step.expression, `steps.${step.id}.expression`), ctx.scope);
  return value === undefined ? null : value;
};
