/**
 * The buckets of the mergeable duration histogram: where a duration falls
 * (written by the store when it adds step results) and what a bucket stands
 * for (read back by percentile queries). Mirrors the SQL function
 * stepwise.duration_bucket (migration 0006); a test checks both give the same
 * bucket for the same value.
 *
 * Bucket 0 holds durations below 0.01 ms; bucket k ≥ 1 holds
 * [0.01·1.1^(k-1), 0.01·1.1^k) ms. A bucket is read back as its geometric
 * middle, so a percentile read from the histogram is within
 * sqrt(1.1) − 1 ≈ 4.88 % of the nearest-rank value it stands for.
 */
export const HISTOGRAM_BASE_MS = 0.01;
export const HISTOGRAM_GROWTH = 1.1;
export const HISTOGRAM_BUCKETS = 300;
/** Largest relative error of a value read back from its bucket. */
export const HISTOGRAM_MAX_RELATIVE_ERROR = Math.sqrt(HISTOGRAM_GROWTH) - 1;

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
