import type { FastifyError, FastifyInstance } from 'fastify';
import { isStepwiseError, type ErrorCode } from '../errors/index.js';
import type { Logger } from '../util/logger.js';

export interface ErrorBody {
  error: { code: string; message: string; details: Record<string, unknown> };
}

/** Typed error → HTTP status, exhaustive so a new code cannot be forgotten. */
export function statusFor(code: ErrorCode): number {
  switch (code) {
    case 'VALIDATION':
      return 400;
    case 'UNAUTHORIZED':
    case 'KEY_REVOKED':
    case 'KEY_EXPIRED':
    case 'USER_DISABLED':
    case 'INVALID_CREDENTIALS':
    case 'SESSION_EXPIRED':
      return 401;
    case 'FORBIDDEN':
    case 'CROSS_ORIGIN_REQUEST':
      return 403;
    case 'NOT_FOUND':
      return 404;
    case 'CONFLICT':
      return 409;
    case 'GONE':
      return 410;
    case 'PAYLOAD_TOO_LARGE':
      return 413;
    // 402, not 429: a plan limit does not lift by waiting (the fix is a
    // plan change), and clients that retry 429s after Retry-After would spin.
    case 'PLAN_LIMIT':
      return 402;
    case 'RATE_LIMITED':
      return 429;
    case 'DATA_DIR_LOCKED':
    case 'UNAVAILABLE':
    case 'QUERY_TIMEOUT':
      return 503;
    case 'DATABASE':
      return 500;
  }
}

/**
 * Retry-After of a 503 whose error names no time of its own (a query past its
 * budget, a data directory another process holds, a blob store down): a few
 * seconds, so a client that honours it neither hammers a struggling server
 * nor waits long after it is back.
 */
export const DEFAULT_RETRY_AFTER_SECONDS = 5;

/**
 * Seconds a 503 asks the client to wait: the error's own
 * `details.retryAfterSeconds` (DatabaseUnavailableError sets it) when it is
 * a positive whole number, else the default. Every 503 carries one, so a
 * client can tell "try again shortly" from a failure that will not pass.
 */
export function retryAfterSeconds(details: Record<string, unknown>): number {
  const s = details.retryAfterSeconds;
  return typeof s === 'number' && Number.isInteger(s) && s > 0 ? s : DEFAULT_RETRY_AFTER_SECONDS;
}

function body(code: string, message: string, details: Record<string, unknown> = {}): ErrorBody {
  return { error: { code, message, details } };
}

/** Fastify's own request errors (schema validation, bad JSON, body too large) in our error format. */
function frameworkError(err: FastifyError, bodyLimit: number): { status: number; body: ErrorBody } | undefined {
  if (err.validation && err.validation.length > 0) {
    const v = err.validation[0]!;
    let path = `/${err.validationContext ?? 'body'}${v.instancePath ?? ''}`;
    let message = v.message ?? 'is invalid';
    const params = (v.params ?? {}) as Record<string, unknown>;
    if (v.keyword === 'required') {
      path = `${path}/${String(params.missingProperty)}`;
      message = 'is required';
    } else if (v.keyword === 'additionalProperties') {
      path = `${path}/${String(params.additionalProperty)}`;
      message = 'is not a known property';
    } else if (v.keyword === 'pattern' && params.pattern === '\\S') {
      message = 'must not be blank';
    } else if (v.keyword === 'enum') {
      message = `must be one of ${(params.allowedValues as unknown[] | undefined)?.join(', ')}`;
    }
    return { status: 400, body: body('VALIDATION', `${path} ${message}`, { path, ...params }) };
  }
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return {
        status: 413,
        body: body('PAYLOAD_TOO_LARGE', `request body is larger than the ${bodyLimit} byte limit`, { path: '/body', limit: bodyLimit }),
      };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return { status: 415, body: body('UNSUPPORTED_MEDIA_TYPE', 'send JSON with Content-Type: application/json', { path: '/headers/content-type' }) };
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return { status: 400, body: body('VALIDATION', 'request body is not valid JSON', { path: '/body' }) };
  }
  if (err instanceof SyntaxError) {
    return { status: 400, body: body('VALIDATION', 'request body is not valid JSON', { path: '/body' }) };
  }
  if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
    return { status: err.statusCode, body: body('BAD_REQUEST', err.message) };
  }
  return undefined;
}

/** Every error leaves as `{ error: { code, message, details } }`; 5xx never expose internals. */
export function installErrorHandling(app: FastifyInstance, logger: Logger, bodyLimit: number): void {
  app.setErrorHandler((err: FastifyError, request, reply) => {
    if (isStepwiseError(err)) {
      const status = statusFor(err.code);
      if (status === 503) {
        // Passes by itself (the database restarting, a busy pool, a query past its budget): say when to
        // come back. Only the wait is shown of its details; the driver's text stays in the log.
        const seconds = retryAfterSeconds(err.details);
        logger.warn({ err, url: request.url }, 'request answered 503');
        reply.header('retry-after', String(seconds));
        return reply.status(status).send(body(err.code, err.message, { retryAfterSeconds: seconds }));
      }
      if (status >= 500) {
        logger.error({ err, url: request.url }, 'request failed');
        return reply.status(status).send(body(err.code, 'internal error'));
      }
      const { sqlstate: _s, detail: _d, ...details } = err.details;
      if (err.code === 'RATE_LIMITED') reply.header('retry-after', String(err.details.retryAfterSeconds));
      return reply.status(status).send(body(err.code, err.message, details));
    }
    const mapped = frameworkError(err, bodyLimit);
    if (mapped) return reply.status(mapped.status).send(mapped.body);
    logger.error({ err, url: request.url }, 'request failed');
    return reply.status(500).send(body('INTERNAL', 'internal error'));
  });
  app.setNotFoundHandler((request, reply) => {
    reply.status(404).send(body('NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]}`));
  });
}
