import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Readable } from 'node:stream';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { EgressPolicy } from '../../src/net/address-policy.js';
import type { EgressLookup } from '../../src/net/egress.js';
import { EgressDeniedError, EgressUnreachableError, OutboundRequestError } from '../../src/net/errors.js';
import type { OutboundResponse } from '../../src/net/http-client.js';
import { Outbound } from '../../src/net/outbound.js';
import { closedPort, selfSignedCertificate, tableLookup } from '../helpers/egress.js';

/**
 * Outbound.request against a node:http server on 127.0.0.1, which the
 * policy admits only by name and port (api.test:PORT, other.test:PORT), so
 * every request that reaches it went through resolve → check → connect to
 * the checked address.
 */

interface Seen {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

const GREETING = 'grüße aus dem Server, '.repeat(50);

let server: Server;
let port: number;
/** Every request the server received, in order. */
let seen: Seen[] = [];
/** Requests to /hold: answered only when the test says so (or never). */
let held: { req: IncomingMessage; res: ServerResponse }[] = [];
let onHeld: (() => void) | null = null;

function hits(path: string): number {
  return seen.filter((s) => s.path.split('?')[0] === path).length;
}

function route(req: IncomingMessage, res: ServerResponse, body: string): void {
  const url = new URL(req.url ?? '/', 'http://server.invalid');
  const path = url.pathname;
  if (path === '/hold') {
    held.push({ req, res });
    onHeld?.();
    return;
  }
  if (path.startsWith('/echo') || path.endsWith('/echo-here')) {
    res.setHeader('set-cookie', ['a=1', 'b=2']);
    res.setHeader('X-Custom-Header', 'Value');
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ method: req.method ?? '', path: req.url ?? '', headers: req.headers, body } satisfies Seen));
    return;
  }
  if (path === '/repeated') {
    // Two header lines of the same name on the wire, which node's parser must join.
    res.writeHead(200, ['x-multi', 'one', 'x-multi', 'two', 'set-cookie', 'c=3', 'set-cookie', 'd=4']);
    res.end('ok');
    return;
  }
  const redirect = /^\/redirect\/(\d{3})$/.exec(path);
  if (redirect) {
    res.writeHead(Number(redirect[1]), { location: url.searchParams.get('to') ?? '/echo' });
    res.end('moved');
    return;
  }
  if (path === '/a/b/relative') {
    res.writeHead(302, { location: '../echo-here?x=1' });
    res.end();
    return;
  }
  if (path === '/no-location') {
    res.writeHead(302);
    res.end('found, but where');
    return;
  }
  if (path === '/loop') {
    res.writeHead(302, { location: '/loop' });
    res.end();
    return;
  }
  if (path === '/hop1' || path === '/hop2') {
    res.writeHead(302, { location: path === '/hop1' ? '/hop2' : '/echo' });
    res.end();
    return;
  }
  if (path === '/gzip' || path === '/br' || path === '/deflate') {
    const raw = Buffer.from(GREETING);
    const encoded = path === '/gzip' ? gzipSync(raw) : path === '/br' ? brotliCompressSync(raw) : deflateSync(raw);
    res.writeHead(200, { 'content-encoding': path.slice(1), 'content-length': encoded.byteLength });
    res.end(encoded);
    return;
  }
  if (path === '/encoded-empty') {
    // A HEAD answer and a 204 say gzip but carry no body: there is nothing to decode.
    const encoded = gzipSync(Buffer.from(GREETING));
    res.writeHead(req.method === 'HEAD' ? 200 : 204, { 'content-encoding': 'gzip', 'content-length': req.method === 'HEAD' ? encoded.byteLength : 0 });
    res.end();
    return;
  }
  if (path === '/secret') {
    res.end('the secret');
    return;
  }
  res.writeHead(404);
  res.end('no such route');
}

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      seen.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers, body });
      route(req, res, body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  for (const { res } of held) res.destroy();
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

beforeEach(() => {
  seen = [];
  for (const { res } of held) res.destroy();
  held = [];
  onHeld = null;
});

function table(): ReturnType<typeof tableLookup> {
  return tableLookup({ 'api.test': ['127.0.0.1'], 'other.test': ['127.0.0.1'], 'internal.test': ['127.0.0.1'] });
}

/** api.test and other.test on the server's port are admitted by name; nothing else that is not public. */
function outbound(lookup: EgressLookup = table()): Outbound {
  return new Outbound(`api.test:${port},other.test:${port}`, lookup);
}

function at(path: string, host = 'api.test'): string {
  return `http://${host}:${port}${path}`;
}

async function text(body: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

async function echoed(res: OutboundResponse): Promise<Seen> {
  expect(res.status).toBe(200);
  return JSON.parse(await text(res.body)) as Seen;
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected the request to be refused');
    },
    (err: unknown) => err,
  );
}

