import { lookup as dnsLookup } from 'node:dns/promises';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { describeClass, type EgressPolicy } from './address-policy.js';
import { EgressDeniedError, EgressUnreachableError } from './errors.js';
import { formatIp, parseIp } from './ip.js';

/**
 * Outbound connections for tenants: resolve the host here, check every
 * address against the policy, then connect to one of exactly those
 * addresses. Resolving once and connecting to the checked address (never
 * handing the name to something that resolves it again) is what closes the
 * check-then-resolve race and DNS rebinding: a name cannot answer the check
 * with a public address and the connection with 127.0.0.1.
 */

/** One address a name resolved to. */
export interface ResolvedAddress {
  readonly address: string;
  readonly family: 4 | 6;
}

/** Resolves a DNS name to all its addresses. Injected in tests (make `evil.example` resolve to 127.0.0.1 without /etc/hosts). */
export type EgressLookup = (hostname: string) => Promise<readonly ResolvedAddress[]>;

/** The system resolver (getaddrinfo, so /etc/hosts too), every address, in the resolver's order. */
export const systemLookup: EgressLookup = async (hostname) => {
  const found = await dnsLookup(hostname, { all: true, verbatim: true });
  return found.map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }));
};

const CHECKED: unique symbol = Symbol('egress.checked');

/**
 * A host whose every address the policy admitted. Only `resolveEgress`
 * makes one, so `connectChecked` can only connect where a check was made.
 */
export interface CheckedTarget {
  /** The host as asked (for messages). */
  readonly host: string;
  readonly port: number;
  /** The DNS name to present in TLS (SNI and certificate check); null when the host is an address. */
  readonly servername: string | null;
  /** Canonical addresses, every one admitted, in the resolver's order. */
  readonly addresses: readonly ResolvedAddress[];
  readonly [CHECKED]: true;
}

/** What resolving and checking need. */
export interface EgressOptions {
  policy: EgressPolicy;
  /** Default: the system resolver. */
  lookup?: EgressLookup;
}

function isValidPort(port: number): boolean {
  return Number.isInteger(port) && port >= 1 && port <= 65535;
}

function systemCode(err: unknown): string | null {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : null;
}

/**
 * Resolves `host` (once) and checks every address it has: one refused
 * address refuses the host, since a name that maps anywhere internal is
 * treated as internal. An address literal in any notation (`127.1`,
 * `0x7f.1`, `2130706433`, `[::1]`) is checked as the address it is, with no
 * lookup.
 *
 * @throws EgressDeniedError (EGRESS_DENIED) naming the host and the reason, never its addresses.
 * @throws EgressUnreachableError (EGRESS_UNREACHABLE) when the name does not resolve.
 */
export async function resolveEgress(host: string, port: number, options: EgressOptions): Promise<CheckedTarget> {
  if (!isValidPort(port)) throw new EgressDeniedError(host, port, 'invalid-port', `${port} is not a valid port`);
  const checked = options.policy.checkHost(host, port);
  if (!checked.admitted) {
    throw checked.reason === 'invalid-host'
      ? new EgressDeniedError(host, port, 'invalid-host', `"${host}" is not a valid host name or address`)
      : new EgressDeniedError(host, port, checked.reason, `${host} resolves to ${describeClass(checked.reason)}`);
  }
  if (checked.host.kind === 'ip') {
    const verdict = options.policy.decide(host, port, checked.host.ip);
    if (!verdict.admitted) throw new EgressDeniedError(host, port, verdict.reason, `${host} is ${describeClass(verdict.reason)}`);
    const address = { address: formatIp(checked.host.ip), family: checked.host.ip.family };
    return { host, port, servername: null, addresses: [address], [CHECKED]: true };
  }
  const name = checked.host.name;
  let found: readonly ResolvedAddress[];
  try {
    found = await (options.lookup ?? systemLookup)(name);
  } catch (err) {
    throw new EgressUnreachableError(host, port, systemCode(err), { cause: err });
  }
  if (found.length === 0) throw new EgressUnreachableError(host, port, 'ENOTFOUND');
  const addresses: ResolvedAddress[] = [];
  for (const entry of found) {
    const ip = parseIp(entry.address);
    // A resolver that answers something that is no address is not to be trusted with the rest either.
    if (!ip) throw new EgressDeniedError(host, port, 'reserved', `${host} resolves to something that is not an IP address`);
    const verdict = options.policy.decide(host, port, ip);
    if (!verdict.admitted) {
      throw new EgressDeniedError(host, port, verdict.reason, `${host} resolves to ${describeClass(verdict.reason)}`);
    }
    const address = formatIp(ip);
    if (!addresses.some((a) => a.address === address)) addresses.push({ address, family: ip.family });
  }
  return { host, port, servername: name, addresses, [CHECKED]: true };
}

