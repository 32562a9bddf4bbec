import type { BlobStore } from '../blob/index.js';
import type { Db } from '../db/index.js';
import {
  deleteRetrievals,
  findArchiveCandidates,
  readRetrievalsForArchive,
  readStreamForArchive,
  recordStreamArchive,
  STREAM_CLOCK_SKEW_MS,
  type ArchiveCandidate,
  type ArchiveJobRows,
  type ArchiveWindow,
  type ArchiveMember,
  type RetentionPolicy,
  type StoredRetrieval,
} from '../store/index.js';
import { countBlobLines, encodeMember, MEMBER_JOBS, sha256Hex } from './archive-format.js';
import { hotCutoff } from './retention.js';

/** Test seams: called at the two points a crash must not lose or duplicate rows. */
export interface ArchiveHooks {
  /** The blob is written and verified; nothing is recorded yet. */
  afterBlobWrite?: (blobKey: string) => void | Promise<void>;
  /** Inside the transaction: the archive is recorded and the rows deleted, not yet committed. */
  beforeCommit?: (blobKey: string) => void | Promise<void>;
}

export interface ArchiveOptions {
  asOf: Date;
  dryRun: boolean;
  /** Rows before this stay for their month partition to be dropped whole (null: delete every archived row). */
  keepBefore: Date | null;
  /** A blob (and its transaction) closes at this many rows or jobs, whichever comes first. */
  batchRows: number;
  batchJobs: number;
  /** Jobs read per keyset page while looking for due ones. */
  pageSize: number;
  hooks?: ArchiveHooks;
  /**
   * Called before every batch writes anything (not in a dry run). Maintenance renews its lease here:
   * when it throws, the run stops with the batches so far committed and the rest untouched.
   */
  onBatch?: () => Promise<void>;
}

export const DEFAULT_ARCHIVE_OPTIONS = Object.freeze({ batchRows: 50_000, batchJobs: 2_000, pageSize: 2_000 });

export interface ArchiveReport {
  organizations: number;
  jobs: number;
  rows: number;
  blobs: number;
  /** JSON text archived (before gzip). */
  rawBytes: number;
  compressedBytes: number;
  /** Hot rows deleted at once (the rest go with their month partition). */
  rowsDeleted: number;
  /** Knowledge retrievals moved into the archives with their jobs' streams (and deleted from their tables). */
  retrievals: number;
  ms: number;
  rowsPerSecond: number;
}

interface DueJob {
  jobId: string;
  createdAt: Date;
  endedAt: Date;
  archivedSeq: number;
}

function monthSegment(d: Date): string {
  return `${d.getUTCFullYear()}-${String(d.getUTCMonth() + 1).padStart(2, '0')}`;
}

/**
 * Archive the streams of jobs past their organization's hot window to blob
 * storage. Per batch of jobs: read their rows (one query), gzip one member
 * per job, write one blob named by its content hash, read it back and check
 * hash, size and line count, then in ONE transaction record the blob and its
 * members and delete the rows. The order is what makes it safe: a crash
 * before the commit leaves the rows hot (a blob written but not recorded is
 * rewritten under the same name by the rerun, or swept as an orphan); a
 * crash after it leaves them archived; a blob-store failure throws before
 * anything is deleted.
 */
export async function archiveExecutionLogs(
  db: Db,
  blobs: BlobStore,
  policies: RetentionPolicy[],
  opts: ArchiveOptions,
): Promise<ArchiveReport> {
  const started = performance.now();
  const report: ArchiveReport = {
    organizations: 0, jobs: 0, rows: 0, blobs: 0, rawBytes: 0, compressedBytes: 0, rowsDeleted: 0, retrievals: 0, ms: 0, rowsPerSecond: 0,
  };
  for (const policy of policies) {
    const cutoff = hotCutoff(policy, opts.asOf);
    // Read the next batch while this one is compressed, written and
    // verified: on a server the read runs in PostgreSQL and the gzip here,
    // on the machine's two cores at once.
    const batches = dueBatches(db, policy.organizationId, cutoff, opts)[Symbol.asyncIterator]();
    const readNext = async (): Promise<ReadBatch | null> => {
      const next = await batches.next();
      return next.done ? null : readBatch(db, policy.organizationId, next.value);
    };
    let pending = readNext();
    let touched = false;
    try {
      for (;;) {
        const current = await pending;
        if (!current) break;
        pending = readNext();
        if (await archiveBatch(db, blobs, policy.organizationId, current, opts, report)) touched = true;
      }
    } finally {
      // A failed batch leaves a read in flight; let it settle before the caller moves on.
      await pending.catch(() => undefined);
    }
    if (touched) report.organizations++;
  }
  report.ms = Math.round(performance.now() - started);
  report.rowsPerSecond = report.ms > 0 ? Math.round((report.rows * 1000) / report.ms) : 0;
  return report;
}

/** The due jobs of one organization, in batches of at most batchJobs jobs (or about batchRows rows). */
async function* dueBatches(db: Db, organizationId: string, cutoff: Date, opts: ArchiveOptions): AsyncGenerator<DueJob[]> {
  let batch: DueJob[] = [];
  let after = 0;
  for (;;) {
    const page: ArchiveCandidate[] = await findArchiveCandidates(db, organizationId, after, cutoff, opts.asOf, opts.pageSize);
    if (page.length === 0) break;
    after = page[page.length - 1]!.runNumber;
    for (const c of page) {
      if (!c.due) continue;
      batch.push({ jobId: c.jobId, createdAt: c.createdAt, endedAt: c.endedAt, archivedSeq: c.archivedSeq });
      // Row counts are unknown until read; a job's stream is typically tens of rows.
      if (batch.length >= opts.batchJobs || batch.length * ROWS_PER_JOB_ESTIMATE >= opts.batchRows) {
        yield batch;
        batch = [];
      }
    }
    // Run numbers follow creation: once a page starts after the cutoff, no later job has ended before it.
    if (page.length < opts.pageSize || page[0]!.createdAt >= cutoff) break;
  }
  if (batch.length > 0) yield batch;
}

