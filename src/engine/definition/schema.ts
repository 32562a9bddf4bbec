import { HTTP_METHODS, LOG_LEVEL_NAMES } from './types.js';

/** Step ids must be JSONata-safe names so `steps.<id>` works in expressions. */
export const STEP_ID_PATTERN = '^[A-Za-z_][A-Za-z0-9_]{0,63}$';
export const MAX_STEPS = 500;

const base = {
  id: { type: 'string', pattern: STEP_ID_PATTERN },
  name: { type: 'string', minLength: 1, maxLength: 200 },
} as const;

/** JSON Schema of a workflow definition (draft 2020-12 subset Ajv understands, discriminated on `type`). */
export const definitionSchema = {
  $id: 'stepwise:workflow-definition',
  type: 'object',
  required: ['steps'],
  additionalProperties: false,
  properties: {
    steps: {
      type: 'array',
      minItems: 1,
      maxItems: MAX_STEPS,
      items: {
        type: 'object',
        required: ['id', 'type'],
        discriminator: { propertyName: 'type' },
        oneOf: [
          {
            properties: {
              ...base,
              type: { const: 'transform' },
              expression: { type: 'string', minLength: 1, maxLength: 100_000 },
            },
            required: ['id', 'type', 'expression'],
            additionalProperties: false,
          },
          {
            properties: {
              ...base,
              type: { const: 'http' },
              method: { enum: [...HTTP_METHODS] },
              url: { type: 'string', minLength: 1, maxLength: 8192 },
              headers: {
                type: 'object',
                additionalProperties: { type: 'string', maxLength: 8192 },
                propertyNames: { pattern: "^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}$" },
              },
              body: {},
              expectStatus: {
                type: 'array',
                minItems: 1,
                maxItems: 100,
                items: { type: 'integer', minimum: 100, maximum: 599 },
              },
            },
            required: ['id', 'type', 'method', 'url'],
            additionalProperties: false,
          },
          {
            properties: {
              ...base,
              type: { const: 'log' },
              level: { enum: [...LOG_LEVEL_NAMES] },
              message: { type: 'string', minLength: 1, maxLength: 10_000 },
            },
            required: ['id', 'type', 'message'],
            additionalProperties: false,
          },
          {
            properties: { ...base, type: { const: 'noop' } },
            required: ['id', 'type'],
            additionalProperties: false,
          },
        ],
      },
    },
  },
} as const;
