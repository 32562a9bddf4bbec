import type { Queryable } from '../db/index.js';

export const SCREENSHOT_TYPES = ['SCREENSHOT', 'ERROR_SCREENSHOT', 'ARTIFACT'] as const;
export type ScreenshotType = (typeof SCREENSHOT_TYPES)[number];

/** A screenshot or artifact a step captured: metadata here, bytes in blob storage under blobKey (rows stay small). */
export interface Screenshot {
  id: string;
  organizationId: string;
  jobId: string;
  stepIndex: number | null;
  streamSeq: number | null;
  type: ScreenshotType;
  name: string | null;
  contentType: string;
  width: number | null;
  height: number | null;
  bytes: number;
  sha256: string;
  blobKey: string;
  capturedAt: Date;
  retainUntil: Date | null;
  deletedAt: Date | null;
  archiveKey: string | null;
}

interface ScreenshotRow {
  id: string;
  organization_id: string;
  job_id: string;
  step_index: number | null;
  stream_seq: number | null;
  type: string;
  name: string | null;
  content_type: string;
  width: number | null;
  height: number | null;
  bytes: string | number;
  sha256: string;
  blob_key: string;
  captured_at: Date;
  retain_until: Date | null;
  deleted_at: Date | null;
  archive_key: string | null;
}

const COLUMNS = `id, organization_id, job_id, step_index, stream_seq, type, name, content_type, width, height,
  bytes, encode(sha256, 'hex') AS sha256, blob_key, captured_at, retain_until, deleted_at, archive_key`;

function toType(value: string): ScreenshotType {
  const found = SCREENSHOT_TYPES.find((t) => t === value);
  if (!found) throw new RangeError(`unknown screenshot type ${value}`);
  return found;
}

function toScreenshot(r: ScreenshotRow): Screenshot {
  return {
    id: r.id,
    organizationId: r.organization_id,
    jobId: r.job_id,
    stepIndex: r.step_index,
    streamSeq: r.stream_seq,
    type: toType(r.type),
    name: r.name,
    contentType: r.content_type,
    width: r.width,
    height: r.height,
    bytes: Number(r.bytes),
    sha256: r.sha256,
    blobKey: r.blob_key,
    capturedAt: r.captured_at,
    retainUntil: r.retain_until,
    deletedAt: r.deleted_at,
    archiveKey: r.archive_key,
  };
}

/** The stored copy a capture will reference. */
export interface PinnedBlob {
  blobKey: string;
  /** False: the bytes are not in the blob store yet, the caller uploads them. */
  stored: boolean;
}

/**
 * Take a reference on the stored copy of (organization, sha256), creating its
 * row with `candidateKey` if there is none. The reference is counted before the
 * bytes are uploaded or the screenshot row exists, so a concurrent delete of the
 * last other reference cannot remove the blob under the capture (it waits on the
 * row lock, and if it won, this insert creates a fresh row under the new key).
 */
export async function pinScreenshotBlob(
  db: Queryable,
  organizationId: string,
  sha256: string,
  bytes: number,
  candidateKey: string,
): Promise<PinnedBlob> {
  const { rows } = await db.query<{ blob_key: string; stored: boolean }>(
    `INSERT INTO stepwise.screenshot_blobs (organization_id, sha256, blob_key, bytes, ref_count)
     VALUES ($1, decode($2, 'hex'), $3, $4, 1)
     ON CONFLICT (organization_id, sha256)
       DO UPDATE SET ref_count = stepwise.screenshot_blobs.ref_count + 1, updated_at = now()
     RETURNING blob_key, stored`,
    [organizationId, sha256, candidateKey, bytes],
  );
  const row = rows[0]!;
  return { blobKey: row.blob_key, stored: row.stored };
}

/** The bytes of a pinned copy are in the blob store. */
export async function markScreenshotBlobStored(db: Queryable, organizationId: string, sha256: string): Promise<void> {
  await db.query(
    `UPDATE stepwise.screenshot_blobs SET stored = true, updated_at = now()
      WHERE organization_id = $1 AND sha256 = decode($2, 'hex')`,
    [organizationId, sha256],
  );
}

/** Give back a pin taken by pinScreenshotBlob (the capture failed); the last one queues the blob for deletion. */
export async function unpinScreenshotBlob(db: Queryable, organizationId: string, sha256: string): Promise<void> {
  await db.query(`SELECT stepwise.release_screenshot_refs(ARRAY[$1::uuid], ARRAY[decode($2, 'hex')])`, [organizationId, sha256]);
}

/** A screenshot as captured: every field but the lifecycle ones cleanup and archival set later. */
export type NewScreenshot = Omit<Screenshot, 'deletedAt' | 'archiveKey'>;

