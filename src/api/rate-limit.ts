import { RateLimitedError } from '../errors/index.js';
import { metrics } from '../metrics/index.js';

/** Requests per second per API key and the burst a key may spend at once; perSecond 0 turns the limit off. */
export interface RateLimitConfig {
  perSecond: number;
  burst: number;
}

/**
 * 100 requests/s sustained with bursts of 500: far above an interactive
 * client or a CLI (which starts runs in batches of up to 1,000 per request),
 * low enough that one runaway script cannot take the API from every other
 * tenant. Configurable (STEPWISE_RATE_LIMIT_PER_SECOND, STEPWISE_RATE_LIMIT_BURST).
 */
export const DEFAULT_RATE_LIMIT: RateLimitConfig = Object.freeze({ perSecond: 100, burst: 500 });

/** Buckets kept before full (idle) ones are dropped; a full bucket is the same as no bucket. */
const SWEEP_AT = 10_000;

/**
 * In-process token bucket per key: each key holds up to `burst` tokens,
 * refilled at `perSecond`; a request takes one. Per process, not per
 * cluster: N API processes allow N × the rate, which is the honest price of
 * needing no shared state (a cluster-wide limit would cost a database write
 * per request).
 */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly config: RateLimitConfig,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Take a token for `key` or throw RateLimitedError with the seconds until one is free. */
  take(key: string): void {
    const { perSecond, burst } = this.config;
    if (perSecond <= 0) return;
    const t = this.now();
    const b = this.buckets.get(key);
    const tokens = b ? Math.min(burst, b.tokens + ((t - b.at) / 1000) * perSecond) : burst;
    if (tokens < 1) {
      this.buckets.set(key, { tokens, at: t });
      metrics.recordRateLimited();
      throw new RateLimitedError(Math.max(1, Math.ceil((1 - tokens) / perSecond)), { perSecond, burst });
    }
    this.buckets.set(key, { tokens: tokens - 1, at: t });
    if (this.buckets.size > SWEEP_AT) this.sweep(t);
  }

  private sweep(t: number): void {
    const { perSecond, burst } = this.config;
    for (const [key, b] of this.buckets) {
      if (b.tokens + ((t - b.at) / 1000) * perSecond >= burst) this.buckets.delete(key);
    }
  }
}
