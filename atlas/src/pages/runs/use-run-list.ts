import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { api, ApiError } from '../../api.js';
import { apiQueryFromFilters, type RunFilters } from '../../view/run-filters.js';
import { appendPage, applyLiveRun, emptyRunList, matchesFilters, mergeFirstPage, showPending, type RunListState } from '../../view/run-list.js';
import type { JobCount, JobListItem, JobPage } from './types.js';

/** Rows per page: a screen and a half at 1280×800, small enough to answer fast. */
export const PAGE_SIZE = 100;
// The list shows no input or result, so it asks with phi=mask (list pages and /v1/events): browsing
// runs reads no PHI and writes no PHI audit rows; the inspector's "Reveal PHI" is the audited read.

/** "At the top": live runs are inserted only then; otherwise they wait behind the "N new runs" pill. */
export function isAtTop(): boolean {
  return window.scrollY < 40;
}

export type LiveState = 'connecting' | 'live' | 'reconnecting' | 'off';

function asApiError(err: unknown): ApiError {
  return err instanceof ApiError ? err : new ApiError(0, 'CLIENT_ERROR', (err as Error)?.message ?? String(err));
}

const isAbort = (err: unknown) => (err as Error)?.name === 'AbortError';

export interface RunList {
  state: RunListState<JobListItem>;
  /** The first page is loading (a new filter shows no rows meanwhile; a reload keeps them). */
  loading: boolean;
  error: ApiError | null;
  loadingMore: boolean;
  moreError: ApiError | null;
  live: LiveState;
  /** Bumped by every successful first-page load: the count loads after it, never before. */
  loadedGen: number;
  /** Bumped when a live update changed what matches (the count is refreshed, lazily). */
  changes: number;
  loadMore: () => void;
  reload: () => void;
  showPending: () => void;
}

/**
 * The runs list for `filters` (`key`: their canonical query string): the first
 * page, "Load more" pages, and live updates from /v1/events merged by
 * view/run-list.ts so nothing the user looks at moves.
 */
export function useRunList(filters: RunFilters, key: string): RunList {
  const [state, setState] = useState<RunListState<JobListItem>>(emptyRunList);
  const [phase, setPhase] = useState<{ loading: boolean; error: ApiError | null }>({ loading: true, error: null });
  const [more, setMore] = useState<{ loading: boolean; error: ApiError | null }>({ loading: false, error: null });
  const [live, setLive] = useState<LiveState>('connecting');
  const [tick, setTick] = useState(0);
  const [loadedGen, setLoadedGen] = useState(0);
  const [changes, setChanges] = useState(0);

  const filtersRef = useRef(filters);
  filtersRef.current = filters;
  const stateRef = useRef(state);
  stateRef.current = state;
  /** The instant a relative window is fixed at for this list (its pages must agree). */
  const nowRef = useRef(new Date());
  /** Incremented per first-page load: answers for an older one are dropped. */
  const genRef = useRef(0);
  const readyRef = useRef(false);
  /** Live runs that arrived while the first page was loading, applied once it is there. */
  const stashRef = useRef<JobListItem[]>([]);
  const lastKeyRef = useRef<string | null>(null);
  const refetchTimer = useRef<number | undefined>(undefined);

  // The first page, on a new filter or a reload.
  useEffect(() => {
    const ctrl = new AbortController();
    const gen = ++genRef.current;
    const newFilter = lastKeyRef.current !== key;
    lastKeyRef.current = key;
    nowRef.current = new Date();
    readyRef.current = false;
    stashRef.current = [];
    window.clearTimeout(refetchTimer.current);
    if (newFilter) setState(emptyRunList());
    setPhase({ loading: true, error: null });
    setMore({ loading: false, error: null });
    api<JobPage>('/v1/jobs', { query: { ...apiQueryFromFilters(filtersRef.current, nowRef.current), limit: PAGE_SIZE, phi: 'mask' }, signal: ctrl.signal }).then(
      (page) => {
        if (gen !== genRef.current) return;
        let next: RunListState<JobListItem> = { items: page.items, nextCursor: page.nextCursor, pending: [] };
        for (const run of stashRef.current) {
          const m = matchesFilters(run, filtersRef.current, new Date());
          if (m !== 'unknown') next = applyLiveRun(next, run, { matches: m, atTop: isAtTop() });
        }
        stashRef.current = [];
        readyRef.current = true;
        setState(next);
        setPhase({ loading: false, error: null });
        setLoadedGen((g) => g + 1);
      },
      (err: unknown) => {
        if (isAbort(err) || gen !== genRef.current) return;
        // A failed or timed-out query is an error to show, never an empty list.
        setState(emptyRunList());
        setPhase({ loading: false, error: asApiError(err) });
      },
    );
    return () => ctrl.abort();
  }, [key, tick]);

  /** Fetch the first page again and merge it (after a reconnect; for business-field filters). */
  const refetchFirst = useCallback((delayMs: number, attempt = 0) => {
    window.clearTimeout(refetchTimer.current);
    refetchTimer.current = window.setTimeout(() => {
      if (!readyRef.current) return;
      const gen = genRef.current;
      api<JobPage>('/v1/jobs', { query: { ...apiQueryFromFilters(filtersRef.current, new Date()), limit: PAGE_SIZE, phi: 'mask' } }).then(
        (page) => {
          if (gen !== genRef.current) return;
          setState((s) => mergeFirstPage(s, page, { atTop: isAtTop() }));
          setChanges((c) => c + 1);
        },
        () => {
          // The list shown is still right as of its load; try again a little later so nothing is missed.
          if (gen === genRef.current && attempt < 3) refetchFirst(5_000, attempt + 1);
        },
      );
    }, delayMs);
  }, []);

  const onRun = useCallback(
    (run: JobListItem) => {
      if (!readyRef.current) {
        stashRef.current.push(run);
        return;
      }
      const m = matchesFilters(run, filtersRef.current, new Date());
      const s = stateRef.current;
      const known = s.items.some((r) => r.id === run.id) || s.pending.some((r) => r.id === run.id);
      if (m === 'unknown') {
        // Business fields are not in the event: update what is shown, ask the server about the rest.
        if (known) setState((cur) => applyLiveRun(cur, run, { matches: true, atTop: isAtTop() }));
        else refetchFirst(1_000);
        return;
      }
      if (!known && !m) return;
      setState((cur) => applyLiveRun(cur, run, { matches: m, atTop: isAtTop() }));
      setChanges((c) => c + 1);
    },
    [refetchFirst],
  );
  const onRunRef = useRef(onRun);
  onRunRef.current = onRun;

  // Live: one EventSource for the page's life. The browser reconnects by itself;
  // after any reconnect the first page is fetched again and merged (nothing missed).
  useEffect(() => {
    let es: EventSource | null = null;
    let wasDown = false;
    let retry: number | undefined;
    const connect = () => {
      es = new EventSource('/v1/events?phi=mask');
      es.onopen = () => {
        setLive('live');
        if (wasDown || readyRef.current) refetchFirst(0);
        wasDown = false;
      };
      es.addEventListener('job', (e) => {
        let run: JobListItem;
        try {
          run = JSON.parse((e as MessageEvent<string>).data) as JobListItem;
        } catch {
          return;
        }
        if (run && typeof run.id === 'string') onRunRef.current(run);
      });
      es.onerror = () => {
        wasDown = true;
        if (es && es.readyState === EventSource.CLOSED) {
          // Refused (signed out, or the server restarting): the browser gives up, so we try again.
          es.close();
          setLive('off');
          retry = window.setTimeout(connect, 10_000);
        } else {
          setLive('reconnecting');
        }
      };
    };
    connect();
    return () => {
      window.clearTimeout(retry);
      window.clearTimeout(refetchTimer.current);
      es?.close();
    };
  }, [refetchFirst]);

  const loadMore = useCallback(() => {
    const cursor = stateRef.current.nextCursor;
    if (!cursor || !readyRef.current) return;
    const gen = genRef.current;
    setMore({ loading: true, error: null });
    api<JobPage>('/v1/jobs', { query: { ...apiQueryFromFilters(filtersRef.current, nowRef.current), limit: PAGE_SIZE, phi: 'mask', cursor } }).then(
      (page) => {
        if (gen !== genRef.current) return;
        setState((s) => (s.nextCursor === cursor ? appendPage(s, page) : s));
        setMore({ loading: false, error: null });
      },
      (err: unknown) => {
        if (gen === genRef.current) setMore({ loading: false, error: asApiError(err) });
      },
    );
  }, []);

  const reload = useCallback(() => setTick((t) => t + 1), []);
  const show = useCallback(() => setState((s) => showPending(s)), []);

  return {
    state,
    loading: phase.loading,
    error: phase.error,
    loadingMore: more.loading,
    moreError: more.error,
    live,
    loadedGen,
    changes,
    loadMore,
    reload,
    showPending: show,
  };
}

