import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { EgressPolicy } from '../net/address-policy.js';
import { connectChecked, resolveEgress, type EgressLookup } from '../net/egress.js';
import { EgressDeniedError, EgressUnreachableError, type EgressDenialReason } from '../net/errors.js';
import { basicCredentials, EGRESS_DENIED_HEADER, endWithStatus, forwardableHeaders, PROXY_AUTHENTICATE } from './proxy-http.js';
import { originAllows, parseAllowOrigins, type OriginGrant } from './proxy-origins.js';

/**
 * The egress proxy: one HTTP proxy per worker process, on 127.0.0.1, that
 * every browser context goes through. A tenant's page may load any URL, so
 * the proxy — not Chromium — decides what it reaches: each context's
 * requests must name one of its allowed origins and pass the address policy
 * (net/address-policy.ts), and the proxy connects to the very address it
 * checked (net/egress.ts), so DNS rebinding cannot slip in between.
 *
 * Chromium must be told to send loopback and link-local traffic here too
 * (it bypasses proxies for them by default): with Playwright, a context's
 * `proxy` option without a `bypass` gets `<-loopback>` added by Playwright
 * itself; pass `bypass: '<-loopback>'` to make it explicit.
 */

/** One refused request, for the browser step to report (EGRESS_DENIED) against the action that hit it. */
export interface EgressRefusal {
  readonly host: string;
  readonly port: number;
  /** Stable: an address class (loopback, private, metadata, …), invalid-host, invalid-port, not-allowed (outside the allowed origins) or byte-limit. */
  readonly reason: EgressDenialReason | 'byte-limit';
  /** Names the host and the reason, never a resolved address. */
  readonly message: string;
  /** The full URL when the proxy saw it (plain http); a CONNECT only shows host:port. */
  readonly url?: string;
  /** Epoch ms. */
  readonly at: number;
}

/** What one browser context gets from `register`: Playwright's `proxy` option, its refusals, and its release. */
export interface ProxyRegistration {
  /** The proxy's URL (`http://127.0.0.1:<port>`). */
  readonly server: string;
  /** A random credential for this context alone: the proxy applies the rules of whoever presents it. */
  readonly username: string;
  readonly password: string;
  readonly allowOrigins: readonly string[];
  /**
   * Replace the allowed origins (a later browser step of the same session
   * names its own); connections already open stay open.
   *
   * @throws ValidationError naming an origin that is not one (the old ones stay).
   */
  setAllowOrigins(allowOrigins: readonly string[]): void;
  /** Refusals so far, oldest first (the last 100). */
  refusals(): readonly EgressRefusal[];
  /** Returns the refusals so far and forgets them (check after each action). */
  takeRefusals(): EgressRefusal[];
  /** Bytes moved for this context so far (both directions). */
  bytes(): number;
  /** Ends the credential and every connection of this context. Idempotent. */
  release(): void;
}

/** Monotonic counters, for metrics. */
export interface EgressProxyStats {
  /** Contexts registered and not yet released. */
  activeRegistrations: number;
  /** CONNECT tunnels opened. */
  tunnels: number;
  /** Plain http requests forwarded. */
  requests: number;
  /** Upgrades (websockets over plain http) forwarded. */
  upgrades: number;
  /** Requests refused by policy, in all and by reason. */
  refusals: number;
  refusalsByReason: Record<string, number>;
  /** Requests without a valid credential (answered 407). */
  unauthenticated: number;
  /** Allowed hosts that could not be reached (answered 502). */
  unreachable: number;
  /** Bytes moved through the proxy (both directions). */
  bytes: number;
}

/** How the proxy is set up. */
export interface EgressProxyOptions {
  policy: EgressPolicy;
  /** Default: the system resolver. */
  lookup?: EgressLookup;
  /** Bytes one context may move through the proxy, both directions together (default 1 GiB; downloads have their own cap too). */
  maxBytesPerContext?: number;
  /** Per address tried (default 10 s). */
  connectTimeoutMs?: number;
}

/** A connection to the checked address, or the answer to give instead (`denied`: a refusal, marked with EGRESS_DENIED_HEADER). */
type Opened = { ok: true; socket: Socket } | { ok: false; status: number; message: string; denied: boolean };

function refusalHeaders(opened: { denied: boolean }): Record<string, string> {
  return opened.denied ? { [EGRESS_DENIED_HEADER.name]: EGRESS_DENIED_HEADER.value } : {};
}

const MAX_KEPT_REFUSALS = 100;

class Registration implements ProxyRegistration {
  released = false;
  private moved = 0;
  private kept: EgressRefusal[] = [];
  private readonly sockets = new Set<Duplex>();
  private capReported = false;

