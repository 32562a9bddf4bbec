import { api } from '../../api.js';
import { useQuery } from '../../hooks.js';
import { formatDuration } from '../../time.js';
import { formatPercent } from '../settings/kit.js';
import { Panel } from './panel.js';
import type { PanelQuery, StepStats } from './types.js';

function stepLabel(s: StepStats): string {
  const name = s.stepName ?? `step ${s.stepIndex + 1}`;
  return s.stepPath ? `${name} (${s.stepPath})` : name;
}

/** Per-step executions, failures, durations and the most frequent errors of the selected workflow. */
export function StepsPanel(props: { query: PanelQuery; workflowId: string }) {
  const q = props.query;
  const steps = useQuery(
    (signal) => api<{ items: StepStats[] }>('/v1/analytics/steps', { query: { from: q.from, to: q.to, workflowId: props.workflowId }, signal }),
    [q.from, q.to, props.workflowId],
  );
  const items = steps.data?.items;
  return (
    <Panel title="Steps" loading={steps.loading} error={steps.error} onRetry={steps.reload} hasData={!!items} class="steps-panel">
      {items &&
        (items.length === 0 ? (
          <p class="muted">No step executions in this range.</p>
        ) : (
          <table class="grid">
            <thead>
              <tr>
                <th scope="col">Step</th>
                <th scope="col" class="num">
                  Executions
                </th>
                <th scope="col" class="num">
                  Failures
                </th>
                <th scope="col" class="num">
                  Failure rate
                </th>
                <th scope="col" class="num">
                  Avg
                </th>
                <th scope="col" class="num">
                  p50
                </th>
                <th scope="col" class="num">
                  p95
                </th>
                <th scope="col">Top errors</th>
              </tr>
            </thead>
            <tbody>
              {items.map((s) => (
                <tr key={`${s.stepIndex}:${s.stepPath ?? ''}`}>
                  <td>
                    <span class="muted small">{s.stepIndex + 1}.</span> {stepLabel(s)}
                  </td>
                  <td class="num">{s.executions}</td>
                  <td class="num">{s.failures}</td>
                  <td class="num">{formatPercent(s.executions > 0 ? s.failures / s.executions : null)}</td>
                  <td class="num">{formatDuration(s.avgDurationMs)}</td>
                  <td class="num">{formatDuration(s.p50DurationMs)}</td>
                  <td class="num">{formatDuration(s.p95DurationMs)}</td>
                  <td>
                    {s.topErrors.length === 0 ? (
                      <span class="muted">—</span>
                    ) : (
                      <ul class="top-errors">
                        {s.topErrors.map((e) => (
                          <li key={`${e.code}:${e.message}`}>
                            <code>{e.code}</code> ×{e.count} <span class="small">{e.message}</span>
                          </li>
                        ))}
                      </ul>
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
