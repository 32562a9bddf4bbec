/** Milliseconds in a day: a UTC day, and the unit of retention periods and date-range limits. */
export const DAY_MS = 86_400_000;

/** The start of d's UTC month, `offsetMonths` months on (negative: back). */
export function utcMonthStart(d: Date, offsetMonths = 0): Date {
  return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + offsetMonths, 1));
}

/**
 * Wall-clock time with sub-millisecond resolution for stream timestamps:
 * steps that take 50 µs would otherwise all share one millisecond and the
 * record could not show how long anything took. `performance.now()` is
 * monotonic but drifts from the wall clock over hours, so it is re-anchored
 * to Date.now() every few seconds.
 */
let anchor = Date.now() - performance.now();
let anchoredAt = performance.now();
const REANCHOR_MS = 5_000;

/** Milliseconds since the epoch, with a fraction. */
export function preciseNow(): number {
  const p = performance.now();
  if (p - anchoredAt > REANCHOR_MS) {
    // Never step backwards: a fresh anchor behind the old one would reorder events.
    anchor = Math.max(anchor, Date.now() - p);
    anchoredAt = p;
  }
  return anchor + p;
}
