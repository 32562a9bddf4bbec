import type { JsonSchema } from '../steps/types.js';

/** Most steps in one list inside a block (the top-level list allows MAX_STEPS). */
export const MAX_LIST_STEPS = 200;

/** JSON Schema of a step list inside a block: each item is a step of any registered type (the definition's $defs). */
export const stepListSchema: JsonSchema = {
  type: 'array',
  minItems: 1,
  maxItems: MAX_LIST_STEPS,
  items: { $ref: '#/$defs/step' },
};

/** A JSONata expression (a condition, a loop's items). */
export const expressionSchema: JsonSchema = { type: 'string', minLength: 1, maxLength: 10_000 };

/** JSONata's truth of a value: false, null, 0, '', NaN, an empty array or object, and undefined are false. */
export function truthy(value: unknown): boolean {
  if (value === undefined || value === null) return false;
  if (Array.isArray(value)) return value.some(truthy);
  if (typeof value === 'object') return Object.keys(value).length > 0;
  if (typeof value === 'number') return value !== 0 && !Number.isNaN(value);
  return Boolean(value);
}
