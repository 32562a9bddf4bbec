import { useCallback, useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api } from '../../api.js';
import { ErrorBox } from '../../components/error-box.js';
import { Loading } from '../../components/loading.js';
import { useQuery, useTitle } from '../../hooks.js';
import { navigate, type Location } from '../../router.js';
import { useCan } from '../../session.js';
import { formatTime, useZone } from '../../time.js';
import { describeWindow, filtersFromQuery, queryFromFilters, type RunFilters } from '../../view/run-filters.js';
import { BulkActions, countText } from './bulk.js';
import { FilterBar, FIRST_FILTER_ID } from './filter-bar.js';
import { RunTable } from './run-table.js';
import './runs.css';
import { SavedViews } from './saved-views.js';
import type { ClientSummary, WorkflowSummary } from './types.js';
import { isAtTop, useRunCount, useRunList, type LiveState } from './use-run-list.js';

const LIVE_TEXT: Record<LiveState, string> = { connecting: 'Connecting…', live: 'Live', reconnecting: 'Reconnecting…', off: 'Live updates off' };

function focusRow(id: string): void {
  const row = document.querySelector<HTMLTableRowElement>(`.runs-table tr[data-id="${id}"]`);
  if (!row) return;
  row.focus({ preventScroll: true });
  row.scrollIntoView({ block: 'nearest' });
}

