import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Webhook signatures, pure (no I/O): the sender computes
 *
 *   HMAC-SHA256(key = the whole secret string "whsec_…" as UTF-8, message = `${timestamp}.${rawBody}`)
 *
 * over the exact bytes it sends, and puts it in two headers:
 *
 *   Stepwise-Timestamp: <unix seconds>
 *   Stepwise-Signature: v1=<64 lowercase hex digits>
 *
 * Signing the timestamp with the body is what makes the 5-minute window
 * meaningful: a captured delivery cannot be re-sent later with a fresh
 * timestamp. Within the window, replays are caught by the delivery table
 * (one row per signature). Several comma-separated `v1=` entries are accepted
 * (any may match) and other schemes are ignored, so a `v2` can be added
 * without breaking senders.
 */

/** How far a timestamp may be from the server's clock, in either direction. */
export const TOLERANCE_SECONDS = 300;
export const TIMESTAMP_HEADER = 'stepwise-timestamp';
export const SIGNATURE_HEADER = 'stepwise-signature';
export const SECRET_PREFIX = 'whsec_';

const TIMESTAMP_RE = /^\d{1,12}$/;
const ENTRY_RE = /^([a-z0-9]+)=([0-9a-fA-F]+)$/;
/** A header longer than this is not a list of signatures; refuse before parsing it. */
const MAX_SIGNATURE_HEADER = 1024;

export type VerifyFailure = 'MALFORMED' | 'STALE' | 'MISMATCH';

export type Verification =
  | { ok: true; timestamp: number; digest: Buffer }
  | { ok: false; reason: VerifyFailure };

/** A new secret: `whsec_` + 32 random bytes in base64url (256 bits, nothing to brute-force). */
export function newSecret(): string {
  return `${SECRET_PREFIX}${randomBytes(32).toString('base64url')}`;
}

function digest(secret: string, timestamp: number, rawBody: Buffer | string): Buffer {
  // Two updates instead of concatenating: a 1 MB body is not copied.
  return createHmac('sha256', secret).update(`${timestamp}.`).update(rawBody).digest();
}

/** The `Stepwise-Signature` header value for a delivery: `v1=<hex>`. */
export function sign(secret: string, timestamp: number, rawBody: Buffer | string): string {
  return `v1=${digest(secret, timestamp, rawBody).toString('hex')}`;
}

/** Parse `Stepwise-Timestamp`; null unless it is a plain non-negative integer of seconds. */
export function parseTimestamp(header: string | undefined): number | null {
  if (header === undefined || !TIMESTAMP_RE.test(header)) return null;
  return Number(header);
}

/** The v1 digests in a `Stepwise-Signature` header; null when the header is missing or malformed. */
export function parseSignatures(header: string | undefined): Buffer[] | null {
  if (header === undefined || header.length === 0 || header.length > MAX_SIGNATURE_HEADER) return null;
  const v1: Buffer[] = [];
  for (const part of header.split(',')) {
    const m = ENTRY_RE.exec(part.trim());
    if (!m) return null;
    if (m[1] !== 'v1') continue;
    if (m[2]!.length !== 64) return null;
    v1.push(Buffer.from(m[2]!, 'hex'));
  }
  return v1.length > 0 ? v1 : null;
}

/** Whether `timestamp` (unix seconds) is within the tolerance of `nowMs`, in the past or the future. */
export function isFresh(timestamp: number, nowMs: number): boolean {
  return Math.abs(nowMs / 1000 - timestamp) <= TOLERANCE_SECONDS;
}

/**
 * Check a delivery's headers against the secret. Order matters to the
 * caller: MALFORMED and STALE depend only on the headers and the clock, never
 * on the secret, so reporting them does not tell an unauthenticated caller
 * anything about the workflow. On success `digest` is the expected HMAC (the
 * replay key: equal for byte-identical deliveries, whatever else the header held).
 */
export function verify(
  secret: string,
  timestampHeader: string | undefined,
  signatureHeader: string | undefined,
  rawBody: Buffer | string,
  nowMs: number = Date.now(),
): Verification {
  const timestamp = parseTimestamp(timestampHeader);
  const presented = parseSignatures(signatureHeader);
  if (timestamp === null || presented === null) return { ok: false, reason: 'MALFORMED' };
  if (!isFresh(timestamp, nowMs)) return { ok: false, reason: 'STALE' };
  const expected = digest(secret, timestamp, rawBody);
  // Compare every entry (no early exit), each in constant time on equal-length buffers.
  let match = false;
  for (const candidate of presented) match = timingSafeEqual(candidate, expected) || match;
  return match ? { ok: true, timestamp, digest: expected } : { ok: false, reason: 'MISMATCH' };
}
