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
  | 'INVALID_CREDENTIALS'
  | 'SESSION_EXPIRED'
  | 'CROSS_ORIGIN_REQUEST'
  | 'RATE_LIMITED'
  | 'VALIDATION'
  | 'CONFLICT'
  | 'GONE'
  | 'PAYLOAD_TOO_LARGE'
  | 'PLAN_LIMIT'
  | 'DATA_DIR_LOCKED'
  | 'DATABASE'
  | 'UNAVAILABLE'
  | 'QUERY_TIMEOUT';

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

/** A sign-in whose email, password or API key was wrong: one message whichever part it was. */
export class InvalidCredentialsError extends StepwiseError {
  readonly code = 'INVALID_CREDENTIALS' as const;
  constructor() {
    super('the email and password, or the API key, are not valid');
  }
}

/** A dashboard session past its idle or absolute lifetime: sign in again. */
export class SessionExpiredError extends StepwiseError {
  readonly code = 'SESSION_EXPIRED' as const;
}

/** A cookie-authenticated state-changing request that did not come from the dashboard's own origin. */
export class CrossOriginRequestError extends StepwiseError {
  readonly code = 'CROSS_ORIGIN_REQUEST' as const;
}

/** Too many sign-in attempts for an email or from an address; `details.retryAfterSeconds` says when to try again. */
export class TooManyAttemptsError extends StepwiseError {
  readonly code = 'RATE_LIMITED' as const;
  constructor(retryAfterSeconds: number, limit: { scope: 'email' | 'ip'; attempts: number; windowSeconds: number }) {
    super(`too many sign-in attempts for this ${limit.scope === 'ip' ? 'address' : 'email'} (at most ${limit.attempts} per ${limit.windowSeconds} s); retry in ${retryAfterSeconds} s`, {
      retryAfterSeconds,
      ...limit,
    });
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

/** Something that existed and may not be used again: a spent or expired single-use link. */
export class GoneError extends StepwiseError {
  readonly code = 'GONE' as const;
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

/**
 * The database's schema is newer than this code's migrations: another
 * process has been upgraded. Refusing to start keeps an old process from
 * writing rows the new schema does not expect.
 */
export class SchemaTooNewError extends DatabaseError {
  constructor(databaseVersion: number, knownVersion: number) {
    super(
      `database schema is at version ${databaseVersion}, this Stepwise knows up to ${knownVersion}: upgrade this process`,
      { databaseVersion, knownVersion },
    );
  }
}

/** An applied migration's statements differ from its file now (migrations are forward-only). */
export class MigrationChangedError extends DatabaseError {
  constructor(migration: string, version: number) {
    super(`migration ${migration} was changed after it was applied; add a new migration instead`, { migration, version });
  }
}

/**
 * A migration waited longer than its lock timeout for a table another
 * session was using. It was rolled back and not recorded, so writers queued
 * behind it were released instead of waiting on it.
 */
export class MigrationLockTimeoutError extends DatabaseError {
  constructor(migration: string, timeoutMs: number, options?: { cause?: unknown }) {
    super(
      `migration ${migration} could not lock a table within its ${timeoutMs} ms lock timeout (another session is using it); ` +
        `it was rolled back and nothing of it was applied: retry when the table is less busy, or raise STEPWISE_MIGRATION_LOCK_TIMEOUT_MS`,
      { migration, timeoutMs },
      options,
    );
  }
}

/**
 * A migration that runs outside a transaction failed part-way: the
 * statements before the failing one stay applied and the failing one may
 * have left partial work (a CREATE INDEX CONCURRENTLY leaves an INVALID
 * index). It is not recorded, so it runs again at the next start.
 */
export class MigrationIncompleteError extends DatabaseError {
  constructor(migration: string, statement: number, statements: number, options?: { cause?: unknown }) {
    const reason = options?.cause instanceof Error ? `: ${options.cause.message}` : '';
    super(
      `migration ${migration} runs outside a transaction and failed at statement ${statement} of ${statements}${reason}. ` +
        `It may have left partial work (for example an INVALID index): fix it by hand, or make its statements idempotent ` +
        `(IF NOT EXISTS, DROP INDEX IF EXISTS first) and start again to re-run it`,
      { migration, statement, statements },
      options,
    );
  }
}

export class UnavailableError extends StepwiseError {
  readonly code = 'UNAVAILABLE' as const;
}

/**
 * A statement ran past its time budget (SQLSTATE 57014, e.g. a list or count
 * over `statement_timeout`): the answer is unknown, never empty. A narrower
 * filter or a retry later may succeed.
 */
export class QueryTimeoutError extends StepwiseError {
  readonly code = 'QUERY_TIMEOUT' as const;
}

export function isStepwiseError(err: unknown): err is StepwiseError {
  return err instanceof StepwiseError;
}
