/**
 * The loaded runs list and what live updates do to it. Pure (no DOM) and
 * unit-tested: the page keeps one RunListState and every change — a page
 * loaded, a run's status changed, a new run, the first page fetched again
 * after a reconnect — goes through one of these functions.
 *
 * The rule: never move what the user is looking at. A run already in the
 * list is updated in place; a run new to the list goes in at its place in
 * the newest-first order only when the user is at the top of the list, and
 * otherwise waits in `pending` (the page shows an "N new runs" pill).
 */
import { windowBounds, type RunFilters } from './run-filters.js';

/** The fields of a JobListItem the list uses (GET /v1/jobs items, /v1/events data). */
export interface RunItem {
  id: string;
  runNumber: number;
  workflowId: string;
  workflowName?: string | null;
  clientId?: string | null;
  clientName?: string | null;
  status: string;
  initiatorType?: string;
  error?: { code?: string; message?: string; step?: string | null } | null;
  createdAt: string;
  startedAt?: string | null;
  completedAt?: string | null;
  durationMs?: number | null;
}

export interface RunListState<T extends RunItem = RunItem> {
  /** Newest first, as loaded (pages appended, live runs inserted). */
  items: T[];
  /** Cursor after the last loaded item (null: everything is loaded). */
  nextCursor: string | null;
  /** Runs new to the list held back while the user is scrolled down; newest first. */
  pending: T[];
}

export function emptyRunList<T extends RunItem>(): RunListState<T> {
  return { items: [], nextCursor: null, pending: [] };
}

/** Newest first: creation time, then run number (the server's keyset order). */
export function compareRuns(a: RunItem, b: RunItem): number {
  const ta = Date.parse(a.createdAt);
  const tb = Date.parse(b.createdAt);
  if (ta !== tb) return tb - ta;
  return b.runNumber - a.runNumber;
}

/**
 * Does a run match the filters, judged here without asking the server?
 * 'unknown' when business-field filters are active (the run's indexed
 * values are not in the event): the page fetches the first page instead.
 */
export function matchesFilters(run: RunItem, f: RunFilters, now: Date): boolean | 'unknown' {
  if (f.statuses.length > 0 && !(f.statuses as readonly string[]).includes(run.status)) return false;
  if (f.workflowId && run.workflowId !== f.workflowId) return false;
  if (f.clientId && run.clientId !== f.clientId) return false;
  if (f.initiatorType && run.initiatorType !== f.initiatorType) return false;
  if (f.errorCode && run.error?.code !== f.errorCode) return false;
  const created = Date.parse(run.createdAt);
  const { from, to } = windowBounds(f.window, now);
  if (from && created < from.getTime()) return false;
  if (to && created >= to.getTime()) return false;
  if (f.search.length > 0) return 'unknown';
  return true;
}

/** A page from GET /v1/jobs after the last one: appended, skipping runs a live update already put in. */
export function appendPage<T extends RunItem>(state: RunListState<T>, page: { items: T[]; nextCursor: string | null }): RunListState<T> {
  const have = new Set(state.items.map((r) => r.id));
  return { ...state, items: [...state.items, ...page.items.filter((r) => !have.has(r.id))], nextCursor: page.nextCursor };
}

/** Could `run` be among the loaded items by its place in the order (not past the last loaded page)? */
function withinLoaded(state: RunListState, run: RunItem): boolean {
  if (state.nextCursor === null) return true;
  const last = state.items[state.items.length - 1];
  return last !== undefined && compareRuns(run, last) <= 0;
}

function insertSorted<T extends RunItem>(items: readonly T[], run: T): T[] {
  const out = items.slice();
  let i = 0;
  while (i < out.length && compareRuns(out[i]!, run) <= 0) i++;
  out.splice(i, 0, run);
  return out;
}

/**
 * One run from the live stream. `matches`: matchesFilters' answer (an
 * 'unknown' run is not inserted here: the page fetches the first page and
 * calls mergeFirstPage). `atTop`: the user is at the top of the list.
 */
export function applyLiveRun<T extends RunItem>(state: RunListState<T>, run: T, opts: { matches: boolean; atTop: boolean }): RunListState<T> {
  const at = state.items.findIndex((r) => r.id === run.id);
  if (at >= 0) {
    // Already shown: update in place, even if it no longer matches (a row vanishing under the pointer is worse).
    const items = state.items.slice();
    items[at] = run;
    return { ...state, items };
  }
  const p = state.pending.findIndex((r) => r.id === run.id);
  if (p >= 0) {
    const pending = state.pending.slice();
    if (opts.matches) pending[p] = run;
    else pending.splice(p, 1);
    return { ...state, pending };
  }
  if (!opts.matches) return state;
  // Older than everything loaded with more pages to come: "Load more" will bring it in its place.
  if (!withinLoaded(state, run)) return state;
  if (opts.atTop) return { ...state, items: insertSorted(state.items, run) };
  return { ...state, pending: insertSorted(state.pending, run) };
}

/**
 * The first page fetched again (after a reconnect, or because a business-field
 * filter is active): runs already shown are updated in place, runs new to the
 * list are inserted (at the top) or held in `pending` (scrolled down). Nothing
 * the live stream missed while disconnected is lost, nothing shown is moved.
 */
export function mergeFirstPage<T extends RunItem>(state: RunListState<T>, page: { items: T[]; nextCursor: string | null }, opts: { atTop: boolean }): RunListState<T> {
  if (state.items.length === 0 && state.pending.length === 0) return { items: page.items.slice(), nextCursor: page.nextCursor, pending: [] };
  let next = state;
  for (const run of page.items) {
    const known = next.items.some((r) => r.id === run.id) || next.pending.some((r) => r.id === run.id);
    // A new run older than everything loaded belongs to a page not yet loaded.
    if (!known && !withinLoaded(next, run)) continue;
    next = applyLiveRun(next, run, { matches: true, atTop: opts.atTop });
  }
  return next;
}

/** The "N new runs" pill clicked (or the user scrolled back to the top): held runs join the list. */
export function showPending<T extends RunItem>(state: RunListState<T>): RunListState<T> {
  if (state.pending.length === 0) return state;
  let items = state.items;
  for (const run of state.pending) if (!items.some((r) => r.id === run.id)) items = insertSorted(items, run);
  return { ...state, items, pending: [] };
}
