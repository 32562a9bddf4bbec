import type { Queryable } from '../db/index.js';
import {
  AGGREGATE_ALL_CLIENTS,
  AGGREGATE_ALL_INITIATORS,
  AGGREGATE_ALL_WORKFLOWS,
  type InitiatorType,
} from '../store/index.js';
import { histogramBins, histogramPercentiles, mergeStoredHistograms, type HistogramBin } from './histogram.js';
import { coverRange, segmentParams } from './periods.js';

/** A half-open time range [from, to); widened to whole hours (the aggregates' resolution). */
export interface AnalyticsRange {
  from: Date;
  to: Date;
}

export interface DimensionFilter {
  workflowId?: string | undefined;
  clientId?: string | undefined;
  initiatorType?: InitiatorType | undefined;
}

export interface OutcomeCounts {
  total: number;
  completed: number;
  partialSuccess: number;
  failed: number;
  cancelled: number;
  timedOut: number;
  /** COMPLETED / total (PARTIAL_SUCCESS is not a success); null with no jobs. */
  successRate: number | null;
}

export interface DurationStats {
  /** Jobs with a duration (a job cancelled before it started has none). */
  durationCount: number;
  avgDurationMs: number | null;
  minDurationMs: number | null;
  maxDurationMs: number | null;
  /** From the summed histograms: within 4.88 % of the nearest-rank value. */
  p50DurationMs: number | null;
  p95DurationMs: number | null;
  p99DurationMs: number | null;
}

export interface WorkflowStats extends OutcomeCounts, DurationStats {
  workflowId: string;
  workflowName: string;
}

export interface TimeSeriesPoint extends OutcomeCounts {
  periodStart: Date;
  avgDurationMs: number | null;
  p95DurationMs: number | null;
}

export type Granularity = 'hour' | 'day';

interface SummedRow {
  total: string | number;
  completed: string | number;
  partial_success: string | number;
  failed: string | number;
  cancelled: string | number;
  timed_out: string | number;
  duration_count: string | number;
  total_duration_ms: string | number;
  min_duration_ms: number | null;
  max_duration_ms: number | null;
  /** The rows' stored histograms, a JSON array merged in toDurations. */
  histograms: unknown;
}

/** Sums of the counters and the merged histogram over the selected rows (alias a). */
const SUMS = `sum(a.total_count) AS total, sum(a.completed_count) AS completed,
  sum(a.partial_success_count) AS partial_success, sum(a.failed_count) AS failed,
  sum(a.cancelled_count) AS cancelled, sum(a.timed_out_count) AS timed_out,
  sum(a.duration_count) AS duration_count, sum(a.total_duration_ms) AS total_duration_ms,
  min(a.min_duration_ms) AS min_duration_ms, max(a.max_duration_ms) AS max_duration_ms,
  jsonb_agg(a.duration_histogram) AS histograms`;

const num = (v: string | number | null): number => (v === null ? 0 : Number(v));

function toOutcomes(r: SummedRow): OutcomeCounts {
  const total = num(r.total);
  const completed = num(r.completed);
  return {
    total,
    completed,
    partialSuccess: num(r.partial_success),
    failed: num(r.failed),
    cancelled: num(r.cancelled),
    timedOut: num(r.timed_out),
    successRate: total > 0 ? completed / total : null,
  };
}

/** `merged`: the rows' histograms summed, when the caller has them already (it needs them too). */
function toDurations(r: SummedRow, merged = mergeStoredHistograms(r.histograms)): DurationStats {
  const n = num(r.duration_count);
  const p = histogramPercentiles(merged);
  return {
    durationCount: n,
    avgDurationMs: n > 0 ? Math.round((num(r.total_duration_ms) / n) * 1000) / 1000 : null,
    minDurationMs: r.min_duration_ms,
    maxDurationMs: r.max_duration_ms,
    p50DurationMs: p.p50,
    p95DurationMs: p.p95,
    p99DurationMs: p.p99,
  };
}

/**
 * Which aggregate rows answer a dimension filter: the rollup row when at
 * most one dimension is fixed (one exact key), else the detail rows
 * matching every fixed dimension. Returns SQL over alias a and its params.
 */
function dimensionCondition(f: DimensionFilter, firstParam: number): { sql: string; params: unknown[] } {
  const fixed = [f.workflowId, f.clientId, f.initiatorType].filter((v) => v !== undefined).length;
  const p = (i: number) => `$${firstParam + i}`;
  if (fixed <= 1) {
    return {
      sql: `a.workflow_id = ${p(0)}::uuid AND a.client_id = ${p(1)}::uuid AND a.initiator_type = ${p(2)}`,
      params: [f.workflowId ?? AGGREGATE_ALL_WORKFLOWS, f.clientId ?? AGGREGATE_ALL_CLIENTS, f.initiatorType ?? AGGREGATE_ALL_INITIATORS],
    };
  }
  return {
    sql: `a.workflow_id <> '${AGGREGATE_ALL_WORKFLOWS}' AND a.client_id <> '${AGGREGATE_ALL_CLIENTS}' AND a.initiator_type <> '${AGGREGATE_ALL_INITIATORS}'
          AND (${p(0)}::uuid IS NULL OR a.workflow_id = ${p(0)}::uuid) AND (${p(1)}::uuid IS NULL OR a.client_id = ${p(1)}::uuid)
          AND (${p(2)}::text IS NULL OR a.initiator_type = ${p(2)}::text)`,
    params: [f.workflowId ?? null, f.clientId ?? null, f.initiatorType ?? null],
  };
}

