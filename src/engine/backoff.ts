import type { RetryPolicy } from './definition/types.js';

/** Defaults of a step retry policy (Temporal-like: 200 ms doubling to 10 s, with jitter). */
export const RETRY_DEFAULTS = { initialMs: 200, maxMs: 10_000, multiplier: 2, jitter: true } as const;

/**
 * Delay before attempt `attempt + 1` after attempt `attempt` failed:
 * exponential, capped, and with "full jitter" (uniform in [delay/2, delay])
 * so a burst of failures does not retry in lockstep.
 */
export function retryDelayMs(policy: RetryPolicy, attempt: number, random: () => number = Math.random): number {
  const initial = policy.initialMs ?? RETRY_DEFAULTS.initialMs;
  const max = policy.maxMs ?? RETRY_DEFAULTS.maxMs;
  const multiplier = policy.multiplier ?? RETRY_DEFAULTS.multiplier;
  const base = Math.min(max, initial * multiplier ** (attempt - 1));
  const jitter = policy.jitter ?? RETRY_DEFAULTS.jitter;
  return Math.round(jitter ? base / 2 + random() * (base / 2) : base);
}

/**
 * Failures another attempt cannot cure, whatever the policy says: the plan's
 * AI tokens are spent until the month turns or the plan changes, and each
 * attempt would only ask again; the egress policy is fixed for the life of
 * the worker process, so a host it refused stays refused.
 */
export const NEVER_RETRIED_CODES: ReadonlySet<string> = new Set(['PLAN_LIMIT_EXCEEDED', 'EGRESS_DENIED']);

/** Whether a failure with this code may be retried under the policy. */
export function isRetryable(policy: RetryPolicy | undefined, code: string, attempt: number): boolean {
  if (!policy || attempt >= policy.maxAttempts || NEVER_RETRIED_CODES.has(code)) return false;
  return policy.on === undefined || policy.on.includes(code);
}

/** Job-level retry delay (maxRetries): 1 s doubling, capped at 5 minutes. */
export function jobRetryDelayMs(retryCount: number): number {
  return Math.min(300_000, 1_000 * 2 ** retryCount);
}

/** Sleep that ends early (rejecting with the signal's reason) when the signal aborts. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
