import type { Db, Queryable } from '../db/index.js';
import { type BlobStore, sha256Hex, toBuffer } from '../blob/index.js';
import { PayloadTooLargeError, UnavailableError, ValidationError } from '../errors/index.js';
import {
  findScreenshot,
  getRetentionPolicy,
  insertScreenshot,
  markScreenshotBlobStored,
  pinScreenshotBlob,
  retainUntil,
  SCREENSHOT_TYPES,
  unpinScreenshotBlob,
  type Screenshot,
  type ScreenshotType,
} from '../store/index.js';
import { isUuid, uuidv7 } from '../util/ids.js';
import { StepError } from './steps/types.js';
import { truncate } from '../util/json.js';
import { LIMITS } from './limits.js';

/** What a step hands to `ctx.capture`. */
export interface CaptureInput {
  bytes: Buffer | Uint8Array;
  /** Default image/png. */
  contentType?: string;
  /** Default SCREENSHOT. */
  type?: ScreenshotType;
  /** A label ("after login"); cut to 200 characters. */
  name?: string;
  /** Read from the PNG header when absent and the bytes are a PNG. */
  width?: number;
  height?: number;
  /** Kept at most this long, however long the organization's policy keeps screenshots (a sealed trace). */
  retainForMs?: number;
}

/**
 * The content type of a browser trace sealed with the key ring (it holds
 * what was typed and the pages' contents): the API opens it on read and
 * serves the zip; blob storage never holds it readable.
 */
export const SEALED_TRACE_CONTENT_TYPE = 'application/vnd.stepwise.sealed-trace';

/** What a sealed trace is bound to: a trace moved to another job's row does not open. */
export function traceSealedFor(organizationId: string, jobId: string): string {
  return `browser-trace:${organizationId}:${jobId}`;
}

/** When a capture taken now for this organization may be deleted (null: never). */
export type RetainUntil = (organizationId: string, capturedAt: Date) => Promise<Date | null>;

/**
 * retain_until from the organization's `screenshot` retention policy, by the
 * store's retainUntil rule: captured time + deleteAfterDays, or null (kept for
 * ever) when the policy never deletes, which is the default policy.
 */
export function policyRetainUntil(db: Queryable): RetainUntil {
  return async (organizationId, capturedAt) => retainUntil(await getRetentionPolicy(db, organizationId, 'screenshot'), capturedAt);
}

/** What the engine needs to store artifacts: the database, the blob store and the retention rule. */
export interface ArtifactSink {
  db: Db;
  blobs: BlobStore;
  retainUntil: RetainUntil;
}

/** The job and step a capture belongs to, and how to put its stream row in the job's stream. */
export interface CaptureTarget {
  organizationId: string;
  jobId: string;
  stepIndex: number | null;
  /** Appends the stream row that records the capture and returns its seq. */
  emit(message: string, data: Record<string, unknown>): number;
}

const CONTENT_TYPE_RE = /^[a-z]+\/[a-z0-9.+-]{1,80}$/;
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** Width and height from a PNG's IHDR chunk, or null when the bytes are not a PNG. */
export function pngSize(bytes: Buffer): { width: number; height: number } | null {
  if (bytes.length < 24 || !bytes.subarray(0, 8).equals(PNG_SIGNATURE) || bytes.toString('latin1', 12, 16) !== 'IHDR') return null;
  return { width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20) };
}

function dimension(field: string, value: number | undefined): number | null {
  if (value === undefined) return null;
  if (!Number.isInteger(value) || value < 1 || value > 100_000) {
    throw new ValidationError(`capture ${field} must be an integer from 1 to 100000`, { path: field, min: 1, max: 100_000 });
  }
  return value;
}

/**
 * Store one screenshot/artifact for a running step: bytes into blob storage
 * once per (organization, sha256), a row in execution_screenshots, and a
 * SCREENSHOT row in the job's stream whose data names the screenshot.
 *
 * Order, so that no failure leaves a half record: pin the stored copy (a counted
 * reference, taken before anything else so a concurrent cleanup cannot delete
 * the bytes), upload if the copy is new, then stream row + screenshot row. If the
 * upload fails the pin is given back and a BlobUnavailableError is thrown; nothing
 * refers to the bytes.
 */
