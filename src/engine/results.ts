import { gunzipSync, gzipSync } from 'node:zlib';
import type { BlobStore } from '../blob/index.js';
import { sha256Hex } from '../blob/index.js';
import type { Queryable } from '../db/index.js';
import { UnavailableError } from '../errors/index.js';
import { findJobResultArchive, type Job, type JobResultRef } from '../store/index.js';

/** The blob key of a job's stored result: one per job, so a rerun after a crash overwrites, never duplicates. */
export function resultBlobKey(organizationId: string, jobId: string): string {
  return `results/${organizationId}/${jobId}.json.gz`;
}

/**
 * Put a large result into blob storage (gzip JSON) and return the reference the
 * jobs row keeps instead. Throws BlobUnavailableError when the store fails; the
 * caller decides what to keep then.
 */
export async function storeLargeResult(blobs: BlobStore, organizationId: string, jobId: string, json: string): Promise<JobResultRef> {
  const gz = gzipSync(json);
  const put = await blobs.put(resultBlobKey(organizationId, jobId), gz, { contentType: 'application/gzip' });
  return {
    blobKey: put.key,
    sizeBytes: Buffer.byteLength(json, 'utf8'),
    storedBytes: put.size,
    contentEncoding: 'gzip',
    sha256: put.sha256,
  };
}

/** Read a stored result back, checking its hash. */
export async function readStoredResult(blobs: BlobStore, ref: JobResultRef): Promise<unknown> {
  const stored = await blobs.get(ref.blobKey);
  if (sha256Hex(stored) !== ref.sha256) {
    throw new UnavailableError(`stored result ${ref.blobKey} does not match its recorded sha256`, { key: ref.blobKey });
  }
  const text = ref.contentEncoding === 'gzip' ? gunzipSync(stored).toString('utf8') : stored.toString('utf8');
  return JSON.parse(text) as unknown;
}

/**
 * The job with its result filled in from blob storage when the jobs row holds
 * only a reference (GET /v1/jobs/:id reads through this). `resultStored` tells
 * the caller where it came from.
 */
export async function withStoredResult(
  db: Queryable,
  blobs: BlobStore | undefined,
  job: Job,
): Promise<Job & { resultStored: JobResultRef | null }> {
  if (job.result !== null && job.result !== undefined) return { ...job, resultStored: null };
  const ref = await findJobResultArchive(db, job.organizationId, job.id);
  if (!ref) return { ...job, resultStored: null };
  if (!blobs) throw new UnavailableError(`job ${job.id}'s result is in blob storage, and no blob store is configured`, { jobId: job.id });
  return { ...job, result: await readStoredResult(blobs, ref), resultStored: ref };
}
