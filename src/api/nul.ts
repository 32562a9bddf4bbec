import { ValidationError } from '../errors/index.js';

/** Find the first string (key or value) holding U+0000, as a JSON pointer under /body. */
function findNul(value: unknown, path: string): string | undefined {
  if (typeof value === 'string') return value.includes('\u0000') ? path : undefined;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const hit = findNul(value[i], `${path}/${i}`);
      if (hit) return hit;
    }
    return undefined;
  }
  if (typeof value === 'object' && value !== null) {
    for (const [k, v] of Object.entries(value)) {
      if (k.includes('\u0000')) return `${path}/${k.replaceAll('\u0000', '\\u0000')}`;
      const hit = findNul(v, `${path}/${k}`);
      if (hit) return hit;
    }
  }
  return undefined;
}

/**
 * PostgreSQL text and jsonb cannot hold U+0000; without this check such a
 * body would reach the database and fail there. Refuse it up front, naming
 * the field.
 */
export function rejectNulCharacters(body: unknown): void {
  const path = findNul(body, '/body');
  if (path) throw new ValidationError(`${path} must not contain the NUL character (\\u0000)`, { path });
}
