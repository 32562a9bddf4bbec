import { costMicros as priceCost, type ModelPrice } from '../../ai/prices.js';
import type { ChatProvider, ChatRequest, ChatResult, ProviderSecret } from '../../ai/types.js';
import { sleep } from '../backoff.js';
import type { BucketTake } from '../services.js';
import { StepError, Suspend, type StepContext } from './types.js';

/**
 * The provider's own pace, per credential: every llm step calling through
 * credential `x` takes a token from bucket `llm:x` first. It is a gate more
 * than a quota — 50 calls a second is above what one key gets from any
 * provider's standard tiers — and it is what a 429's Retry-After closes, so
 * every job on that key waits, not only the one that was told.
 */
export const PROVIDER_BUCKET = { limit: 50, perMs: 1_000 } as const;

/** A wait up to this long is slept inside the attempt; a longer one suspends the job (WAITING, no worker held). */
export const MAX_IN_ATTEMPT_WAIT_MS = 5_000;
/** Provider retries (429, 5xx, a failed connection) per attempt, before the step fails LLM_RATE_LIMITED / LLM_PROVIDER_ERROR. */
export const MAX_PROVIDER_RETRIES = 4;
/** Without Retry-After: 1 s, 2 s, 4 s, 8 s. */
const BACKOFF_BASE_MS = 1_000;

/** What a call used, summed over the calls of one step run. */
export interface CallUsage {
  inputTokens: number;
  outputTokens: number;
  costMicros: number;
  /** Every call's model had a price (else the step's costUsd is null). */
  priced: boolean;
}

/** What an llm step keeps across a suspension: retries spent in this attempt, usage so far, and the repair turn's invalid reply. */
export interface LlmProgress {
  retries: number;
  usage: CallUsage;
  repair: { reply: string; errors: { path: string; message: string }[] } | null;
}

export function providerBucket(credential: string): BucketTake {
  return { bucket: `llm:${credential}`, key: '', ...PROVIDER_BUCKET };
}

/**
 * One provider call with everything around it: the provider bucket's token,
 * the plan's AI tokens, the call, its usage recorded, and 429/5xx retries
 * honouring Retry-After (a 429's also holds the bucket). Returns the result,
 * or a Suspend (carrying `progress` as `suspendState` makes it) when the
 * next try is more than 5 s away. `progress.retries` and `usage` are updated
 * in place.
 */
export async function callProvider(
  ctx: StepContext,
  call: { provider: ChatProvider; secret: ProviderSecret; credential: string; request: ChatRequest },
  progress: LlmProgress,
  suspendState: () => Record<string, unknown>,
  priceOf: (model: string) => ModelPrice | null,
): Promise<ChatResult | Suspend> {
  const { rateLimits, aiUsage } = ctx.services;
  const org = ctx.job.organizationId;
  const bucket = providerBucket(call.credential);
  const pause = async (ms: number, reason: string): Promise<Suspend | null> => {
    if (ms <= MAX_IN_ATTEMPT_WAIT_MS) {
      await sleep(ms, ctx.signal);
      return null;
    }
    const until = Date.now() + ms;
    return new Suspend(until, suspendState(), { reason, until: new Date(until).toISOString() });
  };
  for (;;) {
    if (rateLimits) {
      const waitMs = await rateLimits.take(org, [bucket]);
      if (waitMs > 0) {
        const suspended = await pause(waitMs, `${bucket.bucket} is held`);
        if (suspended) return suspended;
        continue;
      }
    }
    if (aiUsage) await aiUsage.assertTokensLeft(org);
    const outcome = await call.provider.call(call.request, call.secret, ctx.net, ctx.signal);
    if (outcome.ok) {
      const { result } = outcome;
      const price = priceOf(call.request.model) ?? priceOf(result.model);
      const costMicros = price ? priceCost(price, result.inputTokens, result.outputTokens) : 0;
      progress.usage.inputTokens += result.inputTokens;
      progress.usage.outputTokens += result.outputTokens;
      progress.usage.costMicros += costMicros;
      progress.usage.priced &&= price !== null;
      await aiUsage?.record(org, { inputTokens: result.inputTokens, outputTokens: result.outputTokens, costMicros });
      return result;
    }
    const status = outcome.status;
    if (!outcome.retryable) {
      const code = status !== null && status >= 400 && status < 500 ? 'LLM_REQUEST_REJECTED' : 'LLM_PROVIDER_ERROR';
      throw new StepError(code, outcome.message, { provider: call.provider.name, ...(status !== null ? { status } : {}) });
    }
    progress.retries += 1;
    if (progress.retries > MAX_PROVIDER_RETRIES) {
      throw new StepError(status === 429 ? 'LLM_RATE_LIMITED' : 'LLM_PROVIDER_ERROR', `${outcome.message} (after ${MAX_PROVIDER_RETRIES} retries)`, {
        provider: call.provider.name,
        ...(status !== null ? { status } : {}),
        retries: MAX_PROVIDER_RETRIES,
      });
    }
    const delayMs = outcome.retryAfterMs ?? BACKOFF_BASE_MS * 2 ** (progress.retries - 1);
    if (status === 429 && outcome.retryAfterMs !== null && rateLimits) await rateLimits.hold(org, bucket, Date.now() + delayMs);
    ctx.log('WARN', `${outcome.message}; calling again in ${delayMs} ms (retry ${progress.retries} of ${MAX_PROVIDER_RETRIES})`, {
      ...(status !== null ? { status } : {}),
      retry: progress.retries,
      delayMs,
    });
    const suspended = await pause(delayMs, status === 429 ? 'provider rate limit' : 'provider unavailable');
    if (suspended) return suspended;
  }
}
