import { Ajv2020, type ErrorObject } from 'ajv/dist/2020.js';
import { ValidationError } from '../errors/index.js';
import { CUSTOM_STEP_NAMES } from './custom-step-names.js';
import type { RecorderAction } from './types.js';

/**
 * JSON Schema (the draft 2020-12 subset Ajv understands, discriminated on
 * `type`) of one Chrome DevTools Recorder action as a browser step holds it,
 * and the import of a whole Recorder export.
 *
 * The schema is self-contained (no $id, no $ref), so it can sit inside the
 * workflow definition's schema as it is.
 */

/** Longest action timeout a definition may name (ms). */
export const MAX_ACTION_TIMEOUT_MS = 60_000;
/** Most steps one imported recording may hold. */
export const MAX_RECORDING_STEPS = 200;

const selectorString = { type: 'string', minLength: 1, maxLength: 1000 } as const;

/** Alternatives, each a selector string or a chain of them. */
export const selectorsSchema = {
  type: 'array',
  minItems: 1,
  maxItems: 20,
  items: { anyOf: [selectorString, { type: 'array', minItems: 1, maxItems: 10, items: selectorString }] },
} as const;

const frame = { type: 'array', maxItems: 10, items: { type: 'integer', minimum: 0, maximum: 1000 } } as const;
const coordinate = { type: 'number', minimum: -1_000_000, maximum: 1_000_000 } as const;

const assertedEvents = {
  type: 'array',
  maxItems: 10,
  items: {
    type: 'object',
    additionalProperties: false,
    required: ['type'],
    properties: {
      type: { const: 'navigation' },
      url: { type: 'string', maxLength: 8192 },
      title: { type: 'string', maxLength: 1000 },
    },
  },
} as const;

/** What every action may carry. */
const common = {
  timeout: { type: 'integer', minimum: 1, maximum: MAX_ACTION_TIMEOUT_MS },
  assertedEvents,
  sideEffect: { type: 'boolean' },
  verify: selectorsSchema,
} as const;

type Props = Record<string, object>;

function variant(type: RecorderAction['type'], properties: Props, required: string[] = []): object {
  return {
    properties: { type: { const: type }, ...common, ...properties },
    required: ['type', ...required],
    additionalProperties: false,
  };
}

const name = { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_]{0,63}$' } as const;
const text = { type: 'string', maxLength: 100_000 } as const;

/** `parameters` of each `stepwise.*` custom step. */
const customParameters: Record<(typeof CUSTOM_STEP_NAMES)[number], object> = {
  'stepwise.extract': {
    type: 'object',
    additionalProperties: false,
    required: ['selectors', 'output'],
    properties: {
      selectors: selectorsSchema,
      as: { enum: ['text', 'attribute', 'table', 'html'] },
      attribute: { type: 'string', minLength: 1, maxLength: 200 },
      output: name,
      all: { type: 'boolean' },
    },
    if: { properties: { as: { const: 'attribute' } }, required: ['as'] },
    then: { required: ['attribute'] },
  },
  'stepwise.screenshot': {
    type: 'object',
    additionalProperties: false,
    properties: {
      fullPage: { type: 'boolean' },
      mask: { type: 'array', maxItems: 50, items: selectorsSchema },
    },
  },
  'stepwise.select': {
    type: 'object',
    additionalProperties: false,
    required: ['selectors'],
    properties: { selectors: selectorsSchema, value: text, label: text },
    anyOf: [{ required: ['value'] }, { required: ['label'] }],
  },
  'stepwise.assertText': {
    type: 'object',
    additionalProperties: false,
    required: ['selectors'],
    properties: { selectors: selectorsSchema, equals: text, contains: text, matches: { type: 'string', maxLength: 1000 }, flags: { type: 'string', pattern: '^[imsu]{0,4}$' } },
    oneOf: [{ required: ['equals'] }, { required: ['contains'] }, { required: ['matches'] }],
  },
  'stepwise.upload': {
    type: 'object',
    additionalProperties: false,
    required: ['selectors'],
    properties: {
      selectors: selectorsSchema,
      blob: { type: 'string', minLength: 1, maxLength: 1000 },
      blobs: { type: 'array', minItems: 1, maxItems: 10, items: { type: 'string', minLength: 1, maxLength: 1000 } },
    },
    oneOf: [{ required: ['blob'] }, { required: ['blobs'] }],
  },
  'stepwise.download': {
    type: 'object',
    additionalProperties: false,
    properties: { selectors: selectorsSchema, url: { type: 'string', minLength: 1, maxLength: 8192 } },
    oneOf: [{ required: ['selectors'] }, { required: ['url'] }],
  },
};

