import { useMemo } from 'preact/hooks';
import { api } from '../../api.js';
import { Chart } from '../../components/chart.js';
import { useQuery } from '../../hooks.js';
import { formatDuration } from '../../time.js';
import { formatPercent } from '../settings/kit.js';
import { Panel } from './panel.js';
import type { DurationStats, PanelQuery } from './types.js';

/** Outcome totals and duration percentiles of the selection, and its duration histogram (the server's merged buckets, ≈ 1.95× bins). */
export function DurationPanel(props: { query: PanelQuery; title: string }) {
  const q = props.query;
  const stats = useQuery(
    (signal) => api<DurationStats>('/v1/analytics/durations', { query: { from: q.from, to: q.to, workflowId: q.workflowId }, signal }),
    [q.from, q.to, q.workflowId],
  );
  const s = stats.data;
  const bins = s?.histogram ?? [];
  const chart = useMemo(
    () => ({
      x: bins.map((_, i) => i),
      categories: bins.map((b) => `${formatDuration(b.fromMs)}–${formatDuration(b.toMs)}`),
      series: [{ label: 'Runs', color: '--accent', values: bins.map((b) => b.count) }],
    }),
    [bins],
  );
  return (
    <Panel title={`Durations · ${props.title}`} loading={stats.loading} error={stats.error} onRetry={stats.reload} hasData={!!s}>
      {s && (
        <>
          <dl class="kpis">
            <div>
              <dt>Runs</dt>
              <dd>{s.total}</dd>
            </div>
            <div>
              <dt>Success rate</dt>
              <dd>{formatPercent(s.successRate)}</dd>
            </div>
            <div>
              <dt>Failed</dt>
              <dd>{s.failed + s.timedOut}</dd>
            </div>
            <div>
              <dt>p50</dt>
              <dd>{formatDuration(s.p50DurationMs)}</dd>
            </div>
            <div>
              <dt>p95</dt>
              <dd>{formatDuration(s.p95DurationMs)}</dd>
            </div>
            <div>
              <dt>p99</dt>
              <dd>{formatDuration(s.p99DurationMs)}</dd>
            </div>
          </dl>
          {bins.length === 0 ? (
            <p class="muted">No finished runs with a duration in this range.</p>
          ) : (
            <>
              <Chart title="Duration histogram: runs per duration bin" kind="bars" height={200} {...chart} />
              <table class="grid compact">
                <thead>
                  <tr>
                    <th scope="col">Duration</th>
                    <th scope="col" class="num">
                      Runs
                    </th>
                    <th scope="col" class="num">
                      Share
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {bins.map((b) => (
                    <tr key={b.fromMs}>
                      <td>
                        {formatDuration(b.fromMs)} – {formatDuration(b.toMs)}
                      </td>
                      <td class="num">{b.count}</td>
                      <td class="num">{formatPercent(s.durationCount > 0 ? b.count / s.durationCount : null)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
              <p class="muted small">
                {s.durationCount} runs with a duration; min {formatDuration(s.minDurationMs)}, average {formatDuration(s.avgDurationMs)}, max{' '}
                {formatDuration(s.maxDurationMs)}. Percentiles are within 5 %.
              </p>
            </>
          )}
        </>
      )}
    </Panel>
  );
}
