import { BlobNotFoundError, type BlobStore } from '../blob/index.js';
import type { Queryable } from '../db/index.js';
import { UnavailableError } from '../errors/index.js';
import {
  kindName,
  levelName,
  listJobArchives,
  listStream,
  STREAM_KINDS,
  type RestoredRow,
  type StreamArchive,
  type StreamEntry,
  type StreamQuery,
  type StoredRetrieval,
} from '../store/index.js';
import { decodeJobRetrievals, decodeJobRows, sha256Hex } from './archive-format.js';
import { LruCache } from './lru.js';

/**
 * Archive blobs recently read, per blob store. 32 MB holds ~20 blobs of
 * 2,000 jobs each: a user paging through one job, or through neighbouring
 * jobs of the same day, reads the store once.
 */
const CACHE_BYTES = 32 * 1024 * 1024;
const caches = new WeakMap<BlobStore, LruCache<Buffer>>();

function cacheFor(blobs: BlobStore): LruCache<Buffer> {
  let c = caches.get(blobs);
  if (!c) {
    c = new LruCache<Buffer>(CACHE_BYTES);
    caches.set(blobs, c);
  }
  return c;
}

export interface JobStreamPage {
  items: StreamEntry[];
  /** True when the job has archived rows (some or all of its stream comes from blob storage). */
  archived: boolean;
}

/** A job's archived stretch as rows, checked against the hash recorded when it was archived. */
export async function readArchiveRows(blobs: BlobStore, archive: StreamArchive): Promise<RestoredRow[]> {
  const rows = await decodeJobRows(await archiveMember(blobs, archive), archive.jobId);
  if (rows.length !== archive.recordCount) {
    throw new UnavailableError(`the archive of job ${archive.jobId} holds ${rows.length} rows, ${archive.recordCount} recorded`, { jobId: archive.jobId, blobKey: archive.blobKey });
  }
  return rows;
}

/** The knowledge retrievals archived with a job's stretch (none in archives written before they were). */
export async function readArchiveRetrievals(blobs: BlobStore, archive: StreamArchive): Promise<StoredRetrieval[]> {
  return decodeJobRetrievals(await archiveMember(blobs, archive), archive.jobId);
}

/** The gzip member holding a job's archived stretch, from the cache or the store, checked against its recorded hash. */
async function archiveMember(blobs: BlobStore, archive: StreamArchive): Promise<Buffer> {
  const cache = cacheFor(blobs);
  let blob = cache.get(archive.blobKey);
  if (!blob) {
    try {
      blob = await blobs.get(archive.blobKey);
    } catch (err) {
      if (err instanceof BlobNotFoundError) {
        throw new UnavailableError(`the archive of job ${archive.jobId} is missing from blob storage`, { jobId: archive.jobId, blobKey: archive.blobKey });
      }
      throw err;
    }
    cache.set(archive.blobKey, blob, blob.length);
  }
  const member = blob.subarray(archive.byteOffset, archive.byteOffset + archive.compressedSize);
  if (member.length !== archive.compressedSize || sha256Hex(member) !== archive.sha256) {
    cache.delete(archive.blobKey);
    throw new UnavailableError(`the archive of job ${archive.jobId} does not match its recorded hash`, { jobId: archive.jobId, blobKey: archive.blobKey });
  }
  return member;
}

function toEntry(r: RestoredRow): StreamEntry {
  return {
    seq: r.seq,
    ts: new Date(r.ts),
    kind: kindName(r.kind),
    level: levelName(r.level),
    stepIndex: r.stepIndex,
    message: r.message,
    data: r.data,
    path: r.path ?? null,
  };
}

/**
 * A job's stream in seq order, wherever its rows are: archived stretches
 * from blob storage (seq 1..the highest archived), then hot rows after that.
 * Same query as the hot-only listStream (afterSeq, minimum level, limit).
 * Hot rows an archive covers (left for a month partition to be dropped
 * whole) are skipped, so no row is returned twice. The /stream and
 * /timeline routes use this.
 */
export async function readJobStream(
  db: Queryable,
  blobs: BlobStore | undefined,
  organizationId: string,
  job: { id: string; createdAt: Date },
  q: StreamQuery,
): Promise<JobStreamPage> {
  const archives = await listJobArchives(db, organizationId, job.id);
  if (archives.length === 0) return { items: await listStream(db, organizationId, job, q), archived: false };
  if (!blobs) throw new UnavailableError(`the stream of job ${job.id} is archived and this process has no blob store configured`, { jobId: job.id });
  const afterSeq = q.afterSeq ?? 0;
  const minLevel = q.minLevel ?? 1;
  const items: StreamEntry[] = [];
  let archivedUpTo = 0;
  for (const a of archives) {
    archivedUpTo = Math.max(archivedUpTo, a.lastSeq);
    if (a.lastSeq <= afterSeq || items.length >= q.limit) continue;
    for (const r of await readArchiveRows(blobs, a)) {
      if (r.seq <= afterSeq || r.level < minLevel || (q.withoutLogs && r.kind === STREAM_KINDS.LOG)) continue;
      items.push(toEntry(r));
      if (items.length >= q.limit) break;
    }
  }
  if (items.length < q.limit) {
    const hot = await listStream(db, organizationId, job, { afterSeq: Math.max(afterSeq, archivedUpTo), minLevel, limit: q.limit - items.length, withoutLogs: q.withoutLogs });
    items.push(...hot);
  }
  return { items, archived: true };
}

/** Rows per page when a whole stream is read for a replay (the /stream route's own maximum). */
const REPLAY_PAGE = 5_000;

/**
 * A job's typed events (log lines left out) up to and including `upToSeq`,
 * hot or archived: what the timeline and the state-at-seq replay. A job
 * writes ~60 rows, so this is usually one page; a long one is read page by
 * page rather than in one unbounded query.
 */
export async function readJobEvents(
  db: Queryable,
  blobs: BlobStore | undefined,
  organizationId: string,
  job: { id: string; createdAt: Date; completedAt?: Date | null },
  upToSeq: number = 2_147_483_647,
): Promise<{ events: StreamEntry[]; archived: boolean }> {
  const events: StreamEntry[] = [];
  let archived = false;
  for (let afterSeq = 0; afterSeq < upToSeq; ) {
    // Typed events only, chosen by the database: a 10,000-row run has ~40 of them among its log lines.
    const page = await readJobStream(db, blobs, organizationId, job, { afterSeq, limit: REPLAY_PAGE, withoutLogs: true });
    archived ||= page.archived;
    for (const e of page.items) if (e.seq <= upToSeq) events.push(e);
    if (page.items.length < REPLAY_PAGE) break;
    afterSeq = page.items[page.items.length - 1]!.seq;
  }
  return { events, archived };
}
