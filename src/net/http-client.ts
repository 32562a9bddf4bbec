import { request as httpRequest, type IncomingMessage } from 'node:http';
import type { Duplex, Readable } from 'node:stream';
import { pipeline } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import { connectChecked, type CheckedTarget } from './egress.js';
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
): Promise<IncomingMessage> {
  const tls = url.protocol === 'https:' ? { ALPNProtocols: ['http/1.1'] } : undefined;
  return new Promise((resolve, reject) => {
    const req = httpRequest({
      method,
      path: `${url.pathname}${url.search}`,
      headers: { host: url.host, ...headers, ...(body !== null ? { 'content-length': String(Buffer.byteLength(body)) } : {}) },
      setHost: false,
      ...(signal ? { signal } : {}),
      // No agent: with createConnection, node asks this for the socket (and may be answered later, through the callback).
      createConnection: ((_options: unknown, done: (err: Error | null, socket?: Duplex) => void) => {
        connectChecked(target, { ...(tls ? { tls } : {}), ...(signal ? { signal } : {}), ...(connectTimeoutMs ? { timeoutMs: connectTimeoutMs } : {}) }).then(
          (socket) => done(null, socket),
          (err: Error) => done(err),
        );
        return undefined;
      }) as never,
    });
    req.once('response', resolve);
    req.once('error', reject);
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
export async function outboundRequest(request: OutboundRequest, resolve: ResolveChecked): Promise<OutboundResponse> {
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
    const res = await send(url, target, method, headers, body, request.signal, request.connectTimeoutMs);
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
    }
    if (next.origin !== url.origin) for (const name of CREDENTIAL_HEADERS) delete headers[name];
    url = next;
  }
}
