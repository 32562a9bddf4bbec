import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createServer, request, type IncomingHttpHeaders, type IncomingMessage, type Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EgressProxy, type EgressRefusal, type ProxyRegistration } from '../../src/browser/egress-proxy.js';
import { ValidationError } from '../../src/errors/index.js';
import { EgressPolicy } from '../../src/net/address-policy.js';
import { tableLookup } from '../helpers/egress.js';

/** The site a context is allowed: pages, a redirect elsewhere, a large body, an echo, and a websocket echo. */
interface Fixture {
  port: number;
  server: Server;
  /** Request headers seen, per path. */
  seen: Map<string, IncomingHttpHeaders>;
  hits: number;
}

async function startFixture(redirectTo: () => string): Promise<Fixture> {
  const fixture: Fixture = { port: 0, server: createServer(), seen: new Map(), hits: 0 };
  fixture.server.on('request', (req: IncomingMessage, res) => {
    fixture.hits++;
    fixture.seen.set(req.url!, req.headers);
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      if (req.url === '/redirect') return void res.writeHead(302, { Location: redirectTo() }).end();
      if (req.url === '/big') return void res.writeHead(200, { 'Content-Type': 'application/octet-stream' }).end(Buffer.alloc(64 * 1024, 7));
      if (req.url === '/echo') return void res.writeHead(200, { 'Content-Type': 'text/plain' }).end(`echo:${body}`);
      res.writeHead(200, { 'Content-Type': 'text/plain', Connection: 'keep-alive', 'Keep-Alive': 'timeout=77', 'X-Fixture': 'yes' });
      res.end(`hello from ${req.headers.host}${req.url}`);
    });
  });
  fixture.server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    fixture.hits++;
    fixture.seen.set(req.url!, req.headers);
    const accept = createHash('sha1').update(`${req.headers['sec-websocket-key']}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    if (head.length) socket.write(head);
    socket.on('error', () => socket.destroy());
    socket.pipe(socket);
  });
  await new Promise<void>((resolve) => fixture.server.listen(0, '127.0.0.1', resolve));
  fixture.port = (fixture.server.address() as AddressInfo).port;
  return fixture;
}

function basic(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
}

function authOf(r: ProxyRegistration): string {
  return basic(r.username, r.password);
}

/** Reads a raw HTTP response head from a socket; the bytes after it stay readable. */
async function readHead(socket: Socket): Promise<{ status: number; head: string; rest: Buffer }> {
  let buffered = Buffer.alloc(0);
  for (;;) {
    const end = buffered.indexOf('\r\n\r\n');
    if (end >= 0) {
      const head = buffered.subarray(0, end).toString('latin1');
      return { status: Number(head.split(' ')[1]), head, rest: buffered.subarray(end + 4) };
    }
    const [chunk] = (await once(socket, 'data')) as [Buffer];
    buffered = Buffer.concat([buffered, chunk]);
  }
}

async function readAll(socket: Socket, start: Buffer = Buffer.alloc(0)): Promise<string> {
  const chunks = [start];
  socket.on('data', (c: Buffer) => chunks.push(c));
  await once(socket, 'close');
  return Buffer.concat(chunks).toString();
}

/** Sends CONNECT authority through the proxy. */
async function tunnel(proxy: EgressProxy, authority: string, auth?: string): Promise<{ status: number; head: string; body: () => Promise<string>; socket: Socket }> {
  const url = new URL(proxy.url);
  const socket = connect(Number(url.port), url.hostname);
  await once(socket, 'connect');
  socket.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n${auth ? `Proxy-Authorization: ${auth}\r\n` : ''}\r\n`);
  const { status, head, rest } = await readHead(socket);
  return { status, head, socket, body: () => readAll(socket, rest) };
}

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** An http request through the proxy (absolute URI), or, with `via`, over an already-open tunnel. */
async function fetchVia(
  proxy: EgressProxy,
  target: string,
  options: { auth?: string; method?: string; body?: string; headers?: Record<string, string>; via?: Socket } = {},
): Promise<Reply> {
  const url = new URL(target);
  const proxyUrl = new URL(proxy.url);
  const req = request({
    ...(options.via
      ? { createConnection: () => options.via!, path: `${url.pathname}${url.search}` }
      : { host: proxyUrl.hostname, port: Number(proxyUrl.port), path: url.href, agent: false }),
    method: options.method ?? 'GET',
    headers: { Host: url.host, ...(options.auth ? { 'Proxy-Authorization': options.auth } : {}), ...options.headers },
  });
  req.end(options.body);
  const [res] = (await once(req, 'response')) as [IncomingMessage];
  let body = '';
  for await (const chunk of res) body += (chunk as Buffer).toString();
  return { status: res.statusCode!, headers: res.headers, body };
}

