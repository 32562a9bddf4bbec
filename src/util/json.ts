/** Byte length of a value's JSON text: what PostgreSQL will be asked to store. */
export function jsonByteLength(value: unknown): number {
  const text = JSON.stringify(value);
  return text === undefined ? 0 : Buffer.byteLength(text, 'utf8');
}

/** Cut a string to at most `max` characters, marking the cut so a reader knows. */
export function truncate(text: string, max: number): string {
  if (text.length <= max) return text;
  const marker = '…[truncated]';
  return text.slice(0, Math.max(0, max - marker.length)) + marker;
}

/** A JSON-safe plain object (not an array, not null). */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const NUL = '\u0000';

function replaceNul(value: unknown): unknown {
  if (typeof value === 'string') return value.replaceAll(NUL, '\uFFFD');
  if (Array.isArray(value)) return value.map(replaceNul);
  if (isPlainObject(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k.replaceAll(NUL, '\uFFFD')] = replaceNul(v);
    return out;
  }
  return value;
}

/**
 * PostgreSQL text and jsonb cannot hold U+0000, which step output (an HTTP
 * body, a JSONata string) can contain. Replace it with U+FFFD so the record
 * is storable; the caller learns whether anything changed.
 */
export function storableJson(value: unknown): { value: unknown; changed: boolean } {
  if (typeof value === 'string') return value.includes(NUL) ? { value: replaceNul(value), changed: true } : { value, changed: false };
  if (typeof value !== 'object' || value === null) return { value, changed: false };
  // JSON text escapes U+0000 as \u0000: one serialisation tells whether a walk is needed.
  if (!JSON.stringify(value).includes('\\u0000')) return { value, changed: false };
  return { value: replaceNul(value), changed: true };
}
