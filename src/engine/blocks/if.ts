import type { StepBase } from '../../model/definition.js';
import { compileExpression, evaluate } from '../definition/expressions.js';
import { sequenceValue } from '../sequence.js';
import { noDirectCredentials, noExtraChecks, Suspend, stepTimeout, type StepType } from '../steps/types.js';
import { expressionSchema, stepListSchema, truthy } from './lists.js';

/** Runs `then` when the condition holds, else `else`. Output: `{ branch: "then"|"else", output: <last step's output> }`. */
export interface IfStep extends StepBase {
  type: 'if';
  condition: string;
  then: StepBase[];
  else?: StepBase[];
}

export const ifStep: StepType<IfStep> = {
  type: 'if',
  properties: { condition: expressionSchema, then: stepListSchema, else: stepListSchema },
  required: ['condition', 'then'],
  sources: (step) => ({ expressions: { condition: step.condition } }),
  validate: noExtraChecks,
  credentials: noDirectCredentials,
  children: (step) => [
    { label: 'then', pointer: '/then', steps: step.then, repeat: 1, exclusive: true },
    ...(step.else ? [{ label: 'else', pointer: '/else', steps: step.else, repeat: 1, exclusive: true }] : []),
  ],
  block: true,
  attemptTimeoutMs: stepTimeout,
  sideEffects: false,
  abortable: false,
  compensation: false,
  async run(step, ctx) {
    // The branch is chosen once and kept: a resumed job goes on in the branch it took.
    const saved = ctx.block.saved?.branch;
    let branch: 'then' | 'else';
    if (saved === 'then' || saved === 'else') {
      branch = saved;
    } else {
      const value = await evaluate(compileExpression(step.condition, `steps.${step.id}.condition`), ctx.scope);
      branch = truthy(value) ? 'then' : 'else';
      ctx.block.save({ branch });
      ctx.event('BRANCH_TAKEN', branch, { branch });
    }
    const steps = branch === 'then' ? step.then : step.else;
    if (!steps || steps.length === 0) return { branch, output: null };
    const output = sequenceValue(await ctx.block.run({ label: branch, steps }));
    return output instanceof Suspend ? output : { branch, output };
  },
};