/** Opens a websocket-style upgrade and checks bytes come back through it. */
async function upgradeVia(proxy: EgressProxy, target: string, options: { auth?: string; via?: Socket }): Promise<{ status: number; echo?: string }> {
  const url = new URL(target);
  const proxyUrl = new URL(proxy.url);
  const req = request({
    ...(options.via
      ? { createConnection: () => options.via!, path: `${url.pathname}${url.search}` }
      : { host: proxyUrl.hostname, port: Number(proxyUrl.port), path: url.href, agent: false }),
    headers: {
      Host: url.host,
      Connection: 'Upgrade',
      Upgrade: 'websocket',
      'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
      'Sec-WebSocket-Version': '13',
      ...(options.auth ? { 'Proxy-Authorization': options.auth } : {}),
    },
  });
  req.end();
  const outcome = await Promise.race([
    once(req, 'upgrade').then(([res, socket]) => ({ kind: 'upgrade' as const, res: res as IncomingMessage, socket: socket as Socket })),
    once(req, 'response').then(([res]) => ({ kind: 'response' as const, res: res as IncomingMessage })),
  ]);
  if (outcome.kind === 'response') {
    outcome.res.resume();
    return { status: outcome.res.statusCode! };
  }
  outcome.socket.write('frame-bytes');
  const [chunk] = (await once(outcome.socket, 'data')) as [Buffer];
  outcome.socket.destroy();
  return { status: outcome.res.statusCode!, echo: chunk.toString() };
}

let allowed: Fixture; // 127.0.0.1:<allowed.port> is in the policy's allowlist
let refused: Fixture; // 127.0.0.1:<refused.port> is not
let proxy: EgressProxy;
const lookup = tableLookup({ 'portal.test': ['127.0.0.1'], 'evil.test': ['127.0.0.1'], 'meta.test': ['169.254.169.254'] });
const registrations: ProxyRegistration[] = [];

function register(origins: string[]): ProxyRegistration {
  const r = proxy.register(origins);
  registrations.push(r);
  return r;
}

beforeAll(async () => {
  refused = await startFixture(() => 'http://example.invalid/');
  allowed = await startFixture(() => `http://127.0.0.1:${refused.port}/landing`);
  // The allowlist is given to the policy here, never through process.env.
  proxy = await EgressProxy.start({ policy: new EgressPolicy(`127.0.0.1:${allowed.port}`), lookup });
});

afterEach(() => {
  for (const r of registrations.splice(0)) r.release();
});

afterAll(async () => {
  await proxy.close();
  for (const f of [allowed, refused]) {
    f.server.closeAllConnections();
    await new Promise((resolve) => f.server.close(resolve));
  }
});

