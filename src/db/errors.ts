import {
  ConflictError,
  DatabaseError,
  PayloadTooLargeError,
  QueryTimeoutError,
  StepwiseError,
  UnavailableError,
  ValidationError,
} from '../errors/index.js';

/**
 * SQLSTATE 25006: a write in a read-only transaction — above all on a hot
 * standby, which refuses every write. Still a DatabaseError (a 500 if it
 * ever reaches a caller); the API's replica routing (api/tenancy.ts) catches
 * it and runs the request again on the primary.
 */
export class ReadOnlyTransactionError extends DatabaseError {}

/**
 * SQLSTATE 55P03 lock_not_available: a statement's `lock_timeout` ran out
 * (a migration, a partition drop). Nothing the statement's transaction did
 * is kept; the caller tries again later.
 */
export function isLockNotAvailable(err: unknown): boolean {
  return err instanceof DatabaseError && err.details.sqlstate === '55P03';
}

/**
 * What a client is told to wait before trying again while the database is
 * unreachable (the Retry-After of the 503). A fast restart of PostgreSQL
 * takes a second or two and a crash recovery a few more; 2 s spreads the
 * retries of many clients over the restart without leaving them waiting
 * long after it.
 */
export const DATABASE_RETRY_AFTER_SECONDS = 2;

/** Why the database could not be used, named in the 503's message and details. */
export type UnavailableReason =
  /** No connection could be opened (refused, host unknown or unreachable). */
  | 'unreachable'
  /** An open connection broke (reset, terminated by the server, closed under a query). */
  | 'connection-lost'
  /** The server is shutting down, crashed, or is starting up or recovering. */
  | 'restarting'
  /** The server has no connection slot left (53300). */
  | 'too-many-connections'
  /** Opening a connection took longer than its bound. */
  | 'connect-timeout'
  /** No pooled connection came free within the caller's bound (the pool is busy or the server slow to answer). */
  | 'checkout-timeout';

/**
 * The database cannot be used right now, for a reason that passes by itself:
 * the server restarts, crashed, refuses connections, or a pooled connection
 * was not free within the caller's bound. Not the caller's fault and not a
 * bug, so not a DatabaseError (500): an UnavailableError, a 503 whose
 * Retry-After (api/errors.ts) is `details.retryAfterSeconds`. Its message
 * names the reason only, never the driver's text (which may carry the
 * server's address); the driver's error is the `cause`, for the log.
 *
 * A write that fails this way may still have committed (the connection
 * broke around COMMIT): callers that retry a start send the same
 * idempotency key.
 */
export class DatabaseUnavailableError extends UnavailableError {
  constructor(reason: UnavailableReason, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(
      `the database is unavailable (${reason.replaceAll('-', ' ')}); retry in ${DATABASE_RETRY_AFTER_SECONDS} s`,
      { ...details, reason, retryAfterSeconds: DATABASE_RETRY_AFTER_SECONDS },
      options,
    );
  }
}

/** Whether `err` says the database was unreachable for a while (DatabaseUnavailableError), as opposed to refusing the work. */
export function isDatabaseUnavailable(err: unknown): err is DatabaseUnavailableError {
  return err instanceof DatabaseUnavailableError;
}

/**
 * SQLSTATEs that mean the connection or the server is going away or not
 * there yet, not that the statement was wrong. Class 08 (connection
 * exception) is taken whole, in mapDbError.
 */
const UNAVAILABLE_SQLSTATES: ReadonlyMap<string, UnavailableReason> = new Map([
  ['57P01', 'restarting'], // admin_shutdown: a fast or immediate shutdown, or pg_terminate_backend
  ['57P02', 'restarting'], // crash_shutdown: another backend crashed; every connection is reset
  ['57P03', 'restarting'], // cannot_connect_now: starting up, recovering, or shutting down
  ['53300', 'too-many-connections'], // too_many_connections
]);

/**
 * Node's codes for a socket that could not be opened or broke. They arrive in
 * the same `code` field as a SQLSTATE, so they are told apart by name.
 */
const SOCKET_ERRORS: ReadonlyMap<string, UnavailableReason> = new Map([
  ['ECONNREFUSED', 'unreachable'],
  ['ENOTFOUND', 'unreachable'],
  ['EAI_AGAIN', 'unreachable'],
  ['EHOSTUNREACH', 'unreachable'],
  ['ENETUNREACH', 'unreachable'],
  ['ETIMEDOUT', 'connect-timeout'],
  ['ECONNRESET', 'connection-lost'],
  ['EPIPE', 'connection-lost'],
  ['ECONNABORTED', 'connection-lost'],
]);

/**
 * What node-postgres and its pool say, without any code, when a connection
 * ends or cannot be had in time. Matched exactly (the texts are the driver's
 * own, pg 8): a looser match could take a statement's error for an outage.
 */
const DRIVER_MESSAGES: ReadonlyMap<string, UnavailableReason> = new Map([
  ['Connection terminated unexpectedly', 'connection-lost'],
  ['Connection terminated', 'connection-lost'],
  ['Client has encountered a connection error and is not queryable', 'connection-lost'],
  ['Client was closed and is not queryable', 'connection-lost'],
  ['Connection terminated due to connection timeout', 'connect-timeout'],
  ['timeout exceeded when trying to connect', 'checkout-timeout'],
]);

