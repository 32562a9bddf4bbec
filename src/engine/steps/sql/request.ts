import { timeoutFailure } from './errors.js';
import type { SqlOutput } from './rows.js';
import type { SqlTarget } from './target.js';
import type { CheckedTarget } from '../../../net/egress.js';

/** One read-only statement for a driver to run on a connection of its own. */
export interface SqlRequest {
  target: SqlTarget;
  /** `target`'s host as the egress policy resolved and admitted it: the drivers connect there, never to the name. */
  checked: CheckedTarget;
  query: string;
  /** JSON values, bound as parameters ($1… on PostgreSQL, ? on MySQL/MariaDB). */
  params: readonly unknown[];
  maxRows: number;
  /** Bound on the rows' JSON bytes (the output is cut there, truncated). */
  maxBytes: number;
  /** The statement's bound, given to the database; the client stops waiting CLIENT_GRACE_MS later. */
  timeoutMs: number;
  signal: AbortSignal;
}

export type SqlDriver = (request: SqlRequest) => Promise<SqlOutput>;

/** Connecting has its own bound: a statement's timeout says nothing about how long a dead host may take to refuse. */
export const CONNECT_TIMEOUT_MS = 10_000;
/**
 * The database's own timeout fires first and says so (57014, 1969, 3024);
 * the client-side one covers a server that does not enforce it (MySQL's
 * max_execution_time covers SELECT only) or does not answer.
 */
export const CLIENT_GRACE_MS = 2_000;

/**
 * Wait for `work`, unless the step is aborted (its reason is thrown: the
 * engine tells cancel, lease loss and step timeout apart) or `timeoutMs`
 * (plus the grace; null: no bound here) passes first (SQL_TIMEOUT). Either way `stop` runs first,
 * destroying the connection, so nothing keeps reading.
 */
export async function bounded<T>(work: Promise<T>, signal: AbortSignal, timeoutMs: number | null, stop: () => void): Promise<T> {
  if (signal.aborted) {
    stop();
    work.catch(() => undefined);
    throw signal.reason;
  }
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  const interrupted = new Promise<never>((_, reject) => {
    onAbort = () => {
      stop();
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    if (timeoutMs !== null) {
      timer = setTimeout(() => {
        stop();
        reject(timeoutFailure(timeoutMs, { side: 'client' }));
      }, timeoutMs + CLIENT_GRACE_MS);
    }
  });
  try {
    return await Promise.race([work, interrupted]);
  } finally {
    if (timer) clearTimeout(timer);
    if (onAbort) signal.removeEventListener('abort', onAbort);
    // The loser settles later (the destroyed connection rejects it): nobody waits for it.
    work.catch(() => undefined);
    interrupted.catch(() => undefined);
  }
}