async function denial(promise: Promise<unknown>): Promise<EgressDeniedError> {
  const err = await rejection(promise);
  expect(err).toBeInstanceOf(EgressDeniedError);
  return err as EgressDeniedError;
}

async function requestError(promise: Promise<unknown>, code: OutboundRequestError['code']): Promise<OutboundRequestError> {
  const err = await rejection(promise);
  expect(err).toBeInstanceOf(OutboundRequestError);
  expect((err as OutboundRequestError).code).toBe(code);
  return err as OutboundRequestError;
}

describe('requests', () => {
  it('GET: status, lower-cased headers, the body, and the URL host as Host', async () => {
    const res = await outbound().request({ method: 'get', url: at('/echo/path?q=1&r=two') });
    expect(res.status).toBe(200);
    expect(res.url).toBe(at('/echo/path?q=1&r=two'));
    expect(res.headers['x-custom-header']).toBe('Value');
    expect(res.headers['content-type']).toBe('application/json');
    expect(Object.keys(res.headers).every((name) => name === name.toLowerCase())).toBe(true);
    expect(res.headers['set-cookie']).toBe('a=1, b=2');
    const echo = JSON.parse(await text(res.body)) as Seen;
    expect(echo.method).toBe('GET');
    expect(echo.path).toBe('/echo/path?q=1&r=two');
    expect(echo.headers.host).toBe(`api.test:${port}`);
    expect(echo.headers['accept-encoding']).toBe('gzip, deflate, br');
    expect(echo.headers['content-length']).toBeUndefined();
    expect(echo.body).toBe('');
  });

  it('joins a header repeated on the wire with ", "', async () => {
    const res = await outbound().request({ method: 'GET', url: at('/repeated') });
    expect(res.headers['x-multi']).toBe('one, two');
    expect(res.headers['set-cookie']).toBe('c=3, d=4');
    expect(await text(res.body)).toBe('ok');
  });

  it('POST: the body arrives with its byte length, and the caller\'s headers are sent', async () => {
    const body = '{"name":"Zoë ✓"}';
    const res = await outbound().request({
      method: 'POST',
      url: at('/echo'),
      headers: { 'Content-Type': 'application/json', 'X-Request-Id': 'r-1' },
      body,
    });
    const echo = await echoed(res);
    expect(echo.method).toBe('POST');
    expect(echo.body).toBe(body);
    expect(echo.headers['content-length']).toBe(String(Buffer.byteLength(body)));
    expect(Buffer.byteLength(body)).not.toBe(body.length); // multi-byte: a character count would be wrong
    expect(echo.headers['content-type']).toBe('application/json');
    expect(echo.headers['x-request-id']).toBe('r-1');
    expect(echo.headers.host).toBe(`api.test:${port}`);
  });

  it('sends a Buffer body as it is', async () => {
    const body = Buffer.from([0x68, 0x69, 0x21]);
    const echo = await echoed(await outbound().request({ method: 'PUT', url: at('/echo'), body }));
    expect(echo.method).toBe('PUT');
    expect(echo.body).toBe('hi!');
    expect(echo.headers['content-length']).toBe('3');
  });

  it.each(['gzip', 'br', 'deflate'])('decodes a %s body', async (encoding) => {
    const res = await outbound().request({ method: 'GET', url: at(`/${encoding}`) });
    expect(res.status).toBe(200);
    expect(res.headers['content-encoding']).toBe(encoding);
    expect(await text(res.body)).toBe(GREETING);
  });

  it('gives HEAD and 204 answers an empty body, even when they name an encoding', async () => {
    const head = await outbound().request({ method: 'HEAD', url: at('/encoded-empty') });
    expect(head.status).toBe(200);
    expect(head.headers['content-encoding']).toBe('gzip');
    expect(await text(head.body)).toBe('');
    const none = await outbound().request({ method: 'GET', url: at('/encoded-empty') });
    expect(none.status).toBe(204);
    expect(await text(none.body)).toBe('');
    expect(seen.map((s) => s.method)).toEqual(['HEAD', 'GET']);
  });

  it('refuses a URL that is not http or https before any lookup', async () => {
    const lookup = table();
    await requestError(outbound(lookup).request({ method: 'GET', url: 'ftp://api.test/file' }), 'BAD_URL');
    await requestError(outbound(lookup).request({ method: 'GET', url: 'not a url' }), 'BAD_URL');
    expect(lookup.calls.size).toBe(0);
  });
});

