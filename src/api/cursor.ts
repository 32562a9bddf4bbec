import { ValidationError } from '../errors/index.js';
import { isUuid } from '../util/ids.js';

/**
 * Opaque keyset cursors: clients pass back what they got and must not build
 * them. Today a cursor wraps the last id seen; the wrapping leaves room to
 * change that without breaking clients.
 */
export function encodeCursor(lastId: string | null): string | null {
  return lastId === null ? null : Buffer.from(JSON.stringify({ v: 1, id: lastId })).toString('base64url');
}

export function decodeCursor(cursor: string | undefined): string | undefined {
  if (cursor === undefined || cursor === '') return undefined;
  try {
    const parsed: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (typeof parsed === 'object' && parsed !== null && 'id' in parsed && typeof parsed.id === 'string' && isUuid(parsed.id)) {
      return parsed.id;
    }
  } catch {
    // fall through
  }
  throw new ValidationError('/querystring/cursor is not a cursor this API returned', { path: '/querystring/cursor' });
}

/** Cursors over a numeric key (job run numbers), opaque the same way. */
export function encodeNumberCursor(last: number | null): string | null {
  return last === null ? null : Buffer.from(JSON.stringify({ v: 1, n: last })).toString('base64url');
}

export function decodeNumberCursor(cursor: string | undefined): number | undefined {
  if (cursor === undefined || cursor === '') return undefined;
  try {
    const parsed: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (typeof parsed === 'object' && parsed !== null && 'n' in parsed && Number.isSafeInteger(parsed.n) && Number(parsed.n) > 0) {
      return Number(parsed.n);
    }
  } catch {
    // fall through
  }
  throw new ValidationError('/querystring/cursor is not a cursor this API returned', { path: '/querystring/cursor' });
}
