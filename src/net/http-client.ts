import { request as httpRequest, type IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import { CheckedAgent, type CheckedRequestOptions } from './checked-agent.js';
import type { CheckedTarget } from './egress.js';
import { OutboundRequestError } from './errors.js';

/**
 * HTTP/1.1 over connections the egress policy admitted. Why not fetch:
 * fetch resolves the name itself when it connects, after any check we could
 * make, so a name could pass the check as a public address and connect as
 * 127.0.0.1 (DNS rebinding), and it follows redirects without asking. Here
 * every hop is resolved once, checked, and connected to as the checked
 * address; the request then travels over that socket.
 */

export interface OutboundRequest {
  method: string;
  url: URL | string;
  /** Header names in any case; sent as given. */
  headers?: Readonly<Record<string, string>>;
  body?: string | Buffer | null;
  signal?: AbortSignal;
  /** Redirects followed at most (default 10, as curl's and well below fetch's 20); 0: a 3xx is returned as it is. */
  maxRedirects?: number;
  /** Per address tried, for the TCP connect and again for the TLS handshake (default 10 s). */
  connectTimeoutMs?: number;
}

export interface OutboundResponse {
  status: number;
  /** Lower-case names; a repeated header's values joined with ", " (as fetch's Headers does). */
  headers: Record<string, string>;
  /** Where the answer came from, after redirects. */
  url: string;
  /** The body, decoded from gzip, deflate or br as fetch would. */
  body: Readable;
}

/** Resolves and checks a host for a connection (Outbound.resolve). */
export type ResolveChecked = (host: string, port: number) => Promise<CheckedTarget>;

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
const DEFAULT_MAX_REDIRECTS = 10;
/** Headers that carry the caller's identity: not sent on to another origin (the fetch standard's rule for Authorization, extended). */
const CREDENTIAL_HEADERS = ['authorization', 'cookie', 'proxy-authorization'];

function parseUrl(url: URL | string): URL {
  try {
    const parsed = new URL(url);
    if (parsed.protocol === 'http:' || parsed.protocol === 'https:') return parsed;
    throw new OutboundRequestError('BAD_URL', `only http and https URLs are allowed, got ${parsed.protocol}`);
  } catch (err) {
    if (err instanceof OutboundRequestError) throw err;
    throw new OutboundRequestError('BAD_URL', `"${String(url).slice(0, 200)}" is not a valid URL`);
  }
}

function portOf(url: URL): number {
  return url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
}

function headerRecord(res: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(res.headers)) {
    if (value !== undefined) out[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}

function decoded(res: IncomingMessage, method: string): Readable {
  if (method === 'HEAD' || res.statusCode === 204 || res.statusCode === 304) return res;
  const encoding = (res.headers['content-encoding'] ?? '').trim().toLowerCase();
  const decoder = encoding === 'gzip' || encoding === 'x-gzip' ? createGunzip() : encoding === 'deflate' ? createInflate() : encoding === 'br' ? createBrotliDecompress() : null;
  if (!decoder) return res;
  // pipeline destroys both on an error of either, and the decoder's reader sees the error.
  return pipeline(res, decoder, () => undefined);
}

/** One request, no redirects: over a connection to the checked target. */
function send(
  url: URL,
  target: CheckedTarget,
  method: string,
  headers: Record<string, string>,
  body: string | Buffer | null,
  signal: AbortSignal | undefined,
  connectTimeoutMs: number | undefined,
  agent: CheckedAgent,
): Promise<IncomingMessage> {
  const checked: CheckedRequestOptions = {
    checked: target,
    checkedTls: url.protocol === 'https:' ? { ALPNProtocols: ['http/1.1'] } : undefined,
    checkedTimeoutMs: connectTimeoutMs,
    checkedSignal: signal,
  };
  return new Promise((resolve, reject) => {
    const req = httpRequest({
      method,
      path: `${url.pathname}${url.search}`,
      // Host is always the URL's (as fetch forbids setting it): a redirect to another host must not carry the first one's.
      headers: { ...headers, host: url.host, ...(body !== null ? { 'content-length': String(Buffer.byteLength(body)) } : {}) },
      setHost: false,
      ...(signal ? { signal } : {}),
      // Connections come from the agent, which makes them only to the checked address (checked-agent.ts).
      agent,
      ...checked,
    });
    req.once('response', resolve);
    // Aborted once the request is under way, node raises its own AbortError (the reason only as its
    // cause); the contract is the signal's reason, as a connect aborted earlier already gives it.
    req.once('error', (err) => reject(signal?.aborted ? signal.reason : err));
    req.end(body ?? undefined);
  });
}

/**
 * Make `request`, following redirects (each one resolved and checked again)
 * as fetch does: 303 (and 301/302 after a POST) become a GET without a body,
 * 307 and 308 keep method and body, and credentials are not carried to
 * another origin.
 *
 * @throws EgressDeniedError / EgressUnreachableError from `resolve` or the connection
 * @throws OutboundRequestError for a bad URL, a bad redirect or too many redirects
 * @throws the signal's reason (an AbortError) when aborted
 */
export async function outboundRequest(request: OutboundRequest, resolve: ResolveChecked, agent: CheckedAgent): Promise<OutboundResponse> {
  const maxRedirects = request.maxRedirects ?? DEFAULT_MAX_REDIRECTS;
  let url = parseUrl(request.url);
  let method = request.method.toUpperCase();
  let body = request.body ?? null;
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers ?? {})) headers[name.toLowerCase()] = value;
  headers['accept-encoding'] ??= 'gzip, deflate, br';
  headers.accept ??= '*/*';
  for (let redirects = 0; ; redirects++) {
    const target = await resolve(url.hostname, portOf(url));
    const res = await send(url, target, method, headers, body, request.signal, request.connectTimeoutMs, agent);
    const location = res.headers.location;
    const status = res.statusCode ?? 0;
    if (!REDIRECT_STATUSES.has(status) || location === undefined || maxRedirects === 0) {
      return { status, headers: headerRecord(res), url: url.href, body: decoded(res, method) };
    }
    res.destroy();
    if (redirects >= maxRedirects) throw new OutboundRequestError('TOO_MANY_REDIRECTS', `more than ${maxRedirects} redirects, the last to ${location.slice(0, 200)}`);
    let next: URL;
    try {
      next = parseUrl(new URL(location, url));
    } catch {
      throw new OutboundRequestError('BAD_REDIRECT', `${url.origin} redirected to "${location.slice(0, 200)}", which is not an http or https URL`);
    }
    if (status === 303 ? method !== 'HEAD' : (status === 301 || status === 302) && method === 'POST') {
      method = 'GET';
      body = null;
      delete headers['content-type'];
      // A content-length the caller gave described the body just dropped: left on, the server waits for it.
      delete headers['content-length'];
    }
    if (next.origin !== url.origin) for (const name of CREDENTIAL_HEADERS) delete headers[name];
    url = next;
  }
}
