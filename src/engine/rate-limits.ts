import { createHash } from 'node:crypto';
import type { Db } from '../db/index.js';
import { createBuckets, holdBucket, takeTokens, type TokenTake } from '../store/index.js';
import type { BucketTake, RateLimitService } from './services.js';

/** Key values longer than this are stored as their hash (the bucket table keeps keys short). */
const MAX_KEY_CHARS = 200;

function storedKey(key: string): string {
  return key.length <= MAX_KEY_CHARS ? key : `sha256:${createHash('sha256').update(key).digest('hex')}`;
}

/**
 * The organization's rate-limit buckets over the database (store/rate-limits.ts):
 * one statement per take once the buckets exist; a bucket seen for the first
 * time is created full and the take repeated.
 */
export function rateLimitService(db: Db): RateLimitService {
  return {
    async take(organizationId: string, takes: readonly BucketTake[]): Promise<number> {
      if (takes.length === 0) return 0;
      const rows: TokenTake[] = takes.map((t) => ({ bucket: t.bucket, key: storedKey(t.key), limit: t.limit, perMs: t.perMs }));
      let result = await takeTokens(db, organizationId, rows);
      if ('missing' in result) {
        await createBuckets(db, organizationId, rows);
        result = await takeTokens(db, organizationId, rows);
      }
      if (result.taken) return 0;
      // Still missing after creating them cannot happen (rows are never deleted); count it as a short wait.
      return 'waitMs' in result ? result.waitMs : 1;
    },
    async hold(organizationId: string, take: BucketTake, untilMs: number): Promise<void> {
      await holdBucket(db, organizationId, { bucket: take.bucket, key: storedKey(take.key), limit: take.limit, perMs: take.perMs }, untilMs);
    },
  };
}
