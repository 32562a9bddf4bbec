import { Ajv2020, type ErrorObject } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { PayloadTooLargeError, ValidationError } from '../../errors/index.js';
import type { StepBase } from '../../model/definition.js';
import { jsonByteLength } from '../../util/json.js';
import { STEP_TYPE_NAMES, stepTypeOf, type Definition } from '../steps/registry.js';
import { checkTemplates, compileExpression } from './expressions.js';
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

/**
 * Validate a workflow definition: size, JSON Schema, unique step ids, and
 * that every JSONata expression and `{{ }}` template compiles. Throws on the
 * first problem with `details.path` naming it (e.g. `/definition/steps/2/url`).
 */
export function validateDefinition(value: unknown): Definition {
  const bytes = jsonByteLength(value);
  if (bytes > MAX_DEFINITION_BYTES) throw new PayloadTooLargeError('definition', bytes, MAX_DEFINITION_BYTES);
  if (!check(value)) {
    const first = describe(check.errors![0]!);
    throw new ValidationError(`${first.path} ${first.message}`, { path: first.path });
  }
  const seen = new Map<string, string>();
  const claim = (id: string, path: string) => {
    const prior = seen.get(id);
    if (prior !== undefined) throw new ValidationError(`${path} "${id}" is already used at ${prior}`, { path });
    seen.set(id, path);
  };
  value.steps.forEach((step, i) => {
    const path = `/definition/steps/${i}`;
    claim(step.id, `${path}/id`);
    checkStep(step, path);
    if (step.compensate) {
      claim(step.compensate.step.id, `${path}/compensate/step/id`);
      checkStep(step.compensate.step, `${path}/compensate/step`);
    }
  });
  return value;
}