describe('redirects', () => {
  it.each([
    [301, 'POST'],
    [302, 'POST'],
    [303, 'POST'],
    [303, 'PUT'],
    [303, 'DELETE'],
  ])('%i after %s: the next request is a GET without body or content-type', async (status, method) => {
    const res = await outbound().request({
      method,
      url: at(`/redirect/${status}?to=/echo/after`),
      headers: { 'content-type': 'text/plain', 'x-kept': 'yes' },
      body: 'payload',
    });
    const echo = await echoed(res);
    expect(res.url).toBe(at('/echo/after'));
    expect(echo.method).toBe('GET');
    expect(echo.body).toBe('');
    expect(echo.headers['content-length']).toBeUndefined();
    expect(echo.headers['transfer-encoding']).toBeUndefined();
    expect(echo.headers['content-type']).toBeUndefined();
    expect(echo.headers['x-kept']).toBe('yes');
    expect(seen.map((s) => [s.method, s.body])).toEqual([
      [method, 'payload'],
      ['GET', ''],
    ]);
  });

  it('drops a content-length the caller gave along with the body it described', async () => {
    // Left on a body-less GET, the server would wait for bytes that never come.
    const res = await outbound().request({
      method: 'POST',
      url: at('/redirect/303?to=/echo'),
      headers: { 'Content-Length': '7' },
      body: 'payload',
    });
    const echo = await echoed(res);
    expect(echo.method).toBe('GET');
    expect(echo.headers['content-length']).toBeUndefined();
  }, 10_000);

  it.each([
    [301, 'PUT'],
    [302, 'PATCH'],
  ])('%i after %s keeps the method and body', async (status, method) => {
    const echo = await echoed(await outbound().request({ method, url: at(`/redirect/${status}?to=/echo`), body: 'kept' }));
    expect(echo.method).toBe(method);
    expect(echo.body).toBe('kept');
  });

  it('303 after HEAD stays HEAD', async () => {
    const res = await outbound().request({ method: 'HEAD', url: at('/redirect/303?to=/echo') });
    expect(res.status).toBe(200);
    expect(seen.map((s) => s.method)).toEqual(['HEAD', 'HEAD']);
  });

  it.each([307, 308])('%i keeps method, body and content-type', async (status) => {
    const res = await outbound().request({
      method: 'POST',
      url: at(`/redirect/${status}?to=/echo/kept`),
      headers: { 'content-type': 'application/json' },
      body: '{"a":1}',
    });
    const echo = await echoed(res);
    expect(echo.method).toBe('POST');
    expect(echo.path).toBe('/echo/kept');
    expect(echo.body).toBe('{"a":1}');
    expect(echo.headers['content-type']).toBe('application/json');
    expect(echo.headers['content-length']).toBe('7');
    expect(hits('/redirect/' + String(status))).toBe(1);
  });

  it('resolves a relative Location against the URL that answered', async () => {
    const res = await outbound().request({ method: 'GET', url: at('/a/b/relative') });
    const echo = await echoed(res);
    // Against the path that answered (/a/b/), not the origin's root.
    expect(echo.path).toBe('/a/echo-here?x=1');
    expect(res.url).toBe(at('/a/echo-here?x=1'));
  });

  it('follows an absolute Location to another admitted host, with that host as Host', async () => {
    const res = await outbound().request({ method: 'GET', url: at(`/redirect/302?to=${encodeURIComponent(at('/echo', 'other.test'))}`) });
    const echo = await echoed(res);
    expect(res.url).toBe(at('/echo', 'other.test'));
    expect(echo.headers.host).toBe(`other.test:${port}`);
  });

  const credentials = { Authorization: 'Bearer t0ken', Cookie: 'session=s3cret', 'Proxy-Authorization': 'Basic cHJveHk=', 'X-Other': 'kept' };

  it('drops Authorization and Cookie when a redirect crosses to another origin', async () => {
    const res = await outbound().request({
      method: 'GET',
      url: at(`/redirect/302?to=${encodeURIComponent(at('/echo', 'other.test'))}`),
      headers: credentials,
    });
    const echo = await echoed(res);
    expect(echo.headers.authorization).toBeUndefined();
    expect(echo.headers.cookie).toBeUndefined();
    expect(echo.headers['proxy-authorization']).toBeUndefined();
    expect(echo.headers['x-other']).toBe('kept');
    // The first hop, on the caller's own origin, had them.
    expect(seen[0]!.headers.authorization).toBe('Bearer t0ken');
    expect(seen[0]!.headers.cookie).toBe('session=s3cret');
  });

  it('keeps Authorization and Cookie on a same-origin redirect (also when the Location is absolute)', async () => {
    for (const to of ['/echo', at('/echo')]) {
      seen = [];
      const echo = await echoed(await outbound().request({ method: 'GET', url: at(`/redirect/307?to=${encodeURIComponent(to)}`), headers: credentials }));
      expect(echo.headers.authorization).toBe('Bearer t0ken');
      expect(echo.headers.cookie).toBe('session=s3cret');
      expect(echo.headers['proxy-authorization']).toBe('Basic cHJveHk=');
    }
  });

  it('checks a redirect to another port of the same host for that port', async () => {
    // api.test is admitted on the server's port only: the hop to port+1 is refused, not connected.
    const res = outbound().request({ method: 'GET', url: at(`/redirect/302?to=${encodeURIComponent(`http://api.test:${port + 1}/echo`)}`), headers: credentials });
    expect((await denial(res)).port).toBe(port + 1);
  });

  it('more than maxRedirects is TOO_MANY_REDIRECTS, after exactly that many were followed', async () => {
    const err = await requestError(outbound().request({ method: 'GET', url: at('/loop'), maxRedirects: 3 }), 'TOO_MANY_REDIRECTS');
    expect(err.message).toContain('3');
    expect(hits('/loop')).toBe(4);
  });

  it('follows up to 10 redirects by default', async () => {
    await requestError(outbound().request({ method: 'GET', url: at('/loop') }), 'TOO_MANY_REDIRECTS');
    expect(hits('/loop')).toBe(11);
    seen = [];
    const echo = await echoed(await outbound().request({ method: 'GET', url: at('/hop1'), maxRedirects: 2 }));
    expect(echo.path).toBe('/echo');
  });

  it.each(['ftp://api.test/file', 'file:///etc/passwd', 'javascript:alert(1)', 'http://exa mple.test/'])('a Location of %s is BAD_REDIRECT', async (location) => {
    const lookup = table();
    const err = await requestError(outbound(lookup).request({ method: 'GET', url: at(`/redirect/302?to=${encodeURIComponent(location)}`) }), 'BAD_REDIRECT');
    expect(err.message).toContain(`http://api.test:${port}`);
    expect(lookup.calls.get('api.test')).toBe(1);
    expect([...lookup.calls.keys()]).toEqual(['api.test']);
  });

  it('maxRedirects: 0 returns the 3xx as it is', async () => {
    const res = await outbound().request({ method: 'POST', url: at('/redirect/307?to=/echo'), body: 'x', maxRedirects: 0 });
    expect(res.status).toBe(307);
    expect(res.headers.location).toBe('/echo');
    expect(res.url).toBe(at('/redirect/307?to=/echo'));
    expect(await text(res.body)).toBe('moved');
    expect(hits('/echo')).toBe(0);
  });

  it('returns a 3xx without a Location as it is', async () => {
    const res = await outbound().request({ method: 'GET', url: at('/no-location') });
    expect(res.status).toBe(302);
    expect(await text(res.body)).toBe('found, but where');
  });
});

describe('egress through redirects', () => {
  it('refuses a redirect to the address itself, and never requests the secret', async () => {
    const location = `http://127.0.0.1:${port}/secret`;
    const err = await denial(outbound().request({ method: 'GET', url: at(`/redirect/302?to=${encodeURIComponent(location)}`) }));
    expect(err.host).toBe('127.0.0.1');
    expect(err.port).toBe(port);
    expect(err.reason).toBe('loopback');
    expect(hits('/secret')).toBe(0);
    expect(seen).toHaveLength(1);
  });

  it('refuses a redirect to a name that resolves to a refused address, without naming the address', async () => {
    const lookup = table();
    const location = `http://internal.test:${port}/secret`;
    const err = await denial(outbound(lookup).request({ method: 'GET', url: at(`/redirect/307?to=${encodeURIComponent(location)}`) }));
    expect(err.host).toBe('internal.test');
    expect(err.reason).toBe('loopback');
    expect(err.message).toContain('internal.test');
    expect(err.message).not.toContain('127.0.0.1');
    expect(err.message).not.toMatch(/127\.|::1|ffff/);
    expect(lookup.calls.get('internal.test')).toBe(1);
    expect(hits('/secret')).toBe(0);
  });

  it('resolves each hop once, through the lookup', async () => {
    const lookup = table();
    const res = await outbound(lookup).request({ method: 'GET', url: at('/hop1') });
    expect((await echoed(res)).path).toBe('/echo');
    // Three hops to api.test: three lookups, no more (and none of the system resolver's, which knows no api.test).
    expect(lookup.calls.get('api.test')).toBe(3);
    expect([...lookup.calls.keys()]).toEqual(['api.test']);
  });

  it('connects to the address that was checked (DNS rebinding)', async () => {
    // The first answer is the admitted address; any later one is another loopback address the policy refuses and nothing listens on.
    let calls = 0;
    const rebinding: EgressLookup = async () => {
      calls++;
      return [{ address: calls === 1 ? '127.0.0.1' : '127.0.0.2', family: 4 }];
    };
    const net = new Outbound(new EgressPolicy(`127.0.0.1:${port}`), rebinding);
    const echo = await echoed(await net.request({ method: 'GET', url: `http://rebind.test:${port}/echo`, connectTimeoutMs: 5_000 }));
    expect(echo.headers.host).toBe(`rebind.test:${port}`);
    expect(calls).toBe(1);
    expect(hits('/echo')).toBe(1);
    // A second hop resolves again, and what it resolves to now is checked again.
    calls = 0;
    seen = [];
    const err = await denial(net.request({ method: 'GET', url: `http://rebind.test:${port}/redirect/302?to=/secret`, connectTimeoutMs: 5_000 }));
    expect(err.host).toBe('rebind.test');
    expect(err.reason).toBe('loopback');
    expect(err.message).not.toContain('127.0.0.2');
    expect(calls).toBe(2);
    expect(hits('/secret')).toBe(0);
  });

  it('refuses a name with a private address among its addresses, even when the first is admitted', async () => {
    const lookup = tableLookup({ 'mixed.test': ['127.0.0.1', '10.0.0.7'], 'public-first.test': ['93.184.215.14', '10.0.0.7'] });
    const net = new Outbound(new EgressPolicy(`127.0.0.1:${port}`), lookup);
    const err = await denial(net.request({ method: 'GET', url: `http://mixed.test:${port}/secret` }));
    expect(err.reason).toBe('private');
    expect(err.message).not.toMatch(/10\.0\.0\.7|127\.0\.0\.1/);
    expect(hits('/secret')).toBe(0);
    const publicFirst = await denial(net.request({ method: 'GET', url: 'http://public-first.test/' }));
    expect(publicFirst.reason).toBe('private');
    expect(publicFirst.message).not.toMatch(/10\.0\.0\.7|93\.184/);
  });

  it('refuses the first hop too, before connecting', async () => {
    const err = await denial(outbound().request({ method: 'GET', url: `http://127.0.0.1:${port}/secret` }));
    expect(err.reason).toBe('loopback');
    const byName = await denial(outbound().request({ method: 'GET', url: `http://internal.test:${port}/secret` }));
    expect(byName.message).not.toContain('127.0.0.1');
    expect(seen).toHaveLength(0);
  });
});

describe('abort and failures', () => {
  it('an abort while the server holds the response rejects with the signal\'s reason', async () => {
    const arrived = new Promise<void>((resolve) => (onHeld = resolve));
    const controller = new AbortController();
    const reason = new Error('the step timed out');
    const pending = outbound().request({ method: 'GET', url: at('/hold'), signal: controller.signal });
    await arrived;
    controller.abort(reason);
    expect(await rejection(pending)).toBe(reason);
  }, 10_000);

  it('an abort with no reason given rejects with the signal\'s AbortError', async () => {
    const arrived = new Promise<void>((resolve) => (onHeld = resolve));
    const controller = new AbortController();
    const pending = outbound().request({ method: 'POST', url: at('/hold'), body: 'x', signal: controller.signal });
    await arrived;
    controller.abort();
    const err = await rejection(pending);
    expect(err).toBe(controller.signal.reason);
    expect((err as Error).name).toBe('AbortError');
  }, 10_000);

  it('a signal aborted before the request rejects with its reason and sends nothing', async () => {
    const reason = new Error('cancelled');
    const err = await rejection(outbound().request({ method: 'GET', url: at('/echo'), signal: AbortSignal.abort(reason) }));
    expect(err).toBe(reason);
    expect(seen).toHaveLength(0);
  }, 10_000);

  it('a port nothing listens on is EgressUnreachableError ECONNREFUSED', async () => {
    const dead = await closedPort();
    const net = new Outbound(`api.test:${dead}`, table());
    const err = await rejection(net.request({ method: 'GET', url: `http://api.test:${dead}/` }));
    expect(err).toBeInstanceOf(EgressUnreachableError);
    expect((err as EgressUnreachableError).systemCode).toBe('ECONNREFUSED');
    expect((err as EgressUnreachableError).host).toBe('api.test');
    expect((err as EgressUnreachableError).port).toBe(dead);
  }, 10_000);

  it('a name that does not resolve is EgressUnreachableError ENOTFOUND', async () => {
    const err = await rejection(new Outbound('nowhere.test', table()).request({ method: 'GET', url: 'http://nowhere.test/' }));
    expect(err).toBeInstanceOf(EgressUnreachableError);
    expect((err as EgressUnreachableError).systemCode).toBe('ENOTFOUND');
  });
});

describe('TLS', () => {
  it('verifies the certificate: a self-signed one is refused', async () => {
    const { key, cert } = selfSignedCertificate('secure.test');
    let requests = 0;
    const tlsServer = createHttpsServer({ key, cert }, (_req, res) => {
      requests++;
      res.end('should not be read');
    });
    tlsServer.on('tlsClientError', () => undefined);
    await new Promise<void>((resolve) => tlsServer.listen(0, '127.0.0.1', resolve));
    const tlsPort = (tlsServer.address() as AddressInfo).port;
    try {
      const lookup = tableLookup({ 'secure.test': ['127.0.0.1'] });
      const net = new Outbound(`secure.test:${tlsPort}`, lookup);
      const err = await rejection(net.request({ method: 'GET', url: `https://secure.test:${tlsPort}/`, connectTimeoutMs: 5_000 }));
      // Refused by verification (not some other failure: the name resolved and the connection was made).
      expect((err as { code?: string }).code).toBe('DEPTH_ZERO_SELF_SIGNED_CERT');
      expect(lookup.calls.get('secure.test')).toBe(1);
      expect(requests).toBe(0);
    } finally {
      tlsServer.closeAllConnections();
      await new Promise((resolve) => tlsServer.close(resolve));
    }
  }, 20_000);
});