/** Record a captured screenshot whose blob reference was already pinned (the pin becomes this row's reference). */
export async function insertScreenshot(db: Queryable, s: NewScreenshot): Promise<Screenshot> {
  const { rows } = await db.query<ScreenshotRow>(
    `INSERT INTO stepwise.execution_screenshots
       (id, organization_id, job_id, step_index, stream_seq, type, name, content_type, width, height, bytes, sha256,
        blob_key, captured_at, retain_until)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, decode($12, 'hex'), $13, $14, $15)
     RETURNING ${COLUMNS}`,
    [
      s.id,
      s.organizationId,
      s.jobId,
      s.stepIndex,
      s.streamSeq,
      s.type,
      s.name,
      s.contentType,
      s.width,
      s.height,
      s.bytes,
      s.sha256,
      s.blobKey,
      s.capturedAt.toISOString(),
      s.retainUntil?.toISOString() ?? null,
    ],
  );
  return toScreenshot(rows[0]!);
}

/** One screenshot of the organization (soft-deleted ones too: the caller decides), or null. */
export async function findScreenshot(db: Queryable, organizationId: string, id: string): Promise<Screenshot | null> {
  const { rows } = await db.query<ScreenshotRow>(
    `SELECT ${COLUMNS} FROM stepwise.execution_screenshots WHERE organization_id = $1 AND id = $2`,
    [organizationId, id],
  );
  return rows[0] ? toScreenshot(rows[0]) : null;
}

/** A job's live (not deleted) screenshots in capture order. */
export async function listJobScreenshots(db: Queryable, organizationId: string, jobId: string): Promise<Screenshot[]> {
  const { rows } = await db.query<ScreenshotRow>(
    `SELECT ${COLUMNS} FROM stepwise.execution_screenshots
      WHERE organization_id = $1 AND job_id = $2 AND deleted_at IS NULL
      ORDER BY captured_at, id`,
    [organizationId, jobId],
  );
  return rows.map(toScreenshot);
}

/**
 * Soft-delete up to `limit` screenshots (any organization: maintenance code)
 * whose retain_until is before `asOf`. The statement trigger releases their blob
 * references and queues blobs nobody references any more. Returns the count.
 */
export async function softDeleteExpiredScreenshots(db: Queryable, asOf: Date, limit: number): Promise<number> {
  const { rowCount } = await db.query(
    `UPDATE stepwise.execution_screenshots SET deleted_at = $1
      WHERE id IN (SELECT id FROM stepwise.execution_screenshots
                    WHERE retain_until < $1 AND deleted_at IS NULL
                    ORDER BY retain_until LIMIT $2 FOR UPDATE SKIP LOCKED)`,
    [asOf.toISOString(), limit],
  );
  return rowCount;
}

/** Soft-delete one screenshot of the organization; false when there was no live one. */
export async function softDeleteScreenshot(db: Queryable, organizationId: string, id: string): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE stepwise.execution_screenshots SET deleted_at = now()
      WHERE organization_id = $1 AND id = $2 AND deleted_at IS NULL`,
    [organizationId, id],
  );
  return rowCount > 0;
}

/** How many references the stored copy of (organization, sha256) has, or null when no copy exists. */
export async function findScreenshotBlobRefs(
  db: Queryable,
  organizationId: string,
  sha256: string,
): Promise<{ blobKey: string; refCount: number; stored: boolean } | null> {
  const { rows } = await db.query<{ blob_key: string; ref_count: number; stored: boolean }>(
    `SELECT blob_key, ref_count, stored FROM stepwise.screenshot_blobs WHERE organization_id = $1 AND sha256 = decode($2, 'hex')`,
    [organizationId, sha256],
  );
  return rows[0] ? { blobKey: rows[0].blob_key, refCount: rows[0].ref_count, stored: rows[0].stored } : null;
}

/**
 * Repair counts left too high by captures that died between pin and insert:
 * for copies untouched for `idleMs` (longer than any capture takes), the
 * count is set to the number of live rows, and copies left at 0 are queued for
 * deletion. Returns the number of copies corrected.
 */
export async function reconcileScreenshotRefs(db: Queryable, idleMs: number): Promise<number> {
  const { rowCount } = await db.query(
    `UPDATE stepwise.screenshot_blobs b SET ref_count = a.live, updated_at = now()
       FROM (SELECT b2.organization_id, b2.sha256,
                    (SELECT count(*)::int FROM stepwise.execution_screenshots s
                      WHERE s.organization_id = b2.organization_id AND s.sha256 = b2.sha256 AND s.deleted_at IS NULL) AS live
               FROM stepwise.screenshot_blobs b2
              WHERE b2.updated_at < now() - make_interval(secs => $1::float8 / 1000)) a
      WHERE b.organization_id = a.organization_id AND b.sha256 = a.sha256 AND b.ref_count <> a.live`,
    [idleMs],
  );
  // Copies at 0 exist only here (release deletes its own in the same transaction);
  // a capture pinning one meanwhile lifts it above 0 and this skips it.
  await db.query(
    `WITH del AS (DELETE FROM stepwise.screenshot_blobs WHERE ref_count = 0 RETURNING blob_key, organization_id)
     INSERT INTO stepwise.blob_deletions (blob_key, organization_id)
     SELECT blob_key, organization_id FROM del ON CONFLICT (blob_key) DO NOTHING`,
  );
  return rowCount;
}
