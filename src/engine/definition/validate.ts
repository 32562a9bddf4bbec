import { Ajv2020, type ErrorObject } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { PayloadTooLargeError, ValidationError } from '../../errors/index.js';
import { jsonByteLength } from '../../util/json.js';
import { checkTemplates, compileExpression } from './expressions.js';
import { definitionSchema } from './schema.js';
import type { ActionStep, WorkflowDefinition } from './types.js';

const STEP_TYPES = ['transform', 'http', 'log', 'noop', 'delay', 'wait'];

/** Compile every expression and template an action step holds. */
function checkActionStep(step: ActionStep, path: string): void {
  switch (step.type) {
    case 'transform':
      compileExpression(step.expression, `${path}/expression`);
      break;
    case 'http':
      checkTemplates(step.url, `${path}/url`);
      checkTemplates(step.headers ?? {}, `${path}/headers`);
      checkTemplates(step.body, `${path}/body`);
      break;
    case 'log':
      checkTemplates(step.message, `${path}/message`);
      break;
    case 'noop':
      break;
  }
}

/** Largest definition accepted, as compact JSON text (the database CHECK is a looser backstop). */
export const MAX_DEFINITION_BYTES = 1024 * 1024;

const ajv = new Ajv2020({ allErrors: false, discriminator: true, strict: true, strictRequired: false });
// ajv-formats is CommonJS: under ESM its plugin function is the module's `default` property.
addFormatsModule.default(ajv, ['date-time']);
const check = ajv.compile<WorkflowDefinition>(definitionSchema);

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
    message = `must be one of ${STEP_TYPES.join(', ')}`;
  } else if (err.keyword === 'enum') {
    const allowed = (err.params as { allowedValues?: unknown[] }).allowedValues ?? [];
    message = `must be one of ${allowed.join(', ')}`;
  }
  return { path: `/definition${path}`, message };
}

/**
 * Validate a workflow definition: size, JSON Schema, unique step ids, and
 * that every JSONata expression and `{{ }}` template compiles. Throws on the
 * first problem with `details.path` naming it (e.g. `/definition/steps/2/url`).
 */
export function validateDefinition(value: unknown): WorkflowDefinition {
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
    switch (step.type) {
      case 'delay':
        if ((step.durationMs === undefined) === (step.until === undefined)) {
          throw new ValidationError(`${path} needs exactly one of durationMs and until`, { path: `${path}/durationMs` });
        }
        break;
      case 'wait':
        break;
      default:
        checkActionStep(step, path);
    }
    if (step.compensate) {
      claim(step.compensate.step.id, `${path}/compensate/step/id`);
      checkActionStep(step.compensate.step, `${path}/compensate/step`);
    }
  });
  return value;
}
