import { bucketValue, durationBucket, HISTOGRAM_BASE_MS, HISTOGRAM_GROWTH } from '../store/histogram-buckets.js';

/**
 * The mergeable duration histogram, TypeScript side: parsing, merging and
 * percentiles over counts per bucket. The buckets themselves (bounds, the
 * duration → bucket mapping, the value a bucket stands for) are defined in
 * store/histogram-buckets.ts, where the store that writes histograms can use
 * them too; they are re-exported here for readers of this module.
 * Histograms are stored sparse: {"bucket": count}.
 */
export {
  HISTOGRAM_BASE_MS,
  HISTOGRAM_GROWTH,
  HISTOGRAM_BUCKETS,
  HISTOGRAM_MAX_RELATIVE_ERROR,
  durationBucket,
  bucketValue,
} from '../store/histogram-buckets.js';

export type Histogram = Map<number, number>;

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

/** One bar of a drawn duration histogram: runs whose duration fell in [fromMs, toMs). */
export interface HistogramBin {
  fromMs: number;
  toMs: number;
  count: number;
}

/**
 * Raw 1.1× buckets grouped `perBucket` at a time, aligned on bucket index,
 * non-empty bins only, shortest first. Seven buckets make a bin ≈ 1.95×
 * wide: a duration histogram of a few dozen bars across ms to hours, which
 * is what a chart can show; the 300 raw buckets would be bars a few pixels
 * wide. Bucket 0 (below 0.01 ms) is its own bin.
 */
export function histogramBins(h: Histogram, perBucket = 7): HistogramBin[] {
  const bins = new Map<number, number>();
  for (const [bucket, count] of h) {
    if (count <= 0) continue;
    const bin = bucket <= 0 ? -1 : Math.floor((bucket - 1) / perBucket);
    bins.set(bin, (bins.get(bin) ?? 0) + count);
  }
  const lower = (bucket: number) => HISTOGRAM_BASE_MS * HISTOGRAM_GROWTH ** (bucket - 1);
  return [...bins.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([bin, count]) =>
      bin < 0
        ? { fromMs: 0, toMs: HISTOGRAM_BASE_MS, count }
        : { fromMs: round3(lower(1 + bin * perBucket)), toMs: round3(lower(1 + (bin + 1) * perBucket)), count },
    );
}

const round3 = (v: number): number => Math.round(v * 1000) / 1000;