  constructor(
    readonly server: string,
    readonly username: string,
    readonly password: string,
    public allowOrigins: readonly string[],
    public grants: readonly OriginGrant[],
    private readonly maxBytes: number,
    private readonly onRelease: (r: Registration) => void,
  ) {}

  setAllowOrigins(allowOrigins: readonly string[]): void {
    const grants = parseAllowOrigins(allowOrigins);
    this.allowOrigins = Object.freeze([...allowOrigins]);
    this.grants = grants;
  }

  refusals(): readonly EgressRefusal[] {
    return [...this.kept];
  }

  takeRefusals(): EgressRefusal[] {
    const taken = this.kept;
    this.kept = [];
    return taken;
  }

  bytes(): number {
    return this.moved;
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    this.onRelease(this);
  }

  keep(refusal: EgressRefusal): void {
    this.kept.push(refusal);
    if (this.kept.length > MAX_KEPT_REFUSALS) this.kept.shift();
  }

  track(socket: Duplex): void {
    if (this.released) {
      socket.destroy();
      return;
    }
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
  }

  /** Counts bytes; false once over the cap. */
  count(n: number): boolean {
    this.moved += n;
    return this.moved <= this.maxBytes;
  }

  overCap(): boolean {
    return this.moved > this.maxBytes;
  }

  /** True the first time only: the cap is reported once per context. */
  firstCapReport(): boolean {
    if (this.capReported) return false;
    this.capReported = true;
    return true;
  }
}

/** Reads CONNECT's `host:port` or `[ipv6]:port`. */
function parseAuthority(target: string | undefined): { host: string; port: number } | null {
  const match = /^(\[[^\]]+\]|[^:[\]/]+):([0-9]{1,5})$/.exec(target ?? '');
  if (!match) return null;
  return { host: match[1]!, port: Number(match[2]) };
}

/**
 * The proxy. Start one per worker process with `EgressProxy.start`, register
 * each browser context, release it when the context closes.
 */
export class EgressProxy {
  private readonly server: Server;
  private readonly byUser = new Map<string, Registration>();
  private readonly listeners = new Set<(refusal: EgressRefusal, registration: ProxyRegistration) => void>();
  private readonly detached = new Set<Duplex>();
  private readonly counters: EgressProxyStats = {
    activeRegistrations: 0,
    tunnels: 0,
    requests: 0,
    upgrades: 0,
    refusals: 0,
    refusalsByReason: {},
    unauthenticated: 0,
    unreachable: 0,
    bytes: 0,
  };
  private address = '';

  private constructor(private readonly options: EgressProxyOptions) {
    // requestTimeout 0: a long upload through the proxy is the page's business, not a stuck request.
    this.server = createServer({ requestTimeout: 0, headersTimeout: 60_000 });
    this.server.on('request', (req, res) => void this.onRequest(req, res).catch(() => res.destroy()));
    this.server.on('connect', (req, socket, head) => void this.onConnect(req, socket, head).catch(() => socket.destroy()));
    this.server.on('upgrade', (req, socket, head) => void this.onUpgrade(req, socket, head).catch(() => socket.destroy()));
    this.server.on('clientError', (_err, socket) => endWithStatus(socket, 400, 'bad request'));
  }

  /** Starts a proxy listening on 127.0.0.1 on a random port. */
  static async start(options: EgressProxyOptions): Promise<EgressProxy> {
    const proxy = new EgressProxy(options);
    await new Promise<void>((resolve, reject) => {
      proxy.server.once('error', reject);
      proxy.server.listen(0, '127.0.0.1', () => {
        proxy.server.off('error', reject);
        resolve();
      });
    });
    proxy.address = `http://127.0.0.1:${(proxy.server.address() as AddressInfo).port}`;
    return proxy;
  }

  /** `http://127.0.0.1:<port>`. */
  get url(): string {
    return this.address;
  }

  /**
   * Registers a browser context: its allowed origins (`https://host[:port]`,
   * `http://127.0.0.1:8123`) and a fresh credential. Pass `{ server,
   * username, password }` as the context's Playwright `proxy` option.
   *
   * @throws ValidationError naming an origin that is not one.
   */
  register(allowOrigins: readonly string[]): ProxyRegistration {
    const grants = parseAllowOrigins(allowOrigins);
    const registration = new Registration(
      this.address,
      `ctx-${randomBytes(9).toString('base64url')}`,
      randomBytes(24).toString('base64url'),
      Object.freeze([...allowOrigins]),
      grants,
      this.options.maxBytesPerContext ?? 1024 ** 3,
      (r) => {
        this.byUser.delete(r.username);
        this.counters.activeRegistrations--;
      },
    );
    this.byUser.set(registration.username, registration);
    this.counters.activeRegistrations++;
    return registration;
  }

