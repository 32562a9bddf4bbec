import { expect } from 'vitest';
import type { BlobStore } from '../../src/blob/index.js';
import type { Queryable } from '../../src/db/index.js';
import { readArchiveRows } from '../../src/lifecycle/index.js';

/** One stream row, compared exactly: the timestamp as epoch microseconds. */
export interface RowSnapshot {
  organizationId: string;
  jobId: string;
  seq: number;
  us: string;
  stepIndex: number | null;
  kind: number;
  level: number;
  message: string;
  data: unknown;
}

export function rowKey(r: { jobId: string; seq: number }): string {
  return `${r.jobId}:${r.seq}`;
}

/** Every hot row. */
export async function hotRows(db: Queryable): Promise<RowSnapshot[]> {
  const { rows } = await db.query<{
    organization_id: string; job_id: string; seq: number; us: string; step_index: number | null; kind: number; level: number; message: string; data: string | null;
  }>(
    `SELECT organization_id, job_id, seq, (extract(epoch FROM ts) * 1000000)::bigint::text AS us, step_index, kind, level, message, data::text AS data
       FROM stepwise.execution_log`,
  );
  return rows.map((r) => ({
    organizationId: r.organization_id,
    jobId: r.job_id,
    seq: r.seq,
    us: r.us,
    stepIndex: r.step_index,
    kind: r.kind,
    level: r.level,
    message: r.message,
    data: r.data === null ? null : JSON.parse(r.data),
  }));
}

/** Every hot row keyed by job:seq (the "before" picture of a test). */
export async function snapshotRows(db: Queryable): Promise<Map<string, RowSnapshot>> {
  return new Map((await hotRows(db)).map((r) => [rowKey(r), r]));
}

/** ISO 8601 with microseconds -> epoch microseconds. */
function isoToMicros(ts: string): string {
  const ms = BigInt(Date.parse(`${ts.slice(0, 23)}Z`));
  return (ms * 1000n + BigInt(ts.slice(23, 26).padEnd(3, '0'))).toString();
}

/** Every row in every recorded archive, read back through the blob store. */
export async function allArchivedRows(db: Queryable, blobs: BlobStore): Promise<RowSnapshot[]> {
  const { rows } = await db.query<{ id: string }>(`SELECT id FROM stepwise.execution_log_archives ORDER BY id`);
  const out: RowSnapshot[] = [];
  const { rows: archives } = await db.query<{
    id: string; organization_id: string; job_id: string; blob_key: string; byte_offset: string; compressed_size: number;
    record_count: number; first_seq: number; last_seq: number; start_date: Date; end_date: Date; sha256: string;
  }>(`SELECT id, organization_id, job_id, blob_key, byte_offset, compressed_size, record_count, first_seq, last_seq,
             start_date, end_date, encode(sha256, 'hex') AS sha256 FROM stepwise.execution_log_archives`);
  if (archives.length !== rows.length) throw new Error('archive count changed while reading');
  for (const a of archives) {
    const decoded = await readArchiveRows(blobs, {
      id: a.id, organizationId: a.organization_id, jobId: a.job_id, blobKey: a.blob_key, byteOffset: Number(a.byte_offset),
      compressedSize: a.compressed_size, recordCount: a.record_count, firstSeq: a.first_seq, lastSeq: a.last_seq,
      startDate: a.start_date, endDate: a.end_date, sha256: a.sha256,
    });
    if (decoded.length !== a.record_count) throw new Error(`archive ${a.id} holds ${decoded.length} rows, recorded ${a.record_count}`);
    for (const r of decoded) {
      out.push({
        organizationId: a.organization_id, jobId: a.job_id, seq: r.seq, us: isoToMicros(r.ts), stepIndex: r.stepIndex,
        kind: r.kind, level: r.level, message: r.message, data: r.data,
      });
    }
  }
  return out;
}

/** A BlobStore that delegates to `base` except for the methods given (to inject failures). */
export function wrapBlobStore(base: BlobStore, overrides: Partial<BlobStore>): BlobStore {
  return {
    kind: overrides.kind ?? base.kind,
    put: overrides.put ?? ((k, b, o) => base.put(k, b, o)),
    get: overrides.get ?? ((k) => base.get(k)),
    getStream: overrides.getStream ?? ((k) => base.getStream(k)),
    delete: overrides.delete ?? ((k) => base.delete(k)),
    exists: overrides.exists ?? ((k) => base.exists(k)),
    list: overrides.list ?? ((p) => base.list(p)),
    signedReadUrl: overrides.signedReadUrl ?? ((k, s) => base.signedReadUrl(k, s)),
    close: overrides.close ?? (() => base.close()),
  };
}

/**
 * Every row written (`before`) is in exactly one place, hot or archived, and
 * equal to what was written. `physical: false` does not count hot rows an
 * archive covers (a run that stopped early leaves them for their month
 * partition's drop; readers skip them).
 */
export async function expectEveryRowOnce(
  db: Queryable,
  blobs: BlobStore,
  before: Map<string, RowSnapshot>,
  physical: boolean,
): Promise<{ hot: number; archived: number }> {
  const archived = await allArchivedRows(db, blobs);
  const covered = new Set(archived.map(rowKey));
  const hot = (await hotRows(db)).filter((r) => physical || !covered.has(rowKey(r)));
  const seen = new Map<string, RowSnapshot>();
  for (const r of [...hot, ...archived]) {
    expect(seen.has(rowKey(r)), `row ${rowKey(r)} is in two places`).toBe(false);
    seen.set(rowKey(r), r);
  }
  expect(seen.size).toBe(before.size);
  for (const [k, r] of before) expect(seen.get(k), k).toEqual(r);
  return { hot: hot.length, archived: archived.length };
}
