/**
 * Line diff of two workflow definitions for the "Compare versions" view.
 * Both sides are pretty-printed the same way (two-space JSON), then diffed
 * line by line with Myers' O((N+M)·D) algorithm, so two versions that differ
 * in a few lines cost a few passes even for a long definition. DOM-free:
 * unit-tested under the server's test config.
 */

export type DiffKind = 'same' | 'add' | 'del';

/** One line of the unified result; `a`/`b` are 1-based line numbers on each side (absent on the side it is not on). */
export interface DiffLine {
  kind: DiffKind;
  text: string;
  a?: number;
  b?: number;
}

/** One row of the side-by-side view: a removed line opposite the line that replaced it, when there is one. */
export interface DiffRow {
  left: { line: number; text: string; kind: 'same' | 'del' } | null;
  right: { line: number; text: string; kind: 'same' | 'add' } | null;
}

export interface DiffSummary {
  added: number;
  removed: number;
  same: number;
}

/** The text both sides are compared as: two-space JSON, one value per line. `undefined` becomes an empty document. */
export function prettyJson(value: unknown): string {
  if (value === undefined) return '';
  return JSON.stringify(value, null, 2);
}

function splitLines(text: string): string[] {
  if (text === '') return [];
  return text.split('\n');
}

/**
 * The shortest edit script from `a` to `b` as lines (Myers, with the
 * trace kept per D so the path can be walked back). Deletions come before
 * insertions within a change, as in `diff -u`.
 */
export function diffLines(a: readonly string[], b: readonly string[]): DiffLine[] {
  const n = a.length;
  const m = b.length;
  const max = n + m;
  const offset = max;
  // v[k + offset] = furthest x on diagonal k; one snapshot per D for the walk back.
  let v = new Int32Array(2 * max + 2);
  const trace: Int32Array[] = [];
  let found = max === 0;
  for (let d = 0; d <= max && !found; d++) {
    trace.push(v.slice());
    const next = v;
    for (let k = -d; k <= d; k += 2) {
      let x: number;
      if (k === -d || (k !== d && next[k - 1 + offset]! < next[k + 1 + offset]!)) x = next[k + 1 + offset]!;
      else x = next[k - 1 + offset]! + 1;
      let y = x - k;
      while (x < n && y < m && a[x] === b[y]) {
        x++;
        y++;
      }
      next[k + offset] = x;
      if (x >= n && y >= m) {
        found = true;
        break;
      }
    }
    v = next;
  }
  trace.push(v.slice());

  // Walk back from (n, m) through the snapshots, collecting moves in reverse.
  const out: DiffLine[] = [];
  let x = n;
  let y = m;
  for (let d = trace.length - 2; d >= 0 && (x > 0 || y > 0); d--) {
    const snap = trace[d]!;
    const k = x - y;
    let prevK: number;
    if (k === -d || (k !== d && snap[k - 1 + offset]! < snap[k + 1 + offset]!)) prevK = k + 1;
    else prevK = k - 1;
    const prevX = d === 0 ? 0 : snap[prevK + offset]!;
    const prevY = d === 0 ? 0 : prevX - prevK;
    while (x > prevX && y > prevY) {
      out.push({ kind: 'same', text: a[x - 1]!, a: x, b: y });
      x--;
      y--;
    }
    if (d === 0) break;
    if (x === prevX) out.push({ kind: 'add', text: b[y - 1]!, b: y });
    else out.push({ kind: 'del', text: a[x - 1]!, a: x });
    x = prevX;
    y = prevY;
  }
  out.reverse();
  return orderChanges(out);
}

/** Within each run of changes, removed lines first, then added ones (the walk can interleave them). */
function orderChanges(lines: DiffLine[]): DiffLine[] {
  const out: DiffLine[] = [];
  let dels: DiffLine[] = [];
  let adds: DiffLine[] = [];
  const flush = () => {
    out.push(...dels, ...adds);
    dels = [];
    adds = [];
  };
  for (const line of lines) {
    if (line.kind === 'del') dels.push(line);
    else if (line.kind === 'add') adds.push(line);
    else {
      flush();
      out.push(line);
    }
  }
  flush();
  return out;
}

/** Diff two JSON values as pretty-printed text. */
export function diffJson(before: unknown, after: unknown): DiffLine[] {
  return diffLines(splitLines(prettyJson(before)), splitLines(prettyJson(after)));
}

export function summarize(lines: readonly DiffLine[]): DiffSummary {
  const s: DiffSummary = { added: 0, removed: 0, same: 0 };
  for (const l of lines) {
    if (l.kind === 'add') s.added++;
    else if (l.kind === 'del') s.removed++;
    else s.same++;
  }
  return s;
}

/**
 * Side-by-side rows: unchanged lines face each other; in a change, the i-th
 * removed line faces the i-th added line, and the longer side's rest faces
 * a blank.
 */
export function toSideBySide(lines: readonly DiffLine[]): DiffRow[] {
  const rows: DiffRow[] = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i]!;
    if (line.kind === 'same') {
      rows.push({ left: { line: line.a!, text: line.text, kind: 'same' }, right: { line: line.b!, text: line.text, kind: 'same' } });
      i++;
      continue;
    }
    const dels: DiffLine[] = [];
    const adds: DiffLine[] = [];
    while (i < lines.length && lines[i]!.kind === 'del') dels.push(lines[i++]!);
    while (i < lines.length && lines[i]!.kind === 'add') adds.push(lines[i++]!);
    for (let j = 0; j < Math.max(dels.length, adds.length); j++) {
      const d = dels[j];
      const a = adds[j];
      rows.push({
        left: d ? { line: d.a!, text: d.text, kind: 'del' } : null,
        right: a ? { line: a.b!, text: a.text, kind: 'add' } : null,
      });
    }
  }
  return rows;
}

/**
 * Keep only changed rows and `context` unchanged rows around them; each
 * skipped stretch becomes one `{ skipped: n }` marker (a long definition
 * with two changed lines shows those lines, not 400 identical ones).
 */
export function foldUnchanged<T extends { left: DiffRow['left']; right: DiffRow['right'] }>(
  rows: readonly T[],
  context = 3,
): (T | { skipped: number })[] {
  const changed = rows.map((r) => r.left?.kind !== 'same' || r.right?.kind !== 'same');
  const keep = rows.map(() => false);
  changed.forEach((c, i) => {
    if (!c) return;
    for (let j = Math.max(0, i - context); j <= Math.min(rows.length - 1, i + context); j++) keep[j] = true;
  });
  const out: (T | { skipped: number })[] = [];
  let skipped = 0;
  rows.forEach((r, i) => {
    if (keep[i]) {
      if (skipped > 0) out.push({ skipped });
      skipped = 0;
      out.push(r);
    } else skipped++;
  });
  if (skipped > 0) out.push({ skipped });
  return out;
}
