/**
 * Array parameters for the hot path, encoded by us as PostgreSQL array
 * literals (`{"a","b",NULL}`) and sent as one text parameter per array.
 *
 * Why: node-postgres serialises a JS array element by element
 * (prepareValue, then two regex replaces per element); for a flush of
 * 2,500 stream rows × 9 columns that was ~40% of the worker's own CPU in
 * profiles here. One pass with a single regex test per string costs about
 * a third of that, and the literal is exactly what the server would have
 * received anyway, so the database side is unchanged. PGlite takes the same
 * text, so both adapters share it.
 */

const NEEDS_ESCAPE = /["\\]/;
const ESCAPED = /["\\]/g;

/** Text literal of a one-dimensional array of strings, numbers, booleans or nulls (undefined counts as null). */
export function pgArray(values: readonly (string | number | boolean | null | undefined)[]): string {
  let out = '{';
  for (let i = 0; i < values.length; i++) {
    if (i > 0) out += ',';
    const v = values[i];
    if (v === null || v === undefined) out += 'NULL';
    else if (typeof v === 'string') {
      // Always quoted: an unquoted element would be read differently if it
      // were empty, NULL, or held a comma, brace or white space.
      out += NEEDS_ESCAPE.test(v) ? `"${v.replace(ESCAPED, '\\$&')}"` : `"${v}"`;
    } else if (typeof v === 'number') {
      if (!Number.isFinite(v)) throw new TypeError(`array element ${i} is not a finite number: ${v}`);
      out += v;
    } else out += v ? 't' : 'f';
  }
  return out + '}';
}

/** Array of the values' JSON texts (for `jsonb[]`), null staying NULL. */
export function pgJsonArray(values: readonly unknown[]): string {
  return pgArray(values.map((v) => (v === undefined || v === null ? null : JSON.stringify(v))));
}
