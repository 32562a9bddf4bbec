import { HTTP_METHODS, LOG_LEVEL_NAMES } from './types.js';

/** Step ids must be JSONata-safe names so `steps.<id>` works in expressions. */
export const STEP_ID_PATTERN = '^[A-Za-z_][A-Za-z0-9_]{0,63}$';
export const MAX_STEPS = 500;
/** A PHI path: `input` or `result`, optionally followed by `.field` names (seed 000 §1.3.3). */
export const PHI_PATH_PATTERN = '^(input|result)(\\.[A-Za-z_$][A-Za-z0-9_$]*){0,10}$';
export const MAX_PHI_PATHS = 100;
/** Longest a step attempt, a delay, a wait or a job may be set to last: 30 days. */
export const MAX_DURATION_MS = 30 * 24 * 3600 * 1000;

const duration = { type: 'integer', minimum: 1, maximum: MAX_DURATION_MS } as const;

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

const identity = {
  id: { type: 'string', pattern: STEP_ID_PATTERN },
  name: { type: 'string', minLength: 1, maxLength: 200 },
} as const;

const behaviour = {
  retry,
  timeoutMs: duration,
  continueOnError: { type: 'boolean' },
} as const;

/** One schema per action step type (the ones that may also serve as compensations). */
function actionVariants(extra: Record<string, unknown>) {
  const common = { ...identity, ...behaviour, ...extra };
  return [
    {
      properties: { ...common, type: { const: 'transform' }, expression: { type: 'string', minLength: 1, maxLength: 100_000 } },
      required: ['id', 'type', 'expression'],
      additionalProperties: false,
    },
    {
      properties: {
        ...common,
        type: { const: 'http' },
        method: { enum: [...HTTP_METHODS] },
        url: { type: 'string', minLength: 1, maxLength: 8192 },
        headers: {
          type: 'object',
          additionalProperties: { type: 'string', maxLength: 8192 },
          propertyNames: { pattern: "^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}$" },
        },
        body: {},
        expectStatus: { type: 'array', minItems: 1, maxItems: 100, items: { type: 'integer', minimum: 100, maximum: 599 } },
      },
      required: ['id', 'type', 'method', 'url'],
      additionalProperties: false,
    },
    {
      properties: {
        ...common,
        type: { const: 'log' },
        level: { enum: [...LOG_LEVEL_NAMES] },
        message: { type: 'string', minLength: 1, maxLength: 10_000 },
      },
      required: ['id', 'type', 'message'],
      additionalProperties: false,
    },
    {
      properties: { ...common, type: { const: 'noop' } },
      required: ['id', 'type'],
      additionalProperties: false,
    },
  ];
}

const compensate = {
  type: 'object',
  additionalProperties: false,
  required: ['step'],
  properties: {
    step: { type: 'object', required: ['id', 'type'], discriminator: { propertyName: 'type' }, oneOf: actionVariants({}) },
  },
} as const;

/** JSON Schema of a workflow definition (draft 2020-12 subset Ajv understands, discriminated on `type`). */
export const definitionSchema = {
  $id: 'stepwise:workflow-definition',
  type: 'object',
  required: ['steps'],
  additionalProperties: false,
  properties: {
    timeoutMs: duration,
    maxRetries: { type: 'integer', minimum: 0, maximum: 100 },
    onFailure: { enum: ['fail', 'compensate'] },
    // Which parts of a job's input and result are PHI: every API read that returns them is audited.
    phi: { type: 'array', maxItems: MAX_PHI_PATHS, uniqueItems: true, items: { type: 'string', pattern: PHI_PATH_PATTERN } },
    steps: {
      type: 'array',
      minItems: 1,
      maxItems: MAX_STEPS,
      items: {
        type: 'object',
        required: ['id', 'type'],
        discriminator: { propertyName: 'type' },
        oneOf: [
          ...actionVariants({ compensate }),
          {
            properties: {
              ...identity,
              ...behaviour,
              compensate,
              type: { const: 'delay' },
              durationMs: duration,
              until: { type: 'string', format: 'date-time' },
            },
            required: ['id', 'type'],
            additionalProperties: false,
          },
          {
            properties: {
              ...identity,
              ...behaviour,
              compensate,
              type: { const: 'wait' },
              signal: { type: 'string', pattern: '^[A-Za-z0-9_.:-]{1,100}$' },
              timeoutMs: duration,
              onTimeout: { enum: ['fail', 'continue'] },
            },
            required: ['id', 'type', 'signal'],
            additionalProperties: false,
          },
        ],
      },
    },
  },
} as const;
