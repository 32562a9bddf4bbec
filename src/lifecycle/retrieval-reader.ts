import type { BlobStore } from '../blob/index.js';
import type { Queryable } from '../db/index.js';
import { UnavailableError } from '../errors/index.js';
import { listJobArchives, listJobRetrievals, type StoredRetrieval } from '../store/index.js';
import { readArchiveRetrievals } from './stream-reader.js';

/**
 * A job's knowledge retrievals wherever they are: in their tables while the
 * job's stream is hot, in the stream's archive after the archiver moved
 * both (restore brings them back). In the order they were made.
 */
export async function readJobRetrievals(
  db: Queryable,
  blobs: BlobStore | undefined,
  organizationId: string,
  jobId: string,
): Promise<{ items: StoredRetrieval[]; archived: boolean }> {
  const live = await listJobRetrievals(db, organizationId, jobId);
  const archives = await listJobArchives(db, organizationId, jobId);
  if (archives.length === 0) return { items: live, archived: false };
  if (!blobs) throw new UnavailableError(`the record of job ${jobId} is archived and this process has no blob store configured`, { jobId });
  const byId = new Map<string, StoredRetrieval>();
  for (const a of archives) for (const r of await readArchiveRetrievals(blobs, a)) byId.set(r.id, r);
  // A restored record is live again and its archive records are gone; live wins should both ever be seen.
  for (const r of live) byId.set(r.id, r);
  const items = [...byId.values()].sort((a, b) => (a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : a.id < b.id ? -1 : 1));
  return { items, archived: true };
}
