import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { ValidationError } from '../errors/index.js';
import { jsonByteLength } from '../util/json.js';

/** Largest output schema an llm step may carry, as compact JSON (it is sent with every call, in the system prompt). */
export const MAX_OUTPUT_SCHEMA_BYTES = 32 * 1024;
/** Most validation errors reported (to the model in the repair turn, and in LLM_OUTPUT_INVALID's data). */
export const MAX_REPORTED_ERRORS = 10;

export interface OutputError {
  /** JSON Pointer into the reply ('' for the reply itself). */
  path: string;
  message: string;
}

/**
 * Compile an llm step's `output.schema` (JSON Schema 2020-12), strict, so a
 * mistake is a 400 naming `${path}/…` when the workflow is saved. Its root
 * must describe an object: OpenAI's JSON mode answers objects only, and a
 * workflow reads named fields (`steps.draft.data.reply`). Each call has its
 * own Ajv instance: Ajv keeps every schema it compiled, and tenants' schemas
 * have no end.
 */
export function compileOutputSchema(schema: unknown, path: string): ValidateFunction {
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) throw new ValidationError(`${path} must be a JSON Schema object`, { path });
  const bytes = jsonByteLength(schema);
  if (bytes > MAX_OUTPUT_SCHEMA_BYTES) {
    throw new ValidationError(`${path} is ${bytes} bytes; the limit is ${MAX_OUTPUT_SCHEMA_BYTES}`, { path, bytes, limit: MAX_OUTPUT_SCHEMA_BYTES });
  }
  if ((schema as Record<string, unknown>).type !== 'object') {
    throw new ValidationError(`${path}/type must be "object": the reply is read as a JSON object`, { path: `${path}/type` });
  }
  const ajv = new Ajv2020({ allErrors: true, strict: true, strictTypes: false, strictTuples: false, strictRequired: false });
  // ajv-formats is CommonJS: under ESM its plugin function is the module's `default` property.
  addFormatsModule.default(ajv);
  try {
    return ajv.compile(schema);
  } catch (err) {
    throw new ValidationError(`${path} is not a valid JSON Schema: ${err instanceof Error ? err.message : String(err)}`, { path });
  }
}

/** The reply's errors against the schema, at most MAX_REPORTED_ERRORS, each naming where in the reply. */
export function outputErrors(errors: readonly ErrorObject[] | null | undefined): OutputError[] {
  return (errors ?? []).slice(0, MAX_REPORTED_ERRORS).map((e) => {
    if (e.keyword === 'required') {
      return { path: `${e.instancePath}/${String((e.params as { missingProperty?: string }).missingProperty)}`, message: 'is required' };
    }
    if (e.keyword === 'additionalProperties') {
      return { path: `${e.instancePath}/${String((e.params as { additionalProperty?: string }).additionalProperty)}`, message: 'is not allowed' };
    }
    return { path: e.instancePath, message: e.message ?? 'is invalid' };
  });
}
