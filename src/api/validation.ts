import { Ajv, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { FastifyInstance, FastifySchema } from 'fastify';

// ajv-formats is CommonJS: under ESM its plugin function is the module's `default` property.
const addFormats = addFormatsModule.default;

function makeAjv(coerce: boolean): Ajv {
  const ajv = new Ajv({
    // Query strings and path params are text: coerce them ("50" → 50, "a,b" handled per route).
    // JSON bodies are typed already: a string where a number belongs is the caller's mistake.
    coerceTypes: coerce ? 'array' : false,
    removeAdditional: false,
    useDefaults: true,
    allErrors: false,
    strict: false,
  });
  addFormats(ajv);
  return ajv;
}

/**
 * Request validation with two Ajv instances: coercing for querystring,
 * params and headers, strict for bodies (Fastify's default coerces bodies
 * too, so `{"name": 123}` became "123").
 */
export function installValidation(app: FastifyInstance): void {
  const coercing = makeAjv(true);
  const strict = makeAjv(false);
  app.setValidatorCompiler(({ schema, httpPart }: { schema: FastifySchema; httpPart?: string }) => {
    const compiled: ValidateFunction = (httpPart === 'body' ? strict : coercing).compile(schema);
    return compiled;
  });
}
