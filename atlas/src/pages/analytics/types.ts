/** Shapes of the analytics routes (src/api/schemas.ts: WorkflowStats, DurationStats, TimeSeriesPoint, StepStats). */

export interface Outcomes {
  total: number;
  completed: number;
  partialSuccess: number;
  failed: number;
  cancelled: number;
  timedOut: number;
  successRate: number | null;
}

export interface Durations {
  durationCount: number;
  avgDurationMs: number | null;
  minDurationMs: number | null;
  maxDurationMs: number | null;
  p50DurationMs: number | null;
  p95DurationMs: number | null;
  p99DurationMs: number | null;
}

export interface WorkflowStatsRow extends Outcomes, Durations {
  workflowId: string;
  workflowName: string;
}

/** A bar of the duration histogram: runs whose duration fell in [fromMs, toMs). */
export interface HistogramBin {
  fromMs: number;
  toMs: number;
  count: number;
}

export type DurationStats = Outcomes & Durations & { histogram: HistogramBin[] };

export interface TimeSeriesPoint extends Outcomes {
  periodStart: string;
  avgDurationMs: number | null;
  p95DurationMs: number | null;
}

export interface StepStats {
  stepIndex: number;
  stepPath: string | null;
  stepName: string | null;
  executions: number;
  successes: number;
  failures: number;
  avgDurationMs: number | null;
  p50DurationMs: number | null;
  p95DurationMs: number | null;
  topErrors: { code: string; message: string; count: number }[];
}

/** The range and filter every panel asks for. */
export interface PanelQuery {
  from: string;
  to: string;
  workflowId: string | null;
}
