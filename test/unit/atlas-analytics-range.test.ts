import { describe, expect, it } from 'vitest';
import {
  bucketStarts,
  fillBuckets,
  granularityFor,
  parseRangeDate,
  rangeFromQuery,
  rangeToQuery,
} from '../../atlas/src/view/analytics-range.js';

const now = new Date('2026-12-06T14:30:00Z');
const q = (s: string) => new URLSearchParams(s);

describe('atlas analytics range', () => {
  it('resolves presets against now, and falls back to 7 days', () => {
    const r = rangeFromQuery(q('range=24h'), now);
    expect(r).toMatchObject({ id: '24h', error: null });
    expect(r.from.toISOString()).toBe('2026-12-05T14:30:00.000Z');
    expect(r.to).toEqual(now);
    expect(rangeFromQuery(q(''), now).id).toBe('7d');
    expect(rangeFromQuery(q('range=bogus'), now).id).toBe('7d');
    expect(rangeFromQuery(q('range=90d'), now).from.toISOString()).toBe('2026-09-07T14:30:00.000Z');
  });

  it('reads a custom range; a bare end date includes that whole day; an empty end is now', () => {
    const r = rangeFromQuery(q('range=custom&from=2026-11-01&to=2026-11-30'), now);
    expect(r.error).toBeNull();
    expect(r.from.toISOString()).toBe('2026-11-01T00:00:00.000Z');
    expect(r.to.toISOString()).toBe('2026-12-01T00:00:00.000Z');
    expect(r).toMatchObject({ fromText: '2026-11-01', toText: '2026-11-30' });
    expect(rangeFromQuery(q('range=custom&from=2026-12-06T08:00'), now).to).toEqual(now);
    expect(rangeFromQuery(q('range=custom&from=2026-12-06T08:00'), now).from.toISOString()).toBe('2026-12-06T08:00:00.000Z');
  });

  it('says what is wrong with a custom range instead of asking the server', () => {
    expect(rangeFromQuery(q('range=custom&from=yesterday'), now).error).toMatch(/^From:/);
    expect(rangeFromQuery(q('range=custom&from=2026-11-01&to=31/12'), now).error).toMatch(/^To:/);
    expect(rangeFromQuery(q('range=custom&from=2026-11-02T00:00&to=2026-11-01T00:00'), now).error).toMatch(/before/);
    expect(rangeFromQuery(q('range=custom&from=2024-01-01&to=2026-01-01'), now).error).toMatch(/400 days/);
    expect(parseRangeDate('2026-02-30')).toBeNull();
    expect(parseRangeDate('2026-02-03T04:05:06.789+02:00')?.toISOString()).toBe('2026-02-03T02:05:06.789Z');
  });

  it('writes ranges into the URL, keeping other parameters and leaving the default out', () => {
    expect(rangeToQuery(q('workflowId=w1&range=30d'), { id: '7d' }).toString()).toBe('workflowId=w1');
    expect(rangeToQuery(q('workflowId=w1'), { id: '90d' }).toString()).toBe('workflowId=w1&range=90d');
    const custom = rangeToQuery(q('range=24h'), { id: 'custom', from: '2026-11-01', to: '' });
    expect(custom.toString()).toBe('range=custom&from=2026-11-01');
    // Round trip.
    expect(rangeFromQuery(custom, now)).toMatchObject({ id: 'custom', fromText: '2026-11-01', error: null });
  });

  it('chooses hourly buckets up to 7 days and daily beyond', () => {
    const at = (days: number) => new Date(now.getTime() - days * 86_400_000);
    expect(granularityFor(at(1), now)).toBe('hour');
    expect(granularityFor(at(7), now)).toBe('hour');
    expect(granularityFor(at(7.01), now)).toBe('day');
    expect(granularityFor(at(90), now)).toBe('day');
  });

  it('lists every bucket start in UTC and fills the gaps the server leaves', () => {
    const starts = bucketStarts(new Date('2026-12-06T10:20:00Z'), new Date('2026-12-06T13:00:00Z'), 'hour');
    expect(starts.map((t) => new Date(t).toISOString().slice(11, 16))).toEqual(['10:00', '11:00', '12:00']);
    const days = bucketStarts(new Date('2026-12-01T05:00:00Z'), new Date('2026-12-03T00:00:00Z'), 'day');
    expect(days.map((t) => new Date(t).toISOString().slice(0, 10))).toEqual(['2026-12-01', '2026-12-02']);
    const points = [{ periodStart: '2026-12-06T11:00:00.000Z', total: 4 }];
    expect(fillBuckets(starts, points, (p) => p.total, 0)).toEqual([0, 4, 0]);
    expect(fillBuckets(starts, points, (p) => p.total, null)).toEqual([null, 4, null]);
  });
});
