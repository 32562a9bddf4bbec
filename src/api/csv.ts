/**
 * CSV per RFC 4180: fields holding a comma, quote, CR or LF are quoted, with
 * quotes doubled; lines end in CRLF. Audit fields such as the user agent are
 * caller-controlled, so a cell that a spreadsheet would run as a formula
 * (leading = + - @ or a tab/CR) is prefixed with a single quote (OWASP's CSV
 * injection advice) — the export is for reading, never for evaluating.
 */
export function csvCell(value: unknown): string {
  if (value === null || value === undefined) return '';
  let text = value instanceof Date ? value.toISOString() : Array.isArray(value) ? value.join(';') : String(value);
  if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** A header line and one line per row, columns in the order given. */
export function toCsv<T>(columns: readonly { header: string; value: (row: T) => unknown }[], rows: readonly T[]): string {
  const lines = [columns.map((c) => csvCell(c.header)).join(',')];
  for (const row of rows) lines.push(columns.map((c) => csvCell(c.value(row))).join(','));
  return `${lines.join('\r\n')}\r\n`;
}
