import type { Queryable } from '../db/index.js';

/** One token wanted from the organization's bucket for one key value: `limit` tokens per `perMs`, refilled continuously. */
export interface TokenTake {
  bucket: string;
  key: string;
  limit: number;
  perMs: number;
}

/** What a take found: every bucket gave its token, or the ms until every one could; `missing` when some bucket has no row yet. */
export type TakeResult = { taken: true } | { taken: false; waitMs: number } | { taken: false; missing: true };

/**
 * Take one token from each bucket, all or none, in one statement. The rows
 * are locked in (bucket, key) order, so two takers of overlapping buckets
 * queue behind each other instead of deadlocking; a taker that waited
 * computes from the row as the other left it (READ COMMITTED re-reads a
 * locked row's newest version), so concurrent takers never overdraw.
 * Refill: tokens + elapsed × limit / perMs, capped at limit (a bucket's
 * burst is its limit). `updated_at` never moves backwards, so time a taker
 * spent waiting for the lock is not refilled twice.
 *
 * A bucket seen for the first time has no row; the statement then changes
 * nothing and reports it missing (createBuckets, then take again), so a
 * steady take is one statement.
 */
export async function takeTokens(db: Queryable, organizationId: string, takes: readonly TokenTake[]): Promise<TakeResult> {
  const { rows } = await db.query<{ found: number; ok: boolean; wait_ms: number | null }>(
    `WITH req AS (
       SELECT * FROM unnest($2::text[], $3::text[], $4::float8[], $5::float8[]) AS r(bucket, key, lim, per_ms)
     ),
     cur AS (
       SELECT b.bucket, b.key, r.lim, r.per_ms, b.updated_at,
              least(r.lim, b.tokens + greatest(0, extract(epoch FROM now() - b.updated_at) * 1000) * r.lim / r.per_ms) AS avail
         FROM stepwise.rate_limit_buckets b
         JOIN req r ON r.bucket = b.bucket AND r.key = b.key
        WHERE b.organization_id = $1
        ORDER BY b.bucket, b.key
        FOR UPDATE OF b
     ),
     verdict AS (
       SELECT count(*)::int AS found, coalesce(bool_and(avail >= 1), false) AS ok,
              max(CASE WHEN avail < 1 THEN (1 - avail) * per_ms / lim END) AS wait_ms
         FROM cur
     ),
     taken AS (
       UPDATE stepwise.rate_limit_buckets b
          SET tokens = c.avail - 1, updated_at = greatest(c.updated_at, now())
         FROM cur c, verdict v
        WHERE v.ok AND v.found = $6 AND b.organization_id = $1 AND b.bucket = c.bucket AND b.key = c.key
       RETURNING 1
     )
     SELECT found, ok, wait_ms FROM verdict`,
    [
      organizationId,
      takes.map((t) => t.bucket),
      takes.map((t) => t.key),
      takes.map((t) => t.limit),
      takes.map((t) => t.perMs),
      takes.length,
    ],
  );
  const v = rows[0]!;
  if (v.found < takes.length) return { taken: false, missing: true };
  if (v.ok) return { taken: true };
  return { taken: false, waitMs: Math.max(1, Math.ceil(v.wait_ms ?? 1)) };
}

/**
 * Create the rows of buckets seen for the first time, full (a new key may
 * burst to its limit). A concurrent creator's row wins; nothing is
 * overwritten.
 */
export async function createBuckets(db: Queryable, organizationId: string, takes: readonly TokenTake[]): Promise<void> {
  await db.query(
    `INSERT INTO stepwise.rate_limit_buckets (organization_id, bucket, key, tokens, updated_at)
     SELECT $1, r.bucket, r.key, r.lim, now()
       FROM unnest($2::text[], $3::text[], $4::float8[]) AS r(bucket, key, lim)
     ON CONFLICT (organization_id, bucket, key) DO NOTHING`,
    [organizationId, takes.map((t) => t.bucket), takes.map((t) => t.key), takes.map((t) => t.limit)],
  );
}

/**
 * Hold a bucket empty until `untilMs` (epoch ms): its tokens are set so the
 * continuous refill (tokens + elapsed × limit / perMs) reaches 1 exactly
 * then, i.e. 1 − (until − now) × limit / perMs, negative for any hold longer
 * than one token's refill. Takers meanwhile get a wait that ends at `until`.
 * A hold never shortens one already in place (the lower of the two stays),
 * and a bucket seen for the first time is created held.
 */
export async function holdBucket(db: Queryable, organizationId: string, take: TokenTake, untilMs: number): Promise<void> {
  await db.query(
    `WITH held AS (
       SELECT 1 - greatest(0, extract(epoch FROM to_timestamp($6::float8 / 1000) - now()) * 1000) * $4::float8 / $5::float8 AS tokens
     )
     INSERT INTO stepwise.rate_limit_buckets AS b (organization_id, bucket, key, tokens, updated_at)
     SELECT $1, $2, $3, least($4::float8, held.tokens), now() FROM held
     ON CONFLICT (organization_id, bucket, key) DO UPDATE
        SET tokens = least(
              least($4::float8, b.tokens + greatest(0, extract(epoch FROM now() - b.updated_at) * 1000) * $4::float8 / $5::float8),
              excluded.tokens),
            updated_at = greatest(b.updated_at, now())`,
    [organizationId, take.bucket, take.key, take.limit, take.perMs, untilMs],
  );
}
