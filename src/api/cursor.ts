import { ValidationError } from '../errors/index.js';
import { isUuid } from '../util/ids.js';
import { isPlainObject } from '../util/json.js';

/**
 * Opaque keyset cursors: clients pass back what they got and must not build
 * them. Today a cursor wraps the last id seen; the wrapping leaves room to
 * change that without breaking clients.
 */
export function encodeCursor(lastId: string | null): string | null {
  return lastId === null ? null : Buffer.from(JSON.stringify({ v: 1, id: lastId })).toString('base64url');
}

/** The cursor's JSON object, or a ValidationError naming the cursor when it is not one of ours. */
function parseCursor<T>(cursor: string, pick: (parsed: Record<string, unknown>) => T | undefined): T {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (isPlainObject(parsed)) {
      const value = pick(parsed);
      if (value !== undefined) return value;
    }
  } catch {
    // not base64url JSON: fall through to the same error
  }
  throw new ValidationError('/querystring/cursor is not a cursor this API returned', { path: '/querystring/cursor' });
}

export function decodeCursor(cursor: string | undefined): string | undefined {
  if (cursor === undefined || cursor === '') return undefined;
  return parseCursor(cursor, (p) => (typeof p.id === 'string' && isUuid(p.id) ? p.id : undefined));
}

/** Position in the newest-first job listing: created_at in epoch microseconds and the run number. */
export interface JobCursor {
  createdUs: string;
  runNumber: number;
}

/** The job list's cursor: {v:2, t: created_at µs, n: run number}, opaque like the others. */
export function encodeJobCursor(last: JobCursor | null): string | null {
  return last === null ? null : Buffer.from(JSON.stringify({ v: 2, t: last.createdUs, n: last.runNumber })).toString('base64url');
}

/**
 * A job list cursor: the current form, or the run-number-only form
 * ({v:1, n}) earlier versions returned (still accepted, so a client paging
 * across an upgrade keeps going).
 */
export function decodeJobCursor(cursor: string | undefined): JobCursor | { runNumber: number } | undefined {
  if (cursor === undefined || cursor === '') return undefined;
  return parseCursor<JobCursor | { runNumber: number }>(cursor, (p) => {
    if (!Number.isSafeInteger(p.n) || Number(p.n) <= 0) return undefined;
    if (p.v === 2) return typeof p.t === 'string' && /^-?\d{1,19}$/.test(p.t) ? { createdUs: p.t, runNumber: Number(p.n) } : undefined;
    return { runNumber: Number(p.n) };
  });
}
