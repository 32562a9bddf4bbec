import type { StepBase } from '../../model/definition.js';
import { BranchCancelledError } from '../aborts.js';
import { noDirectCredentials, noExtraChecks, StepError, Suspend, stepTimeout, type SequenceOutcome, type StepType } from '../steps/types.js';
import { settleAll } from './settle.js';
import { stepListSchema } from './lists.js';

/**
 * Runs named branches at once. Output: `{ <branch>: <last step's output> }`.
 * With failFast (the default) a failing branch stops the others; without
 * it the others run to their end, then the block fails.
 */
export interface ParallelStep extends StepBase {
  type: 'parallel';
  branches: Record<string, StepBase[]>;
  failFast?: boolean;
}

export const MAX_BRANCHES = 10;

export const parallelStep: StepType<ParallelStep> = {
  type: 'parallel',
  properties: {
    branches: {
      type: 'object',
      minProperties: 1,
      maxProperties: MAX_BRANCHES,
      propertyNames: { pattern: '^[A-Za-z_][A-Za-z0-9_]{0,63}$' },
      additionalProperties: stepListSchema,
    },
    failFast: { type: 'boolean' },
  },
  required: ['branches'],
  sources: () => ({}),
  validate: noExtraChecks,
  credentials: noDirectCredentials,
  children: (step) =>
    Object.entries(step.branches).map(([name, steps]) => ({ label: name, pointer: `/branches/${name}`, steps, repeat: 1, exclusive: false })),
  block: true,
  attemptTimeoutMs: stepTimeout,
  sideEffects: false,
  abortable: false,
  compensation: false,
  async run(step, ctx) {
    const names = Object.keys(step.branches);
    const abort = ctx.block.childAbort();
    const outputs = new Map<string, unknown>();
    let failure: Extract<SequenceOutcome, { kind: 'failed' }> | undefined;
    let suspended = false;
    let until: number | null = null;
    await settleAll(
      names.map(async (name) => {
        const recorded = ctx.block.recorded(name);
        if (recorded?.status === 'COMPLETED') {
          outputs.set(name, recorded.output);
          return;
        }
        // A branch that failed earlier in this attempt (the block then waited on another) stays failed.
        const out = recorded?.status === 'FAILED' ? recordedFailure(recorded.output, `${ctx.path}.${name}`) : await ctx.block.run({ label: name, steps: step.branches[name]! }, abort);
        if (out.kind === 'completed') {
          outputs.set(name, out.output);
          ctx.block.record(name, 'COMPLETED', out.output);
        } else if (out.kind === 'suspended') {
          until = suspended ? minUntil(until, out.until) : out.until;
          suspended = true;
        } else if (out.code !== 'BRANCH_CANCELLED') {
          if (!recorded) ctx.block.record(name, 'FAILED', { code: out.code, message: out.message, path: out.path });
          failure ??= out;
          if (step.failFast !== false) abort.abort(new BranchCancelledError());
        }
      }),
    );
    if (failure) throw new StepError(failure.code, failure.message, { path: failure.path });
    if (suspended) return new Suspend(until, {});
    return Object.fromEntries(names.map((name) => [name, outputs.get(name) ?? null]));
  },
};

/** The earlier of two wake times (null: no time of its own, woken by an event). */
export function minUntil(a: number | null, b: number | null): number | null {
  if (a === null) return b;
  if (b === null) return a;
  return Math.min(a, b);
}

/** A list's failure as recorded ({ code, message, path }). */
export function recordedFailure(output: unknown, fallbackPath: string): Extract<SequenceOutcome, { kind: 'failed' }> {
  const o = output !== null && typeof output === 'object' ? (output as Record<string, unknown>) : {};
  return {
    kind: 'failed',
    code: typeof o.code === 'string' ? o.code : 'STEP_ERROR',
    message: typeof o.message === 'string' ? o.message : 'failed',
    path: typeof o.path === 'string' ? o.path : fallbackPath,
  };
}
