import { useEffect, useMemo, useState } from 'preact/hooks';
import { api } from '../../api.js';
import { ErrorBox } from '../../components/error-box.js';
import { Link } from '../../components/link.js';
import { Loading } from '../../components/loading.js';
import { useQuery, useTitle } from '../../hooks.js';
import { navigate, type Location } from '../../router.js';
import { formatTime, useZone } from '../../time.js';
import { formatPercent } from '../settings/kit.js';
import type { Page, Workflow, WorkflowStats } from './types.js';

/** At most this many pages of 500: a list past 5,000 workflows would want server-side search. */
const MAX_PAGES = 10;

/** Every workflow of the organization (paged through; the list route has no name filter, so search is here). */
async function loadAll(signal: AbortSignal, includeArchived: boolean): Promise<{ items: Workflow[]; truncated: boolean }> {
  const items: Workflow[] = [];
  let cursor: string | null = null;
  for (let i = 0; i < MAX_PAGES; i++) {
    const page: Page<Workflow> = await api<Page<Workflow>>('/v1/workflows', { query: { limit: 500, cursor, includeArchived: includeArchived || undefined }, signal });
    items.push(...page.items);
    cursor = page.nextCursor;
    if (!cursor) return { items, truncated: false };
  }
  return { items, truncated: true };
}

function matches(w: Workflow, terms: string[]): boolean {
  const hay = `${w.name} ${w.category ?? ''} ${w.description ?? ''} ${w.id}`.toLowerCase();
  return terms.every((t) => hay.includes(t));
}

export function WorkflowsPage(props: { loc: Location }) {
  useTitle('Workflows');
  const zone = useZone();
  const q = props.loc.query.get('q') ?? '';
  const archived = props.loc.query.get('archived') === '1';
  // The search box edits local text at once and the URL (replace, no history entry per key) with it.
  const [text, setText] = useState(q);
  // Back/forward changes the URL under the box: follow it (typing keeps the box's own spacing).
  useEffect(() => {
    setText((t) => (t.trim() === q.trim() ? t : q));
  }, [q]);
  const list = useQuery((signal) => loadAll(signal, archived), [archived]);
  // Runs of the last 24 h: a separate, cheap aggregate read; its failure only blanks those columns.
  const stats = useQuery(
    (signal) =>
      api<{ items: WorkflowStats[] }>('/v1/analytics/workflows', {
        query: { from: new Date(Date.now() - 86_400_000).toISOString() },
        signal,
      }),
    [],
  );
  const byId = useMemo(() => new Map((stats.data?.items ?? []).map((s) => [s.workflowId, s])), [stats.data]);

  const setQuery = (next: { q?: string; archived?: boolean }) => {
    const params = new URLSearchParams(props.loc.query);
    const nq = next.q ?? q;
    const na = next.archived ?? archived;
    if (nq.trim()) params.set('q', nq);
    else params.delete('q');
    if (na) params.set('archived', '1');
    else params.delete('archived');
    const qs = params.toString();
    navigate(`/workflows${qs ? `?${qs}` : ''}`, { replace: true });
  };

  const terms = q.toLowerCase().split(/\s+/).filter(Boolean);
  const shown = list.data ? list.data.items.filter((w) => matches(w, terms)) : [];

  return (
    <div class="workflows-page">
      <h1>Workflows</h1>
      <div class="toolbar">
        <label>
          Search workflows
          <input
            type="search"
            value={text}
            placeholder="Name, category or id"
            onInput={(e) => {
              const v = (e.currentTarget as HTMLInputElement).value;
              setText(v);
              setQuery({ q: v });
            }}
          />
        </label>
        <label class="inline">
          <input type="checkbox" checked={archived} onChange={(e) => setQuery({ archived: (e.currentTarget as HTMLInputElement).checked })} />
          Show archived
        </label>
        {list.data && (
          <span class="muted small" role="status" aria-live="polite">
            {shown.length === list.data.items.length ? `${shown.length} workflows` : `${shown.length} of ${list.data.items.length} workflows`}
          </span>
        )}
      </div>
      {stats.error && (
        <p class="notice small">
          Runs of the last 24 hours could not be loaded ({stats.error.message}); the list is complete without them.{' '}
          <button type="button" class="small" onClick={stats.reload}>
            Try again
          </button>
        </p>
      )}
      {list.error ? (
        <ErrorBox error={list.error} what="the workflows" onRetry={list.reload} />
      ) : !list.data ? (
        <Loading what="workflows" />
      ) : (
        <>
          {list.data.truncated && <p class="notice small">Showing the newest {list.data.items.length} workflows.</p>}
          <table class="grid">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Status</th>
                <th scope="col" class="num">
                  Version
                </th>
                <th scope="col">Updated</th>
                <th scope="col" class="num">
                  Runs (24 h)
                </th>
                <th scope="col" class="num">
                  Success (24 h)
                </th>
              </tr>
            </thead>
            <tbody>
              {shown.map((w) => {
                const s = byId.get(w.id);
                return (
                  <tr key={w.id}>
                    <td>
                      <Link href={`/workflows/${w.id}`}>{w.name}</Link>
                      {w.category && <span class="muted small"> · {w.category}</span>}
                    </td>
                    <td>
                      <span class={`badge wf-${w.status.toLowerCase()}`}>{w.status}</span>
                    </td>
                    <td class="num">v{w.version}</td>
                    <td class="mono small">{formatTime(w.updatedAt, zone)}</td>
                    <td class="num">{stats.loading && !stats.data ? '…' : stats.error ? '—' : (s?.total ?? 0)}</td>
                    <td class="num">{stats.error || !s ? '—' : formatPercent(s.successRate)}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
          {shown.length === 0 && (
            <p class="muted">{list.data.items.length === 0 ? 'No workflows yet. Create one through the API or the CLI.' : `No workflow matches “${q}”.`}</p>
          )}
        </>
      )}
    </div>
  );
}
