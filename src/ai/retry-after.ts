/**
 * A Retry-After header's delay in ms from `now`: delta-seconds ("120") or
 * an HTTP date ("Wed, 21 Oct 2015 07:28:00 GMT"). Null when absent or
 * unreadable; a date in the past is 0.
 */
export function parseRetryAfter(value: string | null | undefined, now: number = Date.now()): number | null {
  if (value === null || value === undefined) return null;
  const text = value.trim();
  if (text === '') return null;
  if (/^\d+(\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000);
  // Date.parse also reads bare numbers and ISO forms; only a date with letters (a weekday or month) is an HTTP date here.
  if (!/[A-Za-z]/.test(text)) return null;
  const at = Date.parse(text);
  if (Number.isNaN(at)) return null;
  return Math.max(0, at - now);
}
