import { useMemo } from 'preact/hooks';
import { api } from '../../api.js';
import { Chart } from '../../components/chart.js';
import { useQuery } from '../../hooks.js';
import { formatDuration } from '../../time.js';
import { bucketStarts, fillBuckets, granularityFor } from '../../view/analytics-range.js';
import { Panel } from './panel.js';
import type { PanelQuery, TimeSeriesPoint } from './types.js';

/** Runs per hour or day by outcome (stacked bars), and p95 duration over time. */
export function TimeSeriesPanel(props: { query: PanelQuery }) {
  const q = props.query;
  const granularity = granularityFor(new Date(q.from), new Date(q.to));
  const series = useQuery(
    (signal) =>
      api<{ granularity: string; items: TimeSeriesPoint[] }>('/v1/analytics/timeseries', {
        query: { from: q.from, to: q.to, workflowId: q.workflowId, granularity },
        signal,
      }),
    [q.from, q.to, q.workflowId, granularity],
  );
  const charts = useMemo(() => {
    const items = series.data?.items;
    if (!items) return null;
    const starts = bucketStarts(new Date(q.from), new Date(q.to), granularity);
    const x = starts.map((t) => t / 1000);
    return {
      empty: items.every((p) => p.total === 0),
      runs: {
        x,
        series: [
          { label: 'Completed', color: '--ok', values: fillBuckets(starts, items, (p) => p.completed, 0) },
          { label: 'Failed or timed out', color: '--danger', values: fillBuckets(starts, items, (p) => p.failed + p.timedOut, 0) },
          { label: 'Cancelled or partial', color: '--warn', values: fillBuckets(starts, items, (p) => p.cancelled + p.partialSuccess, 0) },
        ],
      },
      p95: {
        x,
        series: [
          { label: 'p95', color: '--accent', values: fillBuckets(starts, items, (p) => p.p95DurationMs, null), format: formatDuration },
          { label: 'average', color: '--fg-muted', dash: true, values: fillBuckets(starts, items, (p) => p.avgDurationMs, null), format: formatDuration },
        ],
      },
    };
  }, [series.data, q.from, q.to, granularity]);
  const per = granularity === 'hour' ? 'hour' : 'day';
  return (
    <Panel title={`Runs per ${per}`} loading={series.loading} error={series.error} onRetry={series.reload} hasData={!!charts}>
      {charts &&
        (charts.empty ? (
          <p class="muted">No finished runs in this range.</p>
        ) : (
          <>
            <Chart title={`Finished runs per ${per}, by outcome`} kind="bars" stacked height={200} x={charts.runs.x} series={charts.runs.series} yLabel="runs" />
            <Chart
              title={`p95 and average duration per ${per}`}
              kind="lines"
              height={180}
              x={charts.p95.x}
              series={charts.p95.series}
              yLabel="duration"
              yFormat={(v) => formatDuration(v)}
            />
          </>
        ))}
    </Panel>
  );
}