/** JSON Schema of one RecorderAction (for the browser step's `actions` items). */
export const recorderActionSchema = {
  type: 'object',
  required: ['type'],
  discriminator: { propertyName: 'type' },
  oneOf: [
    variant(
      'setViewport',
      {
        width: { type: 'integer', minimum: 1, maximum: 10_000 },
        height: { type: 'integer', minimum: 1, maximum: 10_000 },
        deviceScaleFactor: { type: 'number', exclusiveMinimum: 0, maximum: 10 },
        isMobile: { type: 'boolean' },
        hasTouch: { type: 'boolean' },
        isLandscape: { type: 'boolean' },
      },
      ['width', 'height'],
    ),
    variant('navigate', { url: { type: 'string', minLength: 1, maxLength: 8192 } }, ['url']),
    ...(['click', 'doubleClick'] as const).map((type) =>
      variant(
        type,
        { selectors: selectorsSchema, frame, offsetX: coordinate, offsetY: coordinate, button: { enum: ['primary', 'auxiliary', 'secondary', 'back', 'forward'] } },
        ['selectors'],
      ),
    ),
    variant('hover', { selectors: selectorsSchema, frame }, ['selectors']),
    variant('change', { selectors: selectorsSchema, frame, value: text }, ['selectors', 'value']),
    variant('keyDown', { key: { type: 'string', minLength: 1, maxLength: 32 } }, ['key']),
    variant('keyUp', { key: { type: 'string', minLength: 1, maxLength: 32 } }, ['key']),
    variant('scroll', { selectors: selectorsSchema, frame, x: coordinate, y: coordinate }),
    variant(
      'waitForElement',
      {
        selectors: selectorsSchema,
        frame,
        count: { type: 'integer', minimum: 0, maximum: 10_000 },
        operator: { enum: ['==', '>=', '<='] },
        visible: { type: 'boolean' },
      },
      ['selectors'],
    ),
    variant('waitForExpression', { frame, expression: { type: 'string', minLength: 1, maxLength: 10_000 } }, ['expression']),
    variant('close', {}),
    {
      ...variant('customStep', { frame, name: { enum: [...CUSTOM_STEP_NAMES] }, parameters: { type: 'object' } }, ['name', 'parameters']),
      allOf: CUSTOM_STEP_NAMES.map((n) => ({
        if: { properties: { name: { const: n } }, required: ['name'] },
        then: { properties: { parameters: customParameters[n] } },
      })),
    },
  ],
} as const;

// verbose: errors carry their schema, so a "one of these fields" group can name its fields.
const ajv = new Ajv2020({ allErrors: false, discriminator: true, strict: true, strictRequired: false, verbose: true });
const checkAction = ajv.compile<RecorderAction>(recorderActionSchema);

/** Where an Ajv error points and what it says, the way definition errors read (`/steps/3/selectors is required`). */
function describe(err: ErrorObject, prefix: string): { path: string; message: string } {
  let path = `${prefix}${err.instancePath}`;
  let message = err.message ?? 'is invalid';
  if (err.keyword === 'required') {
    path = `${path}/${String((err.params as { missingProperty?: string }).missingProperty)}`;
    message = 'is required';
  } else if (err.keyword === 'additionalProperties') {
    path = `${path}/${String((err.params as { additionalProperty?: string }).additionalProperty)}`;
    message = 'is not a known property';
  } else if (err.keyword === 'discriminator') {
    path = `${path}/type`;
    message = `must be one of ${ACTION_TYPES.join(', ')}`;
  } else if (err.keyword === 'enum') {
    message = `must be one of ${((err.params as { allowedValues?: unknown[] }).allowedValues ?? []).join(', ')}`;
  }
  return { path, message };
}

const ACTION_TYPES: readonly string[] = recorderActionSchema.oneOf.map((v) => (v as { properties: { type: { const: string } } }).properties.type.const);

