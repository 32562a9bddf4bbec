import { NotFoundError, UnavailableError } from '../errors/index.js';

/** The key names no blob (never written, or deleted). Maps to 404 like any missing object. */
export class BlobNotFoundError extends NotFoundError {
  constructor(readonly key: string) {
    super('blob', key);
  }
}

/**
 * The blob store could not do what was asked: unreachable, refused, read-only,
 * out of space. `details.reason` says which ('unreachable' | 'full' | 'denied' | 'io');
 * the operation left nothing half-written under the final key.
 */
export class BlobUnavailableError extends UnavailableError {
  readonly reason: BlobFailureReason;
  constructor(
    operation: string,
    key: string,
    reason: BlobFailureReason,
    options?: { cause?: unknown },
  ) {
    super(`blob store ${reason} during ${operation} of ${key}`, { operation, key, reason }, options);
    this.reason = reason;
  }
}

export type BlobFailureReason = 'unreachable' | 'full' | 'denied' | 'io';

/** True for a blob-store failure the caller should report and retry later (never a lost write). */
export function isBlobUnavailable(err: unknown): err is BlobUnavailableError {
  return err instanceof BlobUnavailableError;
}
