import { describe, expect, it } from 'vitest';
import { emptyFilters, type RunFilters } from '../../atlas/src/view/run-filters.js';
import {
  appendPage,
  applyLiveRun,
  emptyRunList,
  matchesFilters,
  mergeFirstPage,
  showPending,
  type RunItem,
  type RunListState,
} from '../../atlas/src/view/run-list.js';

const WF = 'wf-1';
const now = new Date('2026-03-10T12:00:00.000Z');

/** Run n, created n minutes after 11:00 (a higher n is newer). */
function run(n: number, extra: Partial<RunItem> = {}): RunItem {
  return { id: `job-${n}`, runNumber: n, workflowId: WF, status: 'RUNNING', initiatorType: 'API', createdAt: new Date(Date.parse('2026-03-10T11:00:00Z') + n * 60_000).toISOString(), ...extra };
}

const ids = (s: RunListState) => s.items.map((r) => r.runNumber);

/** Runs 10..6 loaded, more to come after 6. */
function loaded(): RunListState {
  return appendPage(emptyRunList(), { items: [run(10), run(9), run(8), run(7), run(6)], nextCursor: 'c1' });
}

describe('matchesFilters', () => {
  it('checks status, workflow, client, initiator, error code and the window', () => {
    const f: RunFilters = { ...emptyFilters(), statuses: ['FAILED'], workflowId: WF, clientId: 'c', initiatorType: 'API', errorCode: 'E' };
    const ok = run(1, { status: 'FAILED', clientId: 'c', error: { code: 'E' } });
    expect(matchesFilters(ok, f, now)).toBe(true);
    expect(matchesFilters({ ...ok, status: 'COMPLETED' }, f, now)).toBe(false);
    expect(matchesFilters({ ...ok, workflowId: 'other' }, f, now)).toBe(false);
    expect(matchesFilters({ ...ok, clientId: null }, f, now)).toBe(false);
    expect(matchesFilters({ ...ok, initiatorType: 'MANUAL' }, f, now)).toBe(false);
    expect(matchesFilters({ ...ok, error: { code: 'F' } }, f, now)).toBe(false);
    const hour: RunFilters = { ...emptyFilters(), window: { preset: '1h' } };
    expect(matchesFilters(run(1), hour, now)).toBe(true);
    expect(matchesFilters({ ...run(1), createdAt: '2026-03-10T10:59:59.000Z' }, hour, now)).toBe(false);
    const custom: RunFilters = { ...emptyFilters(), window: { from: null, to: '2026-03-10T11:05:00.000Z' } };
    expect(matchesFilters(run(4), custom, now)).toBe(true);
    expect(matchesFilters(run(5), custom, now)).toBe(false);
  });

  it('cannot judge business fields locally', () => {
    const f: RunFilters = { ...emptyFilters(), search: [{ key: 'input.memberId', value: 'M-1' }] };
    expect(matchesFilters(run(1), f, now)).toBe('unknown');
    // …but a run that fails another filter is still known not to match.
    expect(matchesFilters(run(1), { ...f, statuses: ['FAILED'] }, now)).toBe(false);
  });
});

describe('pages', () => {
  it('appends a page, skipping runs a live update already inserted', () => {
    let s = applyLiveRun(loaded(), run(5), { matches: true, atTop: true });
    expect(ids(s)).toEqual([10, 9, 8, 7, 6]); // older than the loaded pages: Load more brings it
    s = appendPage({ ...loaded(), items: [...loaded().items, run(5)] }, { items: [run(5), run(4)], nextCursor: null });
    expect(ids(s)).toEqual([10, 9, 8, 7, 6, 5, 4]);
    expect(s.nextCursor).toBeNull();
  });
});