function fail(path: string, message: string): never {
  throw new ValidationError(path ? `${path} ${message}` : message, { path });
}

/** Check one action against the schema; throws ValidationError naming `${path}/field`. */
export function checkRecorderAction(value: unknown, path: string): RecorderAction {
  if (checkAction(value)) return value;
  const errors = checkAction.errors ?? [];
  const group = errors.find((e) => (e.keyword === 'oneOf' || e.keyword === 'anyOf') && requiredGroup(e.schema) !== null);
  if (group) fail(`${path}${group.instancePath}`, `needs ${group.keyword === 'oneOf' ? 'exactly one' : 'at least one'} of ${requiredGroup(group.schema)!.join(', ')}`);
  const first = errors[0];
  if (!first) fail(path, 'is not a valid action');
  const { path: at, message } = describe(first, path);
  return fail(at, message);
}

/** `[{ required: ['a'] }, { required: ['b'] }]` → ['a', 'b'] (a "one of these fields" rule), else null. */
function requiredGroup(schema: unknown): string[] | null {
  if (!Array.isArray(schema)) return null;
  const names = schema.map((s: unknown) => {
    const required = (s as { required?: unknown }).required;
    return Array.isArray(required) && required.length === 1 && Object.keys(s as object).length === 1 ? String(required[0]) : null;
  });
  return names.every((n) => n !== null) ? (names as string[]) : null;
}

/** A Chrome DevTools Recorder export, turned into browser step actions. */
export interface RecorderImport {
  title: string | undefined;
  actions: RecorderAction[];
}

/**
 * Validate a Chrome DevTools Recorder export (`{ "title", "steps": [...] }`,
 * as an object or its JSON text) and return its steps as actions. What the
 * Recorder writes that Stepwise has no use for is dropped: `target: "main"`
 * (other targets, popups, are refused), a click's `deviceType` and
 * `duration`. A flow-wide `timeout` becomes each action's own when it has
 * none. Throws ValidationError naming the step index and field
 * (`/steps/3/selectors is required`).
 */
export function parseRecorderExport(json: unknown): RecorderImport {
  let value = json;
  if (typeof value === 'string') {
    try {
      value = JSON.parse(value);
    } catch {
      fail('', 'the recording is not JSON');
    }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail('', 'the recording must be a Recorder export object ({ "title", "steps" })');
  const flow = value as Record<string, unknown>;
  if (flow.title !== undefined && typeof flow.title !== 'string') fail('/title', 'must be a string');
  if (!Array.isArray(flow.steps)) fail('/steps', flow.steps === undefined ? 'is required' : 'must be an array');
  const steps = flow.steps as unknown[];
  if (steps.length === 0) fail('/steps', 'must hold at least one step');
  if (steps.length > MAX_RECORDING_STEPS) fail('/steps', `must hold at most ${MAX_RECORDING_STEPS} steps`);
  const flowTimeout =
    typeof flow.timeout === 'number' && Number.isInteger(flow.timeout) && flow.timeout >= 1 && flow.timeout <= MAX_ACTION_TIMEOUT_MS ? flow.timeout : undefined;
  const actions = steps.map((step, i) => {
    const path = `/steps/${i}`;
    if (typeof step !== 'object' || step === null || Array.isArray(step)) fail(path, 'must be an object');
    const { target, deviceType: _deviceType, duration: _duration, ...rest } = step as Record<string, unknown>;
    if (target !== undefined && target !== 'main') fail(`${path}/target`, 'must be "main" (actions in other tabs or popups are not supported)');
    if (flowTimeout !== undefined && rest.timeout === undefined) rest.timeout = flowTimeout;
    const action = checkRecorderAction(rest, path);
    // A recorded navigation is where the recording went: an absolute http(s) URL, whose origin the import allows.
    if (action.type === 'navigate' && !isAbsoluteHttpUrl(action.url ?? '')) fail(`${path}/url`, 'must be an absolute http or https URL');
    return action;
  });
  return { title: typeof flow.title === 'string' && flow.title.trim() !== '' ? flow.title : undefined, actions };
}

function isAbsoluteHttpUrl(url: string): boolean {
  try {
    const u = new URL(url);
    return u.protocol === 'http:' || u.protocol === 'https:';
  } catch {
    return false;
  }
}
