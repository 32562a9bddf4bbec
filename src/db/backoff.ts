/** Reconnection backoff: the first retry within 100 ms, doubling to a 30 s ceiling. */
export const RECONNECT_BACKOFF = { initialMs: 100, maxMs: 30_000 } as const;

/**
 * Delay before reconnection attempt `attempt` (0 for the first retry after
 * a drop): exponential with "full jitter", uniform in [0, min(max, initial
 * × 2^attempt)). When a database restart drops every worker's listening
 * connection at once, full jitter spreads their reconnections over the
 * whole window instead of sending them back in one wave.
 */
export function reconnectDelayMs(
  attempt: number,
  backoff: { initialMs: number; maxMs: number } = RECONNECT_BACKOFF,
  random: () => number = Math.random,
): number {
  // 2^attempt overflows to Infinity after ~1,000 attempts; min() still caps it.
  const ceiling = Math.min(backoff.maxMs, backoff.initialMs * 2 ** Math.max(0, attempt));
  return Math.floor(random() * ceiling);
}
