import type { RateLimitRule, StepBase } from '../model/definition.js';
import { compileExpression, evaluate } from './definition/expressions.js';
import type { Frame } from './frame.js';
import type { BucketTake } from './services.js';
import { StepError } from './steps/types.js';

/**
 * The rate-limit buckets a step with side effects takes a token from: the
 * one bucket it names (`"rateLimit": "payer-portal"`, declared in the
 * workflow's `rateLimits`), or else every bucket the workflow declares.
 */
export function bucketsOf(rules: readonly RateLimitRule[] | undefined, step: StepBase): readonly RateLimitRule[] {
  if (!rules || rules.length === 0) return [];
  const named = (step as { rateLimit?: unknown }).rateLimit;
  return typeof named === 'string' ? rules.filter((r) => r.bucket === named) : rules;
}

/**
 * Take the step's tokens. Resolves 0 when it may run now, else the
 * milliseconds until it may (the caller suspends the job meanwhile). A
 * workflow without buckets costs nothing: no database call is made.
 */
export async function throttleWait(frame: Frame, step: StepBase): Promise<number> {
  const rules = bucketsOf(frame.run.definition.rateLimits, step);
  if (rules.length === 0) return 0;
  const service = frame.options.services?.rateLimits;
  if (!service) throw new StepError('SERVICE_UNAVAILABLE', `step ${step.id} is rate limited, and this worker has no rate-limit service`);
  const scope = frame.scope();
  const takes: BucketTake[] = [];
  for (const rule of rules) {
    const key = rule.key === undefined ? '' : await evaluate(compileExpression(rule.key, `rateLimits.${rule.bucket}.key`), scope);
    takes.push({ bucket: rule.bucket, key: key === undefined || key === null ? '' : typeof key === 'string' ? key : JSON.stringify(key), limit: rule.limit, perMs: rule.perMs });
  }
  return service.take(frame.run.job.organizationId, takes);
}
