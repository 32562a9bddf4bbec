import type { ErrorObject, ValidateFunction } from 'ajv/dist/2020.js';
import { compileTenantSchema } from '../util/tenant-schema.js';

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
 * workflow reads named fields (`steps.draft.data.reply`). All errors are
 * collected: the repair turn tells the model everything that was wrong.
 */
export function compileOutputSchema(schema: unknown, path: string): ValidateFunction {
  return compileTenantSchema(schema, path, { maxBytes: MAX_OUTPUT_SCHEMA_BYTES, rootIsObject: 'the reply is read as a JSON object', allErrors: true });
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
