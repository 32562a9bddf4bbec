import type { BlobStore } from '../blob/index.js';
import type { Db } from '../db/index.js';
import { NotFoundError } from '../errors/index.js';
import {
  deleteJobArchives,
  findArchivedJobsInRange,
  findJobOrganization,
  insertRestoredRetrievals,
  insertRestoredRows,
  listJobArchives,
  upsertArchiveHold,
  type RestoredRow,
  type StoredRetrieval,
} from '../store/index.js';
import { collectUnreferencedBlobs } from './blob-gc.js';
import { readArchiveRetrievals, readArchiveRows } from './stream-reader.js';
import { DAY_MS } from '../util/clock.js';

export interface RestoreOptions {
  /** Keep restored jobs hot this long before the archiver may take them again. */
  holdDays: number;
  now?: Date;
}

export interface RestoreReport {
  jobs: number;
  rows: number;
  blobsDeleted: number;
}

/**
 * Bring one job's archived rows back into hot storage, in one transaction:
 * hold the job hot, put the rows and its knowledge retrievals back
 * (replacing any hot copy of the rows), delete its archive records. Idempotent: a job with no archive records is left alone.
 * Blobs no record points into any more are deleted afterwards.
 */
async function restoreOne(db: Db, blobs: BlobStore, organizationId: string, jobId: string, holdUntil: Date): Promise<number> {
  const archives = await listJobArchives(db, organizationId, jobId);
  if (archives.length === 0) return 0;
  const rows: RestoredRow[] = [];
  const retrievals: StoredRetrieval[] = [];
  for (const a of archives) {
    rows.push(...(await readArchiveRows(blobs, a)));
    retrievals.push(...(await readArchiveRetrievals(blobs, a)));
  }
  await db.transaction(async (tx) => {
    await upsertArchiveHold(tx, organizationId, jobId, holdUntil);
    await insertRestoredRows(tx, organizationId, jobId, rows);
    await insertRestoredRetrievals(tx, organizationId, retrievals);
    await deleteJobArchives(tx, organizationId, jobId);
  });
  return rows.length;
}

/** `stepwise restore --job ID`: restore one job (its organization is looked up; unknown id: NotFoundError). */
export async function restoreJob(db: Db, blobs: BlobStore, jobId: string, opts: RestoreOptions): Promise<RestoreReport> {
  const organizationId = await findJobOrganization(db, jobId);
  if (!organizationId) throw new NotFoundError('job', jobId);
  const holdUntil = new Date((opts.now ?? new Date()).getTime() + opts.holdDays * DAY_MS);
  const rows = await restoreOne(db, blobs, organizationId, jobId, holdUntil);
  const blobsDeleted = await collectUnreferencedBlobs(db, blobs);
  return { jobs: rows > 0 ? 1 : 0, rows, blobsDeleted };
}

/** `stepwise restore --from --to [--org]`: restore every job with archived rows written in [from, to). */
export async function restoreRange(
  db: Db,
  blobs: BlobStore,
  range: { from: Date; to: Date; organizationId: string | null },
  opts: RestoreOptions,
): Promise<RestoreReport> {
  const holdUntil = new Date((opts.now ?? new Date()).getTime() + opts.holdDays * DAY_MS);
  const report: RestoreReport = { jobs: 0, rows: 0, blobsDeleted: 0 };
  for (;;) {
    // Restored jobs leave the range, so each page is the next one.
    const page = await findArchivedJobsInRange(db, range.from, range.to, range.organizationId, 500);
    if (page.length === 0) break;
    for (const j of page) {
      report.rows += await restoreOne(db, blobs, j.organizationId, j.jobId, holdUntil);
      report.jobs++;
    }
  }
  report.blobsDeleted = await collectUnreferencedBlobs(db, blobs);
  return report;
}
