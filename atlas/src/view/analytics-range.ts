/**
 * The Analytics page's time range: presets (last 24 h … 90 d) or a custom
 * from/to, kept in the URL (`?range=7d`, `?range=custom&from=…&to=…`) so a
 * view can be bookmarked and shared, plus the series granularity a range
 * gets and the duration bands the histogram is drawn from. DOM-free.
 */

export const RANGE_PRESETS = [
  { id: '24h', label: 'Last 24 hours', ms: 24 * 3_600_000 },
  { id: '7d', label: 'Last 7 days', ms: 7 * 86_400_000 },
  { id: '30d', label: 'Last 30 days', ms: 30 * 86_400_000 },
  { id: '90d', label: 'Last 90 days', ms: 90 * 86_400_000 },
] as const;

export type RangePresetId = (typeof RANGE_PRESETS)[number]['id'];
export type RangeId = RangePresetId | 'custom';

export const DEFAULT_RANGE: RangePresetId = '7d';
/** The server's limits (src/api/routes/analytics.ts): any range ≤ 400 days, hourly series ≤ 31 days. */
export const MAX_RANGE_DAYS = 400;
export const MAX_HOURLY_DAYS = 31;
/** Hourly buckets up to this span; beyond it a day per bucket (7 days = 168 points, enough to read). */
export const HOURLY_UP_TO_MS = 7 * 86_400_000;

export interface ResolvedRange {
  id: RangeId;
  from: Date;
  to: Date;
  /** For a custom range: the text as in the URL (what the form shows). */
  fromText: string;
  toText: string;
  /** A custom range that cannot be asked for (bad date, from ≥ to, too long); the page shows it and asks nothing. */
  error: string | null;
}

function isPreset(id: string | null): id is RangePresetId {
  return RANGE_PRESETS.some((p) => p.id === id);
}

/**
 * `YYYY-MM-DD` (a whole UTC day) or `YYYY-MM-DDTHH:MM` (UTC) or a full
 * ISO timestamp; null when it is none of these.
 */
export function parseRangeDate(text: string): Date | null {
  const t = text.trim();
  let iso: string;
  if (/^\d{4}-\d{2}-\d{2}$/.test(t)) iso = `${t}T00:00:00Z`;
  else if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}$/.test(t)) iso = `${t}:00Z`;
  else if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.test(t)) iso = t;
  else return null;
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return null;
  // Date rolls 2026-02-30 over to March 2: a day that does not exist is not a date.
  const [y, mo, day] = t.slice(0, 10).split('-').map(Number) as [number, number, number];
  const calendar = new Date(Date.UTC(y, mo - 1, day));
  if (calendar.getUTCMonth() !== mo - 1 || calendar.getUTCDate() !== day) return null;
  return d;
}

/** The range the URL asks for, resolved against `now`; unknown or missing `range` → the default preset. */
export function rangeFromQuery(query: URLSearchParams, now: Date): ResolvedRange {
  const id = query.get('range');
  if (id === 'custom') {
    const fromText = query.get('from') ?? '';
    const toText = query.get('to') ?? '';
    const from = parseRangeDate(fromText);
    // A bare end date means "through that day": the server's `to` is exclusive.
    let to = toText === '' ? now : parseRangeDate(toText);
    if (to && /^\d{4}-\d{2}-\d{2}$/.test(toText.trim())) to = new Date(to.getTime() + 86_400_000);
    let error: string | null = null;
    if (!from) error = 'From: enter a date as YYYY-MM-DD or YYYY-MM-DDTHH:MM (UTC).';
    else if (!to) error = 'To: enter a date as YYYY-MM-DD or YYYY-MM-DDTHH:MM (UTC), or leave it empty for now.';
    else if (from >= to) error = 'From must be before To.';
    else if (to.getTime() - from.getTime() > MAX_RANGE_DAYS * 86_400_000) error = `The range is over the limit of ${MAX_RANGE_DAYS} days.`;
    return { id: 'custom', from: from ?? now, to: to ?? now, fromText, toText, error };
  }
  const preset = RANGE_PRESETS.find((p) => p.id === (isPreset(id) ? id : DEFAULT_RANGE))!;
  return { id: preset.id, from: new Date(now.getTime() - preset.ms), to: now, fromText: '', toText: '', error: null };
}

/**
 * Write a range into a copy of the page's query (other parameters, like the
 * selected workflow, are kept). The default preset is left out of the URL.
 */
export function rangeToQuery(base: URLSearchParams, range: { id: RangeId; from?: string; to?: string }): URLSearchParams {
  const q = new URLSearchParams(base);
  q.delete('range');
  q.delete('from');
  q.delete('to');
  if (range.id === 'custom') {
    q.set('range', 'custom');
    if (range.from) q.set('from', range.from);
    if (range.to) q.set('to', range.to);
  } else if (range.id !== DEFAULT_RANGE) q.set('range', range.id);
  return q;
}

/** Hourly points for short ranges (≤ 7 days), daily otherwise; never hourly past the server's 31-day limit. */
export function granularityFor(from: Date, to: Date): 'hour' | 'day' {
  const span = to.getTime() - from.getTime();
  return span <= HOURLY_UP_TO_MS && span <= MAX_HOURLY_DAYS * 86_400_000 ? 'hour' : 'day';
}

/**
 * Every bucket start of [from, to) at the granularity, in UTC (the server's
 * aggregates are hourly/daily in UTC). The chart plots every bucket, so an
 * hour with no runs is a zero, not a line drawn across a gap.
 */
export function bucketStarts(from: Date, to: Date, granularity: 'hour' | 'day'): number[] {
  const step = granularity === 'hour' ? 3_600_000 : 86_400_000;
  const first = Math.floor(from.getTime() / step) * step;
  const out: number[] = [];
  for (let t = first; t < to.getTime() && out.length < 10_000; t += step) out.push(t);
  return out;
}

/**
 * Spread points the server sent (only buckets with runs) over every bucket
 * start: `value(point)` where there is one, `empty` elsewhere.
 */
export function fillBuckets<P extends { periodStart: string }>(
  starts: readonly number[],
  points: readonly P[],
  value: (p: P) => number | null,
  empty: number | null,
): (number | null)[] {
  const at = new Map<number, P>();
  for (const p of points) at.set(new Date(p.periodStart).getTime(), p);
  return starts.map((t) => {
    const p = at.get(t);
    return p ? value(p) : empty;
  });
}
