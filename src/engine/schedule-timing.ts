import { Cron } from 'croner';
import { ValidationError } from '../errors/index.js';
import type { MisfirePolicy } from '../store/index.js';

/**
 * Pure schedule arithmetic: parsing cron expressions in a time zone, the next
 * fire time, and what to do with a schedule that is due. No database, no
 * clock (the caller passes `now`), so all of it is unit-tested.
 *
 * DST is croner's: a fixed-time expression (`30 2 * * *`) whose time falls in
 * a spring-forward gap fires once at the first valid time after it (03:00),
 * and on fall-back fires once on the first occurrence; interval expressions
 * (`*\/30 * * * *`) skip the gap and fire on both occurrences.
 */

/** Most on-time firings of one schedule handled in one tick; the rest wait for the next tick. */
export const MAX_FIRES_PER_TICK = 100;

export interface CronSpec {
  cron: string;
  timezone: string;
}

// Five fields (minute precision) or a nickname such as @daily. Seconds-level
// schedules are refused on purpose: each firing is a durable job, and the
// scheduler ticks about once a second.
const FIVE_FIELDS = /^(@[a-z]+|\S+(\s+\S+){4})$/i;

/** Throw a ValidationError naming `path` unless `timezone` is an IANA time zone this runtime knows. */
export function validateTimezone(timezone: string, path = '/timezone'): void {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: timezone });
  } catch {
    throw new ValidationError(`${path} "${timezone}" is not a known IANA time zone (e.g. "UTC", "America/New_York")`, { path });
  }
}

/**
 * Parse and validate a cron expression in a time zone. Errors name the field:
 * `paths.cron` for the expression, `paths.timezone` for the zone.
 */
export function compileCron(spec: CronSpec, paths: { cron: string; timezone: string } = { cron: '/cron', timezone: '/timezone' }): Cron {
  validateTimezone(spec.timezone, paths.timezone);
  const expr = spec.cron.trim();
  if (!FIVE_FIELDS.test(expr)) {
    throw new ValidationError(`${paths.cron} must have five fields (minute hour day-of-month month day-of-week) or be a @nickname`, {
      path: paths.cron,
    });
  }
  let cron: Cron;
  try {
    cron = new Cron(expr, { timezone: spec.timezone, paused: true, mode: '5-part' });
  } catch (err) {
    const reason = err instanceof Error ? err.message.replace(/^CronPattern:\s*/, '') : String(err);
    throw new ValidationError(`${paths.cron} is not a valid cron expression: ${reason}`, { path: paths.cron });
  }
  // "0 0 30 2 *" parses but never fires; a schedule that can never run is a mistake.
  if (cron.getPattern() === undefined || cron.nextRun(new Date(0)) === null) {
    throw new ValidationError(`${paths.cron} never fires`, { path: paths.cron });
  }
  return cron;
}

/** The first fire time strictly after `after`, or null if there is none. */
export function nextFireTime(spec: CronSpec | Cron, after: Date): Date | null {
  const cron = spec instanceof Cron ? spec : compileCron(spec);
  return cron.nextRun(after);
}

/** Idempotency key of one firing: at most one job per (schedule, fire time), whatever process enqueues it. */
export function firingKey(scheduleId: string, fireAt: Date): string {
  return `schedule:${scheduleId}:${fireAt.toISOString()}`;
}

export interface FiringPlan {
  /** Fire times to enqueue a run for, oldest first (each becomes one idempotent run). */
  fires: Date[];
  /** The next fire time not handled by this plan (may still be ≤ now when capped). */
  nextFireAt: Date | null;
  /** True when firings older than the grace period were found (a misfire after downtime). */
  misfired: boolean;
  /** The latest of the missed fire times, when misfired. */
  latestMissed: Date | null;
}

/**
 * What to do with a schedule whose next fire time `dueAt` has come.
 *
 * A fire time no older than `graceMs` is on time and fires (a tick that is a
 * little late, or a process that restarted quickly, loses nothing). Older ones
 * were missed during downtime: SKIP drops them all; RUN_ONCE fires exactly
 * once for the whole missed period, at its latest missed time. Either way the
 * missed period is jumped over with one backwards search instead of walking
 * it (a minutely schedule down for a year has 525,600 missed times).
 */
export function planFirings(
  cron: Cron,
  dueAt: Date,
  now: Date,
  policy: MisfirePolicy,
  graceMs: number,
  maxFires: number = MAX_FIRES_PER_TICK,
): FiringPlan {
  const fires: Date[] = [];
  const boundary = new Date(now.getTime() - graceMs);
  let next: Date | null = dueAt;
  let latestMissed: Date | null = null;
  if (dueAt < boundary) {
    // previousRuns is strictly before the reference, so this is the latest t with t < now − grace.
    const prior = cron.previousRuns(1, boundary)[0];
    latestMissed = prior && prior >= dueAt ? prior : dueAt;
    if (policy === 'RUN_ONCE') fires.push(latestMissed);
    next = cron.nextRun(latestMissed);
  }
  while (next !== null && next <= now && fires.length < maxFires) {
    fires.push(next);
    next = cron.nextRun(next);
  }
  return { fires, nextFireAt: next, misfired: latestMissed !== null, latestMissed };
}
