import { pgArray, pgJsonArray, type Queryable } from '../db/index.js';
import { durationBucket } from './histogram-buckets.js';
import { DAY_MS, utcMonthStart } from '../util/clock.js';
import { isPlainObject } from '../util/json.js';
import { STREAM_KINDS } from './stream-codes.js';
import type { StreamRow } from './stream.js';

/** The rows of step_metrics one flush adds to: a workflow's step in one DAY or MONTH. */
export interface StepGroup {
  organizationId: string;
  workflowId: string;
  period: 'DAY' | 'MONTH';
  /** Epoch ms of the UTC day or month start. */
  start: number;
  /** The top-level step, or for a step inside a block the block's top-level index. */
  stepIndex: number;
  /** A step inside a block: its metric path (metricStepPath); '' for a top-level step. */
  path: string;
  name: string | null;
  executions: number;
  successes: number;
  failures: number;
  durationMs: number;
  histogram: Record<number, number>;
  errors: Map<string, { code: string; message: string; count: number }>;
}

/** At most `max` characters, counted as PostgreSQL counts them (code points). */
function leftChars(text: string, max: number): string {
  if (text.length <= max) return text;
  return Array.from(text).slice(0, max).join('');
}

/** A value's text as `jsonb ->> key` gives it. */
function jsonText(value: unknown): string | null {
  if (value === undefined || value === null) return null;
  return typeof value === 'string' ? value : JSON.stringify(value);
}

const LOOP_INDEX = /\[\d+\]/g;

/**
 * The path a nested step is counted under: its path with loop indexes left
 * out, so every iteration of a loop's step adds to one row (`inv[17].call`
 * → `inv[].call`, `a[2].b[5].c` → `a[].b[].c`). Branch labels stay: a
 * step of `then` and one of `else` are different steps.
 */
export function metricStepPath(path: string): string {
  return path.replace(LOOP_INDEX, '[]');
}

/** A step result row as step_metrics counts it. */
export interface CountedStepResult {
  ok: boolean;
  /** data.durationMs, 0 when absent. */
  durationMs: number;
  data: Record<string, unknown> | undefined;
}

/**
 * Whether step_metrics counts `r`, and as what: STEP_COMPLETED and
 * STEP_FAILED rows with a step index, compensations left out. The step
 * duration metric (engine/recorder-metrics.ts) counts the same rows.
 */
export function countedStepResult(r: StreamRow): CountedStepResult | null {
  if ((r.kind !== STREAM_KINDS.STEP_COMPLETED && r.kind !== STREAM_KINDS.STEP_FAILED) || r.stepIndex === null) return null;
  const data = isPlainObject(r.data) ? r.data : undefined;
  if (data && data.compensation !== undefined) return null;
  const d = data?.durationMs;
  return { ok: r.kind === STREAM_KINDS.STEP_COMPLETED, durationMs: typeof d === 'number' && Number.isFinite(d) ? d : 0, data };
}

/**
 * Group a flush's step results (STEP_COMPLETED and STEP_FAILED rows with a
 * step index, compensations excepted) into the DAY and MONTH rows they add
 * to. What counts and how is what the trigger of migrations 0006/0011 did:
 * the duration is data.durationMs (0 when absent), a failure's error is
 * data.code (STEP_ERROR when absent) with the row's message, and a success
 * names the step. A step inside a block (a row with a path) counts under
 * its block's top-level index and its metric path (metricStepPath), and a
 * block's own result under its own path (empty at the top level): a nested
 * step is never counted into its block.
 */
export function collectStepMetrics(rows: readonly StreamRow[]): StepGroup[] {
  const groups = new Map<string, StepGroup>();
  const add = (r: StreamRow, path: string, period: 'DAY' | 'MONTH', start: number, ok: boolean, duration: number, bucket: number, code: string | null) => {
    const key = `${r.workflowId}|${r.stepIndex}|${path}|${period}|${start}|${r.organizationId}`;
    let g = groups.get(key);
    if (!g) {
      g = {
        organizationId: r.organizationId,
        workflowId: r.workflowId,
        period,
        start,
        stepIndex: r.stepIndex!,
        path,
        name: null,
        executions: 0,
        successes: 0,
        failures: 0,
        durationMs: 0,
        histogram: {},
        errors: new Map(),
      };
      groups.set(key, g);
    }
    g.executions++;
    g.durationMs += duration;
    g.histogram[bucket] = (g.histogram[bucket] ?? 0) + 1;
    if (ok) {
      g.successes++;
      g.name = leftChars(r.message, 100);
    } else {
      g.failures++;
      const message = leftChars(r.message, 200);
      const errorKey = `${code}\u0000${message}`;
      const e = g.errors.get(errorKey);
      if (e) e.count++;
      else g.errors.set(errorKey, { code: code!, message, count: 1 });
    }
  };
  for (const r of rows) {
    const step = countedStepResult(r);
    if (!step) continue;
    const { ok, data, durationMs: duration } = step;
    const bucket = durationBucket(duration);
    const code = ok ? null : (jsonText(data?.code) ?? 'STEP_ERROR');
    const path = r.path ? metricStepPath(r.path) : '';
    const day = Math.floor(r.tsMs / DAY_MS);
    add(r, path, 'DAY', day * DAY_MS, ok, duration, bucket, code);
    add(r, path, 'MONTH', utcMonthStart(new Date(r.tsMs)).getTime(), ok, duration, bucket, code);
  }
  return [...groups.values()];
}

/** Add the groups to step_metrics in one upsert (stepwise.add_step_metrics with paths, migration 0019). */
export async function addStepMetrics(tx: Queryable, groups: readonly StepGroup[]): Promise<void> {
  if (groups.length === 0) return;
  await tx.query(
    `SELECT stepwise.add_step_metrics($1::uuid[], $2::uuid[], $3::text[], $4::timestamptz[], $5::int[], $6::text[], $7::text[],
                                      $8::int[], $9::int[], $10::int[], $11::float8[], $12::jsonb[], $13::jsonb[])`,
    [
      pgArray(groups.map((g) => g.organizationId)),
      pgArray(groups.map((g) => g.workflowId)),
      pgArray(groups.map((g) => g.period)),
      pgArray(groups.map((g) => new Date(g.start).toISOString())),
      pgArray(groups.map((g) => g.stepIndex)),
      pgArray(groups.map((g) => g.path)),
      pgArray(groups.map((g) => g.name)),
      pgArray(groups.map((g) => g.executions)),
      pgArray(groups.map((g) => g.successes)),
      pgArray(groups.map((g) => g.failures)),
      pgArray(groups.map((g) => g.durationMs)),
      pgJsonArray(groups.map((g) => g.histogram)),
      pgJsonArray(groups.map((g) => [...g.errors.values()])),
    ],
  );
}
