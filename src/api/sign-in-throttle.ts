import { TooManyAttemptsError } from '../errors/index.js';

/** At most `attempts` in any `windowMs`. */
export interface AttemptLimit {
  attempts: number;
  windowMs: number;
}

/**
 * Sign-in attempts per email and per client address: 10 and 30 in any five
 * minutes. Every attempt costs a scrypt (~90 ms of a core), so the address
 * limit also bounds how much hashing one client can make the server do; the
 * email limit stops guessing one account's password from many addresses.
 * Behind a proxy the app does not trust, every client shares the proxy's
 * address, so 30 is per proxy: configure trustProxy there.
 */
export const SIGN_IN_LIMITS: Readonly<{ perEmail: AttemptLimit; perIp: AttemptLimit }> = Object.freeze({
  perEmail: { attempts: 10, windowMs: 5 * 60_000 },
  perIp: { attempts: 30, windowMs: 5 * 60_000 },
});

/** Keys kept before old ones are swept; beyond MAX_KEYS the oldest-inserted are dropped (a spray of emails cannot grow memory without bound). */
const SWEEP_AT = 10_000;
const MAX_KEYS = 50_000;

/**
 * A sliding-window log per key, in this process's memory (like the API's
 * rate limiter: N processes allow N × the attempts, which needs no shared
 * state). An attempt is counted when it starts — so concurrent attempts
 * cannot all slip under the limit — and given back when it succeeds, so
 * only failures accumulate.
 */
export class AttemptLimiter {
  private readonly log = new Map<string, number[]>();

  constructor(
    private readonly limit: AttemptLimit,
    private readonly scope: 'email' | 'ip',
    private readonly now: () => number = () => Date.now(),
  ) {}

  /** Count an attempt for `key`, or throw TooManyAttemptsError (429) with the seconds until the oldest leaves the window. */
  take(key: string): void {
    const t = this.now();
    const since = t - this.limit.windowMs;
    const times = (this.log.get(key) ?? []).filter((x) => x > since);
    if (times.length >= this.limit.attempts) {
      this.log.set(key, times);
      const retryAfter = Math.max(1, Math.ceil((times[0]! + this.limit.windowMs - t) / 1000));
      throw new TooManyAttemptsError(retryAfter, { scope: this.scope, attempts: this.limit.attempts, windowSeconds: this.limit.windowMs / 1000 });
    }
    times.push(t);
    this.log.delete(key); // re-insert: Map order is then least recently attempted first
    this.log.set(key, times);
    if (this.log.size > SWEEP_AT) this.sweep(since);
  }

  /** Give back the newest attempt of `key` (it succeeded). */
  refund(key: string): void {
    const times = this.log.get(key);
    if (!times) return;
    times.pop();
    if (times.length === 0) this.log.delete(key);
  }

  private sweep(since: number): void {
    for (const [key, times] of this.log) {
      if (times[times.length - 1]! <= since) this.log.delete(key);
    }
    for (const key of this.log.keys()) {
      if (this.log.size <= MAX_KEYS) break;
      this.log.delete(key);
    }
  }
}
