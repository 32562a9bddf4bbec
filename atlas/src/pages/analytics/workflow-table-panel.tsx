import { api } from '../../api.js';
import { Link } from '../../components/link.js';
import { useQuery } from '../../hooks.js';
import { formatDuration } from '../../time.js';
import { formatPercent } from '../settings/kit.js';
import { Panel } from './panel.js';
import type { PanelQuery, WorkflowStatsRow } from './types.js';

/** Every workflow with finished runs in the range: totals, success rate and p50/p95/p99 (one query). */
export function WorkflowTablePanel(props: { query: PanelQuery; selected: string | null; onSelect: (id: string | null) => void }) {
  const q = props.query;
  const stats = useQuery(
    (signal) => api<{ items: WorkflowStatsRow[] }>('/v1/analytics/workflows', { query: { from: q.from, to: q.to }, signal }),
    [q.from, q.to],
  );
  const items = stats.data?.items;
  return (
    <Panel title="Workflows" loading={stats.loading} error={stats.error} onRetry={stats.reload} hasData={!!items}>
      {items &&
        (items.length === 0 ? (
          <p class="muted">No workflow finished a run in this range.</p>
        ) : (
          <table class="grid">
            <thead>
              <tr>
                <th scope="col">Workflow</th>
                <th scope="col" class="num">
                  Runs
                </th>
                <th scope="col" class="num">
                  Completed
                </th>
                <th scope="col" class="num">
                  Failed
                </th>
                <th scope="col" class="num">
                  Success rate
                </th>
                <th scope="col" class="num">
                  p50
                </th>
                <th scope="col" class="num">
                  p95
                </th>
                <th scope="col" class="num">
                  p99
                </th>
                <th scope="col">Show</th>
              </tr>
            </thead>
            <tbody>
              {items.map((w) => (
                <tr key={w.workflowId} class={w.workflowId === props.selected ? 'selected' : undefined}>
                  <td>
                    <Link href={`/workflows/${w.workflowId}`}>{w.workflowName}</Link>
                  </td>
                  <td class="num">{w.total}</td>
                  <td class="num">{w.completed}</td>
                  <td class="num">{w.failed + w.timedOut}</td>
                  <td class="num">{formatPercent(w.successRate)}</td>
                  <td class="num">{formatDuration(w.p50DurationMs)}</td>
                  <td class="num">{formatDuration(w.p95DurationMs)}</td>
                  <td class="num">{formatDuration(w.p99DurationMs)}</td>
                  <td>
                    {w.workflowId === props.selected ? (
                      <button type="button" class="small" onClick={() => props.onSelect(null)} aria-label={`Show all workflows instead of ${w.workflowName}`}>
                        Selected · clear
                      </button>
                    ) : (
                      <button type="button" class="small" onClick={() => props.onSelect(w.workflowId)} aria-label={`Show analytics of ${w.workflowName}`}>
                        Select
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        ))}
    </Panel>
  );
}