const ROWS_PER_JOB_ESTIMATE = 60;

interface ReadBatch {
  window: ArchiveWindow;
  oldest: Date;
  jobs: ArchiveJobRows[];
  /** The knowledge retrievals of those jobs, which go into the same archive. */
  retrievals: Map<string, StoredRetrieval[]>;
}

async function readBatch(db: Db, organizationId: string, batch: DueJob[]): Promise<ReadBatch> {
  let oldest = batch[0]!.createdAt;
  let latest = batch[0]!.endedAt;
  for (const j of batch) {
    if (j.createdAt < oldest) oldest = j.createdAt;
    if (j.endedAt > latest) latest = j.endedAt;
  }
  const window: ArchiveWindow = {
    notBefore: new Date(oldest.getTime() - STREAM_CLOCK_SKEW_MS),
    notAfter: new Date(latest.getTime() + STREAM_CLOCK_SKEW_MS),
  };
  const jobs = await readStreamForArchive(db, organizationId, batch.map((j) => ({ jobId: j.jobId, afterSeq: j.archivedSeq })), window);
  // Only jobs with rows to archive get a member to carry their retrievals (a job has rows from its first claim on).
  const retrievals = await readRetrievalsForArchive(db, organizationId, jobs.map((j) => j.jobId));
  return { window, oldest, jobs, retrievals };
}

/** Archive one read batch; false when it had no rows. */
async function archiveBatch(
  db: Db,
  blobs: BlobStore,
  organizationId: string,
  { window, oldest, jobs, retrievals }: ReadBatch,
  opts: ArchiveOptions,
  report: ArchiveReport,
): Promise<boolean> {
  if (jobs.length === 0) return false;
  const chunks: ArchiveJobRows[][] = [];
  for (let i = 0; i < jobs.length; i += MEMBER_JOBS) chunks.push(jobs.slice(i, i + MEMBER_JOBS));
  const encoded = await Promise.all(
    chunks.map((chunk) =>
      encodeMember(
        chunk.map((j) => ({
          header: { jobId: j.jobId, organizationId, firstSeq: j.firstSeq, lastSeq: j.lastSeq, records: j.records },
          lines: j.lines,
          retrievals: retrievals.get(j.jobId) ?? [],
        })),
      ),
    ),
  );
  const members: ArchiveMember[] = [];
  let offset = 0;
  let records = 0;
  const retrievalIds: string[] = [];
  for (const j of jobs) for (const r of retrievals.get(j.jobId) ?? []) retrievalIds.push(r.id);
  for (let i = 0; i < chunks.length; i++) {
    const bytes = encoded[i]!;
    const hash = sha256Hex(bytes);
    for (const j of chunks[i]!) {
      members.push({
        jobId: j.jobId,
        byteOffset: offset,
        compressedSize: bytes.length,
        recordCount: j.records,
        firstSeq: j.firstSeq,
        lastSeq: j.lastSeq,
        startDate: new Date(Number(BigInt(j.minTsMicros) / 1000n)),
        endDate: new Date(Number(BigInt(j.maxTsMicros) / 1000n)),
        sha256: hash,
      });
      records += j.records;
      report.rawBytes += j.lines.length + 1;
    }
    offset += bytes.length;
  }
  const body = Buffer.concat(encoded, offset);
  const hash = sha256Hex(body);
  const blobKey = `archive/execution_log/${organizationId}/${monthSegment(oldest)}/${hash}.jsonl.gz`;
  report.jobs += jobs.length;
  report.rows += records;
  report.blobs++;
  report.compressedBytes += body.length;
  report.retrievals += retrievalIds.length;
  if (opts.dryRun) return true;
  await opts.onBatch?.();

  // A content-addressed name: a rerun of the same batch after a crash writes the same key again.
  const put = await blobs.put(blobKey, body, { contentType: 'application/gzip' });
  const readBack = await blobs.get(blobKey);
  const expectedLines = records + jobs.length + retrievalIds.length;
  if (put.sha256 !== hash || readBack.length !== body.length || sha256Hex(readBack) !== hash || (await countBlobLines(readBack)) !== expectedLines) {
    throw new ArchiveVerificationError(blobKey);
  }
  await opts.hooks?.afterBlobWrite?.(blobKey);
  const { deleted } = await db.transaction(async (tx) => {
    const r = await recordStreamArchive(
      tx,
      { blobKey, organizationId, resourceType: 'execution_log', bytes: body.length, sha256: hash, recordCount: records },
      members,
      window,
      opts.keepBefore,
    );
    // Retrievals follow the stream: archived in the blob just recorded, gone from their tables in the same commit.
    await deleteRetrievals(tx, organizationId, retrievalIds);
    await opts.hooks?.beforeCommit?.(blobKey);
    return r;
  });
  report.rowsDeleted += deleted;
  return true;
}

/** The blob read back did not match what was written: nothing was recorded or deleted. */
export class ArchiveVerificationError extends Error {
  constructor(readonly blobKey: string) {
    super(`archive blob ${blobKey} did not read back as written (hash, size or line count differ); nothing was deleted`);
    this.name = 'ArchiveVerificationError';
  }
}
