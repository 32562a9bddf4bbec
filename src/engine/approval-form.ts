import type { ErrorObject, ValidateFunction } from 'ajv/dist/2020.js';
import { ValidationError } from '../errors/index.js';
import { jsonByteLength } from '../util/json.js';
import { compileTenantSchema } from '../util/tenant-schema.js';

/** Largest form (JSON Schema) an approval step may carry, as compact JSON; the database CHECK is the same. */
export const MAX_FORM_BYTES = 64 * 1024;
/** Largest `values` a decision may carry, as compact JSON; the database CHECK is the same. */
export const MAX_VALUES_BYTES = 64 * 1024;

/**
 * Compile an approval's form, a JSON Schema (draft 2020-12) of the values a
 * decision carries, whose root describes an object; a mistake is a 400
 * naming `${path}/…` when the workflow is saved rather than an approval
 * nobody can satisfy.
 */
export function compileForm(form: unknown, path: string): ValidateFunction {
  return compileTenantSchema(form, path, { maxBytes: MAX_FORM_BYTES, rootIsObject: "a decision's values are an object", allErrors: false });
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
