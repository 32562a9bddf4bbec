import type { Readable } from 'node:stream';
import { createHash } from 'node:crypto';
import { ValidationError } from '../errors/index.js';

export { BlobNotFoundError, BlobUnavailableError, isBlobUnavailable, type BlobFailureReason } from './errors.js';

/** What a successful put stored. */
export interface PutResult {
  readonly key: string;
  readonly size: number;
  /** Lowercase hex SHA-256 of the bytes stored (the same for every backend). */
  readonly sha256: string;
}

export interface BlobInfo {
  readonly key: string;
  readonly size: number;
}

export interface PutOptions {
  /** Stored with the blob where the backend keeps it (Azure); used when serving it. */
  readonly contentType?: string;
}

/**
 * Where large bytes live (screenshots, archived streams, large job results).
 * Postgres keeps the key, size and hash; the store keeps the bytes.
 *
 * Contract (test/integration/blob-contract.test.ts runs it against every backend):
 * - put is atomic: a reader sees the old bytes, the new bytes or nothing, never a prefix;
 *   a failed put leaves nothing under the key it did not have before.
 * - put overwrites; callers that want write-once use content-addressed keys.
 * - get/getStream of a missing key throw BlobNotFoundError; delete of a missing key returns false.
 * - every failure of the store itself is a BlobUnavailableError (with a reason), never a raw error.
 * - keys are `/`-separated segments of [A-Za-z0-9._=-], validated by validateBlobKey.
 */
export interface BlobStore {
  /** 'fs' | 'azure' — for logs and for choosing between a signed URL and streaming. */
  readonly kind: string;
  put(key: string, body: Buffer | Uint8Array | string, options?: PutOptions): Promise<PutResult>;
  get(key: string): Promise<Buffer>;
  getStream(key: string): Promise<Readable>;
  /** Returns whether there was a blob to delete. */
  delete(key: string): Promise<boolean>;
  exists(key: string): Promise<boolean>;
  /** Every blob whose key starts with `prefix`, in key order. */
  list(prefix: string): Promise<BlobInfo[]>;
  /**
   * A URL anyone holding it can read the blob with until `expiresInSeconds` pass,
   * or null when the backend has no such thing (the filesystem: stream it instead).
   */
  signedReadUrl(key: string, expiresInSeconds: number): Promise<string | null>;
  /** Release connections/handles (a no-op for the filesystem). */
  close(): Promise<void>;
}

// 1,024 matches Azure's blob-name limit; S3's is the same in bytes.
const MAX_KEY_LENGTH = 1024;
// A segment may not start with '.', so '.', '..' and the fs backend's '.tmp' are unreachable.
const SEGMENT_RE = /^[A-Za-z0-9_=-][A-Za-z0-9._=-]*$/;

/** Throws ValidationError unless `key` is a safe relative key (no traversal, no empty segment). */
export function validateBlobKey(key: string, path = 'key'): string {
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY_LENGTH) {
    throw new ValidationError(`blob ${path} must be 1 to ${MAX_KEY_LENGTH} characters`, { path, limit: MAX_KEY_LENGTH });
  }
  for (const segment of key.split('/')) {
    if (!SEGMENT_RE.test(segment)) {
      throw new ValidationError(
        `blob ${path} "${key.slice(0, 80)}" has an invalid segment "${segment.slice(0, 40)}" ` +
          '(segments are [A-Za-z0-9._=-], not starting with ".")',
        { path },
      );
    }
  }
  return key;
}

/** A list prefix is a key prefix: empty, or a key, optionally ending in '/'. */
export function validateBlobPrefix(prefix: string): string {
  if (prefix === '') return prefix;
  validateBlobKey(prefix.endsWith('/') ? prefix.slice(0, -1) : prefix, 'prefix');
  return prefix;
}

/** Lowercase hex SHA-256 of `bytes`. */
export function sha256Hex(bytes: Buffer | Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Normalise a put body to a Buffer without copying a Buffer. */
export function toBuffer(body: Buffer | Uint8Array | string): Buffer {
  if (Buffer.isBuffer(body)) return body;
  if (typeof body === 'string') return Buffer.from(body, 'utf8');
  return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
}
