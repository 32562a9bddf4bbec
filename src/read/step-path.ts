/**
 * The grammar of a stream row's step path, as the engine writes it: a step
 * of a list inside a block is `<block path>.<label>.<step id>` for a branch
 * (`route.then.big`, `src.1.p`, `enrich.crm.score`) and `<block path>[<n>].<step id>`
 * for a loop iteration (`inv[17].call`); an iteration's own rows carry the
 * list's path (`inv[17]`). Paths nest (`outer[3].inner.then.x`).
 */

/** One list on the way down a path: a branch by its label, or a loop iteration by its index. */
export type PathList = { kind: 'branch'; label: string; path: string } | { kind: 'iteration'; index: number; path: string };

/** One step on the way down a path. */
export interface PathStep {
  id: string;
  path: string;
}

/**
 * A path split into its top-level step, then (list, step) pairs; `end` says
 * whether the path names a step (`inv[17].call`) or a list (`inv[17]`).
 */
export interface ParsedStepPath {
  top: string;
  hops: { list: PathList; step: PathStep | null }[];
  end: 'step' | 'list';
}

const TOKEN = /^([A-Za-z0-9_]+)((?:\[\d{1,9}\])*)$/;
const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Parse a path; null when it does not follow the grammar (such a row is
 * left out of the nested view rather than put in the wrong place).
 */
export function parseStepPath(path: string): ParsedStepPath | null {
  // Expand `inv[17]` into `inv`, `[17]`: the parts then alternate step, list, step, ….
  const parts: string[] = [];
  for (const token of path.split('.')) {
    const m = TOKEN.exec(token);
    if (!m) return null;
    parts.push(m[1]!);
    for (const index of m[2]!.match(/\[\d+\]/g) ?? []) parts.push(index);
  }
  const top = parts[0]!;
  if (!NAME.test(top)) return null;
  const hops: ParsedStepPath['hops'] = [];
  let at = top;
  for (let i = 1; i < parts.length; i += 2) {
    const label = parts[i]!;
    let list: PathList;
    if (label.startsWith('[')) {
      at = `${at}${label}`;
      list = { kind: 'iteration', index: Number(label.slice(1, -1)), path: at };
    } else {
      at = `${at}.${label}`;
      list = { kind: 'branch', label, path: at };
    }
    const id = parts[i + 1];
    if (id === undefined) {
      hops.push({ list, step: null });
      return { top, hops, end: 'list' };
    }
    if (!NAME.test(id)) return null;
    at = `${at}.${id}`;
    hops.push({ list, step: { id, path: at } });
  }
  return { top, hops, end: 'step' };
}