describe('egress proxy: what an allowed origin may do', () => {
  it('listens on 127.0.0.1 and hands out a distinct credential per context', () => {
    expect(proxy.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const a = register([`http://127.0.0.1:${allowed.port}`]);
    const b = register([`http://127.0.0.1:${allowed.port}`]);
    expect(a.server).toBe(proxy.url);
    expect(a.username).not.toBe(b.username);
    expect(a.password).not.toBe(b.password);
    expect(a.password.length).toBeGreaterThanOrEqual(32);
  });

  it('forwards plain http to the admitted port, without Proxy-* and hop-by-hop headers', async () => {
    const r = register([`http://127.0.0.1:${allowed.port}`]);
    const reply = await fetchVia(proxy, `http://127.0.0.1:${allowed.port}/hello?x=1`, {
      auth: authOf(r),
      headers: { 'Proxy-Connection': 'keep-alive', 'X-Custom': 'kept', Connection: 'X-Secret-Hop', 'X-Secret-Hop': 'dropped' },
    });
    expect(reply.status).toBe(200);
    expect(reply.body).toBe(`hello from 127.0.0.1:${allowed.port}/hello?x=1`);
    expect(reply.headers['x-fixture']).toBe('yes');
    expect(reply.headers['keep-alive']).not.toBe('timeout=77'); // the fixture's hop-by-hop header stays on its hop
    const seen = allowed.seen.get('/hello?x=1')!;
    expect(seen['proxy-authorization']).toBeUndefined();
    expect(seen['proxy-connection']).toBeUndefined();
    expect(seen['x-secret-hop']).toBeUndefined();
    expect(seen['x-custom']).toBe('kept');
    expect(seen.host).toBe(`127.0.0.1:${allowed.port}`);
    expect(r.refusals()).toEqual([]);
  });

  it('forwards a request body', async () => {
    const r = register([`http://127.0.0.1:${allowed.port}`]);
    const reply = await fetchVia(proxy, `http://127.0.0.1:${allowed.port}/echo`, { auth: authOf(r), method: 'POST', body: 'a=1&b=2' });
    expect(reply).toMatchObject({ status: 200, body: 'echo:a=1&b=2' });
  });

  it('tunnels CONNECT to the admitted port (https and wss go this way)', async () => {
    const r = register([`https://127.0.0.1:${allowed.port}`]);
    const before = proxy.stats().tunnels;
    const t = await tunnel(proxy, `127.0.0.1:${allowed.port}`, authOf(r));
    expect(t.status).toBe(200);
    const reply = await fetchVia(proxy, `http://127.0.0.1:${allowed.port}/in-tunnel`, { via: t.socket });
    expect(reply).toMatchObject({ status: 200, body: `hello from 127.0.0.1:${allowed.port}/in-tunnel` });
    t.socket.destroy();
    expect(proxy.stats().tunnels).toBe(before + 1);
    expect(r.bytes()).toBeGreaterThan(0);
  });

  it('admits a CONNECT by host and port whatever scheme the origin names (Chromium tunnels ws:// too)', async () => {
    const r = register([`http://127.0.0.1:${allowed.port}`]);
    const t = await tunnel(proxy, `127.0.0.1:${allowed.port}`, authOf(r));
    expect(t.status).toBe(200);
    t.socket.destroy();
  });

  it('carries a websocket over a plain-http upgrade and through a tunnel', async () => {
    const r = register([`http://127.0.0.1:${allowed.port}`]);
    expect(await upgradeVia(proxy, `http://127.0.0.1:${allowed.port}/ws`, { auth: authOf(r) })).toEqual({ status: 101, echo: 'frame-bytes' });
    const seen = allowed.seen.get('/ws')!;
    expect(seen.upgrade).toBe('websocket');
    expect(seen['proxy-authorization']).toBeUndefined();
    expect(seen.host).toBe(`127.0.0.1:${allowed.port}`);

    const t = await tunnel(proxy, `127.0.0.1:${allowed.port}`, authOf(r));
    expect(await upgradeVia(proxy, `http://127.0.0.1:${allowed.port}/ws-tunnel`, { via: t.socket })).toEqual({ status: 101, echo: 'frame-bytes' });
    expect(proxy.stats().upgrades).toBeGreaterThanOrEqual(1);
  });

  it('reaches an allowed origin given by name, through the injected resolver', async () => {
    const r = register([`http://portal.test:${allowed.port}`]);
    const reply = await fetchVia(proxy, `http://portal.test:${allowed.port}/by-name`, { auth: authOf(r) });
    expect(reply).toMatchObject({ status: 200, body: `hello from portal.test:${allowed.port}/by-name` });
  });
});

describe('egress proxy: refusals', () => {
  it('refuses another port on 127.0.0.1, even when the context lists it, for plain http, CONNECT and upgrades', async () => {
    const r = register([`http://127.0.0.1:${allowed.port}`, `http://127.0.0.1:${refused.port}`]);
    const hitsBefore = refused.hits;

    const plain = await fetchVia(proxy, `http://127.0.0.1:${refused.port}/x`, { auth: authOf(r) });
    expect(plain.status).toBe(403);
    expect(plain.body).toContain('loopback');
    expect(plain.headers['x-stepwise-egress']).toBe('denied');

    const t = await tunnel(proxy, `127.0.0.1:${refused.port}`, authOf(r));
    expect(t.status).toBe(403);
    expect(t.head).toMatch(/X-Stepwise-Egress: denied/);
    expect(await t.body()).toContain(`127.0.0.1 is a loopback address`);

    expect((await upgradeVia(proxy, `http://127.0.0.1:${refused.port}/ws`, { auth: authOf(r) })).status).toBe(403);

    expect(refused.hits).toBe(hitsBefore);
    const refusals = r.takeRefusals();
    expect(refusals.map((x) => [x.host, x.port, x.reason, x.url])).toEqual([
      ['127.0.0.1', refused.port, 'loopback', `http://127.0.0.1:${refused.port}/x`],
      ['127.0.0.1', refused.port, 'loopback', undefined],
      ['127.0.0.1', refused.port, 'loopback', `http://127.0.0.1:${refused.port}/ws`],
    ]);
    expect(r.refusals()).toEqual([]);
  });

  it('refuses an origin outside allowOrigins before resolving it, even one the policy would admit', async () => {
    const r = register([`http://127.0.0.1:${allowed.port}`]);
    const calls = lookup.calls.get('evil.test') ?? 0;
    // evil.test resolves to 127.0.0.1 and the port is the admitted one: only allowOrigins stands in the way.
    const plain = await fetchVia(proxy, `http://evil.test:${allowed.port}/`, { auth: authOf(r) });
    expect(plain.status).toBe(403);
    const t = await tunnel(proxy, 'public.example:443', authOf(r));
    expect(t.status).toBe(403);
    expect(await t.body()).toContain("public.example:443 is not among this browser step's allowed origins");
    const https = register([`https://127.0.0.1:${allowed.port}`]);
    expect((await fetchVia(proxy, `http://127.0.0.1/`, { auth: authOf(https) })).status).toBe(403); // port 80 is not granted
    expect(lookup.calls.get('evil.test') ?? 0).toBe(calls);
    expect(r.refusals().map((x) => x.reason)).toEqual(['not-allowed', 'not-allowed']);
  });

  it('refuses a name that resolves to loopback, and metadata, without naming the address', async () => {
    const r = register(['https://evil.test', 'http://meta.test', 'http://169.254.169.254']);
    const t = await tunnel(proxy, 'evil.test:443', authOf(r));
    expect(t.status).toBe(403);
    const text = await t.body();
    expect(text).toContain('evil.test resolves to a loopback address');
    expect(text).not.toContain('127.0.0.1');
    expect((await fetchVia(proxy, 'http://meta.test/latest/meta-data/', { auth: authOf(r) })).body).toContain('meta.test resolves to a cloud metadata address');
    expect((await fetchVia(proxy, 'http://169.254.169.254/latest/meta-data/', { auth: authOf(r) })).status).toBe(403);
    expect(r.refusals().map((x) => x.reason)).toEqual(['loopback', 'metadata', 'metadata']);
  });

  it('judges IPv6 and odd IPv4 notations in a CONNECT as the addresses they are', async () => {
    const r = register(['https://[::1]', `http://127.0.0.1:${refused.port}`, `http://127.0.0.1:${allowed.port}`]);
    const v6 = await tunnel(proxy, '[::1]:443', authOf(r));
    expect(v6.status).toBe(403);
    expect(await v6.body()).toContain('[::1] is a loopback address');
    // 2130706433 and 0x7f.1 are 127.0.0.1: the origin matches, the policy refuses the unlisted port…
    const decimal = await tunnel(proxy, `2130706433:${refused.port}`, authOf(r));
    expect(decimal.status).toBe(403);
    // …and admits the listed one, whatever the notation.
    const hex = await tunnel(proxy, `0x7f.1:${allowed.port}`, authOf(r));
    expect(hex.status).toBe(200);
    hex.socket.destroy();
    expect(r.refusals().map((x) => [x.host, x.reason])).toEqual([
      ['[::1]', 'loopback'],
      ['2130706433', 'loopback'],
    ]);
  });

  it('refuses the refused target of a redirect when the client follows it', async () => {
    const r = register([`http://127.0.0.1:${allowed.port}`, `http://127.0.0.1:${refused.port}`]);
    const first = await fetchVia(proxy, `http://127.0.0.1:${allowed.port}/redirect`, { auth: authOf(r) });
    expect(first.status).toBe(302);
    const location = first.headers.location!;
    expect(location).toBe(`http://127.0.0.1:${refused.port}/landing`);
    const second = await fetchVia(proxy, location, { auth: authOf(r) });
    expect(second.status).toBe(403);
    expect(refused.seen.has('/landing')).toBe(false);
    expect(r.refusals()).toMatchObject([{ reason: 'loopback', url: location }]);
  });

  it('answers 407 with a challenge to missing, wrong or released credentials', async () => {
    const r = register([`http://127.0.0.1:${allowed.port}`]);
    const before = proxy.stats().unauthenticated;
    const target = `http://127.0.0.1:${allowed.port}/hello`;
    const hits = allowed.hits;

    const none = await fetchVia(proxy, target);
    expect(none.status).toBe(407);
    expect(none.headers['x-stepwise-egress']).toBeUndefined();
    expect(none.headers['proxy-authenticate']).toMatch(/^Basic realm="stepwise-egress"/);
    expect((await fetchVia(proxy, target, { auth: basic(r.username, `${r.password}x`) })).status).toBe(407);
    expect((await fetchVia(proxy, target, { auth: basic('nobody', r.password) })).status).toBe(407);
    expect((await fetchVia(proxy, target, { auth: 'Bearer abc' })).status).toBe(407);

    const noAuthTunnel = await tunnel(proxy, `127.0.0.1:${allowed.port}`);
    expect(noAuthTunnel.status).toBe(407);
    expect(noAuthTunnel.head).toMatch(/Proxy-Authenticate: Basic realm="stepwise-egress"/);
    expect((await tunnel(proxy, `127.0.0.1:${allowed.port}`, basic(r.username, 'wrong'))).status).toBe(407);
    expect((await upgradeVia(proxy, `http://127.0.0.1:${allowed.port}/ws`, {})).status).toBe(407);

    r.release();
    expect((await fetchVia(proxy, target, { auth: authOf(r) })).status).toBe(407);
    expect(allowed.hits).toBe(hits);
    expect(proxy.stats().unauthenticated).toBe(before + 8);
  });

  it('answers a direct (non-proxy) request with 400', async () => {
    const r = register([`http://127.0.0.1:${allowed.port}`]);
    const proxyUrl = new URL(proxy.url);
    const req = request({ host: proxyUrl.hostname, port: Number(proxyUrl.port), path: '/', headers: { 'Proxy-Authorization': authOf(r) }, agent: false });
    req.end();
    const [res] = (await once(req, 'response')) as [IncomingMessage];
    res.resume();
    expect(res.statusCode).toBe(400);
  });

  it('tells onRefusal listeners and counts refusals by reason', async () => {
    const r = register([`http://127.0.0.1:${allowed.port}`]);
    const heard: [EgressRefusal, string][] = [];
    const off = proxy.onRefusal((refusal, registration) => heard.push([refusal, registration.username]));
    const before = proxy.stats();
    await fetchVia(proxy, 'http://elsewhere.test/', { auth: authOf(r) });
    off();
    await fetchVia(proxy, 'http://elsewhere.test/', { auth: authOf(r) });
    expect(heard).toHaveLength(1);
    expect(heard[0]![1]).toBe(r.username);
    expect(heard[0]![0]).toMatchObject({ host: 'elsewhere.test', port: 80, reason: 'not-allowed', url: 'http://elsewhere.test/' });
    const after = proxy.stats();
    expect(after.refusals).toBe(before.refusals + 2);
    expect(after.refusalsByReason['not-allowed']).toBe((before.refusalsByReason['not-allowed'] ?? 0) + 2);
  });

  it('rejects an allowOrigins entry that is not an origin', () => {
    for (const bad of ['portal.test', 'ftp://portal.test', 'https://portal.test/path', 'https://u:p@portal.test', 'https://*.portal.test']) {
      expect(() => proxy.register([bad])).toThrow(ValidationError);
    }
  });
});

describe('egress proxy: limits and release', () => {
  it('cuts a context off past its byte cap and refuses it from then on', async () => {
    const capped = await EgressProxy.start({ policy: new EgressPolicy(`127.0.0.1:${allowed.port}`), lookup, maxBytesPerContext: 16 * 1024 });
    try {
      const r = capped.register([`http://127.0.0.1:${allowed.port}`]);
      const big = await fetchVia(capped, `http://127.0.0.1:${allowed.port}/big`, { auth: authOf(r) }).catch((err: unknown) => err);
      // Headers may have gone out before the cap was hit; either way the body is not delivered whole.
      if (!(big instanceof Error)) expect((big as Reply).body.length).toBeLessThan(64 * 1024);
      const next = await fetchVia(capped, `http://127.0.0.1:${allowed.port}/hello`, { auth: authOf(r) });
      expect(next.status).toBe(403);
      expect(r.refusals().map((x) => x.reason)).toEqual(['byte-limit', 'byte-limit']);
      // Another context is not affected.
      const other = capped.register([`http://127.0.0.1:${allowed.port}`]);
      expect((await fetchVia(capped, `http://127.0.0.1:${allowed.port}/hello`, { auth: authOf(other) })).status).toBe(200);
    } finally {
      await capped.close();
    }
  });

  it('release ends the context’s open tunnels', async () => {
    const r = register([`http://127.0.0.1:${allowed.port}`]);
    const t = await tunnel(proxy, `127.0.0.1:${allowed.port}`, authOf(r));
    expect(t.status).toBe(200);
    const closed = once(t.socket, 'close');
    r.release();
    await closed;
    expect(proxy.stats().activeRegistrations).toBe(registrations.filter((x) => x !== r).length);
  });
});
