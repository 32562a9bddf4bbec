import { EgressDeniedError, EgressUnreachableError } from '../net/errors.js';
import type { OutboundResponse } from '../net/http-client.js';
import type { Outbound } from '../net/outbound.js';
import { parseRetryAfter } from './retry-after.js';
import type { CallOutcome } from './types.js';

/**
 * Largest provider answer read. A chat completion with a few thousand
 * output tokens is tens of KB; past this something is wrong, and reading on
 * would only hold memory.
 */
export const MAX_PROVIDER_RESPONSE_BYTES = 8 * 1024 * 1024;

/** Longest piece of a provider's error text kept in a step failure. */
const MAX_ERROR_TEXT = 500;

export type PostResult = { kind: 'answer'; status: number; body: unknown; retryAfterMs: number | null } | { kind: 'failed'; message: string };

/**
 * POST a JSON body and read a JSON answer, through the step's egress policy
 * (a base URL the tenant put in a credential is a URL like any other). An
 * abort (the step's timeout, a cancel) is rethrown as the signal's reason,
 * so the attempt loop reports it as what it is (STEP_TIMEOUT, …); so is a
 * refusal by the policy (EGRESS_DENIED, which no retry cures). A connection
 * failure is a `failed` result the caller may retry.
 */
export async function postJson(url: string, headers: Record<string, string>, body: unknown, net: Outbound, signal: AbortSignal): Promise<PostResult> {
  let res: OutboundResponse;
  try {
    res = await net.request({
      method: 'POST',
      url,
      headers: { 'content-type': 'application/json', accept: 'application/json', ...headers },
      body: JSON.stringify(body),
      signal,
    });
  } catch (err) {
    if (signal.aborted) throw signal.reason;
    if (err instanceof EgressDeniedError) throw err;
    const code = err instanceof EgressUnreachableError ? err.systemCode : (err as { code?: unknown }).code;
    return { kind: 'failed', message: `request to ${new URL(url).origin} failed: ${typeof code === 'string' ? code : (err as Error).message}` };
  }
  let text: string;
  try {
    text = await readBounded(res, MAX_PROVIDER_RESPONSE_BYTES);
  } catch (err) {
    if (signal.aborted) throw signal.reason;
    return { kind: 'failed', message: `reading the answer of ${new URL(url).origin} failed: ${(err as Error).message}` };
  }
  let parsed: unknown = text;
  try {
    parsed = text === '' ? null : JSON.parse(text);
  } catch {
    // Not JSON (a proxy's HTML error page): kept as text for the error message.
  }
  return { kind: 'answer', status: res.status, body: parsed, retryAfterMs: parseRetryAfter(res.headers['retry-after'] ?? null) };
}

async function readBounded(res: OutboundResponse, max: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res.body) {
    const value = chunk as Buffer;
    size += value.byteLength;
    if (size > max) {
      res.body.destroy();
      throw new Error(`the answer is larger than ${max} bytes`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** The failure outcome of a non-2xx answer: 429, 408 and 5xx may be retried, anything else is the request's fault. */
export function statusFailure(provider: string, status: number, body: unknown, retryAfterMs: number | null): CallOutcome {
  const retryable = status === 429 || status === 408 || status >= 500;
  return { ok: false, status, retryable, retryAfterMs, message: `${provider} answered ${status}: ${errorText(body)}` };
}

/** A connection failure: retryable, no time named. */
export function connectionFailure(message: string): CallOutcome {
  return { ok: false, status: null, retryable: true, retryAfterMs: null, message };
}

/** An answer we could not read: not retryable (the same request gets the same answer). */
export function unreadable(provider: string, what: string): CallOutcome {
  return { ok: false, status: 200, retryable: false, retryAfterMs: null, message: `${provider} answered without ${what}` };
}

/** The provider's own error message (`{error: {message}}` for both wire formats), else the body's start. */
function errorText(body: unknown): string {
  const err = (body as { error?: unknown } | null)?.error;
  const message = typeof err === 'string' ? err : typeof (err as { message?: unknown } | undefined)?.message === 'string' ? (err as { message: string }).message : undefined;
  const text = message ?? (typeof body === 'string' ? body : JSON.stringify(body ?? null));
  return text.length > MAX_ERROR_TEXT ? `${text.slice(0, MAX_ERROR_TEXT)}…` : text;
}

/** A non-negative integer token count, or 0 when the provider left it out. */
export function tokenCount(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? Math.floor(value) : 0;
}