/**
 * Execution stats of every workflow of the organization over a range, in
 * ONE query (not one per workflow, whose cost would grow with the number of
 * workflows): totals per outcome, success
 * rate, average, and median/p95/p99 from the merged histograms of the
 * (workflow, all clients, all initiators) rollup rows. Workflows with no
 * finished job in the range are left out. Ordered by total, descending.
 */
export async function getWorkflowStats(db: Queryable, organizationId: string, range: AnalyticsRange): Promise<WorkflowStats[]> {
  const segments = coverRange(range.from, range.to);
  if (segments.length === 0) return [];
  const { rows } = await db.query<SummedRow & { workflow_id: string; workflow_name: string }>(
    `WITH seg AS (SELECT * FROM unnest($2::text[], $3::timestamptz[], $4::timestamptz[]) AS s(period, f, t)),
     sel AS (
       SELECT a.* FROM seg JOIN stepwise.aggregate_metrics_live a
           ON a.organization_id = $1 AND a.period = seg.period
          AND a.client_id = '${AGGREGATE_ALL_CLIENTS}' AND a.initiator_type = '${AGGREGATE_ALL_INITIATORS}'
          AND a.workflow_id <> '${AGGREGATE_ALL_WORKFLOWS}'
          AND a.period_start >= seg.f AND a.period_start < seg.t
     ),
     sums AS (SELECT a.workflow_id, ${SUMS} FROM sel a GROUP BY a.workflow_id)
     SELECT s.*, w.name AS workflow_name
       FROM sums s
       JOIN stepwise.workflows w ON w.organization_id = $1 AND w.id = s.workflow_id
      ORDER BY s.total DESC, w.name, s.workflow_id`,
    [organizationId, ...segmentParams(segments)],
  );
  return rows.map((r) => ({ workflowId: r.workflow_id, workflowName: r.workflow_name, ...toOutcomes(r), ...toDurations(r) }));
}

/**
 * Outcome counts and duration percentiles over a range for one workflow,
 * client or initiator (or a combination, or the whole organization),
 * merged from pre-computed rows: no scan of jobs. `histogram` is the merged
 * duration histogram in bins of ≈ 1.95× (read/histogram.ts histogramBins), to draw.
 */
export async function getDurationStats(
  db: Queryable,
  organizationId: string,
  range: AnalyticsRange,
  filter: DimensionFilter = {},
): Promise<OutcomeCounts & DurationStats & { histogram: HistogramBin[] }> {
  const segments = coverRange(range.from, range.to);
  const dim = dimensionCondition(filter, 5);
  const { rows } = await db.query<SummedRow>(
    `WITH seg AS (SELECT * FROM unnest($2::text[], $3::timestamptz[], $4::timestamptz[]) AS s(period, f, t)),
     sel AS (
       SELECT a.* FROM seg JOIN stepwise.aggregate_metrics_live a
           ON a.organization_id = $1 AND a.period = seg.period AND a.period_start >= seg.f AND a.period_start < seg.t
        WHERE ${dim.sql}
     )
     SELECT ${SUMS} FROM sel a`,
    [organizationId, ...segmentParams(segments), ...dim.params],
  );
  const r = rows[0]!;
  const merged = mergeStoredHistograms(r.histograms);
  return { ...toOutcomes(r), ...toDurations(r, merged), histogram: histogramBins(merged) };
}

/**
 * Outcome counts, average and p95 per hour or per day over a range (one
 * point per period that had finished jobs), for the same filters as
 * getDurationStats.
 */
export async function getTimeSeries(
  db: Queryable,
  organizationId: string,
  range: AnalyticsRange,
  granularity: Granularity,
  filter: DimensionFilter = {},
): Promise<TimeSeriesPoint[]> {
  const dim = dimensionCondition(filter, 6);
  const { rows } = await db.query<SummedRow & { period_start: Date }>(
    `WITH sel AS (
       SELECT a.* FROM stepwise.aggregate_metrics_live a
        WHERE a.organization_id = $1 AND a.period = $2
          AND a.period_start >= date_trunc($4, $3::timestamptz, 'UTC') AND a.period_start < $5::timestamptz
          AND ${dim.sql}
     )
     SELECT a.period_start, ${SUMS} FROM sel a GROUP BY a.period_start ORDER BY a.period_start`,
    [organizationId, granularity === 'hour' ? 'HOUR' : 'DAY', range.from.toISOString(), granularity, range.to.toISOString(), ...dim.params],
  );
  return rows.map((r) => {
    const d = toDurations(r);
    return { periodStart: r.period_start, ...toOutcomes(r), avgDurationMs: d.avgDurationMs, p95DurationMs: d.p95DurationMs };
  });
}