describe('applyLiveRun', () => {
  it('updates a shown run in place, even one that no longer matches', () => {
    const s = applyLiveRun(loaded(), run(8, { status: 'FAILED' }), { matches: false, atTop: false });
    expect(ids(s)).toEqual([10, 9, 8, 7, 6]);
    expect(s.items[2]!.status).toBe('FAILED');
  });

  it('inserts a new matching run at the top when the user is at the top', () => {
    const s = applyLiveRun(loaded(), run(11), { matches: true, atTop: true });
    expect(ids(s)).toEqual([11, 10, 9, 8, 7, 6]);
    expect(s.pending).toEqual([]);
  });

  it('holds a new run back when the user has scrolled down, and shows it on request', () => {
    let s = applyLiveRun(loaded(), run(11), { matches: true, atTop: false });
    s = applyLiveRun(s, run(12), { matches: true, atTop: false });
    expect(ids(s)).toEqual([10, 9, 8, 7, 6]);
    expect(s.pending.map((r) => r.runNumber)).toEqual([12, 11]);
    // A held run that changes is updated where it waits; one that stops matching leaves.
    s = applyLiveRun(s, run(12, { status: 'COMPLETED' }), { matches: true, atTop: false });
    expect(s.pending[0]!.status).toBe('COMPLETED');
    s = applyLiveRun(s, run(11, { status: 'CANCELLED' }), { matches: false, atTop: false });
    expect(s.pending.map((r) => r.runNumber)).toEqual([12]);
    s = showPending(s);
    expect(ids(s)).toEqual([12, 10, 9, 8, 7, 6]);
    expect(s.pending).toEqual([]);
  });

  it('ignores new runs that do not match', () => {
    const s = loaded();
    expect(applyLiveRun(s, run(11), { matches: false, atTop: true })).toBe(s);
  });

  it('puts a run that newly matches at its place in the order', () => {
    // Filter FAILED: run 7.5 (created between 7 and 8, not shown) just failed.
    const between = { ...run(7), id: 'job-7b', runNumber: 70, createdAt: new Date(Date.parse(run(7).createdAt) + 30_000).toISOString() };
    const s = applyLiveRun(loaded(), between, { matches: true, atTop: true });
    expect(s.items.map((r) => r.id)).toEqual(['job-10', 'job-9', 'job-8', 'job-7b', 'job-7', 'job-6']);
  });

  it('takes any matching run into a fully loaded list', () => {
    const all = appendPage(emptyRunList(), { items: [run(10), run(9)], nextCursor: null });
    expect(ids(applyLiveRun(all, run(3), { matches: true, atTop: true }))).toEqual([10, 9, 3]);
    expect(ids(applyLiveRun(emptyRunList(), run(3), { matches: true, atTop: true }))).toEqual([3]);
  });
});

describe('mergeFirstPage', () => {
  it('fills an empty list', () => {
    const s = mergeFirstPage(emptyRunList(), { items: [run(2), run(1)], nextCursor: 'x' }, { atTop: false });
    expect(ids(s)).toEqual([2, 1]);
    expect(s.nextCursor).toBe('x');
  });

  it('after a reconnect: updates shown runs, inserts missed ones at the top, keeps deeper pages and their cursor', () => {
    const before = appendPage(loaded(), { items: [run(5), run(4)], nextCursor: 'c2' });
    const page = { items: [run(12), run(11), run(10, { status: 'COMPLETED' }), run(9)], nextCursor: 'p1' };
    const s = mergeFirstPage(before, page, { atTop: true });
    expect(ids(s)).toEqual([12, 11, 10, 9, 8, 7, 6, 5, 4]);
    expect(s.items[2]!.status).toBe('COMPLETED');
    expect(s.nextCursor).toBe('c2');
  });

  it('holds missed runs in pending when scrolled down, moving nothing', () => {
    const s = mergeFirstPage(loaded(), { items: [run(12), run(11), run(10, { status: 'FAILED' })], nextCursor: 'p1' }, { atTop: false });
    expect(ids(s)).toEqual([10, 9, 8, 7, 6]);
    expect(s.items[0]!.status).toBe('FAILED');
    expect(s.pending.map((r) => r.runNumber)).toEqual([12, 11]);
    // Merging the same page again changes nothing more.
    const again = mergeFirstPage(s, { items: [run(12), run(11)], nextCursor: 'p1' }, { atTop: false });
    expect(again.pending.map((r) => r.runNumber)).toEqual([12, 11]);
  });
});
