import { ValidationError } from '../../errors/index.js';
import type { StepBase, WorkflowDefinition } from '../../model/definition.js';
import { stepTypeOf } from '../steps/registry.js';
import { MAX_DURATION_MS } from '../steps/durations.js';
import { BUCKET_NAME_PATTERN } from './bucket-name.js';
import { compileExpression } from './expressions.js';

/**
 * Flow control at a definition's top level: concurrency keys, rate-limit
 * buckets, debounce, dedupe and a priority expression. This module holds
 * their JSON Schema (spread into the definition's schema) and the checks the
 * schema cannot express; enforcement lives with the enqueue (flow-keys.ts),
 * the claim (store/flow-claim.ts) and the step gate (throttle.ts).
 */

export { BUCKET_NAME_PATTERN };
export const MAX_CONCURRENCY_RULES = 3;
export const MAX_CONCURRENCY_LIMIT = 10_000;
export const MAX_RATE_LIMIT_BUCKETS = 5;
/** Tokens a bucket may hold (its burst), and so its limit. */
export const MAX_RATE_LIMIT = 1_000_000;
/** Longest rate-limit window: one day. */
export const MAX_RATE_LIMIT_PER_MS = 86_400_000;

/** A JSONata expression over `{ input }` (or, for a bucket key, the step's scope). */
const expression = { type: 'string', minLength: 1, maxLength: 1_000 } as const;
/** 1 ms to 30 days. */
const windowMs = { type: 'integer', minimum: 1, maximum: MAX_DURATION_MS } as const;

/** JSON Schema fragments of the five top-level flow-control properties. */
export const flowControlProperties = {
  concurrency: {
    type: 'array',
    minItems: 1,
    maxItems: MAX_CONCURRENCY_RULES,
    items: {
      type: 'object',
      additionalProperties: false,
      required: ['key', 'limit'],
      properties: { key: expression, limit: { type: 'integer', minimum: 1, maximum: MAX_CONCURRENCY_LIMIT } },
    },
  },
  rateLimits: {
    type: 'array',
    minItems: 1,
    maxItems: MAX_RATE_LIMIT_BUCKETS,
    items: {
      type: 'object',
      additionalProperties: false,
      required: ['bucket', 'limit', 'perMs'],
      properties: {
        bucket: { type: 'string', pattern: BUCKET_NAME_PATTERN },
        key: expression,
        limit: { type: 'integer', minimum: 1, maximum: MAX_RATE_LIMIT },
        perMs: { type: 'integer', minimum: 1, maximum: MAX_RATE_LIMIT_PER_MS },
      },
    },
  },
  debounce: {
    type: 'object',
    additionalProperties: false,
    required: ['key', 'delayMs', 'maxDelayMs'],
    properties: { key: expression, delayMs: windowMs, maxDelayMs: windowMs },
  },
  dedupe: {
    type: 'object',
    additionalProperties: false,
    required: ['key', 'ttlMs'],
    properties: { key: expression, ttlMs: windowMs },
  },
  priority: expression,
} as const;

/** Every step of a list, its compensations and the lists its blocks hold, with its JSON pointer. */
function* allSteps(steps: readonly StepBase[], path: string): Generator<{ step: StepBase; path: string }> {
  for (const [i, step] of steps.entries()) {
    const at = `${path}/${i}`;
    yield { step, path: at };
    if (step.compensate) yield { step: step.compensate.step, path: `${at}/compensate/step` };
    for (const list of stepTypeOf(step)?.children(step) ?? []) yield* allSteps(list.steps, `${at}${list.pointer}`);
  }
}

/**
 * What the schema cannot say: every key and priority expression compiles,
 * bucket names are unique, a debounce's delay is within its maximum, and a
 * step's `rateLimit` names a bucket the workflow declares (the step may be
 * nested in blocks). Throws ValidationError naming the path.
 */
export function checkFlowControl(definition: WorkflowDefinition): void {
  definition.concurrency?.forEach((rule, i) => compileExpression(rule.key, `/definition/concurrency/${i}/key`));
  const buckets = new Map<string, number>();
  definition.rateLimits?.forEach((rule, i) => {
    const prior = buckets.get(rule.bucket);
    if (prior !== undefined) {
      const path = `/definition/rateLimits/${i}/bucket`;
      throw new ValidationError(`${path} "${rule.bucket}" is already declared at /definition/rateLimits/${prior}`, { path });
    }
    buckets.set(rule.bucket, i);
    if (rule.key !== undefined) compileExpression(rule.key, `/definition/rateLimits/${i}/key`);
  });
  if (definition.debounce) {
    compileExpression(definition.debounce.key, '/definition/debounce/key');
    if (definition.debounce.delayMs > definition.debounce.maxDelayMs) {
      const path = '/definition/debounce/delayMs';
      throw new ValidationError(`${path} (${definition.debounce.delayMs}) must not exceed /definition/debounce/maxDelayMs (${definition.debounce.maxDelayMs})`, {
        path,
      });
    }
  }
  if (definition.dedupe) compileExpression(definition.dedupe.key, '/definition/dedupe/key');
  if (definition.priority !== undefined) compileExpression(definition.priority, '/definition/priority');
  for (const { step, path } of allSteps(definition.steps, '/definition/steps')) {
    const named = (step as { rateLimit?: unknown }).rateLimit;
    if (typeof named === 'string' && !buckets.has(named)) {
      const declared = [...buckets.keys()];
      throw new ValidationError(
        `${path}/rateLimit "${named}" is not a bucket of this workflow's rateLimits${declared.length > 0 ? ` (${declared.join(', ')})` : ' (none declared)'}`,
        { path: `${path}/rateLimit` },
      );
    }
  }
}
