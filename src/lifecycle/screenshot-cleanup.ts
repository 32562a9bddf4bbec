import type { BlobStore } from '../blob/index.js';
import type { Db } from '../db/index.js';
import {
  countBlobDeletions,
  deleteBlobDeletions,
  listBlobDeletions,
  reconcileScreenshotRefs,
  softDeleteExpiredScreenshots,
} from '../store/index.js';

export interface ScreenshotCleanupResult {
  /** Screenshot rows soft-deleted because retain_until passed. */
  softDeleted: number;
  /** Blobs deleted from the store (their last reference went, here or earlier). */
  blobsDeleted: number;
  /** Queued deletions left for the next run because the blob store failed. */
  blobsPending: number;
  /** Stored copies whose reference count was repaired (captures that died mid-way). */
  refsRepaired: number;
  /** Why blobs are pending: the blob store's error, or null. */
  error: string | null;
}

export interface ScreenshotCleanupOptions {
  asOf?: Date;
  /** Rows per soft-delete statement (default 500: short transactions, few round trips). */
  batchSize?: number;
  /** A pin untouched this long belongs to a capture that died (captures take seconds). Default 1 h. */
  pinIdleMs?: number;
  /** Called before every delete batch (maintenance renews its lease here; when it throws, nothing more is deleted). */
  onBatch?: () => Promise<void>;
}

/**
 * Screenshot cleanup: soft-delete screenshots past retain_until (the
 * trigger drops their blob references and queues blobs nobody references),
 * then delete the queued blobs. Safe to run from several processes and to
 * re-run after a crash: the queue is only emptied after the blob is gone, and
 * a failing blob store leaves the queue for next time (reported in blobsPending).
 */
export async function cleanupScreenshots(db: Db, blobs: BlobStore, options: ScreenshotCleanupOptions = {}): Promise<ScreenshotCleanupResult> {
  const asOf = options.asOf ?? new Date();
  const batchSize = options.batchSize ?? 500;
  let softDeleted = 0;
  for (;;) {
    await options.onBatch?.();
    const n = await softDeleteExpiredScreenshots(db, asOf, batchSize);
    softDeleted += n;
    if (n < batchSize) break;
  }
  const refsRepaired = await reconcileScreenshotRefs(db, options.pinIdleMs ?? 3_600_000);
  const { deleted, pending, error } = await processBlobDeletions(db, blobs, batchSize, options.onBatch);
  return { softDeleted, blobsDeleted: deleted, blobsPending: pending, refsRepaired, error };
}

/**
 * Delete the blobs queued in blob_deletions (screenshots' last references, job
 * results of deleted jobs), forgetting each key only after its blob is gone.
 * Stops at the first blob-store failure and reports what is left. `onBatch`
 * is called before every batch (maintenance renews its lease there).
 */
export async function processBlobDeletions(
  db: Db,
  blobs: BlobStore,
  batchSize = 500,
  onBatch?: () => Promise<void>,
): Promise<{ deleted: number; pending: number; error: string | null }> {
  let deleted = 0;
  for (;;) {
    await onBatch?.();
    const keys = await listBlobDeletions(db, batchSize);
    if (keys.length === 0) return { deleted, pending: 0, error: null };
    const done: string[] = [];
    try {
      for (const key of keys) {
        await blobs.delete(key);
        done.push(key);
      }
    } catch (err) {
      await deleteBlobDeletions(db, done);
      deleted += done.length;
      const error = err instanceof Error ? err.message : String(err);
      return { deleted, pending: await countBlobDeletions(db), error };
    }
    await deleteBlobDeletions(db, done);
    deleted += done.length;
    if (keys.length < batchSize) return { deleted, pending: 0, error: null };
  }
}
