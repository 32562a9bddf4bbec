import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { ValidationError } from '../errors/index.js';
import { jsonByteLength } from '../util/json.js';

/** Largest form (JSON Schema) an approval step may carry, as compact JSON; the database CHECK is the same. */
export const MAX_FORM_BYTES = 64 * 1024;
/** Largest `values` a decision may carry, as compact JSON; the database CHECK is the same. */
export const MAX_VALUES_BYTES = 64 * 1024;

/**
 * Compile an approval's form, a JSON Schema (draft 2020-12) of the values a
 * decision carries. Its root must describe an object. Strict: an unknown
 * keyword or format, or a `$ref` that does not resolve inside the form, is an
 * error naming `${path}/…`, so a mistake is a 400 when the workflow is saved
 * rather than an approval nobody can satisfy.
 *
 * Each call uses its own Ajv instance: Ajv caches every schema it compiled
 * for the instance's lifetime, and forms arrive from tenants without end.
 */
export function compileForm(form: unknown, path: string): ValidateFunction {
  if (typeof form !== 'object' || form === null || Array.isArray(form)) throw new ValidationError(`${path} must be a JSON Schema object`, { path });
  const bytes = jsonByteLength(form);
  if (bytes > MAX_FORM_BYTES) throw new ValidationError(`${path} is ${bytes} bytes; the limit is ${MAX_FORM_BYTES}`, { path, bytes, limit: MAX_FORM_BYTES });
  if ((form as Record<string, unknown>).type !== 'object') throw new ValidationError(`${path}/type must be "object": a decision's values are an object`, { path: `${path}/type` });
  const ajv = new Ajv2020({ allErrors: false, strict: true, strictTypes: false, strictTuples: false, strictRequired: false });
  // ajv-formats is CommonJS: under ESM its plugin function is the module's `default` property.
  addFormatsModule.default(ajv);
  try {
    return ajv.compile(form);
  } catch (err) {
    throw new ValidationError(`${path} is not a valid JSON Schema: ${err instanceof Error ? err.message : String(err)}`, { path });
  }
}

function describe(err: ErrorObject, path: string): { path: string; message: string } {
  let at = `${path}${err.instancePath}`;
  let message = err.message ?? 'is invalid';
  if (err.keyword === 'required') {
    at = `${at}/${String((err.params as { missingProperty?: string }).missingProperty)}`;
    message = 'is required';
  } else if (err.keyword === 'additionalProperties') {
    at = `${at}/${String((err.params as { additionalProperty?: string }).additionalProperty)}`;
    message = 'is not a field of the form';
  } else if (err.keyword === 'enum') {
    message = `must be one of ${((err.params as { allowedValues?: unknown[] }).allowedValues ?? []).join(', ')}`;
  }
  return { path: at, message };
}

/**
 * Check a decision's values against the approval's form; ValidationError
 * naming the field (`/body/values/amount is required`). Without a form a
 * decision carries no values.
 */
export function checkFormValues(form: Record<string, unknown> | null, values: Record<string, unknown>, path: string): void {
  const bytes = jsonByteLength(values);
  if (bytes > MAX_VALUES_BYTES) throw new ValidationError(`${path} is ${bytes} bytes; the limit is ${MAX_VALUES_BYTES}`, { path, bytes, limit: MAX_VALUES_BYTES });
  if (form === null) {
    if (Object.keys(values).length > 0) throw new ValidationError(`${path} is not accepted: this approval has no form`, { path });
    return;
  }
  const check = compileForm(form, '/form');
  if (!check(values)) {
    const first = describe(check.errors![0]!, path);
    throw new ValidationError(`${first.path} ${first.message}`, { path: first.path });
  }
}
