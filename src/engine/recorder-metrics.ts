import { metrics } from '../metrics/index.js';
import { countedStepResult, type StreamRow } from '../store/index.js';
import type { RecorderStart } from './recorder-batch.js';

/**
 * A row the recorder takes, into the step duration metric: the rows
 * step_metrics counts (store/step-metrics.ts countedStepResult), labelled
 * with the step's type from the job's workflow version.
 */
export function observeStep(held: RecorderStart, row: StreamRow): void {
  const step = countedStepResult(row);
  if (step) metrics.observeStep(held.stepType?.(row) ?? 'unknown', !step.ok, step.durationMs / 1000);
}
