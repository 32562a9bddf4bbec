/**
 * Typed errors with a stable `code`. Every layer throws these; the API maps
 * them to HTTP statuses in one exhaustive switch (api/errors.ts) and the CLI
 * prints `code: message` and exits non-zero.
 */
export type ErrorCode =
  | 'NOT_FOUND'
  | 'FORBIDDEN'
  | 'UNAUTHORIZED'
  | 'KEY_REVOKED'
  | 'KEY_EXPIRED'
  | 'USER_DISABLED'
  | 'RATE_LIMITED'
  | 'VALIDATION'
  | 'CONFLICT'
  | 'PAYLOAD_TOO_LARGE'
  | 'PLAN_LIMIT'
  | 'DATA_DIR_LOCKED'
  | 'DATABASE'
  | 'UNAVAILABLE';

export type ErrorDetails = Record<string, unknown>;

export abstract class StepwiseError extends Error {
  abstract readonly code: ErrorCode;
  readonly details: ErrorDetails;
  constructor(message: string, details: ErrorDetails = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.details = details;
  }
}

export class NotFoundError extends StepwiseError {
  readonly code = 'NOT_FOUND' as const;
  constructor(resource: string, id: string) {
    super(`${resource} ${id} not found`, { resource, id });
  }
}

export class UnauthorizedError extends StepwiseError {
  readonly code = 'UNAUTHORIZED' as const;
}

/**
 * A key that matched in full (prefix and secret) but may no longer be used.
 * Only a holder of the whole key learns why, so naming the cause leaks nothing.
 */
export class KeyRejectedError extends StepwiseError {
  readonly code: 'KEY_REVOKED' | 'KEY_EXPIRED' | 'USER_DISABLED';
  constructor(code: 'KEY_REVOKED' | 'KEY_EXPIRED' | 'USER_DISABLED', message: string, details: ErrorDetails = {}) {
    super(message, details);
    this.code = code;
  }
}

/** Too many requests for one key; `details.retryAfterSeconds` says when the next one is accepted. */
export class RateLimitedError extends StepwiseError {
  readonly code = 'RATE_LIMITED' as const;
  constructor(retryAfterSeconds: number, limit: { perSecond: number; burst: number }) {
    super(`rate limit of ${limit.perSecond} requests per second (burst ${limit.burst}) for this key exceeded; retry in ${retryAfterSeconds} s`, {
      retryAfterSeconds,
      ...limit,
    });
  }
}

export class ForbiddenError extends StepwiseError {
  readonly code = 'FORBIDDEN' as const;
}

/** Bad input. `details.path` names the offending field (JSON pointer style). */
export class ValidationError extends StepwiseError {
  readonly code = 'VALIDATION' as const;
  constructor(message: string, details: ErrorDetails & { path?: string } = {}, options?: { cause?: unknown }) {
    super(message, details, options);
  }
}

export class ConflictError extends StepwiseError {
  readonly code = 'CONFLICT' as const;
}

export class PayloadTooLargeError extends StepwiseError {
  readonly code = 'PAYLOAD_TOO_LARGE' as const;
  /** `bytes` is null when only the database knows the size (its CHECK refused the value). */
  constructor(field: string, bytes: number | null, limit: number) {
    super(
      bytes === null
        ? `${field} is larger than the ${limit} byte limit`
        : `${field} is ${bytes} bytes; the limit is ${limit} bytes`,
      { path: field, ...(bytes === null ? {} : { bytes }), limit },
    );
  }
}

/** The organization's plan does not allow this addition; `details` has {resource, limit, current, adding, plan}. */
export class PlanLimitError extends StepwiseError {
  readonly code = 'PLAN_LIMIT' as const;
}

/** A second process tried to open an embedded data directory that another process owns. */
export class DataDirLockedError extends StepwiseError {
  readonly code = 'DATA_DIR_LOCKED' as const;
  constructor(dataDir: string, ownerPid: number) {
    super(
      `data directory ${dataDir} is in use by process ${ownerPid}; ` +
        `stop it, use another --data-dir, or talk to the running service over HTTP`,
      { dataDir, ownerPid },
    );
  }
}

/** A database failure that is not the caller's fault (connection lost, deadlock, …). */
export class DatabaseError extends StepwiseError {
  readonly code = 'DATABASE' as const;
}

export class UnavailableError extends StepwiseError {
  readonly code = 'UNAVAILABLE' as const;
}

export function isStepwiseError(err: unknown): err is StepwiseError {
  return err instanceof StepwiseError;
}
