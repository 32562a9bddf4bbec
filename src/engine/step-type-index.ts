import type { StepBase, WorkflowDefinition } from '../model/definition.js';
import { metricStepPath } from '../store/step-metrics.js';
import { sequencePath } from './frame.js';
import { stepTypeOf } from './steps/registry.js';

/** Where a step result row comes from: a top-level index, and a path inside blocks (null at the top level). */
export interface StepRowPlace {
  stepIndex: number | null;
  path?: string | null | undefined;
}

/** The step type of a step result row of one workflow version (undefined for a place the definition does not have). */
export type StepTypeOf = (row: StepRowPlace) => string | undefined;

/**
 * The step type of every place a step result row can name in `definition`,
 * built once per workflow version so the worker labels step durations by
 * type without walking the definition per row. Top-level rows name their
 * index; rows of steps inside blocks name their path, looked up with loop
 * indexes left out (`inv[17].call` → `inv[].call`, store/step-metrics.ts),
 * so one entry serves every iteration.
 */
export function stepTypeIndex(definition: WorkflowDefinition): StepTypeOf {
  const top = definition.steps.map((s) => s.type);
  const nested = new Map<string, string>();
  const walk = (steps: readonly StepBase[], prefix: string) => {
    for (const step of steps) {
      const path = `${prefix}${step.id}`;
      if (prefix !== '') nested.set(path, step.type);
      for (const list of stepTypeOf(step)?.children(step) ?? []) walk(list.steps, `${sequencePath(path, list.label)}.`);
    }
  };
  walk(definition.steps, '');
  return (row) => {
    if (row.path) return nested.get(metricStepPath(row.path));
    return row.stepIndex === null ? undefined : top[row.stepIndex];
  };
}
