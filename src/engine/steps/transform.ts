import type { StepBase } from '../../model/definition.js';
import { compileExpression, evaluate } from '../definition/expressions.js';
import { noChildren, noDirectCredentials, noExtraChecks, stepTimeout, type StepType } from './types.js';

/** Computes a value: the output is a JSONata expression's value over `{ input, steps }`. */
export interface TransformStep extends StepBase {
  type: 'transform';
  expression: string;
}

export const transformStep: StepType<TransformStep> = {
  type: 'transform',
  properties: { expression: { type: 'string', minLength: 1, maxLength: 100_000 } },
  required: ['expression'],
  sources: (step) => ({ expressions: { expression: step.expression } }),
  validate: noExtraChecks,
  credentials: noDirectCredentials,
  children: noChildren,
  block: false,
  attemptTimeoutMs: stepTimeout,
  sideEffects: false,
  abortable: false,
  compensation: true,
  async run(step, ctx) {
    // undefined (no match) becomes null: outputs are JSON.
    const value = await evaluate(compileExpression(step.expression, `steps.${step.id}.expression`), ctx.scope);
    return value === undefined ? null : value;
  },
};
