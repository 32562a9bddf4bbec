import {
  ConflictError,
  DatabaseError,
  PayloadTooLargeError,
  QueryTimeoutError,
  StepwiseError,
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

interface PgErrorLike {
  code?: unknown;
  message?: unknown;
  detail?: unknown;
  constraint?: unknown;
  table?: unknown;
  column?: unknown;
}

/**
 * SQLSTATE → typed error. Both drivers put the SQLSTATE in `code`; anything
 * unrecognised becomes DatabaseError (a 500, not the caller's fault).
 */
export function mapDbError(err: unknown): Error {
  if (err instanceof StepwiseError) return err;
  const e = (typeof err === 'object' && err !== null ? err : {}) as PgErrorLike;
  const sqlstate = typeof e.code === 'string' ? e.code : undefined;
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
