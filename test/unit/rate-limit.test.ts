import { describe, expect, it } from 'vitest';
import { RateLimiter } from '../../src/api/rate-limit.js';
import { RateLimitedError } from '../../src/errors/index.js';

function refused(fn: () => void): RateLimitedError | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    if (err instanceof RateLimitedError) return err;
    throw err;
  }
}

describe('per-key token bucket', () => {
  it('allows the burst, then refuses with the seconds until a token is back, then refills at the rate', () => {
    let now = 0;
    const limiter = new RateLimiter({ perSecond: 2, burst: 3 }, () => now);
    for (let i = 0; i < 3; i++) expect(refused(() => limiter.take('k'))).toBeUndefined();
    const err = refused(() => limiter.take('k'));
    expect(err?.details).toMatchObject({ retryAfterSeconds: 1, perSecond: 2, burst: 3 });
    // Another key has its own bucket.
    expect(refused(() => limiter.take('other'))).toBeUndefined();
    now += 499;
    expect(refused(() => limiter.take('k'))).toBeInstanceOf(RateLimitedError);
    now += 2;
    expect(refused(() => limiter.take('k'))).toBeUndefined();
    // A long pause refills only up to the burst.
    now += 60_000;
    for (let i = 0; i < 3; i++) expect(refused(() => limiter.take('k'))).toBeUndefined();
    expect(refused(() => limiter.take('k'))).toBeInstanceOf(RateLimitedError);
  });

  it('perSecond 0 turns the limit off', () => {
    const limiter = new RateLimiter({ perSecond: 0, burst: 1 }, () => 0);
    for (let i = 0; i < 100; i++) limiter.take('k');
  });
});
