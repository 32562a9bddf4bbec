import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { ValidationError } from '../errors/index.js';
import { jsonByteLength } from './json.js';

/**
 * Compile a JSON Schema (draft 2020-12) a tenant wrote into a definition (an
 * approval's form, an llm step's output schema) whose root must describe an
 * object. Strict: an unknown keyword or format, or a `$ref` that does not
 * resolve inside the schema, is a ValidationError naming `${path}/…`, so a
 * mistake is a 400 when the workflow is saved. `rootIsObject` says why the
 * root must be an object, for the error.
 *
 * Each call uses its own Ajv instance: Ajv caches every schema it compiled
 * for the instance's lifetime, and tenants' schemas arrive without end.
 */
export function compileTenantSchema(
  schema: unknown,
  path: string,
  options: { maxBytes: number; rootIsObject: string; allErrors: boolean },
): ValidateFunction {
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) throw new ValidationError(`${path} must be a JSON Schema object`, { path });
  const bytes = jsonByteLength(schema);
  if (bytes > options.maxBytes) {
    throw new ValidationError(`${path} is ${bytes} bytes; the limit is ${options.maxBytes}`, { path, bytes, limit: options.maxBytes });
  }
  if ((schema as Record<string, unknown>).type !== 'object') {
    throw new ValidationError(`${path}/type must be "object": ${options.rootIsObject}`, { path: `${path}/type` });
  }
  const ajv = new Ajv2020({ allErrors: options.allErrors, strict: true, strictTypes: false, strictTuples: false, strictRequired: false });
  // ajv-formats is CommonJS: under ESM its plugin function is the module's `default` property.
  addFormatsModule.default(ajv);
  try {
    return ajv.compile(schema);
  } catch (err) {
    throw new ValidationError(`${path} is not a valid JSON Schema: ${err instanceof Error ? err.message : String(err)}`, { path });
  }
}
