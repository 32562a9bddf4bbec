import type { Queryable } from '../db/index.js';
import { histogramPercentiles, parseHistogram } from './histogram.js';
import type { AnalyticsRange } from './analytics.js';

export interface TopError {
  code: string;
  message: string;
  count: number;
}

export interface StepStats {
  stepIndex: number;
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

const DAY_MS = 24 * 3600 * 1000;

/**
 * Per-step execution stats of one workflow over a range of whole UTC days
 * (from floored, to ceiled), from the daily step_metrics rows: one query.
 */
export async function getStepStats(db: Queryable, organizationId: string, workflowId: string, range: AnalyticsRange): Promise<StepStats[]> {
  const from = new Date(Math.floor(range.from.getTime() / DAY_MS) * DAY_MS);
  const to = new Date(Math.ceil(range.to.getTime() / DAY_MS) * DAY_MS);
  const { rows } = await db.query<{
    step_index: number;
    step_name: string | null;
    executions: string;
    successes: string;
    failures: string;
    total_duration_ms: number;
    histogram: unknown;
    top_errors: TopError[] | null;
  }>(
    `WITH sel AS (
       SELECT * FROM stepwise.step_metrics
        WHERE organization_id = $1 AND workflow_id = $2 AND period_start >= $3 AND period_start < $4
     ),
     sums AS (
       SELECT step_index, (array_agg(step_name ORDER BY period_start DESC) FILTER (WHERE step_name IS NOT NULL))[1] AS step_name,
              sum(executions) AS executions, sum(successes) AS successes, sum(failures) AS failures,
              sum(total_duration_ms) AS total_duration_ms
         FROM sel GROUP BY step_index
     ),
     hist AS (
       SELECT step_index, jsonb_object_agg(k, n) AS histogram
         FROM (SELECT s.step_index, e.key AS k, sum(e.value::bigint) AS n
                 FROM sel s, jsonb_each_text(s.duration_histogram) e GROUP BY 1, 2) h
        GROUP BY step_index
     ),
     errs AS (
       SELECT step_index, jsonb_agg(jsonb_build_object('code', code, 'message', message, 'count', n) ORDER BY n DESC, code, message) AS top_errors
         FROM (SELECT step_index, code, message, n, row_number() OVER (PARTITION BY step_index ORDER BY n DESC, code, message) AS rank
                 FROM (SELECT s.step_index, e->>'code' AS code, e->>'message' AS message, sum((e->>'count')::bigint) AS n
                         FROM sel s, jsonb_array_elements(s.top_errors) e GROUP BY 1, 2, 3) x) ranked
        WHERE rank <= 10
        GROUP BY step_index
     )
     SELECT s.*, h.histogram, er.top_errors
       FROM sums s LEFT JOIN hist h USING (step_index) LEFT JOIN errs er USING (step_index)
      ORDER BY s.step_index`,
    [organizationId, workflowId, from.toISOString(), to.toISOString()],
  );
  return rows.map((r) => {
    const executions = Number(r.executions);
    const p = histogramPercentiles(parseHistogram(r.histogram));
    return {
      stepIndex: r.step_index,
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
