import { STEP_TYPES } from '../steps/registry.js';
import { durationSchema } from '../steps/durations.js';
import { flowControlProperties } from './flow-control.js';
import { searchKeysProperty } from './search-keys.js';
import type { JsonSchema, StepType } from '../steps/types.js';
import type { StepBase } from '../../model/definition.js';

export { MAX_DURATION_MS } from '../steps/durations.js';

/** Step ids must be JSONata-safe names so `steps.<id>` works in expressions. */
export const STEP_ID_PATTERN = '^[A-Za-z_][A-Za-z0-9_]{0,63}$';
export const MAX_STEPS = 500;
/** A PHI path: `input` or `result`, optionally followed by `.field` names. */
export const PHI_PATH_PATTERN = '^(input|result)(\\.[A-Za-z_$][A-Za-z0-9_$]*){0,10}$';
export const MAX_PHI_PATHS = 100;

const retry = {
  type: 'object',
  additionalProperties: false,
  required: ['maxAttempts'],
  properties: {
    maxAttempts: { type: 'integer', minimum: 1, maximum: 100 },
    initialMs: { type: 'integer', minimum: 0, maximum: 3_600_000 },
    maxMs: { type: 'integer', minimum: 0, maximum: 3_600_000 },
    multiplier: { type: 'number', minimum: 1, maximum: 10 },
    jitter: { type: 'boolean' },
    on: { type: 'array', minItems: 1, maxItems: 50, items: { type: 'string', minLength: 1, maxLength: 100 } },
  },
} as const;

/** Properties every step has, whatever its type. */
const common = {
  id: { type: 'string', pattern: STEP_ID_PATTERN },
  name: { type: 'string', minLength: 1, maxLength: 200 },
  retry,
  timeoutMs: durationSchema,
  continueOnError: { type: 'boolean' },
} as const;

const entries: StepType<StepBase>[] = Object.values(STEP_TYPES);

/** What a block has of the common properties: no retries, timeout or compensation of its own (its steps have theirs). */
const blockCommon = { id: common.id, name: common.name, continueOnError: common.continueOnError } as const;

/** One variant per step type (its own properties after the common ones, so a type may narrow e.g. timeoutMs). */
function variants(types: StepType<StepBase>[], extra: Record<string, JsonSchema>): JsonSchema[] {
  return types.map((t) => ({
    properties: { ...(t.block ? blockCommon : { ...common, ...extra }), ...t.properties, type: { const: t.type } },
    required: ['id', 'type', ...t.required],
    additionalProperties: false,
  }));
}

const compensate = {
  type: 'object',
  additionalProperties: false,
  required: ['step'],
  properties: {
    step: {
      type: 'object',
      required: ['id', 'type'],
      discriminator: { propertyName: 'type' },
      oneOf: variants(
        entries.filter((t) => t.compensation),
        {},
      ),
    },
  },
} as const;

/** JSON Schema of a workflow definition (draft 2020-12 subset Ajv understands, discriminated on `type`), built from the step registry. */
export const definitionSchema = {
  $id: 'stepwise:workflow-definition',
  type: 'object',
  required: ['steps'],
  additionalProperties: false,
  properties: {
    timeoutMs: durationSchema,
    maxRetries: { type: 'integer', minimum: 0, maximum: 100 },
    onFailure: { enum: ['fail', 'compensate'] },
    // Which parts of a job's input and result are PHI: every API read that returns them is audited.
    phi: { type: 'array', maxItems: MAX_PHI_PATHS, uniqueItems: true, items: { type: 'string', pattern: PHI_PATH_PATTERN } },
    // concurrency, rateLimits, debounce, dedupe, priority (definition/flow-control.ts).
    ...flowControlProperties,
    // Input paths indexed for the runs list's search (definition/search-keys.ts).
    ...searchKeysProperty,
    steps: { type: 'array', minItems: 1, maxItems: MAX_STEPS, items: { $ref: '#/$defs/step' } },
  },
  // One step of any type; block types hold lists of these (engine/blocks/lists.ts refers here).
  $defs: {
    step: {
      type: 'object',
      required: ['id', 'type'],
      discriminator: { propertyName: 'type' },
      oneOf: variants(entries, { compensate }),
    },
  },
} as const;

/** The step types that may serve as compensations (error messages list them). */
export const COMPENSATION_TYPE_NAMES: readonly string[] = entries.filter((t) => t.compensation).map((t) => t.type);
