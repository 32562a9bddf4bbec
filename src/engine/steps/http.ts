import type { Readable } from 'node:stream';
import type { StepBase } from '../../model/definition.js';
import { EgressDeniedError, EgressUnreachableError, OutboundRequestError } from '../../net/errors.js';
import type { OutboundResponse } from '../../net/http-client.js';
import { renderString, renderTemplates } from '../definition/expressions.js';
import { BUCKET_NAME_PATTERN } from '../definition/bucket-name.js';
import { noChildren, noDirectCredentials, noExtraChecks, StepError, stepTimeout, type StepContext, type StepType } from './types.js';

export const HTTP_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'] as const;
export type HttpMethod = (typeof HTTP_METHODS)[number];

/**
 * An HTTP request with `{{ }}` templates in url, headers and body. A body
 * that is not a string is sent as JSON. Fails with HTTP_STATUS when the
 * status is not expected (default: any 2xx), HTTP_ERROR when the request
 * itself fails, EGRESS_DENIED when the egress policy refuses the host or a
 * host it redirects to.
 */
export interface HttpStep extends StepBase {
  type: 'http';
  method: HttpMethod;
  url: string;
  headers?: Record<string, string>;
  body?: unknown;
  /** Statuses that count as success; default any 2xx. */
  expectStatus?: number[];
  /** The one rate-limit bucket (of the workflow's rateLimits) this request takes a token from; default: all of them. */
  rateLimit?: string;
}

export interface HttpOutput {
  status: number;
  headers: Record<string, string>;
  body: unknown;
  /** True when the body was longer than the capture bound and was cut. */
  truncated: boolean;
}

export const httpStep: StepType<HttpStep> = {
  type: 'http',
  properties: {
    method: { enum: [...HTTP_METHODS] },
    url: { type: 'string', minLength: 1, maxLength: 8192 },
    headers: {
      type: 'object',
      additionalProperties: { type: 'string', maxLength: 8192 },
      propertyNames: { pattern: "^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}$" },
    },
    body: {},
    expectStatus: { type: 'array', minItems: 1, maxItems: 100, items: { type: 'integer', minimum: 100, maximum: 599 } },
    rateLimit: { type: 'string', pattern: BUCKET_NAME_PATTERN },
  },
  required: ['method', 'url'],
  sources: (step) => ({ templates: { url: step.url, headers: step.headers ?? {}, body: step.body ?? null } }),
  validate: noExtraChecks,
  credentials: noDirectCredentials,
  children: noChildren,
  block: false,
  attemptTimeoutMs: stepTimeout,
  sideEffects: true,
  abortable: true,
  compensation: true,
  run: runHttp,
};

async function runHttp(step: HttpStep, ctx: StepContext): Promise<HttpOutput> {
  const where = `steps.${step.id}`;
  const url = await renderString(step.url, ctx.scope, `${where}.url`);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new StepError('HTTP_BAD_URL', `"${url.slice(0, 200)}" is not a valid URL`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new StepError('HTTP_BAD_URL', `only http and https URLs are allowed, got ${parsed.protocol}`);
  }
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(step.headers ?? {})) {
    headers[name.toLowerCase()] = await renderString(value, ctx.scope, `${where}.headers.${name}`);
  }
  let body: string | undefined;
  if (step.body !== undefined && step.method !== 'GET' && step.method !== 'HEAD') {
    const rendered = await renderTemplates(step.body, ctx.scope, `${where}.body`);
    if (typeof rendered === 'string') {
      body = rendered;
    } else {
      body = JSON.stringify(rendered);
      headers['content-type'] ??= 'application/json';
    }
  }

  let res: OutboundResponse;
  try {
    res = await ctx.net.request({ method: step.method, url: parsed, headers, body: body ?? null, signal: ctx.signal });
  } catch (err) {
    if (ctx.signal.aborted) throw ctx.signal.reason;
    // A refusal by the egress policy fails the step as EGRESS_DENIED (step-attempts.ts), whatever the step type.
    if (err instanceof EgressDeniedError) throw err;
    if (err instanceof OutboundRequestError) throw new StepError(err.code === 'BAD_URL' ? 'HTTP_BAD_URL' : 'HTTP_ERROR', err.message);
    const code = (err as { code?: unknown }).code;
    const reason = err instanceof EgressUnreachableError ? (err.systemCode ?? 'unreachable') : typeof code === 'string' ? code : (err as Error).message;
    throw new StepError('HTTP_ERROR', `${step.method} ${parsed.origin}${parsed.pathname} failed: ${reason}`);
  }
  const { bytes, truncated } = await readBounded(res.body, ctx.limits.httpMaxResponseBytes).catch((err: unknown) => {
    if (ctx.signal.aborted) throw ctx.signal.reason;
    throw new StepError('HTTP_ERROR', `reading the response failed: ${(err as Error).message}`);
  });
  const output: HttpOutput = {
    status: res.status,
    headers: res.headers,
    body: decodeBody(bytes, res.headers['content-type'] ?? '', truncated),
    truncated,
  };
  const ok = step.expectStatus ? step.expectStatus.includes(res.status) : res.status >= 200 && res.status < 300;
  if (!ok) {
    throw new StepError('HTTP_STATUS', `${step.method} ${parsed.origin}${parsed.pathname} returned ${res.status}`, {
      status: res.status,
    });
  }
  return output;
}

/** Read at most `max` bytes of a body; destroy the rest so a huge download does not continue. */
async function readBounded(body: Readable, max: number): Promise<{ bytes: Buffer; truncated: boolean }> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    const value = chunk as Buffer;
    const room = max - size;
    if (value.byteLength > room) {
      chunks.push(value.subarray(0, room));
      body.destroy();
      return { bytes: Buffer.concat(chunks), truncated: true };
    }
    chunks.push(value);
    size += value.byteLength;
  }
  return { bytes: Buffer.concat(chunks), truncated: false };
}

function decodeBody(bytes: Buffer, contentType: string, truncated: boolean): unknown {
  const text = bytes.toString('utf8');
  if (!truncated && /[/+]json\b/i.test(contentType) && text.length > 0) {
    try {
      return JSON.parse(text);
    } catch {
      return text; // says JSON, is not: keep the text rather than fail the step
    }
  }
  return text;
}
