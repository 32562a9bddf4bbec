import { StepError } from '../types.js';
import type { SqlTarget } from './target.js';

/**
 * Driver errors as step failures with stable codes:
 *
 * - SQL_READ_ONLY: the read-only transaction refused a write (PostgreSQL
 *   SQLSTATE 25006; MySQL/MariaDB 1792, or 1290 on a --read-only server).
 * - SQL_TIMEOUT: the statement ran past timeoutMs (PostgreSQL 57014 from
 *   statement_timeout, MariaDB 1969 max_statement_time, MySQL 3024
 *   max_execution_time), or the client-side bound fired.
 * - SQL_CONNECTION: connecting failed or the connection dropped (network
 *   errors, SQLSTATE class 08 but 08P01, 57P01-57P03, 28xxx at connect;
 *   MySQL 1040-1045, 2002-2013). Worth a retry policy `on: ["SQL_CONNECTION"]`.
 * - SQL_ERROR: anything else the database said, with its SQLSTATE / errno.
 *
 * Every message and value goes through the target's scrubber first.
 */

interface DriverError {
  message?: string;
  /** pg: SQLSTATE or a Node network code; mysql2: ER_… name or a Node network code. */
  code?: string;
  errno?: number;
  sqlState?: string;
  position?: string;
  detail?: string;
  hint?: string;
  /** Set on PostgreSQL's own errors (pg DatabaseError), which is what makes `code` a SQLSTATE and not a Node code like EPIPE. */
  severity?: string;
}

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE', 'PROTOCOL_CONNECTION_LOST', 'PROTOCOL_SEQUENCE_TIMEOUT']);
/** MySQL/MariaDB server errors of a connection that failed or went away (too many connections, host blocked, access denied, gone away, lost, …). */
const MYSQL_CONNECTION_ERRNOS = new Set([1040, 1042, 1043, 1044, 1045, 1129, 1130, 1152, 1153, 1927, 2002, 2003, 2005, 2006, 2013, 2055]);
const MYSQL_READ_ONLY_ERRNOS = new Set([1792, 1290]);
const MYSQL_TIMEOUT_ERRNOS = new Set([1969, 3024]);

/** The SQLSTATE of an error PostgreSQL sent (undefined for network and client errors). */
function pgSqlstate(e: DriverError): string | undefined {
  return typeof e.severity === 'string' && typeof e.code === 'string' ? e.code : undefined;
}

/** A failure while connecting (or while setting up the read-only transaction on a fresh connection). */
export function connectionFailure(err: unknown, target: SqlTarget): StepError {
  const e = (err ?? {}) as DriverError;
  const where = `${target.engine} at ${target.host}:${target.port}${target.database ? `/${target.database}` : ''}${target.user ? ` as ${target.user}` : ''}`;
  const reason = e.message && e.message !== '' ? e.message : String(err);
  return new StepError('SQL_CONNECTION', target.scrub(`could not connect to ${where}: ${reason}`), {
    engine: target.engine,
    ...errorFields(e, target),
  });
}

/** A failure of the statement itself (or of the connection while it ran). */
export function statementFailure(err: unknown, target: SqlTarget, timeoutMs: number): StepError {
  if (err instanceof StepError) return err;
  const e = (err ?? {}) as DriverError;
  const message = target.scrub(e.message ?? String(err));
  const data = { engine: target.engine, ...errorFields(e, target) };
  if (target.engine === 'postgres') {
    const sqlstate = pgSqlstate(e);
    if (sqlstate === '25006') return new StepError('SQL_READ_ONLY', `the statement writes, and an sql step runs read-only: ${message}`, data);
    if (sqlstate === '57014') return timeoutFailure(timeoutMs, data);
    if (sqlstate !== undefined && ((sqlstate.startsWith('08') && sqlstate !== '08P01') || /^57P0[123]$/.test(sqlstate))) {
      return new StepError('SQL_CONNECTION', `the connection failed: ${message}`, data);
    }
  } else {
    if (e.errno !== undefined && MYSQL_READ_ONLY_ERRNOS.has(e.errno)) {
      return new StepError('SQL_READ_ONLY', `the statement writes, and an sql step runs read-only: ${message}`, data);
    }
    if (e.errno !== undefined && MYSQL_TIMEOUT_ERRNOS.has(e.errno)) return timeoutFailure(timeoutMs, data);
    if (e.errno !== undefined && MYSQL_CONNECTION_ERRNOS.has(e.errno)) return new StepError('SQL_CONNECTION', `the connection failed: ${message}`, data);
  }
  if (e.code !== undefined && pgSqlstate(e) === undefined && NETWORK_CODES.has(e.code)) return new StepError('SQL_CONNECTION', `the connection failed: ${message}`, data);
  return new StepError('SQL_ERROR', message, data);
}

export function timeoutFailure(timeoutMs: number, data: Record<string, unknown> = {}): StepError {
  return new StepError('SQL_TIMEOUT', `the statement ran past timeoutMs (${timeoutMs} ms) and was stopped`, { ...data, timeoutMs });
}

function errorFields(e: DriverError, target: SqlTarget): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const sqlstate = target.engine === 'postgres' ? pgSqlstate(e) : e.sqlState;
  if (sqlstate) out.sqlstate = sqlstate;
  if (target.engine === 'mysql' && e.errno !== undefined && e.errno > 0) out.errno = e.errno;
  // Not `code`: the STEP_FAILED row spreads this data next to the step's own code.
  if (e.code !== undefined && e.code !== sqlstate) out.driverCode = e.code;
  if (e.position !== undefined) out.position = Number(e.position);
  if (e.detail) out.detail = target.scrub(e.detail);
  if (e.hint) out.hint = target.scrub(e.hint);
  return out;
}