/**
 * Why `err` means the database is unreachable now, or undefined when it is
 * an answer about the statement. Looks through an AggregateError (Node's
 * connect to a name with several addresses fails with one per address).
 */
export function unavailableReason(err: unknown): UnavailableReason | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  if (err instanceof DatabaseUnavailableError) return err.details.reason as UnavailableReason;
  const { code, message } = err as { code?: unknown; message?: unknown };
  if (typeof code === 'string') {
    const reason = UNAVAILABLE_SQLSTATES.get(code) ?? SOCKET_ERRORS.get(code);
    if (reason) return reason;
    if (/^08[0-9A-Z]{3}$/.test(code)) return 'connection-lost';
  }
  if (typeof message === 'string') {
    const reason = DRIVER_MESSAGES.get(message);
    if (reason) return reason;
  }
  if (err instanceof AggregateError) {
    for (const inner of err.errors) {
      const reason = unavailableReason(inner);
      if (reason) return reason;
    }
  }
  return undefined;
}

/**
 * A failure to open a connection as a typed error. Beyond what mapDbError
 * knows: pg.Client's own connect timer ends the socket with "timeout
 * expired" (a server that accepted the TCP connection and never answered),
 * and any other failure without a SQLSTATE means the server never answered
 * at all: unreachable. One with a SQLSTATE is the server's own answer: a
 * wrong password (28P01) or an unknown database (3D000) is a configuration
 * error, not an outage, and stays a DatabaseError (500).
 */
export function mapConnectError(err: unknown): Error {
  const mapped = mapDbError(err);
  if (mapped instanceof DatabaseUnavailableError) return mapped;
  const { code, message } = (typeof err === 'object' && err !== null ? err : {}) as { code?: unknown; message?: unknown };
  if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return mapped;
  return new DatabaseUnavailableError(message === 'timeout expired' ? 'connect-timeout' : 'unreachable', {}, { cause: err });
}

interface PgErrorLike {
  code?: unknown;
  message?: unknown;
  detail?: unknown;
  constraint?: unknown;
  table?: unknown;
  column?: unknown;
}

/**
 * SQLSTATE → typed error. Both drivers put the SQLSTATE in `code`. A
 * connection that is refused, lost or not had in time, and a server that is
 * restarting, become DatabaseUnavailableError (a 503 with Retry-After);
 * anything else unrecognised becomes DatabaseError (a 500, not the caller's
 * fault).
 */
export function mapDbError(err: unknown): Error {
  if (err instanceof StepwiseError) return err;
  const e = (typeof err === 'object' && err !== null ? err : {}) as PgErrorLike;
  const sqlstate = typeof e.code === 'string' ? e.code : undefined;
  const unavailable = unavailableReason(err);
  if (unavailable) return new DatabaseUnavailableError(unavailable, sqlstate ? { driverCode: sqlstate } : {}, { cause: err });
  const message = typeof e.message === 'string' ? e.message : String(err);
  const details: Record<string, unknown> = { sqlstate };
  if (typeof e.constraint === 'string') details.constraint = e.constraint;
  if (typeof e.table === 'string') details.table = e.table;
  if (typeof e.column === 'string') details.column = e.column;
  if (typeof e.detail === 'string') details.detail = e.detail;
  switch (sqlstate) {
    case '23505': // unique_violation
    case '23P01': // exclusion_violation
      return new ConflictError(message, details, { cause: err });
    case '23514': { // check_violation
      // The size CHECKs on JSON columns (…_input_check, …_definition_check) are the backstop of the
      // API's 1 MB limits: report them as the same 413, naming the field.
      const sized = /_(input|result|definition)_check$/.exec(String(details.constraint ?? ''));
      if (sized) return new PayloadTooLargeError(sized[1]!, null, 1024 * 1024);
      return new ValidationError(message, details, { cause: err });
    }
    case '23503': // foreign_key_violation
    case '23502': // not_null_violation
    case '22P05': // untranslatable_character (U+0000 in jsonb)
    case '22021': // character_not_in_repertoire (U+0000 in text)
    case '22P02': // invalid_text_representation (bad uuid, bad number)
    case '22001': // string_data_right_truncation
    case '22003': // numeric_value_out_of_range
    case '22007': // invalid_datetime_format
    case '22008': // datetime_field_overflow
    case '22023': // invalid_parameter_value
    case '2201B': // invalid_regular_expression
      return new ValidationError(message, details, { cause: err });
    case '57014': // query_canceled: statement_timeout (the read budgets of store/statement-timeout.ts), or a cancel
      return new QueryTimeoutError('the query ran past its time budget; narrow the filter or try again later', details, { cause: err });
    case '25006': // read_only_sql_transaction: a write reached a read replica
      return new ReadOnlyTransactionError(message, details, { cause: err });
    case '54000': // program_limit_exceeded (e.g. a jsonb too large)
      return new PayloadTooLargeError(String(details.column ?? 'value'), null, 256 * 1024 * 1024);
    default:
      return new DatabaseError(message, details, { cause: err });
  }
}
