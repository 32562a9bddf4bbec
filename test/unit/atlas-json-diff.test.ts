import { describe, expect, it } from 'vitest';
import { diffJson, diffLines, foldUnchanged, prettyJson, summarize, toSideBySide, type DiffLine } from '../../atlas/src/view/json-diff.js';

/** Length of the longest common subsequence, by the textbook table: the diff must keep exactly that many lines. */
function lcsLength(a: readonly string[], b: readonly string[]): number {
  const t = Array.from({ length: a.length + 1 }, () => new Array<number>(b.length + 1).fill(0));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) t[i]![j] = a[i - 1] === b[j - 1] ? t[i - 1]![j - 1]! + 1 : Math.max(t[i - 1]![j]!, t[i]![j - 1]!);
  }
  return t[a.length]![b.length]!;
}

/** Applying the script to `a` must give `b`; the kept lines must be `a`'s, in order. */
function check(a: string[], b: string[], d: DiffLine[]): void {
  expect(d.filter((l) => l.kind !== 'add').map((l) => l.text)).toEqual(a);
  expect(d.filter((l) => l.kind !== 'del').map((l) => l.text)).toEqual(b);
  expect(d.filter((l) => l.kind !== 'add').map((l) => l.a)).toEqual(a.map((_, i) => i + 1));
  expect(d.filter((l) => l.kind !== 'del').map((l) => l.b)).toEqual(b.map((_, i) => i + 1));
}

describe('atlas json diff', () => {
  it('marks one changed line as removed then added', () => {
    const d = diffLines(['{', '  "a": 1,', '  "b": 2', '}'], ['{', '  "a": 1,', '  "b": 3', '}']);
    expect(d.map((l) => `${l.kind} ${l.text}`)).toEqual(['same {', 'same   "a": 1,', 'del   "b": 2', 'add   "b": 3', 'same }']);
    expect(summarize(d)).toEqual({ added: 1, removed: 1, same: 3 });
  });

  it('handles empty sides', () => {
    expect(diffLines([], [])).toEqual([]);
    expect(diffLines([], ['x', 'y']).map((l) => l.kind)).toEqual(['add', 'add']);
    expect(diffLines(['x', 'y'], []).map((l) => l.kind)).toEqual(['del', 'del']);
    expect(diffLines(['x'], ['x'])).toEqual([{ kind: 'same', text: 'x', a: 1, b: 1 }]);
  });

  it('finds a shortest edit script (as many kept lines as the LCS) on random inputs', () => {
    let seed = 42;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
    for (let round = 0; round < 300; round++) {
      const a = Array.from({ length: Math.floor(rnd() * 14) }, () => 'abcd'[Math.floor(rnd() * 4)]!);
      const b = Array.from({ length: Math.floor(rnd() * 14) }, () => 'abcd'[Math.floor(rnd() * 4)]!);
      const d = diffLines(a, b);
      check(a, b, d);
      expect(summarize(d).same).toBe(lcsLength(a, b));
    }
  });

  it('diffs two workflow definitions as pretty JSON: an added step is added lines only', () => {
    const v1 = { steps: [{ id: 'fetch', type: 'http' }] };
    const v2 = { steps: [{ id: 'fetch', type: 'http' }, { id: 'notify', type: 'log' }] };
    const d = diffJson(v1, v2);
    check(prettyJson(v1).split('\n'), prettyJson(v2).split('\n'), d);
    // The shortest script keeps the old step's closing brace as the new step's: four lines added, none removed.
    expect(summarize(d)).toEqual({ added: 4, removed: 0, same: 8 });
    expect(d.filter((l) => l.kind === 'add').map((l) => l.text.trim())).toEqual(['},', '{', '"id": "notify",', '"type": "log"']);
  });

  it('pairs removed and added lines side by side, blanks opposite the rest', () => {
    const rows = toSideBySide(diffLines(['a', 'b', 'c', 'z'], ['a', 'B', 'z']));
    expect(rows).toEqual([
      { left: { line: 1, text: 'a', kind: 'same' }, right: { line: 1, text: 'a', kind: 'same' } },
      { left: { line: 2, text: 'b', kind: 'del' }, right: { line: 2, text: 'B', kind: 'add' } },
      { left: { line: 3, text: 'c', kind: 'del' }, right: null },
      { left: { line: 4, text: 'z', kind: 'same' }, right: { line: 3, text: 'z', kind: 'same' } },
    ]);
  });

  it('folds long unchanged stretches, keeping context around changes', () => {
    const a = Array.from({ length: 30 }, (_, i) => `line ${i}`);
    const b = [...a];
    b[15] = 'changed';
    const folded = foldUnchanged(toSideBySide(diffLines(a, b)), 2);
    expect(folded[0]).toEqual({ skipped: 13 });
    expect(folded.filter((r) => !('skipped' in r))).toHaveLength(5);
    expect(folded[folded.length - 1]).toEqual({ skipped: 12 });
    expect(foldUnchanged(toSideBySide(diffLines(a, a)))).toEqual([{ skipped: 30 }]);
  });
});
