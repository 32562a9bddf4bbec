import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import type { BlobStore } from '../blob/index.js';
import type { Db } from '../db/index.js';
import { findResultsToArchive, recordResultArchives, type RetentionPolicy } from '../store/index.js';
import { sha256Hex } from './archive-format.js';
import { ArchiveVerificationError } from './archiver.js';
import { hotCutoff } from './retention.js';

const gzipAsync = promisify(gzip);

/**
 * Results at most this big stay in the jobs row for good: a blob per small
 * result would cost more (a request and a key per job) than the bytes saved;
 * the bytes worth moving are in results of tens of KB.
 */
export const RESULT_ARCHIVE_MIN_BYTES = 1024;
const PAGE = 1000;

export interface ResultArchiveReport {
  jobs: number;
  rawBytes: number;
  compressedBytes: number;
}

/** Same key as results stored at completion (engine/results.ts), so a job has one result blob whichever path stored it. */
function resultKey(organizationId: string, jobId: string): string {
  return `results/${organizationId}/${jobId}.json.gz`;
}

/**
 * Keep the jobs table small: move the results of jobs past the organization's
 * job_result hot window to blob storage (gzip JSON), verify each by reading
 * it back, then record the references and clear the rows in one
 * transaction per page. A crash between leaves the result in the row (the
 * blob is simply written again next time, under the same key).
 */
export async function archiveJobResults(
  db: Db,
  blobs: BlobStore,
  policies: RetentionPolicy[],
  opts: {
    asOf: Date;
    dryRun: boolean;
    minBytes?: number;
    /** Called before every page writes anything (not in a dry run); maintenance renews its lease here. */
    onBatch?: () => Promise<void>;
  },
): Promise<ResultArchiveReport> {
  const report: ResultArchiveReport = { jobs: 0, rawBytes: 0, compressedBytes: 0 };
  const minBytes = opts.minBytes ?? RESULT_ARCHIVE_MIN_BYTES;
  for (const policy of policies) {
    const cutoff = hotCutoff(policy, opts.asOf);
    let after = 0;
    for (;;) {
      const page = await findResultsToArchive(db, policy.organizationId, after, cutoff, minBytes, PAGE);
      if (!opts.dryRun && page.rows.length > 0) await opts.onBatch?.();
      const refs: { jobId: string; blobKey: string; sizeBytes: number; storedBytes: number; sha256: string }[] = [];
      for (const r of page.rows) {
        // Compact JSON: jsonb's text form adds spaces, and the reference's size is of the compact text.
        const json = JSON.stringify(JSON.parse(r.result));
        const gz = await gzipAsync(json);
        report.jobs++;
        report.rawBytes += Buffer.byteLength(json);
        report.compressedBytes += gz.length;
        if (opts.dryRun) continue;
        const key = resultKey(policy.organizationId, r.jobId);
        const hash = sha256Hex(gz);
        await blobs.put(key, gz, { contentType: 'application/gzip' });
        const back = await blobs.get(key);
        if (sha256Hex(back) !== hash) throw new ArchiveVerificationError(key);
        refs.push({ jobId: r.jobId, blobKey: key, sizeBytes: Buffer.byteLength(json), storedBytes: gz.length, sha256: hash });
      }
      if (refs.length > 0) await db.transaction((tx) => recordResultArchives(tx, policy.organizationId, refs));
      if (page.lastRunNumber === null || page.scanned < PAGE) break;
      after = page.lastRunNumber;
    }
  }
  return report;
}
