/**
 * The mergeable duration histogram, TypeScript side. Mirrors the SQL
 * function stepwise.duration_bucket (migration 0006); a test checks both
 * give the same bucket for the same value.
 *
 * Bucket 0 holds durations below 0.01 ms; bucket k ≥ 1 holds
 * [0.01·1.1^(k-1), 0.01·1.1^k) ms. A bucket is read back as its geometric
 * middle, so a percentile read from the histogram is within
 * sqrt(1.1) − 1 ≈ 4.88 % of the nearest-rank value it stands for.
 * Histograms are stored sparse: {"bucket": count}.
 */
export const HISTOGRAM_BASE_MS = 0.01;
export const HISTOGRAM_GROWTH = 1.1;
export const HISTOGRAM_BUCKETS = 300;
/** Largest relative error of a value read back from its bucket. */
export const HISTOGRAM_MAX_RELATIVE_ERROR = Math.sqrt(HISTOGRAM_GROWTH) - 1;

export type Histogram = Map<number, number>;

/** The bucket of a duration in milliseconds (same float operations as the SQL function). */
export function durationBucket(ms: number): number {
  if (ms < HISTOGRAM_BASE_MS) return 0;
  return Math.min(HISTOGRAM_BUCKETS - 1, 1 + Math.floor(Math.log(ms / HISTOGRAM_BASE_MS) / Math.log(HISTOGRAM_GROWTH)));
}

/** The value a bucket stands for: 0 for bucket 0, else the geometric middle of its bounds. */
export function bucketValue(bucket: number): number {
  if (bucket <= 0) return 0;
  return HISTOGRAM_BASE_MS * HISTOGRAM_GROWTH ** (bucket - 1) * Math.sqrt(HISTOGRAM_GROWTH);
}

/** Parse the stored sparse form ({"57": 3}); counts may arrive as numbers or numeric strings. */
export function parseHistogram(stored: unknown): Histogram {
  const out: Histogram = new Map();
  if (stored === null || typeof stored !== 'object') return out;
  for (const [key, value] of Object.entries(stored)) {
    const bucket = Number(key);
    const count = Number(value);
    if (Number.isInteger(bucket) && bucket >= 0 && Number.isFinite(count) && count > 0) out.set(bucket, (out.get(bucket) ?? 0) + count);
  }
  return out;
}

/**
 * Merge stored histograms (a JSON array of the sparse form, as jsonb_agg
 * returns them) into one. Done here rather than in SQL: re-keying every
 * bucket through jsonb_each_text and a hash aggregate cost 150 µs a row in
 * PostgreSQL (550 ms for a year of one workflow's step rows), parsing and
 * adding them here a few µs.
 */
export function mergeStoredHistograms(stored: unknown): Histogram {
  const out: Histogram = new Map();
  if (!Array.isArray(stored)) return out;
  for (const h of stored) {
    if (h === null || typeof h !== 'object') continue;
    for (const [key, value] of Object.entries(h)) {
      const bucket = Number(key);
      const count = Number(value);
      if (Number.isInteger(bucket) && bucket >= 0 && Number.isFinite(count) && count > 0) out.set(bucket, (out.get(bucket) ?? 0) + count);
    }
  }
  return out;
}

/** Add `b` into a new histogram with `a` (histograms are mergeable by summing counts). */
export function mergeHistograms(a: Histogram, b: Histogram): Histogram {
  const out = new Map(a);
  for (const [bucket, count] of b) out.set(bucket, (out.get(bucket) ?? 0) + count);
  return out;
}

/** A histogram of the given values (tests, and anything that has raw durations). */
export function histogramOf(values: Iterable<number>): Histogram {
  const out: Histogram = new Map();
  for (const v of values) {
    const b = durationBucket(v);
    out.set(b, (out.get(b) ?? 0) + 1);
  }
  return out;
}

export function histogramCount(h: Histogram): number {
  let n = 0;
  for (const c of h.values()) n += c;
  return n;
}

/**
 * Nearest-rank percentile (p in [0, 1]): the value of the bucket holding the
 * ceil(p·n)-th smallest duration; null for an empty histogram.
 */
export function histogramPercentile(h: Histogram, p: number): number | null {
  const n = histogramCount(h);
  if (n === 0) return null;
  const rank = Math.max(1, Math.ceil(p * n));
  const buckets = [...h.keys()].sort((x, y) => x - y);
  let seen = 0;
  for (const b of buckets) {
    seen += h.get(b)!;
    if (seen >= rank) return bucketValue(b);
  }
  return bucketValue(buckets[buckets.length - 1]!);
}

/** p50, p95 and p99 rounded to 0.001 ms (null when there is no duration). */
export function histogramPercentiles(h: Histogram): { p50: number | null; p95: number | null; p99: number | null } {
  const round = (v: number | null): number | null => (v === null ? null : Math.round(v * 1000) / 1000);
  return { p50: round(histogramPercentile(h, 0.5)), p95: round(histogramPercentile(h, 0.95)), p99: round(histogramPercentile(h, 0.99)) };
}
