import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/errors/index.js';
import { compileCron, firingKey, nextFireTime, planFirings, validateTimezone } from '../../src/engine/schedule-timing.js';

const at = (iso: string) => new Date(iso);
const iso = (d: Date | null) => d?.toISOString() ?? null;

function validationPath(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    return (err as ValidationError).details.path as string;
  }
  throw new Error('expected a ValidationError');
}

describe('cron and time zone validation', () => {
  it('accepts five-field expressions and @nicknames in IANA zones, case-insensitively', () => {
    expect(() => compileCron({ cron: '30 2 * * *', timezone: 'America/New_York' })).not.toThrow();
    expect(() => compileCron({ cron: '*/15 9-17 * * MON-FRI', timezone: 'UTC' })).not.toThrow();
    expect(() => compileCron({ cron: '@daily', timezone: 'Europe/Berlin' })).not.toThrow();
    expect(() => validateTimezone('america/new_york')).not.toThrow();
  });

  it('names the field: a bad expression is /cron, a bad zone is /timezone', () => {
    expect(validationPath(() => compileCron({ cron: '61 * * * *', timezone: 'UTC' }))).toBe('/cron');
    expect(validationPath(() => compileCron({ cron: 'every day', timezone: 'UTC' }))).toBe('/cron');
    // Seconds-level (six fields) and one-off dates are not schedules here.
    expect(validationPath(() => compileCron({ cron: '* * * * * *', timezone: 'UTC' }))).toBe('/cron');
    expect(validationPath(() => compileCron({ cron: '2030-01-01T00:00:00', timezone: 'UTC' }))).toBe('/cron');
    // Parses, but February 30th never comes.
    expect(validationPath(() => compileCron({ cron: '0 0 30 2 *', timezone: 'UTC' }))).toBe('/cron');
    expect(validationPath(() => compileCron({ cron: '0 0 * * *', timezone: 'Mars/Olympus_Mons' }))).toBe('/timezone');
    expect(validationPath(() => compileCron({ cron: '0 0 * * *', timezone: '+05:00' }))).toBe('/timezone');
    expect(validationPath(() => compileCron({ cron: '0 0 * * *', timezone: 'Nope' }, { cron: '--cron', timezone: '--timezone' }))).toBe('--timezone');
  });
});

describe('next fire times', () => {
  it('follows the expression in its own time zone', () => {
    const spec = { cron: '0 9 * * *', timezone: 'Asia/Tokyo' };
    expect(iso(nextFireTime(spec, at('2030-01-01T00:00:00Z')))).toBe('2030-01-02T00:00:00.000Z');
    // Strictly after: a fire time is never returned for itself.
    expect(iso(nextFireTime(spec, at('2030-01-02T00:00:00Z')))).toBe('2030-01-03T00:00:00.000Z');
  });

  it('spring forward (America/New_York, 2027-03-14): 02:30 does not exist and fires once, at 03:00 local', () => {
    const cron = compileCron({ cron: '30 2 * * *', timezone: 'America/New_York' });
    const times: string[] = [];
    let t: Date | null = at('2027-03-13T00:00:00Z');
    for (let i = 0; i < 3; i++) times.push(iso((t = cron.nextRun(t!)))!);
    // 02:30 EST = 07:30Z; 03:00 EDT = 07:00Z; 02:30 EDT = 06:30Z.
    expect(times).toEqual(['2027-03-13T07:30:00.000Z', '2027-03-14T07:00:00.000Z', '2027-03-15T06:30:00.000Z']);
  });

  it('fall back (America/New_York, 2027-11-07): 01:30 happens twice and fires once', () => {
    const cron = compileCron({ cron: '30 1 * * *', timezone: 'America/New_York' });
    const times: string[] = [];
    let t: Date | null = at('2027-11-06T00:00:00Z');
    for (let i = 0; i < 3; i++) times.push(iso((t = cron.nextRun(t!)))!);
    // 01:30 EDT = 05:30Z (the first 01:30); the second (01:30 EST = 06:30Z) does not fire.
    expect(times).toEqual(['2027-11-06T05:30:00.000Z', '2027-11-07T05:30:00.000Z', '2027-11-08T06:30:00.000Z']);
  });

  it('an interval expression keeps its interval through fall back (both 01:30s fire)', () => {
    const cron = compileCron({ cron: '*/30 * * * *', timezone: 'America/New_York' });
    expect(cron.nextRuns(4, at('2027-11-07T05:00:00Z')).map(iso)).toEqual([
      '2027-11-07T05:30:00.000Z',
      '2027-11-07T06:00:00.000Z',
      '2027-11-07T06:30:00.000Z',
      '2027-11-07T07:00:00.000Z',
    ]);
  });
});

