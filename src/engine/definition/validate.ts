import { Ajv2020, type ErrorObject } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { PayloadTooLargeError, ValidationError } from '../../errors/index.js';
import type { StepBase } from '../../model/definition.js';
import { jsonByteLength } from '../../util/json.js';
import { STEP_TYPE_NAMES, stepTypeOf, type Definition } from '../steps/registry.js';
import { checkTemplates, compileExpression } from './expressions.js';
import { checkFlowControl } from './flow-control.js';
import { checkSearchKeys } from './search-keys.js';
import { definitionSchema } from './schema.js';

/** Largest definition accepted, as compact JSON text (the database CHECK is a looser backstop). */
export const MAX_DEFINITION_BYTES = 1024 * 1024;

const ajv = new Ajv2020({ allErrors: false, discriminator: true, strict: true, strictRequired: false });
// ajv-formats is CommonJS: under ESM its plugin function is the module's `default` property.
addFormatsModule.default(ajv, ['date-time']);
const check = ajv.compile<Definition>(definitionSchema);

function describe(err: ErrorObject): { path: string; message: string } {
  let path = err.instancePath || '';
  let message = err.message ?? 'is invalid';
  if (err.keyword === 'required') {
    const missing = String((err.params as { missingProperty?: string }).missingProperty);
    path = `${path}/${missing}`;
    message = 'is required';
  } else if (err.keyword === 'additionalProperties') {
    const extra = String((err.params as { additionalProperty?: string }).additionalProperty);
    path = `${path}/${extra}`;
    message = 'is not a known property';
  } else if (err.keyword === 'discriminator') {
    path = `${path}/type`;
    message = `must be one of ${allowedTypes(path).join(', ')}`;
  } else if (err.keyword === 'enum') {
    const allowed = (err.params as { allowedValues?: unknown[] }).allowedValues ?? [];
    message = `must be one of ${allowed.join(', ')}`;
  }
  return { path: `/definition${path}`, message };
}

/** A compensation's type must be one that runs to an end; elsewhere any registered type. */
function allowedTypes(path: string): readonly string[] {
  return path.includes('/compensate/') ? STEP_TYPE_NAMES.filter((t) => stepTypeOf({ id: '', type: t })?.compensation) : STEP_TYPE_NAMES;
}

/** Compile every expression and template the step evaluates, then its type's own checks. */
function checkStep(step: StepBase, path: string): void {
  const type = stepTypeOf(step)!; // the schema admitted only registered types
  const sources = type.sources(step);
  for (const [key, value] of Object.entries(sources.templates ?? {})) checkTemplates(value, `${path}/${key}`);
  for (const [key, text] of Object.entries(sources.expressions ?? {})) compileExpression(text, `${path}/${key}`);
  type.validate(step, path);
}

/** Blocks nest at most this deep (a block inside a block inside a block). */
export const MAX_BLOCK_DEPTH = 3;
/** Most step runs one job can make in the worst case (every loop at its item cap, the longest branch taken). */
export const MAX_STEP_RUNS = 20_000;

/**
 * Check one list of steps and the lists its blocks hold: ids unique within
 * the list (with its compensations), every source compiled, nesting depth.
 * Returns each step's worst-case number of step runs.
 */
function checkList(steps: readonly StepBase[], path: string, depth: number): number[] {
  const seen = new Map<string, string>();
  const claim = (id: string, at: string) => {
    const prior = seen.get(id);
    if (prior !== undefined) throw new ValidationError(`${at} "${id}" is already used at ${prior}`, { path: at });
    seen.set(id, at);
  };
  return steps.map((step, i) => {
    const at = `${path}/${i}`;
    claim(step.id, `${at}/id`);
    checkStep(step, at);
    if (step.compensate) {
      claim(step.compensate.step.id, `${at}/compensate/step/id`);
      checkStep(step.compensate.step, `${at}/compensate/step`);
    }
    return worstCase(step, at, depth);
  });
}

function sum(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0);
}

/** A step's worst case of step runs: 1 for a leaf; for a block, itself plus its lists (the longest of exclusive ones). */
function worstCase(step: StepBase, path: string, depth: number): number {
  const lists = stepTypeOf(step)!.children(step);
  if (lists.length === 0) return 1;
  if (depth + 1 > MAX_BLOCK_DEPTH) {
    throw new ValidationError(`${path} is a block inside ${depth} blocks: blocks nest at most ${MAX_BLOCK_DEPTH} deep`, { path, limit: MAX_BLOCK_DEPTH });
  }
  let all = 0;
  let longestExclusive = 0;
  for (const list of lists) {
    const runs = list.repeat * sum(checkList(list.steps, `${path}${list.pointer}`, depth + 1));
    if (list.exclusive) longestExclusive = Math.max(longestExclusive, runs);
    else all += runs;
  }
  return 1 + all + longestExclusive;
}

/**
 * Validate a workflow definition: size, JSON Schema, step ids unique within
 * each list, that every JSONata expression and `{{ }}` template compiles,
 * block depth, and the worst case of step runs per job. Throws on the first
 * problem with `details.path` naming it (e.g. `/definition/steps/2/url`).
 */
export function validateDefinition(value: unknown): Definition {
  const bytes = jsonByteLength(value);
  if (bytes > MAX_DEFINITION_BYTES) throw new PayloadTooLargeError('definition', bytes, MAX_DEFINITION_BYTES);
  if (!check(value)) {
    const first = describe(check.errors![0]!);
    throw new ValidationError(`${first.path} ${first.message}`, { path: first.path });
  }
  // Added up per top-level step, so the error names the step that makes the job too large.
  let total = 0;
  checkList(value.steps, '/definition/steps', 0).forEach((runs, i) => {
    const path = `/definition/steps/${i}`;
    total += runs;
    if (total > MAX_STEP_RUNS) {
      throw new ValidationError(
        `${path} brings the worst case to ${total} step runs per job (loops at their maxItems times their steps); at most ${MAX_STEP_RUNS}`,
        { path, runs: total, limit: MAX_STEP_RUNS },
      );
    }
  });
  checkFlowControl(value);
  checkSearchKeys(value);
  return value;
}