/** How to connect. */
export interface ConnectOptions {
  /** Wrap the connection in TLS (SNI and certificate check against the host name); options pass through to tls.connect. */
  tls?: ConnectionOptions | true;
  /** Per address tried (default 10 s). */
  timeoutMs?: number;
  signal?: AbortSignal;
}

function tcpConnect(address: ResolvedAddress, port: number, timeoutMs: number, signal: AbortSignal | undefined): Promise<Socket> {
  return new Promise((resolve, reject) => {
    // An address literal: net.connect does no lookup, so this reaches exactly the checked address.
    const socket = netConnect({ host: address.address, port, family: address.family, noDelay: true });
    const done = (err: Error | null): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      socket.off('connect', onConnect);
      socket.off('error', done);
      if (err) {
        socket.destroy();
        reject(err);
      } else {
        resolve(socket);
      }
    };
    const onConnect = (): void => done(null);
    const onAbort = (): void => done(signal!.reason instanceof Error ? signal!.reason : new Error('aborted'));
    const timer = setTimeout(() => done(Object.assign(new Error('connect timed out'), { code: 'ETIMEDOUT' })), timeoutMs);
    socket.once('connect', onConnect);
    socket.once('error', done);
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function tlsUpgrade(socket: Socket, target: CheckedTarget, address: string, options: ConnectionOptions, timeoutMs: number): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const secure = tlsConnect({
      ...options,
      socket,
      // The certificate is checked against the name asked for (or the address when an address was asked for), never a resolved address.
      host: target.servername ?? address,
      ...(target.servername ? { servername: target.servername } : {}),
    });
    const timer = setTimeout(() => {
      secure.destroy();
      reject(Object.assign(new Error('TLS handshake timed out'), { code: 'ETIMEDOUT' }));
    }, timeoutMs);
    secure.once('secureConnect', () => {
      clearTimeout(timer);
      secure.off('error', onError);
      resolve(secure);
    });
    const onError = (err: Error): void => {
      clearTimeout(timer);
      secure.destroy();
      reject(err);
    };
    secure.once('error', onError);
  });
}

/**
 * Connects to the first of the target's checked addresses that accepts
 * (tried in order), optionally in TLS. Never resolves anything.
 *
 * @throws EgressUnreachableError when no address accepts; TLS failures (certificate, handshake) as tls raises them.
 */
export async function connectChecked(target: CheckedTarget, options: ConnectOptions = {}): Promise<Socket | TLSSocket> {
  if (target[CHECKED] !== true) throw new TypeError('connectChecked needs a target from resolveEgress');
  const timeoutMs = options.timeoutMs ?? 10_000;
  let lastError: unknown = null;
  for (const address of target.addresses) {
    let socket: Socket;
    try {
      socket = await tcpConnect(address, target.port, timeoutMs, options.signal);
    } catch (err) {
      if (options.signal?.aborted) throw err;
      lastError = err;
      continue;
    }
    if (!options.tls) return socket;
    return tlsUpgrade(socket, target, address.address, options.tls === true ? {} : options.tls, timeoutMs);
  }
  throw new EgressUnreachableError(target.host, target.port, systemCode(lastError), { cause: lastError });
}

/**
 * `resolveEgress` then `connectChecked`: a connection to `host`:`port` that
 * the policy admitted, or a typed error.
 */
export async function connectEgress(
  host: string,
  port: number,
  options: EgressOptions & ConnectOptions,
): Promise<Socket | TLSSocket> {
  return connectChecked(await resolveEgress(host, port, options), options);
}
