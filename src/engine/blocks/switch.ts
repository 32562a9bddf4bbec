import type { StepBase } from '../../model/definition.js';
import { compileExpression, evaluate } from '../definition/expressions.js';
import { sequenceValue } from '../sequence.js';
import { noDirectCredentials, noExtraChecks, Suspend, stepTimeout, type StepType } from '../steps/types.js';
import { expressionSchema, stepListSchema, truthy } from './lists.js';

/**
 * Runs the steps of the first case whose `when` holds, else `default`.
 * Output: `{ branch: <case index>|"default", output: <last step's output> }`.
 */
export interface SwitchStep extends StepBase {
  type: 'switch';
  cases: { when: string; steps: StepBase[] }[];
  default?: StepBase[];
}

export const MAX_CASES = 50;

export const switchStep: StepType<SwitchStep> = {
  type: 'switch',
  properties: {
    cases: {
      type: 'array',
      minItems: 1,
      maxItems: MAX_CASES,
      items: { type: 'object', additionalProperties: false, required: ['when', 'steps'], properties: { when: expressionSchema, steps: stepListSchema } },
    },
    default: stepListSchema,
  },
  required: ['cases'],
  sources: (step) => ({ expressions: Object.fromEntries(step.cases.map((c, i) => [`cases/${i}/when`, c.when])) }),
  validate: noExtraChecks,
  credentials: noDirectCredentials,
  children: (step) => [
    ...step.cases.map((c, i) => ({ label: String(i), pointer: `/cases/${i}/steps`, steps: c.steps, repeat: 1, exclusive: true })),
    ...(step.default ? [{ label: 'default', pointer: '/default', steps: step.default, repeat: 1, exclusive: true }] : []),
  ],
  block: true,
  attemptTimeoutMs: stepTimeout,
  sideEffects: false,
  abortable: false,
  compensation: false,
  async run(step, ctx) {
    const saved = ctx.block.saved?.branch;
    let branch: number | 'default';
    if (typeof saved === 'number' || saved === 'default') {
      branch = saved;
    } else {
      branch = 'default';
      for (let i = 0; i < step.cases.length; i++) {
        const value = await evaluate(compileExpression(step.cases[i]!.when, `steps.${step.id}.cases.${i}.when`), ctx.scope);
        if (truthy(value)) {
          branch = i;
          break;
        }
      }
      ctx.block.save({ branch });
      ctx.event('BRANCH_TAKEN', String(branch), { branch });
    }
    const steps = typeof branch === 'number' ? step.cases[branch]?.steps : step.default;
    if (!steps || steps.length === 0) return { branch, output: null };
    const output = sequenceValue(await ctx.block.run({ label: String(branch), steps }));
    return output instanceof Suspend ? output : { branch, output };
  },
};
