import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { ValidationError } from '../errors/index.js';
import { isPlainObject } from '../util/json.js';

/**
 * A template's settings: a JSON Schema its config must satisfy, and the
 * placeholders that put config values into its definition when it is
 * instantiated. Two placeholder forms, chosen so they cannot be mistaken for
 * the run-time `{{ }}` templates (which are left exactly as written):
 *
 * - `{"$config": "path"}` — an object with only this key is replaced by the
 *   config's value at `path` whole (a string, number, array, object), e.g.
 *   `"allowOrigins": [{"$config": "portalOrigin"}]` or `"to": {"$config": "recipients"}`.
 * - `[[config.path]]` inside a string is replaced by the value as text, e.g.
 *   `"url": "[[config.apiBaseUrl]]/orders"` or
 *   `"value": "{{ credentials.[[config.portalCredential]].username }}"`.
 *
 * `path` is dot-separated property names (`portal.origin`). A placeholder
 * whose value the config lacks (and the schema gives no default for) is a
 * 400 naming `/body/config/<path>`.
 */

/** Config values a path may name: property names, dot-separated. */
const PATH = '[A-Za-z_][A-Za-z0-9_]*(?:\\.[A-Za-z_][A-Za-z0-9_]*)*';
const STRING_PLACEHOLDER = new RegExp(`\\[\\[config\\.(${PATH})\\]\\]`, 'g');
const WHOLE_PATH = new RegExp(`^${PATH}$`);

// Settings schemas are written by template authors: 2020-12 like definitions,
// not strict (authors may add keywords such as "title" or "examples").
const ajv = new Ajv2020({ allErrors: false, strict: false, useDefaults: true });
addFormatsModule.default(ajv);

/** Compiled settings schemas by their JSON text: a template is instantiated many times. */
const compiled = new Map<string, ValidateFunction>();
const CACHE_LIMIT = 1_000;

/** Compile a settings schema; a schema that does not compile is a ValidationError at `path`. */
export function compileSettingsSchema(schema: Record<string, unknown>, path: string): ValidateFunction {
  const key = JSON.stringify(schema);
  const hit = compiled.get(key);
  if (hit) return hit;
  let fn: ValidateFunction;
  try {
    fn = ajv.compile(schema);
  } catch (err) {
    throw new ValidationError(`${path} is not a valid JSON Schema: ${(err as Error).message}`, { path });
  }
  if (compiled.size >= CACHE_LIMIT) compiled.clear();
  compiled.set(key, fn);
  return fn;
}

function describe(err: ErrorObject, base: string): { path: string; message: string } {
  let path = `${base}${err.instancePath}`;
  let message = err.message ?? 'is invalid';
  if (err.keyword === 'required') {
    path = `${path}/${String((err.params as { missingProperty?: string }).missingProperty)}`;
    message = 'is required';
  } else if (err.keyword === 'additionalProperties') {
    path = `${path}/${String((err.params as { additionalProperty?: string }).additionalProperty)}`;
    message = 'is not a known property';
  } else if (err.keyword === 'enum') {
    message = `must be one of ${((err.params as { allowedValues?: unknown[] }).allowedValues ?? []).join(', ')}`;
  }
  return { path, message };
}

/**
 * The config checked against the template's settings schema, with the
 * schema's defaults filled in (a copy: the caller's object is not changed).
 * Errors name the field under `base`, e.g. `/body/config/portalOrigin`.
 */
export function checkConfig(schema: Record<string, unknown>, config: unknown, base = '/body/config'): Record<string, unknown> {
  const validate = compileSettingsSchema(schema, '/settingsSchema');
  const copy: unknown = structuredClone(config ?? {});
  if (!validate(copy)) {
    const first = describe(validate.errors![0]!, base);
    throw new ValidationError(`${first.path} ${first.message}`, { path: first.path });
  }
  if (!isPlainObject(copy)) throw new ValidationError(`${base} must be an object`, { path: base });
  return copy;
}

function lookup(config: Record<string, unknown>, path: string, base: string): unknown {
  let value: unknown = config;
  for (const part of path.split('.')) {
    value = isPlainObject(value) && Object.hasOwn(value, part) ? value[part] : undefined;
    if (value === undefined) break;
  }
  if (value === undefined || value === null) {
    const at = `${base}/${path.split('.').join('/')}`;
    throw new ValidationError(`${at} is required by the template's definition`, { path: at });
  }
  return value;
}

function asText(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** True when `value` is a whole-value placeholder `{"$config": "path"}`. */
function wholePlaceholder(value: Record<string, unknown>): string | undefined {
  const keys = Object.keys(value);
  return keys.length === 1 && keys[0] === '$config' && typeof value.$config === 'string' ? value.$config : undefined;
}

/** The definition with every placeholder replaced by the config's values (a new value; the template is not changed). */
export function applyConfig(definition: unknown, config: Record<string, unknown>, base = '/body/config'): unknown {
  const walk = (value: unknown): unknown => {
    if (typeof value === 'string') {
      return value.includes('[[config.') ? value.replace(STRING_PLACEHOLDER, (_m, path: string) => asText(lookup(config, path, base))) : value;
    }
    if (Array.isArray(value)) return value.map(walk);
    if (isPlainObject(value)) {
      const path = wholePlaceholder(value);
      if (path !== undefined) {
        if (!WHOLE_PATH.test(path)) throw new ValidationError(`{"$config": "${path}"} does not name a config path`, { path: base });
        return structuredClone(lookup(config, path, base));
      }
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, walk(v)]));
    }
    return value;
  };
  return walk(definition);
}

/** Every config path a definition's placeholders name (for checks: each must be a property of the settings schema). */
export function placeholderPaths(definition: unknown): string[] {
  const found = new Set<string>();
  const walk = (value: unknown): void => {
    if (typeof value === 'string') {
      for (const m of value.matchAll(STRING_PLACEHOLDER)) found.add(m[1]!);
    } else if (Array.isArray(value)) {
      value.forEach(walk);
    } else if (isPlainObject(value)) {
      const path = wholePlaceholder(value);
      if (path !== undefined) found.add(path);
      else Object.values(value).forEach(walk);
    }
  };
  walk(definition);
  return [...found].sort();
}