  /** Calls `listener` on every refusal of any context; returns the unsubscribe. */
  onRefusal(listener: (refusal: EgressRefusal, registration: ProxyRegistration) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** A snapshot of the counters. */
  stats(): EgressProxyStats {
    return { ...this.counters, refusalsByReason: { ...this.counters.refusalsByReason } };
  }

  /** Stops listening and ends every connection and registration. */
  async close(): Promise<void> {
    for (const registration of [...this.byUser.values()]) registration.release();
    for (const socket of this.detached) socket.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private authenticate(req: IncomingMessage): Registration | null {
    const credentials = basicCredentials(req.headers['proxy-authorization']);
    const registration = credentials ? this.byUser.get(credentials.username) : undefined;
    if (!credentials || !registration || registration.released) return null;
    const given = Buffer.from(credentials.password);
    const expected = Buffer.from(registration.password);
    return given.length === expected.length && timingSafeEqual(given, expected) ? registration : null;
  }

  private refuse(registration: Registration, refusal: Omit<EgressRefusal, 'at'>): Opened {
    const full: EgressRefusal = { ...refusal, at: Date.now() };
    registration.keep(full);
    this.counters.refusals++;
    this.counters.refusalsByReason[full.reason] = (this.counters.refusalsByReason[full.reason] ?? 0) + 1;
    for (const listener of this.listeners) {
      try {
        listener(full, registration);
      } catch {
        // A listener's failure must not turn a refusal into a crash of the proxy.
      }
    }
    return { ok: false, status: 403, message: full.message, denied: true };
  }

  /** The checks every path makes, then a connection to the checked address. */
  private async open(registration: Registration, host: string, port: number, url: string | undefined): Promise<Opened> {
    const at = url === undefined ? {} : { url };
    if (registration.overCap()) {
      return this.refuse(registration, { host, port, reason: 'byte-limit', message: 'this browser context used up its egress byte limit', ...at });
    }
    if (!originAllows(registration.grants, host, port)) {
      const denied = new EgressDeniedError(host, port, 'not-allowed', `${host}:${port} is not among this browser step's allowed origins`);
      return this.refuse(registration, { host, port, reason: denied.reason, message: denied.message, ...at });
    }
    let socket: Socket;
    try {
      const target = await resolveEgress(host, port, { policy: this.options.policy, ...(this.options.lookup ? { lookup: this.options.lookup } : {}) });
      socket = await connectChecked(target, { timeoutMs: this.options.connectTimeoutMs ?? 10_000 });
    } catch (err) {
      if (err instanceof EgressDeniedError) return this.refuse(registration, { host, port, reason: err.reason, message: err.message, ...at });
      if (err instanceof EgressUnreachableError) {
        this.counters.unreachable++;
        return { ok: false, status: 502, message: err.message, denied: false };
      }
      throw err;
    }
    if (registration.released) {
      socket.destroy();
      return { ok: false, status: 403, message: 'this browser context was released', denied: false };
    }
    registration.track(socket);
    return { ok: true, socket };
  }

  /** Counts a chunk against the context's cap; over it, reports once and ends both sides. */
  private counted(registration: Registration, chunk: Buffer, host: string, port: number, ends: readonly Duplex[]): void {
    this.counters.bytes += chunk.length;
    if (registration.count(chunk.length)) return;
    if (registration.firstCapReport()) {
      this.refuse(registration, { host, port, reason: 'byte-limit', message: 'this browser context used up its egress byte limit' });
    }
    for (const end of ends) end.destroy();
  }

  /** Pipes two sockets both ways, counting bytes, until either ends. */
  private splice(registration: Registration, client: Duplex, upstream: Duplex, host: string, port: number): void {
    this.detached.add(client);
    registration.track(client);
    const both = [client, upstream] as const;
    for (const [from, to] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      from.on('data', (chunk: Buffer) => this.counted(registration, chunk, host, port, both));
      // pipe passes a clean end on (after flushing); an abrupt one (reset, error) aborts the other side too.
      from.pipe(to);
      from.on('error', () => to.destroy());
      from.on('close', () => {
        this.detached.delete(from);
        if (!to.destroyed) to.end();
      });
    }
  }

  private answerUnauthenticated(socket: Duplex): void {
    this.counters.unauthenticated++;
    endWithStatus(socket, 407, 'proxy credentials required', { 'Proxy-Authenticate': PROXY_AUTHENTICATE });
  }

  /** CONNECT host:port — https and wss (and ws, which Chromium also tunnels). */
  private async onConnect(req: IncomingMessage, client: Duplex, head: Buffer): Promise<void> {
    client.on('error', () => client.destroy());
    const registration = this.authenticate(req);
    if (!registration) return this.answerUnauthenticated(client);
    const authority = parseAuthority(req.url);
    if (!authority) return endWithStatus(client, 400, 'CONNECT needs host:port');
    const opened = await this.open(registration, authority.host, authority.port, undefined);
    if (!opened.ok) return endWithStatus(client, opened.status, opened.message, refusalHeaders(opened));
    if (client.destroyed) return void opened.socket.destroy();
    this.counters.tunnels++;
    client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    if (head.length > 0) {
      this.counted(registration, head, authority.host, authority.port, [client, opened.socket]);
      opened.socket.write(head);
    }
    this.splice(registration, client, opened.socket, authority.host, authority.port);
  }

  /** Reads an absolute-URI request target; only http (and ws for upgrades) goes through here, https uses CONNECT. */
  private absoluteTarget(req: IncomingMessage, schemes: readonly string[]): { url: URL; host: string; port: number } | null {
    let url: URL;
    try {
      url = new URL(req.url ?? '');
    } catch {
      return null;
    }
    if (!schemes.includes(url.protocol) || url.hostname === '') return null;
    return { url, host: url.hostname, port: url.port ? Number(url.port) : 80 };
  }

  /** An absolute-URI request (http:// pages and subresources): checked, then forwarded without Proxy-* headers. */
  private async onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const registration = this.authenticate(req);
    if (!registration) {
      this.counters.unauthenticated++;
      res.writeHead(407, { 'Proxy-Authenticate': PROXY_AUTHENTICATE, 'Content-Type': 'text/plain; charset=utf-8' });
      res.end('proxy credentials required\n');
      return;
    }
    const target = this.absoluteTarget(req, ['http:']);
    if (!target) {
      res.writeHead(400, { 'Content-Type': 'text/plain; charset=utf-8' }).end('this is a proxy: send absolute http:// URLs, or CONNECT for https\n');
      return;
    }
    const { url, host, port } = target;
    const opened = await this.open(registration, host, port, url.href);
    if (!opened.ok) {
      res.writeHead(opened.status, { 'Content-Type': 'text/plain; charset=utf-8', ...refusalHeaders(opened) }).end(`${opened.message}\n`);
      return;
    }
    this.counters.requests++;
    const upstreamSocket = opened.socket;
    const ends = [upstreamSocket, res.socket].filter((s): s is Socket => s !== null);
    const upstream = httpRequest({
      // The socket is already connected to the checked address: no agent, no lookup.
      createConnection: () => upstreamSocket,
      method: req.method,
      path: `${url.pathname}${url.search}`,
      // Host is what was checked, whatever the client put in its Host header.
      headers: forwardableHeaders(req.rawHeaders, { Host: url.host, Connection: 'close' }),
      setHost: false,
    });
    upstream.on('response', (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.statusMessage, forwardableHeaders(upRes.rawHeaders));
      upRes.on('data', (chunk: Buffer) => this.counted(registration, chunk, host, port, ends));
      upRes.pipe(res);
      upRes.on('error', () => res.destroy());
    });
    upstream.on('error', () => {
      if (!res.headersSent) res.writeHead(502, { 'Content-Type': 'text/plain; charset=utf-8' }).end(`${host}:${port} failed to answer\n`);
      else res.destroy();
    });
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    req.on('data', (chunk: Buffer) => this.counted(registration, chunk, host, port, ends));
    req.pipe(upstream);
  }

