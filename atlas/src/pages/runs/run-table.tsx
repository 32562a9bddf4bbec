import { useEffect, useRef } from 'preact/hooks';
import { Link } from '../../components/link.js';
import { StatusBadge } from '../../components/status-badge.js';
import { navigate } from '../../router.js';
import { formatDuration, formatTime, type Zone } from '../../time.js';
import type { JobListItem } from './types.js';

const LIVE = new Set(['PENDING', 'RUNNING', 'WAITING']);

/** A finished run's duration; a running one's time so far (marked as such). */
function durationOf(run: JobListItem, now: number): { text: string; running: boolean } {
  if (run.durationMs !== null && run.durationMs !== undefined) return { text: formatDuration(run.durationMs), running: false };
  if (run.startedAt && LIVE.has(run.status)) return { text: formatDuration(now - Date.parse(run.startedAt)), running: true };
  if (run.startedAt && run.completedAt) return { text: formatDuration(Date.parse(run.completedAt) - Date.parse(run.startedAt)), running: false };
  return { text: '—', running: false };
}

const initiatorLabel = (t: string) => (t === 'API' ? 'API' : t.charAt(0) + t.slice(1).toLowerCase());

export function RunTable(props: {
  items: JobListItem[];
  zone: Zone;
  canSelect: boolean;
  selected: ReadonlySet<string>;
  allMatching: boolean;
  highlightId: string | null;
  /** Rows just inserted by a live update (briefly marked). */
  fresh: ReadonlySet<string>;
  onHighlight: (id: string) => void;
  onToggle: (id: string) => void;
  onTogglePage: (select: boolean) => void;
}) {
  const { items, zone, selected } = props;
  const now = Date.now();
  const allOnPage = items.length > 0 && items.every((r) => props.allMatching || selected.has(r.id));
  const someOnPage = !allOnPage && items.some((r) => selected.has(r.id));
  const headBox = useRef<HTMLInputElement>(null);
  useEffect(() => {
    if (headBox.current) headBox.current.indeterminate = someOnPage;
  }, [someOnPage]);

  const open = (e: MouseEvent, id: string) => {
    const target = e.target as HTMLElement;
    if (target.closest('a, input, button, label')) return;
    if (window.getSelection()?.toString()) return; // selecting text to copy is not a click on the row
    if (e.metaKey || e.ctrlKey) window.open(`/runs/${id}`, '_blank', 'noopener');
    else navigate(`/runs/${id}`);
  };

  return (
    <table class="grid runs-table" role="grid" aria-label="Runs" aria-multiselectable={props.canSelect ? 'true' : undefined} aria-rowcount={-1}>
      <colgroup>
        {props.canSelect && <col class="c-select" />}
        <col class="c-run" />
        <col class="c-workflow" />
        <col class="c-status" />
        <col class="c-created" />
        <col class="c-duration" />
        <col class="c-client" />
        <col class="c-initiator" />
        <col class="c-error" />
      </colgroup>
      <thead>
        <tr>
          {props.canSelect && (
            <th scope="col" class="select">
              <input
                ref={headBox}
                type="checkbox"
                aria-label="Select all on page"
                title="Select all on page"
                checked={allOnPage}
                disabled={items.length === 0}
                onChange={(e) => props.onTogglePage(e.currentTarget.checked)}
              />
            </th>
          )}
          <th scope="col">Run</th>
          <th scope="col">Workflow</th>
          <th scope="col">Status</th>
          <th scope="col">Created</th>
          <th scope="col" class="num">
            Duration
          </th>
          <th scope="col">Client</th>
          <th scope="col">Initiator</th>
          <th scope="col">Error</th>
        </tr>
      </thead>
      <tbody>
        {items.map((run) => {
          const isSelected = props.allMatching || selected.has(run.id);
          const d = durationOf(run, now);
          const highlighted = run.id === props.highlightId;
          return (
            <tr
              key={run.id}
              data-id={run.id}
              tabIndex={highlighted || (!props.highlightId && run === items[0]) ? 0 : -1}
              // Selection is what the checkbox says; without bulk actions (viewers) the highlighted row is the selected one.
              aria-selected={props.canSelect ? isSelected : highlighted}
              class={`${highlighted ? 'highlighted' : ''} ${isSelected ? 'selected' : ''} ${props.fresh.has(run.id) ? 'fresh' : ''}`}
              onClick={(e) => open(e as unknown as MouseEvent, run.id)}
              onFocus={() => props.onHighlight(run.id)}
            >
              {props.canSelect && (
                <td class="select">
                  <input type="checkbox" aria-label={`Select run #${run.runNumber}`} checked={isSelected} disabled={props.allMatching} onChange={() => props.onToggle(run.id)} />
                </td>
              )}
              <td class="run mono">
                <Link href={`/runs/${run.id}`}>#{run.runNumber}</Link>
              </td>
              <td class="workflow" title={run.workflowName ?? run.workflowId}>
                {run.workflowName ?? <span class="muted mono">{run.workflowId.slice(0, 8)}</span>}
              </td>
              <td>
                <StatusBadge status={run.status} />
                {run.stepsTotal ? (
                  <span class="steps muted" title="steps completed of the workflow's steps">
                    {run.stepsCompleted ?? 0}/{run.stepsTotal}
                  </span>
                ) : null}
              </td>
              <td class="mono time" title={run.startedAt ? `started ${formatTime(run.startedAt, zone, { ms: true })}` : 'not started'}>
                {formatTime(run.createdAt, zone)}
              </td>
              <td class={`num mono ${d.running ? 'running' : ''}`} title={d.running ? 'running so far' : undefined}>
                {d.text}
              </td>
              <td class="client">{run.clientName ?? (run.clientId ? <span class="muted mono">{run.clientId.slice(0, 8)}</span> : <span class="muted">—</span>)}</td>
              <td class="initiator">{initiatorLabel(run.initiatorType)}</td>
              <td class="error" title={run.error?.message ?? undefined}>
                {run.error?.code ? <code class="error-code">{run.error.code}</code> : <span class="muted">—</span>}
              </td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}
