import { stepPathOf, type JobStateJson, type StepJson } from './timeline-types.js';

/**
 * What changed between two rebuilt job states (GET /v1/jobs/:id/state?at=
 * at two positions of the time-travel slider): a list of changed step paths
 * and fields. The job itself is path ''. Pure, unit-tested.
 */

export type ChangeKind = 'added' | 'removed' | 'changed';

export interface StateChange {
  /** The step's path (a top-level step's id, `inv[3].call`, an iteration `inv[3]`); '' for the job. */
  path: string;
  /** The field that changed (`status`, `output`, …); '*' when the whole step came or went. */
  field: string;
  kind: ChangeKind;
  before?: unknown;
  after?: unknown;
}

const JOB_FIELDS = ['status', 'currentStep', 'currentPath', 'startedAt', 'endedAt', 'retryCount', 'error'] as const;
const STEP_FIELDS = ['status', 'attempts', 'startedAt', 'endedAt', 'durationMs', 'error', 'output', 'compensated', 'branch', 'progress', 'childJob'] as const;
const ITERATION_FIELDS = ['status', 'startedAt', 'endedAt', 'error'] as const;

/** JSON with sorted keys: equal values give equal text whatever the key order. */
function stable(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(stable).join(',')}]`;
  const obj = value as Record<string, unknown>;
  return `{${Object.keys(obj)
    .filter((k) => obj[k] !== undefined)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${stable(obj[k])}`)
    .join(',')}}`;
}

export function sameValue(a: unknown, b: unknown): boolean {
  return stable(a) === stable(b);
}

type Fields = Record<string, unknown>;

/** Every step, iteration and branch of a state by path, with the fields compared. */
function flatten(steps: readonly StepJson[], out = new Map<string, Fields>()): Map<string, Fields> {
  for (const step of steps) {
    const fields: Fields = {};
    for (const f of STEP_FIELDS) fields[f] = step[f];
    out.set(stepPathOf(step), fields);
    for (const br of step.branches ?? []) flatten(br.steps, out);
    for (const it of step.iterations ?? []) {
      const itFields: Fields = {};
      for (const f of ITERATION_FIELDS) itFields[f] = it[f];
      out.set(it.path, itFields);
      flatten(it.steps, out);
    }
  }
  return out;
}

/** The changes from `before` to `after` (before null: everything in `after` is added), job first, then steps in `after`'s order. */
export function diffStates(before: JobStateJson | null, after: JobStateJson): StateChange[] {
  const changes: StateChange[] = [];
  if (before) {
    for (const f of JOB_FIELDS) {
      if (!sameValue(before[f], after[f])) changes.push({ path: '', field: f, kind: 'changed', before: before[f], after: after[f] });
    }
  }
  const a = before ? flatten(before.steps) : new Map<string, Fields>();
  const b = flatten(after.steps);
  for (const [path, fields] of b) {
    const old = a.get(path);
    if (!old) {
      changes.push({ path, field: '*', kind: 'added', after: fields });
      continue;
    }
    for (const f of Object.keys(fields)) {
      if (!sameValue(old[f], fields[f])) changes.push({ path, field: f, kind: 'changed', before: old[f], after: fields[f] });
    }
  }
  for (const [path, fields] of a) if (!b.has(path)) changes.push({ path, field: '*', kind: 'removed', before: fields });
  return changes;
}

/** The changed paths (the job as ''), for highlighting rows. */
export function changedPaths(changes: readonly StateChange[]): Set<string> {
  return new Set(changes.map((c) => c.path));
}