  /** An absolute-URI upgrade (a websocket over plain http): checked, then the request is re-sent and both sides piped. */
  private async onUpgrade(req: IncomingMessage, client: Duplex, head: Buffer): Promise<void> {
    client.on('error', () => client.destroy());
    const registration = this.authenticate(req);
    if (!registration) return this.answerUnauthenticated(client);
    const target = this.absoluteTarget(req, ['http:', 'ws:']);
    if (!target) return endWithStatus(client, 400, 'this is a proxy: send absolute http:// URLs, or CONNECT for https');
    const { url, host, port } = target;
    const opened = await this.open(registration, host, port, url.href);
    if (!opened.ok) return endWithStatus(client, opened.status, opened.message, refusalHeaders(opened));
    if (client.destroyed) return void opened.socket.destroy();
    this.counters.upgrades++;
    const headers = forwardableHeaders(req.rawHeaders, {
      Host: url.host,
      Connection: 'Upgrade',
      Upgrade: String(req.headers.upgrade ?? ''),
    });
    let text = `${req.method ?? 'GET'} ${url.pathname}${url.search} HTTP/1.1\r\n`;
    for (let i = 0; i < headers.length; i += 2) text += `${headers[i]}: ${headers[i + 1]}\r\n`;
    const request = Buffer.concat([Buffer.from(`${text}\r\n`, 'latin1'), head]);
    this.counted(registration, request, host, port, [client, opened.socket]);
    opened.socket.write(request);
    this.splice(registration, client, opened.socket, host, port);
  }
}
