import type { StepBase } from '../../model/definition.js';
import { ValidationError } from '../../errors/index.js';
import { jsonByteLength } from '../../util/json.js';
import { BranchCancelledError, JobAbort } from '../aborts.js';
import { compileExpression, evaluate } from '../definition/expressions.js';
import { noDirectCredentials, StepError, Suspend, stepTimeout, type SequenceOutcome, type StepContext, type StepType } from '../steps/types.js';
import { expressionSchema, stepListSchema } from './lists.js';
import { minUntil, recordedFailure } from './parallel.js';
import { settleAll } from './settle.js';

/**
 * Runs its steps once per item, up to `concurrency` iterations at a time.
 * Inside, expressions see `item` and `index`. Output: the iterations'
 * outputs (each its last step's), ordered by index; a tolerated failed
 * iteration gives null there and the job ends PARTIAL_SUCCESS.
 */
export interface ForEachStep extends StepBase {
  type: 'forEach';
  items: string;
  /** Iterations open at once (1–50, default 1); a waiting iteration keeps its place. */
  concurrency?: number;
  /** More items fail the step (default 1,000, at most 10,000). */
  maxItems?: number;
  /** Failed iterations tolerated before the loop fails: a count, or a share of the items ("10%"). Default 0. */
  toleratedFailures?: number | string;
  steps: StepBase[];
}

export const MAX_CONCURRENCY = 50;
export const MAX_ITEMS = 10_000;
export const DEFAULT_MAX_ITEMS = 1_000;
/** The items array, as JSON, at most (it is kept with the loop's state so a resumed job loops over the same items). */
export const MAX_ITEMS_BYTES = 1024 * 1024;
/**
 * Iterations from this index on write no rows of their own unless they fail:
 * MAP_PROGRESS rollups stand for them, so a loop of 10,000 items does not
 * write 40,000 rows (each iteration's output still goes into the loop's).
 */
export const FULL_HISTORY_ITERATIONS = 100;
/** A MAP_PROGRESS rollup after this many quiet iterations ended (and at the loop's end or pause). */
export const PROGRESS_EVERY = 100;

const PERCENT = /^(\d{1,3})%$/;

/** The number of failed iterations tolerated out of `n`. */
export function toleratedOf(setting: number | string | undefined, n: number): number {
  if (setting === undefined) return 0;
  if (typeof setting === 'number') return setting;
  const m = PERCENT.exec(setting);
  return m ? Math.floor((n * Number(m[1])) / 100) : 0;
}

async function evaluateItems(step: ForEachStep, ctx: StepContext): Promise<unknown[]> {
  const value = await evaluate(compileExpression(step.items, `steps.${step.id}.items`), ctx.scope);
  // JSONata gives a lone value for a one-element sequence: a loop over it runs once.
  const items = value === undefined || value === null ? [] : Array.isArray(value) ? value : [value];
  const max = step.maxItems ?? DEFAULT_MAX_ITEMS;
  if (items.length > max) {
    throw new StepError('FOREACH_TOO_MANY_ITEMS', `${items.length} items is more than maxItems ${max}`, { items: items.length, maxItems: max });
  }
  const bytes = jsonByteLength(items);
  if (bytes > MAX_ITEMS_BYTES) {
    throw new StepError('FOREACH_ITEMS_TOO_LARGE', `the items are ${bytes} bytes of JSON, more than ${MAX_ITEMS_BYTES}`, { bytes, limit: MAX_ITEMS_BYTES });
  }
  return items;
}

export const forEachStep: StepType<ForEachStep> = {
  type: 'forEach',
  properties: {
    items: expressionSchema,
    concurrency: { type: 'integer', minimum: 1, maximum: MAX_CONCURRENCY },
    maxItems: { type: 'integer', minimum: 1, maximum: MAX_ITEMS },
    toleratedFailures: { anyOf: [{ type: 'integer', minimum: 0, maximum: MAX_ITEMS }, { type: 'string', pattern: PERCENT.source }] },
    steps: stepListSchema,
  },
  required: ['items', 'steps'],
  sources: (step) => ({ expressions: { items: step.items } }),
  validate(step, path) {
    const m = typeof step.toleratedFailures === 'string' ? PERCENT.exec(step.toleratedFailures) : null;
    if (m && Number(m[1]) > 100) throw new ValidationError(`${path}/toleratedFailures must be a share of at most 100%`, { path: `${path}/toleratedFailures` });
  },
  credentials: noDirectCredentials,
  children: (step) => [{ label: '[]', pointer: '/steps', steps: step.steps, repeat: step.maxItems ?? DEFAULT_MAX_ITEMS, exclusive: false }],
  block: true,
  attemptTimeoutMs: stepTimeout,
  sideEffects: false,
  abortable: false,
  compensation: false,
  run: runLoop,
};

