/**
 * A small lexer for the SQL of migration files: enough to tell code from
 * comments, string literals, quoted identifiers and dollar-quoted bodies, so
 * that comments can be dropped for checksums and a file can be split into
 * statements for migrations that must run outside a transaction. It follows
 * PostgreSQL's rules: `--` comments to the end of the line, nested
 * `/* … *\/` comments, `''` inside a string, backslash escapes only in
 * `E'…'` strings, `""` inside a quoted identifier, and `$tag$ … $tag$`
 * bodies whose tag may not start right after an identifier character
 * (`a$b` is one identifier, `$1` a parameter).
 */

/** One piece of SQL text. `dollar` pieces carry their tag and body. */
export type SqlSegment =
  | { kind: 'code' | 'space' | 'comment' | 'string' | 'identifier' | 'semicolon'; text: string }
  | { kind: 'dollar'; text: string; tag: string; body: string };

const IDENT_CHAR = /[A-Za-z0-9_$\u0080-\uffff]/;
const DOLLAR_TAG = /\$(?:[A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/y;
const SPACE = /\s/;

/** Cut `sql` into segments whose texts, joined, give back `sql` exactly. */
export function scanSql(sql: string): SqlSegment[] {
  const out: SqlSegment[] = [];
  let code = '';
  const flushCode = () => {
    if (code) out.push({ kind: 'code', text: code });
    code = '';
  };
  let i = 0;
  while (i < sql.length) {
    const c = sql[i]!;
    const next = sql[i + 1];
    const prev = i > 0 ? sql[i - 1]! : '';
    if (SPACE.test(c)) {
      let j = i + 1;
      while (j < sql.length && SPACE.test(sql[j]!)) j++;
      flushCode();
      out.push({ kind: 'space', text: sql.slice(i, j) });
      i = j;
    } else if (c === '-' && next === '-') {
      let j = sql.indexOf('\n', i);
      if (j < 0) j = sql.length;
      flushCode();
      out.push({ kind: 'comment', text: sql.slice(i, j) });
      i = j;
    } else if (c === '/' && next === '*') {
      const j = blockCommentEnd(sql, i);
      flushCode();
      out.push({ kind: 'comment', text: sql.slice(i, j) });
      i = j;
    } else if (c === "'") {
      // E'…' (the E not itself the end of a longer identifier) takes backslash escapes.
      const escapes = (prev === 'E' || prev === 'e') && !IDENT_CHAR.test(i > 1 ? sql[i - 2]! : '');
      const j = quotedEnd(sql, i, "'", escapes);
      flushCode();
      out.push({ kind: 'string', text: sql.slice(i, j) });
      i = j;
    } else if (c === '"') {
      const j = quotedEnd(sql, i, '"', false);
      flushCode();
      out.push({ kind: 'identifier', text: sql.slice(i, j) });
      i = j;
    } else if (c === '$' && !IDENT_CHAR.test(prev) && matchTag(sql, i) !== undefined) {
      const tag = matchTag(sql, i)!;
      const bodyStart = i + tag.length;
      const close = sql.indexOf(tag, bodyStart);
      const bodyEnd = close < 0 ? sql.length : close;
      const end = close < 0 ? sql.length : close + tag.length;
      flushCode();
      out.push({ kind: 'dollar', text: sql.slice(i, end), tag, body: sql.slice(bodyStart, bodyEnd) });
      i = end;
    } else if (c === ';') {
      flushCode();
      out.push({ kind: 'semicolon', text: ';' });
      i++;
    } else {
      code += c;
      i++;
    }
  }
  flushCode();
  return out;
}

function matchTag(sql: string, at: number): string | undefined {
  DOLLAR_TAG.lastIndex = at;
  return DOLLAR_TAG.exec(sql)?.[0];
}

/** End (exclusive) of the nested block comment starting at `at`; the text's end when unterminated. */
function blockCommentEnd(sql: string, at: number): number {
  let depth = 0;
  let i = at;
  while (i < sql.length) {
    if (sql[i] === '/' && sql[i + 1] === '*') {
      depth++;
      i += 2;
    } else if (sql[i] === '*' && sql[i + 1] === '/') {
      depth--;
      i += 2;
      if (depth === 0) return i;
    } else i++;
  }
  return sql.length;
}

/** End (exclusive) of the quoted text opening at `at`: a doubled quote is a quote, not the end. */
function quotedEnd(sql: string, at: number, quote: string, backslashEscapes: boolean): number {
  let i = at + 1;
  while (i < sql.length) {
    const c = sql[i]!;
    if (backslashEscapes && c === '\\') i += 2;
    else if (c === quote) {
      if (sql[i + 1] === quote) i += 2;
      else return i + 1;
    } else i++;
  }
  return sql.length;
}

const TIGHT = new Set(['(', ')', ',', ';']);

/**
 * The SQL with every comment removed and white space normalised: runs of
 * white space become one space, or nothing next to `( ) , ;` and at the
 * ends. String literals and quoted identifiers are kept exactly. Dollar-
 * quoted bodies are normalised the same way, recursively: in migrations
 * they are function and DO bodies, whose PL/pgSQL and SQL use the same
 * comment syntax (the price: a change inside a dollar-quoted *data* literal
 * that only touches `--` text would not count).
 */
export function normaliseSql(sql: string): string {
  let out = '';
  let gap = false;
  for (const seg of scanSql(sql)) {
    if (seg.kind === 'space' || seg.kind === 'comment') {
      gap = true;
      continue;
    }
    const text = seg.kind === 'dollar' ? `${seg.tag}${normaliseSql(seg.body)}${seg.tag}` : seg.text;
    if (gap && out !== '' && !TIGHT.has(out[out.length - 1]!) && !TIGHT.has(text[0]!)) out += ' ';
    gap = false;
    out += text;
  }
  return out;
}

/**
 * The statements of `sql`, split at semicolons outside comments, literals
 * and dollar-quoted bodies; each keeps its own text (comments included)
 * without the semicolon. Pieces holding only comments and white space are
 * dropped.
 */
export function splitStatements(sql: string): string[] {
  const statements: string[] = [];
  let text = '';
  let hasCode = false;
  for (const seg of scanSql(sql)) {
    if (seg.kind === 'semicolon') {
      if (hasCode) statements.push(text.trim());
      text = '';
      hasCode = false;
      continue;
    }
    text += seg.text;
    if (seg.kind !== 'space' && seg.kind !== 'comment') hasCode = true;
  }
  if (hasCode) statements.push(text.trim());
  return statements;
}