export async function captureArtifact(sink: ArtifactSink, target: CaptureTarget, input: CaptureInput): Promise<Screenshot> {
  const bytes = toBuffer(input.bytes);
  if (bytes.length === 0) throw new ValidationError('capture bytes must not be empty', { path: 'bytes' });
  if (bytes.length > LIMITS.artifactBytes) throw new PayloadTooLargeError('bytes', bytes.length, LIMITS.artifactBytes);
  const contentType = input.contentType ?? 'image/png';
  if (!CONTENT_TYPE_RE.test(contentType)) throw new ValidationError(`capture contentType "${truncate(contentType, 100)}" is not a media type`, { path: 'contentType' });
  const type = input.type ?? 'SCREENSHOT';
  if (!SCREENSHOT_TYPES.includes(type)) throw new ValidationError(`capture type must be one of ${SCREENSHOT_TYPES.join(', ')}`, { path: 'type' });
  const png = pngSize(bytes);
  const width = dimension('width', input.width ?? png?.width);
  const height = dimension('height', input.height ?? png?.height);
  const name = input.name === undefined ? null : truncate(input.name, 200);

  const sha256 = sha256Hex(bytes);
  const { organizationId, jobId } = target;
  // A fresh key per stored copy: a copy re-created after its last reference went never reuses the key being deleted.
  const candidateKey = `screenshots/${organizationId}/${sha256.slice(0, 2)}/${sha256}-${uuidv7()}`;
  const pin = await pinScreenshotBlob(sink.db, organizationId, sha256, bytes.length, candidateKey);
  try {
    if (!pin.stored) {
      await sink.blobs.put(pin.blobKey, bytes, { contentType });
      await markScreenshotBlobStored(sink.db, organizationId, sha256);
    }
  } catch (err) {
    await unpinScreenshotBlob(sink.db, organizationId, sha256).catch(() => undefined);
    throw err;
  }
  const capturedAt = new Date();
  const id = uuidv7();
  const seq = target.emit(name ?? type.toLowerCase(), { screenshotId: id, type, contentType, bytes: bytes.length, sha256, width, height });
  try {
    return await insertScreenshot(sink.db, {
      id,
      organizationId,
      jobId,
      stepIndex: target.stepIndex,
      streamSeq: seq,
      type,
      name,
      contentType,
      width,
      height,
      bytes: bytes.length,
      sha256,
      blobKey: pin.blobKey,
      capturedAt,
      retainUntil: capped(await sink.retainUntil(organizationId, capturedAt), capturedAt, input.retainForMs),
    });
  } catch (err) {
    await unpinScreenshotBlob(sink.db, organizationId, sha256).catch(() => undefined);
    throw err;
  }
}

/** The policy's retain_until, or capturedAt + retainForMs when that comes first (null: the policy keeps it for ever). */
function capped(policy: Date | null, capturedAt: Date, retainForMs: number | undefined): Date | null {
  if (retainForMs === undefined) return policy;
  const cap = new Date(capturedAt.getTime() + retainForMs);
  return policy === null || cap < policy ? cap : policy;
}

/** The capture function steps get when no blob store is configured. */
export async function captureUnavailable(): Promise<never> {
  throw new UnavailableError('no blob store is configured, so steps cannot capture screenshots or artifacts');
}

/**
 * The bytes of an artifact or screenshot of the organization (a browser
 * step's upload names one by id: a file the workflow downloaded or was
 * given, never a path on the server). Throws StepError when it is not
 * there or was deleted.
 */
export async function readArtifact(sink: ArtifactSink, organizationId: string, id: string): Promise<{ bytes: Buffer; name: string; contentType: string }> {
  const shot = isUuid(id) ? await findScreenshot(sink.db, organizationId, id) : null;
  if (!shot || shot.deletedAt) throw new StepError('ARTIFACT_NOT_FOUND', `artifact ${truncate(id, 100)} does not exist in this organization`, { artifactId: truncate(id, 100) });
  return { bytes: await sink.blobs.get(shot.blobKey), name: shot.name ?? shot.id, contentType: shot.contentType };
}