export interface CountState {
  count: JobCount | null;
  error: ApiError | null;
  loading: boolean;
  reload: () => void;
}

/**
 * GET /v1/jobs/count, loaded only after the list's first page (`loadedGen`)
 * so it can never hold the list up; refreshed lazily after live changes.
 */
export function useRunCount(filters: RunFilters, key: string, loadedGen: number, changes: number): CountState {
  const [s, setS] = useState<{ count: JobCount | null; error: ApiError | null; loading: boolean }>({ count: null, error: null, loading: false });
  const [tick, setTick] = useState(0);
  const filtersRef = useRef(filters);
  filtersRef.current = filters;
  const keyRef = useRef(key);

  useEffect(() => {
    if (keyRef.current !== key) {
      keyRef.current = key;
      setS({ count: null, error: null, loading: false });
    }
  }, [key]);

  useEffect(() => {
    if (loadedGen === 0) return;
    const ctrl = new AbortController();
    setS((cur) => ({ ...cur, loading: true, error: null }));
    api<JobCount>('/v1/jobs/count', { query: apiQueryFromFilters(filtersRef.current, new Date()), signal: ctrl.signal }).then(
      (count) => setS({ count, error: null, loading: false }),
      (err: unknown) => {
        if (!isAbort(err)) setS({ count: null, error: asApiError(err), loading: false });
      },
    );
    return () => ctrl.abort();
    // key: a new filter aborts the count of the old one, which must never show under the new one.
  }, [loadedGen, tick, key]);

  // Live changes: count again, at most every 5 s (a busy stream must not postpone it forever).
  const timer = useRef<number | undefined>(undefined);
  useEffect(() => {
    if (changes === 0 || timer.current !== undefined) return;
    timer.current = window.setTimeout(() => {
      timer.current = undefined;
      setTick((n) => n + 1);
    }, 5_000);
  }, [changes]);
  useEffect(() => () => window.clearTimeout(timer.current), []);

  return { ...s, reload: useCallback(() => setTick((n) => n + 1), []) };
}