/** /runs: the runs list, its filters (all in the URL), saved views, live updates and bulk actions. */
export function RunsPage(props: { loc: Location }) {
  useTitle('Runs');
  const zone = useZone();
  const canControl = useCan('controlJobs');
  const search = props.loc.query.toString();
  const filters = useMemo(() => filtersFromQuery(new URLSearchParams(search)), [search]);
  const key = useMemo(() => queryFromFilters(filters).toString(), [filters]);

  // Every filter edit rewrites the address (replace: the back button leaves the page, not each keystroke).
  const setFilters = useCallback((f: RunFilters) => {
    const q = queryFromFilters(f).toString();
    navigate(`/runs${q ? `?${q}` : ''}`, { replace: true });
  }, []);

  const workflows = useQuery((signal) => api<{ items: WorkflowSummary[] }>('/v1/workflows', { query: { limit: 500 }, signal }), []);
  const clients = useQuery((signal) => api<{ items: ClientSummary[] }>('/v1/clients', { query: { limit: 500 }, signal }), []);
  const workflow = useQuery(
    (signal) => (filters.workflowId ? api<WorkflowSummary>(`/v1/workflows/${filters.workflowId}`, { signal }) : Promise.resolve(null)),
    [filters.workflowId],
  );
  const searchKeys = filters.workflowId && workflow.data ? (workflow.data.definition?.searchKeys ?? []) : null;

  const list = useRunList(filters, key);
  const count = useRunCount(filters, key, list.loadedGen, list.changes);
  const items = list.state.items;
  const pending = list.state.pending.length;

  // Selection (bulk actions) and the keyboard's highlighted row; a new filter starts afresh.
  const [selected, setSelected] = useState<ReadonlySet<string>>(new Set());
  const [allMatching, setAllMatching] = useState(false);
  const [highlight, setHighlight] = useState<string | null>(null);
  useEffect(() => {
    setSelected(new Set());
    setAllMatching(false);
    setHighlight(null);
  }, [key]);

  const toggle = useCallback((id: string) => {
    setAllMatching(false);
    setSelected((s) => {
      const next = new Set(s);
      if (next.has(id)) next.delete(id);
      else next.add(id);
      return next;
    });
  }, []);
  const togglePage = (select: boolean) => {
    setAllMatching(false);
    setSelected(select ? new Set(items.map((r) => r.id)) : new Set());
  };
  const clearSelection = useCallback(() => {
    setSelected(new Set());
    setAllMatching(false);
  }, []);

  // Rows a live update put in at the top since the page loaded get a brief highlight.
  const fresh = useRef(new Set<string>());
  const prevItems = useRef<{ key: string; first: string | null; gen: number }>({ key: '', first: null, gen: -1 });
  if (prevItems.current.key !== key || prevItems.current.gen !== list.loadedGen) {
    fresh.current = new Set();
    prevItems.current = { key, first: items[0]?.id ?? null, gen: list.loadedGen };
  } else if (items[0] && items[0].id !== prevItems.current.first) {
    for (const r of items) {
      if (r.id === prevItems.current.first) break;
      fresh.current.add(r.id);
    }
    prevItems.current = { ...prevItems.current, first: items[0].id };
  }

  // Back at the top with runs waiting: they join the list (inserting there moves nothing the user looks at).
  useEffect(() => {
    if (pending === 0) return;
    const onScroll = () => {
      if (isAtTop()) list.showPending();
    };
    window.addEventListener('scroll', onScroll, { passive: true });
    return () => window.removeEventListener('scroll', onScroll);
  }, [pending, list.showPending]);

  // Keyboard: j/k (or arrows in the table) move, Enter opens, x selects, "/" goes to the filters.
  const itemsRef = useRef(items);
  itemsRef.current = items;
  const highlightRef = useRef(highlight);
  highlightRef.current = highlight;
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.defaultPrevented || e.metaKey || e.ctrlKey || e.altKey) return;
      if (document.querySelector('dialog[open]')) return;
      const target = e.target as HTMLElement;
      const inField = !!target.closest?.('input, select, textarea, [contenteditable="true"]');
      if (e.key === '/' && !inField) {
        e.preventDefault();
        document.getElementById(FIRST_FILTER_ID)?.focus();
        return;
      }
      if (inField) return;
      const inTable = !!target.closest?.('.runs-table');
      const rows = itemsRef.current;
      const down = e.key === 'j' || (e.key === 'ArrowDown' && inTable);
      const up = e.key === 'k' || (e.key === 'ArrowUp' && inTable);
      if (down || up) {
        if (rows.length === 0) return;
        e.preventDefault();
        const i = rows.findIndex((r) => r.id === highlightRef.current);
        const next = i < 0 ? 0 : Math.max(0, Math.min(rows.length - 1, i + (down ? 1 : -1)));
        const id = rows[next]!.id;
        setHighlight(id);
        focusRow(id);
        return;
      }
      const current = highlightRef.current;
      if (!current || !rows.some((r) => r.id === current)) return;
      if (e.key === 'Enter' && (target.tagName === 'TR' || target === document.body)) {
        e.preventDefault();
        navigate(`/runs/${current}`);
      } else if (e.key === 'x' && canControl) {
        e.preventDefault();
        toggle(current);
      }
    };
    document.addEventListener('keydown', onKey);
    return () => document.removeEventListener('keydown', onKey);
  }, [canControl, toggle]);

  const fmt = (iso: string) => formatTime(iso, zone);
  const windowText = describeWindow(filters.window, fmt);
  const selectedIds = useMemo(() => items.filter((r) => selected.has(r.id)).map((r) => r.id), [items, selected]);
  const allOnPageSelected = items.length > 0 && items.every((r) => selected.has(r.id));
  const widen = 'preset' in filters.window && filters.window.preset !== '30d';

  return (
    <div class="runs-page">
      <div class="runs-head">
        <h1>Runs</h1>
        <span class="run-count" aria-live="polite">
          {count.count ? (
            <>
              <strong>{countText(count.count)}</strong> <span class="muted">in {windowText}</span>
            </>
          ) : count.error ? (
            <span class="count-error" role="status">
              Count unavailable ({count.error.code}){' '}
              <button type="button" class="link-button" onClick={count.reload}>
                Retry count
              </button>
            </span>
          ) : list.error || list.loadedGen === 0 ? null : (
            <span class="muted">Counting…</span>
          )}
        </span>
        <span class={`live-state ${list.live}`} role="status" title="Runs that change appear here as they change">
          <span class="dot" aria-hidden="true" />
          {LIVE_TEXT[list.live]}
        </span>
        <span class="head-spacer" />
        <SavedViews query={key} />
      </div>

      <FilterBar
        filters={filters}
        zone={zone}
        workflows={workflows.data?.items}
        workflowsError={workflows.error}
        clients={clients.data?.items}
        clientsError={clients.error}
        searchKeys={searchKeys}
        keyLoading={!!filters.workflowId && workflow.loading}
        keyError={filters.workflowId ? workflow.error : null}
        onChange={setFilters}
      />

      {canControl && (
        <BulkActions
          selectedIds={selectedIds}
          allMatching={allMatching}
          loadedCount={items.length}
          allOnPageSelected={allOnPageSelected}
          hasMore={list.state.nextCursor !== null}
          count={count.count}
          filters={filters}
          windowText={windowText}
          onSelectAllMatching={() => setAllMatching(true)}
          onClear={clearSelection}
          // The count follows the list's reload (it always loads after the first page).
          onFinished={list.reload}
        />
      )}

      {pending > 0 && (
        <div class="new-runs">
          <button
            type="button"
            class="new-runs-pill"
            onClick={() => {
              list.showPending();
              window.scrollTo({ top: 0 });
            }}
          >
            ↑ {pending} new run{pending === 1 ? '' : 's'}
          </button>
        </div>
      )}

      {list.error ? (
        <ErrorBox error={list.error} what="the runs" onRetry={list.reload} />
      ) : list.loading && items.length === 0 ? (
        <Loading what="runs" />
      ) : items.length === 0 ? (
        <div class="empty card" role="status">
          <p>
            <strong>No runs match these filters</strong> in {windowText}.
          </p>
          <p class="empty-actions">
            {widen && (
              <button type="button" onClick={() => setFilters({ ...filters, window: { preset: '30d' } })}>
                Look at the last 30 days
              </button>
            )}
            {key !== '' && key !== 'window=30d' && (
              <button type="button" class="ghost" onClick={() => setFilters(filtersFromQuery(new URLSearchParams()))}>
                Reset all filters
              </button>
            )}
          </p>
        </div>
      ) : (
        <>
          <div class={`table-wrap ${list.loading ? 'reloading' : ''}`} aria-busy={list.loading}>
            <RunTable
              items={items}
              zone={zone}
              canSelect={canControl}
              selected={selected}
              allMatching={allMatching}
              highlightId={highlight}
              fresh={fresh.current}
              onHighlight={setHighlight}
              onToggle={toggle}
              onTogglePage={togglePage}
            />
          </div>
          <div class="list-foot">
            <span class="muted small">
              {items.length.toLocaleString('en-US')} shown{count.count ? ` of ${countText(count.count)}` : ''} · newest first ·{' '}
              <kbd>j</kbd>/<kbd>k</kbd> move, <kbd>Enter</kbd> opens{canControl ? <>, <kbd>x</kbd> selects</> : null}, <kbd>/</kbd> filters
            </span>
            {list.moreError && <ErrorBox error={list.moreError} what="more runs" onRetry={list.loadMore} />}
            {list.state.nextCursor ? (
              <button type="button" onClick={list.loadMore} disabled={list.loadingMore}>
                {list.loadingMore ? 'Loading…' : 'Load more'}
              </button>
            ) : (
              <span class="muted small">
                End of the list for {windowText}.
                {widen && (
                  <>
                    {' '}
                    <button type="button" class="link-button" onClick={() => setFilters({ ...filters, window: { preset: '30d' } })}>
                      Look at the last 30 days
                    </button>
                  </>
                )}
              </span>
            )}
          </div>
        </>
      )}
    </div>
  );
}
