import { jsonByteLength } from '../../../util/json.js';

/** What an sql step returns. */
export interface SqlOutput {
  /** One object per row, keyed by column name (a later column of the same name wins; `fields` lists both). */
  rows: Record<string, unknown>[];
  rowCount: number;
  /** More rows were there: cut at maxRows, or at the output byte bound. */
  truncated: boolean;
  fields: { name: string }[];
}

/**
 * Collects rows as the driver streams them, JSON-safe, until `maxRows` or
 * `maxBytes` of JSON: a huge result is cut while it arrives, never loaded
 * whole. `add` answers false once the caller should stop reading.
 */
export class RowCollector {
  private readonly rows: Record<string, unknown>[] = [];
  private names: string[] = [];
  /** `[]` of the rows array. */
  private bytes = 2;
  private cut = false;

  constructor(
    private readonly maxRows: number,
    private readonly maxBytes: number,
  ) {}

  setFields(names: readonly string[]): void {
    this.names = [...names];
  }

  get full(): boolean {
    return this.cut;
  }

  /** Add one row (values in column order). False when it did not fit: stop reading, the output is truncated. */
  add(values: readonly unknown[]): boolean {
    if (this.cut) return false;
    if (this.rows.length >= this.maxRows) {
      // Row maxRows + 1 exists: that is what `truncated` says.
      this.cut = true;
      return false;
    }
    // fromEntries defines own properties, so a column named __proto__ is a key, not a prototype.
    const row = Object.fromEntries(this.names.map((name, i) => [name, jsonSafe(values[i])]));
    const size = jsonByteLength(row) + (this.rows.length > 0 ? 1 : 0);
    if (this.bytes + size > this.maxBytes) {
      this.cut = true;
      return false;
    }
    this.bytes += size;
    this.rows.push(row);
    return true;
  }

  output(): SqlOutput {
    return { rows: this.rows, rowCount: this.rows.length, truncated: this.cut, fields: this.names.map((name) => ({ name })) };
  }
}

/**
 * A driver value as JSON: bigint and non-finite numbers as strings (drivers
 * already give int8/BIGINT and numeric/DECIMAL as strings, so no precision
 * is lost), Date as an ISO string, bytes as base64.
 */
export function jsonSafe(value: unknown): unknown {
  if (value === null || value === undefined) return null;
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      return Number.isFinite(value) ? value : String(value);
    case 'bigint':
      return value.toString();
    case 'object':
      break;
    default:
      return String(value);
  }
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString();
  if (Buffer.isBuffer(value)) return value.toString('base64');
  if (value instanceof Uint8Array) return Buffer.from(value).toString('base64');
  if (Array.isArray(value)) return value.map(jsonSafe);
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, jsonSafe(v)]));
}