describe('planFirings: on time, late within grace, misfire', () => {
  const hourly = compileCron({ cron: '0 * * * *', timezone: 'UTC' });
  const minutely = compileCron({ cron: '* * * * *', timezone: 'UTC' });
  const grace = 60_000;

  it('fires a due time and moves to the next one', () => {
    const plan = planFirings(hourly, at('2030-01-01T10:00:00Z'), at('2030-01-01T10:00:00.400Z'), 'SKIP', grace);
    expect(plan.fires.map(iso)).toEqual(['2030-01-01T10:00:00.000Z']);
    expect(iso(plan.nextFireAt)).toBe('2030-01-01T11:00:00.000Z');
    expect(plan.misfired).toBe(false);
  });

  it('a tick up to the grace period late still fires every time it covers, whatever the policy', () => {
    for (const policy of ['SKIP', 'RUN_ONCE'] as const) {
      const plan = planFirings(minutely, at('2030-01-01T10:00:00Z'), at('2030-01-01T10:01:00Z'), policy, grace);
      expect(plan.fires.map(iso)).toEqual(['2030-01-01T10:00:00.000Z', '2030-01-01T10:01:00.000Z']);
      expect(iso(plan.nextFireAt)).toBe('2030-01-01T10:02:00.000Z');
      expect(plan.misfired).toBe(false);
    }
  });

  it('SKIP after downtime: no run for the missed period, next fire time in the future', () => {
    const plan = planFirings(hourly, at('2030-01-01T01:00:00Z'), at('2030-01-01T05:30:00Z'), 'SKIP', grace);
    expect(plan.fires).toEqual([]);
    expect(plan.misfired).toBe(true);
    expect(iso(plan.latestMissed)).toBe('2030-01-01T05:00:00.000Z');
    expect(iso(plan.nextFireAt)).toBe('2030-01-01T06:00:00.000Z');
  });

  it('RUN_ONCE after downtime: exactly one run, for the latest missed time', () => {
    const plan = planFirings(hourly, at('2030-01-01T01:00:00Z'), at('2030-01-01T05:30:00Z'), 'RUN_ONCE', grace);
    expect(plan.fires.map(iso)).toEqual(['2030-01-01T05:00:00.000Z']);
    expect(iso(plan.nextFireAt)).toBe('2030-01-01T06:00:00.000Z');
  });

  it('a missed period followed by times inside the grace period: those still fire', () => {
    // Down from 10:00 to 10:10:30; 10:09 is older than a minute (missed), 10:10 is not.
    const skip = planFirings(minutely, at('2030-01-01T10:00:00Z'), at('2030-01-01T10:10:30Z'), 'SKIP', grace);
    expect(skip.fires.map(iso)).toEqual(['2030-01-01T10:10:00.000Z']);
    expect(iso(skip.latestMissed)).toBe('2030-01-01T10:09:00.000Z');
    const once = planFirings(minutely, at('2030-01-01T10:00:00Z'), at('2030-01-01T10:10:30Z'), 'RUN_ONCE', grace);
    expect(once.fires.map(iso)).toEqual(['2030-01-01T10:09:00.000Z', '2030-01-01T10:10:00.000Z']);
    expect(iso(once.nextFireAt)).toBe('2030-01-01T10:11:00.000Z');
  });

  it('a year of downtime on a minutely schedule is jumped over, not walked', () => {
    const plan = planFirings(minutely, at('2030-01-01T00:00:00Z'), at('2031-01-01T00:00:30Z'), 'RUN_ONCE', grace);
    expect(plan.fires.map(iso)).toEqual(['2030-12-31T23:59:00.000Z', '2031-01-01T00:00:00.000Z']);
    expect(iso(plan.nextFireAt)).toBe('2031-01-01T00:01:00.000Z');
  });

  it('misfire across spring forward: the skipped 02:30 is the 03:00 firing', () => {
    const cron = compileCron({ cron: '30 2 * * *', timezone: 'America/New_York' });
    const plan = planFirings(cron, at('2027-03-13T07:30:00Z'), at('2027-03-14T12:00:00Z'), 'RUN_ONCE', grace);
    expect(plan.fires.map(iso)).toEqual(['2027-03-14T07:00:00.000Z']);
    expect(iso(plan.nextFireAt)).toBe('2027-03-15T06:30:00.000Z');
  });

  it('caps the firings of one tick; the rest stay due for the next', () => {
    const plan = planFirings(minutely, at('2030-01-01T10:00:00Z'), at('2030-01-01T10:05:00Z'), 'SKIP', 10 * 60_000, 3);
    expect(plan.fires.map(iso)).toEqual(['2030-01-01T10:00:00.000Z', '2030-01-01T10:01:00.000Z', '2030-01-01T10:02:00.000Z']);
    expect(iso(plan.nextFireAt)).toBe('2030-01-01T10:03:00.000Z');
  });

  it('a firing is keyed by schedule and exact fire time', () => {
    expect(firingKey('0190a0b0-0000-7000-8000-000000000001', at('2027-03-14T07:00:00Z'))).toBe(
      'schedule:0190a0b0-0000-7000-8000-000000000001:2027-03-14T07:00:00.000Z',
    );
  });
});
