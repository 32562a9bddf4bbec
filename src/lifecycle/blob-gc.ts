import type { BlobStore } from '../blob/index.js';
import type { Db } from '../db/index.js';
import { deleteArchiveBlobRecord, findRecordedBlobKeys, findUnreferencedArchiveBlobs } from '../store/index.js';

/** Where stream archives live in the blob store. */
export const STREAM_ARCHIVE_PREFIX = 'archive/execution_log/';

/**
 * Delete archive blobs no archive record points into any more (every job in
 * them restored or expired): bytes first, then the row, so a failure in
 * between leaves a row that the next run deletes again. Returns blobs deleted.
 * `onBatch` is called before every batch of deletes (maintenance renews its lease there).
 */
export async function collectUnreferencedBlobs(db: Db, blobs: BlobStore, onBatch?: () => Promise<void>): Promise<number> {
  let deleted = 0;
  for (;;) {
    await onBatch?.();
    const keys = await findUnreferencedArchiveBlobs(db, 500);
    if (keys.length === 0) return deleted;
    for (const key of keys) {
      await blobs.delete(key);
      if (await deleteArchiveBlobRecord(db, key)) deleted++;
    }
  }
}

/**
 * Delete blobs under the archive prefix that no archive_blobs row knows:
 * written by a run that died before recording them. Only the maintenance
 * leader calls this, after its own archiving, so no live run has a blob
 * written but not yet recorded.
 */
export async function sweepOrphanArchiveBlobs(db: Db, blobs: BlobStore, dryRun: boolean): Promise<string[]> {
  const listed = await blobs.list(STREAM_ARCHIVE_PREFIX);
  const orphans: string[] = [];
  for (let i = 0; i < listed.length; i += 1000) {
    const keys = listed.slice(i, i + 1000).map((b) => b.key);
    const known = await findRecordedBlobKeys(db, keys);
    for (const k of keys) if (!known.has(k)) orphans.push(k);
  }
  if (!dryRun) for (const k of orphans) await blobs.delete(k);
  return orphans;
}
