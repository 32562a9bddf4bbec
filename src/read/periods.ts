import type { AggregatePeriod } from '../store/aggregates.js';
import { utcMonthStart } from '../util/clock.js';

/** A half-open range [from, to) of aggregate rows of one period. */
export interface PeriodSegment {
  period: AggregatePeriod;
  from: Date;
  to: Date;
}

const HOUR_MS = 3_600_000;

function floorHour(d: Date): Date {
  return new Date(Math.floor(d.getTime() / HOUR_MS) * HOUR_MS);
}
function ceilHour(d: Date): Date {
  return new Date(Math.ceil(d.getTime() / HOUR_MS) * HOUR_MS);
}
function ceilDay(d: Date): Date {
  const f = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()));
  return f.getTime() === d.getTime() ? f : new Date(f.getTime() + 24 * HOUR_MS);
}
function floorDay(d: Date): Date {
  return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()));
}
function ceilMonth(d: Date): Date {
  const f = utcMonthStart(d);
  return f.getTime() === d.getTime() ? f : utcMonthStart(d, 1);
}

/**
 * Cover [from, to) — widened to whole hours, the aggregates' resolution —
 * with the fewest aggregate rows: whole months in the middle, whole days
 * beside them, hours at the edges. Every hour of the widened range is in
 * exactly one segment (UTC periods, as the triggers truncate in UTC).
 */
export function coverRange(from: Date, to: Date): PeriodSegment[] {
  const start = floorHour(from);
  const end = ceilHour(to);
  if (end <= start) return [];
  const out: PeriodSegment[] = [];
  const push = (period: AggregatePeriod, a: Date, b: Date) => {
    if (a < b) out.push({ period, from: a, to: b });
  };
  const dayStart = ceilDay(start);
  const dayEnd = floorDay(end);
  if (dayStart >= dayEnd) {
    push('HOUR', start, end);
    return out;
  }
  push('HOUR', start, dayStart);
  const monthStart = ceilMonth(dayStart);
  const monthEnd = utcMonthStart(dayEnd);
  if (monthStart < monthEnd) {
    push('DAY', dayStart, monthStart);
    push('MONTH', monthStart, monthEnd);
    push('DAY', monthEnd, dayEnd);
  } else {
    push('DAY', dayStart, dayEnd);
  }
  push('HOUR', dayEnd, end);
  return out;
}

/** Segments as three parallel query parameters (periods, starts, ends) for `unnest($n::text[], $m::timestamptz[], …)`. */
export function segmentParams(segments: PeriodSegment[]): [string[], string[], string[]] {
  return [segments.map((s) => s.period), segments.map((s) => s.from.toISOString()), segments.map((s) => s.to.toISOString())];
}