async function runLoop(step: ForEachStep, ctx: StepContext): Promise<unknown> {
  let items = ctx.block.saved?.items;
  if (!Array.isArray(items)) {
    items = await evaluateItems(step, ctx);
    // Kept with the loop: a resumed job iterates the same items, whatever its expression says by then.
    ctx.block.save({ items });
  }
  const list = items as unknown[];
  const n = list.length;
  const tolerated = toleratedOf(step.toleratedFailures, n);
  const results: unknown[] = new Array(n).fill(null);
  const failedIndexes: number[] = [];
  const pending: number[] = [];
  let succeeded = 0;
  for (let i = 0; i < n; i++) {
    const recorded = ctx.block.recorded(`[${i}]`);
    if (recorded?.status === 'COMPLETED') {
      results[i] = recorded.output;
      succeeded++;
    } else if (recorded?.status === 'FAILED') {
      failedIndexes.push(i);
    } else {
      pending.push(i);
    }
  }
  // Past the tolerated failures the loop stops: running iterations finish the
  // step they are in (and record it), and nothing new starts.
  const stop = new JobAbort();
  let next = 0;
  let stopped = false;
  let failure: Extract<SequenceOutcome, { kind: 'failed' }> | undefined =
    failedIndexes.length > tolerated ? recordedFailure(ctx.block.recorded(`[${failedIndexes[0]}]`)?.output, `${ctx.path}[${failedIndexes[0]}]`) : undefined;
  let waiting = 0;
  let until: number | null = null;
  let sinceProgress = 0;
  const progress = () => {
    sinceProgress = 0;
    ctx.event('MAP_PROGRESS', `${succeeded + failedIndexes.length} of ${n}`, { total: n, succeeded, failed: failedIndexes.length, running: waiting });
  };

  const lane = async (): Promise<void> => {
    while (!stopped && failure === undefined && next < pending.length) {
      const i = pending[next++]!;
      const label = `[${i}]`;
      const quiet = i >= FULL_HISTORY_ITERATIONS;
      if (!quiet) ctx.block.event(label, 'ITERATION_STARTED', label, { index: i });
      const out = await ctx.block.run({ label, steps: step.steps, item: list[i], index: i, quiet }, undefined, stop);
      if (out.kind === 'completed') {
        results[i] = out.output;
        succeeded++;
        ctx.block.record(label, 'COMPLETED', out.output);
        if (!quiet) ctx.block.event(label, 'ITERATION_COMPLETED', label, { index: i });
      } else if (out.kind === 'suspended') {
        // A waiting iteration keeps its place: this lane takes no other.
        waiting++;
        until = waiting === 1 ? out.until : minUntil(until, out.until);
        return;
      } else if (out.code !== 'BRANCH_CANCELLED') {
        failedIndexes.push(i);
        ctx.block.record(label, 'FAILED', { code: out.code, message: out.message, path: out.path });
        ctx.block.event(label, 'ITERATION_FAILED', out.message, { index: i, code: out.code, path: out.path }, 'ERROR');
        if (failedIndexes.length > tolerated) {
          failure = out;
          stop.abort(new BranchCancelledError());
        }
      }
      if (quiet && ++sinceProgress >= PROGRESS_EVERY) progress();
    }
  };

  const lanes = Math.min(step.concurrency ?? 1, pending.length);
  try {
    await settleAll(Array.from({ length: lanes }, lane));
  } finally {
    stopped = true;
  }
  if (n > FULL_HISTORY_ITERATIONS) progress();
  if (failure) {
    throw new StepError(failure.code, `iteration ${failure.path} failed: ${failure.message}`, { path: failure.path, failedIterations: failedIndexes.length });
  }
  if (waiting > 0) return new Suspend(until, {});
  for (const i of failedIndexes) ctx.block.noteFailed(`[${i}]`);
  return results;
}
