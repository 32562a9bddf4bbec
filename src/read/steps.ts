import type { Queryable } from '../db/index.js';
import { DAY_MS } from '../util/clock.js';
import { histogramPercentiles, mergeStoredHistograms } from './histogram.js';
import { coverRange, segmentParams } from './periods.js';
import type { AnalyticsRange } from './analytics.js';

export interface TopError {
  code: string;
  message: string;
  count: number;
}

export interface StepStats {
  /** The top-level step, or for a step inside a block that block's index. */
  stepIndex: number;
  /**
   * A step inside a block: its path with loop indexes left out (`inv[].call`
   * counts the loop's runs of `call`); null for a top-level step. Every
   * iteration counts, also the quiet ones past a loop's first 100 that
   * write no rows (the engine hands their step results to step_metrics).
   */
  stepPath: string | null;
  stepName: string | null;
  executions: number;
  successes: number;
  failures: number;
  avgDurationMs: number | null;
  /** From the merged daily histograms: within 4.88 % of the nearest-rank value. */
  p50DurationMs: number | null;
  p95DurationMs: number | null;
  /** The most frequent errors over the range (at most 10; each day keeps its own top 10). */
  topErrors: TopError[];
}

/**
 * Per-step execution stats of one workflow over a range of whole UTC days
 * (from floored, to ceiled): whole months from the MONTH rows of
 * step_metrics, the days at the edges from DAY rows; one query. Each step
 * inside a block has an item of its own after its block's, by path.
 */
export async function getStepStats(db: Queryable, organizationId: string, workflowId: string, range: AnalyticsRange): Promise<StepStats[]> {
  const from = new Date(Math.floor(range.from.getTime() / DAY_MS) * DAY_MS);
  const to = new Date(Math.ceil(range.to.getTime() / DAY_MS) * DAY_MS);
  // Whole months from the MONTH rows, the days at the edges from DAY rows.
  const segments = coverRange(from, to);
  if (segments.length === 0) return [];
  const { rows } = await db.query<{
    step_index: number;
    step_path: string;
    step_name: string | null;
    executions: string;
    successes: string;
    failures: string;
    total_duration_ms: number;
    histograms: unknown;
    top_errors: TopError[] | null;
  }>(
    `WITH seg AS (SELECT * FROM unnest($3::text[], $4::timestamptz[], $5::timestamptz[]) AS s(period, f, t)),
     sel AS (
       SELECT m.* FROM seg JOIN stepwise.step_metrics m
           ON m.organization_id = $1 AND m.workflow_id = $2 AND m.period = seg.period
          AND m.period_start >= seg.f AND m.period_start < seg.t
     )
     SELECT step_index, step_path, (array_agg(step_name ORDER BY period_start DESC) FILTER (WHERE step_name IS NOT NULL))[1] AS step_name,
            sum(executions) AS executions, sum(successes) AS successes, sum(failures) AS failures,
            sum(total_duration_ms) AS total_duration_ms, jsonb_agg(duration_histogram) AS histograms,
            stepwise.top_errors_of(array_agg(top_errors) FILTER (WHERE top_errors <> '[]'::jsonb)) AS top_errors
       FROM sel GROUP BY step_index, step_path ORDER BY step_index, step_path COLLATE "C"`,
    [organizationId, workflowId, ...segmentParams(segments)],
  );
  return rows.map((r) => {
    const executions = Number(r.executions);
    const p = histogramPercentiles(mergeStoredHistograms(r.histograms));
    return {
      stepIndex: r.step_index,
      stepPath: r.step_path === '' ? null : r.step_path,
      stepName: r.step_name,
      executions,
      successes: Number(r.successes),
      failures: Number(r.failures),
      avgDurationMs: executions > 0 ? Math.round((Number(r.total_duration_ms) / executions) * 1000) / 1000 : null,
      p50DurationMs: p.p50,
      p95DurationMs: p.p95,
      topErrors: (r.top_errors ?? []).map((e) => ({ code: e.code, message: e.message, count: Number(e.count) })),
    };
  });
}
