import { ValidationError } from '../errors/index.js';
import {
  formatIp,
  inCidr,
  ipEquals,
  parseCidr,
  parseHost,
  parseIp,
  unmapIp,
  type Cidr,
  type IpAddress,
  type ParsedHost,
} from './ip.js';

/**
 * Where tenant-driven connections may go. Workflows are tenant-authored, so
 * every step that reaches the network (browser contexts first; http, llm,
 * email, sql and webhooks later) must not reach Stepwise's own network: only
 * public addresses are admitted, plus what the operator names in
 * STEPWISE_EGRESS_ALLOW. Pure: resolution and connecting are egress.ts's.
 */

/** What an address is, as far as egress is concerned. Everything but `public` is refused unless allowed. */
export type AddressClass =
  | 'public'
  | 'loopback'
  | 'private'
  | 'unique-local'
  | 'link-local'
  | 'metadata'
  | 'multicast'
  | 'unspecified'
  | 'broadcast'
  | 'reserved';

/** A class that is refused by default. */
export type RefusedClass = Exclude<AddressClass, 'public'>;

const PHRASE: Record<RefusedClass, string> = {
  loopback: 'a loopback address',
  private: 'a private address',
  'unique-local': 'a unique-local address',
  'link-local': 'a link-local address',
  metadata: 'a cloud metadata address',
  multicast: 'a multicast address',
  unspecified: 'an unspecified address',
  broadcast: 'a broadcast address',
  reserved: 'a reserved address',
};

/** "a loopback address", "a cloud metadata address", … for messages. */
export function describeClass(cls: RefusedClass): string {
  return PHRASE[cls];
}

function cidr(text: string): Cidr {
  const parsed = parseCidr(text);
  if (!parsed) throw new Error(`bad built-in range ${text}`);
  return parsed;
}

function exact(text: string): Cidr {
  const ip = parseIp(text)!;
  return { base: ip, prefix: ip.family === 4 ? 32 : 128 };
}

/**
 * Cloud metadata and platform endpoints: they hand out instance credentials,
 * so they are refused even when an allowed range covers them (only an entry
 * naming the exact address admits one).
 */
const METADATA: readonly Cidr[] = [
  '169.254.169.254', // AWS, GCP, Azure, OpenStack, DigitalOcean, Oracle instance metadata
  '169.254.170.2', // AWS ECS task credentials
  '169.254.170.23', // AWS EKS pod identity agent
  '100.100.100.200', // Alibaba Cloud metadata
  '168.63.129.16', // Azure WireServer (a public-range address, so it must be listed)
  '192.0.0.192', // Oracle Cloud (classic) metadata
  'fd00:ec2::254', // AWS metadata over IPv6
  'fd00:ec2::23', // AWS EKS pod identity agent over IPv6
  'fd20:ce::254', // GCP metadata over IPv6
].map(exact);

// First match wins; later entries may overlap earlier ones on purpose.
const IPV4_RULES: readonly (readonly [Cidr, RefusedClass])[] = [
  [cidr('0.0.0.0/8'), 'unspecified'], // "this network": Linux connects 0.0.0.0 to the local host
  [cidr('127.0.0.0/8'), 'loopback'],
  [cidr('10.0.0.0/8'), 'private'],
  [cidr('172.16.0.0/12'), 'private'],
  [cidr('192.168.0.0/16'), 'private'],
  [cidr('100.64.0.0/10'), 'private'], // shared address space (carrier-grade NAT, also cloud-internal)
  [cidr('169.254.0.0/16'), 'link-local'],
  [cidr('192.0.0.0/24'), 'reserved'], // IETF protocol assignments
  [cidr('192.0.2.0/24'), 'reserved'], // documentation
  [cidr('198.51.100.0/24'), 'reserved'], // documentation
  [cidr('203.0.113.0/24'), 'reserved'], // documentation
  [cidr('198.18.0.0/15'), 'reserved'], // benchmarking
  [cidr('192.88.99.0/24'), 'reserved'], // former 6to4 relay anycast
  [cidr('224.0.0.0/4'), 'multicast'],
  [cidr('255.255.255.255/32'), 'broadcast'],
  [cidr('240.0.0.0/4'), 'reserved'],
];

// IPv6 forms that carry an IPv4 address, which is what they reach: judged by that address.
const EMBEDDED_IPV4: readonly (readonly [Cidr, number])[] = [
  [cidr('::ffff:0:0/96'), 12], // IPv4-mapped
  [cidr('::ffff:0:0:0/96'), 12], // IPv4-translated (SIIT)
  [cidr('64:ff9b::/96'), 12], // NAT64 well-known prefix
  [cidr('64:ff9b:1::/48'), 12], // NAT64 local-use prefix
  [cidr('2002::/16'), 2], // 6to4
];

const IPV4_COMPATIBLE_RANGE = cidr('::/96');

const IPV6_RULES: readonly (readonly [Cidr, RefusedClass])[] = [
  [exact('::'), 'unspecified'],
  [exact('::1'), 'loopback'],
  [IPV4_COMPATIBLE_RANGE, 'reserved'], // deprecated IPv4-compatible addresses (judged by their IPv4 first, see below)
  [cidr('100::/64'), 'reserved'], // discard-only
  [cidr('2001::/32'), 'reserved'], // Teredo: a tunnel to an IPv4 address of someone's choosing
  [cidr('2001:2::/48'), 'reserved'], // benchmarking
  [cidr('2001:10::/28'), 'reserved'], // ORCHID
  [cidr('2001:20::/28'), 'reserved'], // ORCHIDv2
  [cidr('2001:db8::/32'), 'reserved'], // documentation
  [cidr('3fff::/20'), 'reserved'], // documentation
  [cidr('fc00::/7'), 'unique-local'],
  [cidr('fe80::/10'), 'link-local'],
  [cidr('fec0::/10'), 'private'], // deprecated site-local
  [cidr('ff00::/8'), 'multicast'],
];

// Only global unicast is public; anything outside it that no rule names is unassigned.
const IPV6_GLOBAL = cidr('2000::/3');

/**
 * Classifies an address (an `IpAddress`, or text in any notation `parseIp`
 * reads: `127.1`, `0177.0.0.1`, `2130706433`, `::ffff:127.0.0.1`, `[::1]`).
 * Text that is no address at all throws (a DNS name must be resolved first).
 */
export function classifyAddress(address: IpAddress | string): AddressClass {
  const ip = typeof address === 'string' ? parseIp(address) : address;
  if (!ip) throw new TypeError(`not an IP address: ${JSON.stringify(address)}`);
  if (METADATA.some((m) => inCidr(ip, m))) return 'metadata';
  if (ip.family === 4) return IPV4_RULES.find(([range]) => inCidr(ip, range))?.[1] ?? 'public';
  for (const [range, offset] of EMBEDDED_IPV4) {
    if (inCidr(ip, range)) return classifyAddress({ family: 4, bytes: ip.bytes.slice(offset, offset + 4) });
  }
  const rule = IPV6_RULES.find(([range]) => inCidr(ip, range))?.[1];
  if (rule === 'reserved' && inCidr(ip, IPV4_COMPATIBLE_RANGE)) {
    // ::127.0.0.1 is refused as what its IPv4 is when that says more than "reserved".
    const inner = classifyAddress({ family: 4, bytes: ip.bytes.slice(12) });
    return inner === 'public' ? 'reserved' : inner;
  }
  if (rule) return rule;
  return inCidr(ip, IPV6_GLOBAL) ? 'public' : 'reserved';
}

/** One STEPWISE_EGRESS_ALLOW entry. */
export type EgressAllowEntry =
  /** A DNS name, any port or one port: admits whatever it resolves to (except metadata addresses). */
  | { readonly kind: 'name'; readonly name: string; readonly port: number | null; readonly text: string }
  /** One address, any port or one port: the only way to admit a metadata address. */
  | { readonly kind: 'address'; readonly ip: IpAddress; readonly port: number | null; readonly text: string }
  /** A range, any port (metadata addresses inside it stay refused). */
  | { readonly kind: 'cidr'; readonly cidr: Cidr; readonly text: string };

function parsePort(text: string): number | null {
  if (!/^[0-9]{1,5}$/.test(text)) return null;
  const port = Number(text);
  return port >= 1 && port <= 65535 ? port : null;
}

function parseEntry(text: string): EgressAllowEntry | null {
  if (text.includes('/')) {
    const range = parseCidr(text);
    return range ? { kind: 'cidr', cidr: range, text } : null;
  }
  let hostText = text;
  let port: number | null = null;
  const bracketed = /^\[([^\]]+)\](?::(.*))?$/.exec(text);
  if (bracketed) {
    hostText = `[${bracketed[1]}]`;
    if (bracketed[2] !== undefined) {
      port = parsePort(bracketed[2]);
      if (port === null) return null;
    }
  } else if ((text.match(/:/g) ?? []).length === 1) {
    const colon = text.indexOf(':');
    hostText = text.slice(0, colon);
    port = parsePort(text.slice(colon + 1));
    if (port === null) return null;
  }
  const host = parseHost(hostText);
  if (host.kind === 'ip') return { kind: 'address', ip: unmapIp(host.ip), port, text };
  if (host.kind === 'name') return { kind: 'name', name: host.name, port, text };
  return null;
}

/**
 * Parses STEPWISE_EGRESS_ALLOW: comma-separated `host`, `host:port`,
 * `address`, `address:port`, `[ipv6]:port` or CIDR (`10.20.0.0/16`,
 * `fd12:3456::/32`). Blank entries are ignored. A bad entry throws a
 * ValidationError naming it.
 */
export function parseEgressAllow(text: string | undefined, source = 'STEPWISE_EGRESS_ALLOW'): EgressAllowEntry[] {
  const entries: EgressAllowEntry[] = [];
  for (const raw of (text ?? '').split(',')) {
    const item = raw.trim();
    if (item === '') continue;
    const entry = parseEntry(item);
    if (!entry) {
      throw new ValidationError(
        `${source} entry "${item}" is not a host, host:port, IP address, [IPv6]:port or CIDR range (with no bits set past its prefix)`,
        { path: source, entry: item },
      );
    }
    entries.push(entry);
  }
  return entries;
}

/** The outcome of a check: admitted, or refused with the class that refused it. */
export type EgressVerdict = { readonly admitted: true } | { readonly admitted: false; readonly reason: RefusedClass };

/** What a host string designates, for the checks made before any resolution. */
export type HostVerdict =
  | { readonly admitted: true; readonly host: Exclude<ParsedHost, { kind: 'invalid' }> }
  | { readonly admitted: false; readonly reason: 'invalid-host' | RefusedClass };

const ADMITTED: EgressVerdict = Object.freeze({ admitted: true });

/**
 * The egress policy: public addresses are admitted; every other class is
 * refused unless an allowlist entry admits it. Build one per process from
 * Config.egressAllow (or, in tests, from an explicit list).
 */
export class EgressPolicy {
  readonly entries: readonly EgressAllowEntry[];

  /** `allow`: STEPWISE_EGRESS_ALLOW's text, or entries already parsed (Config.egressAllow). */
  constructor(allow: string | readonly EgressAllowEntry[] = []) {
    this.entries = Object.freeze(typeof allow === 'string' ? parseEgressAllow(allow) : [...allow]);
  }

  /**
   * The checks on a host string alone, before resolving it: it must be a
   * valid name or address, and the names every resolver and browser map to
   * loopback on their own (`localhost`, `*.localhost`) are refused unless a
   * name entry admits them exactly.
   */
  checkHost(host: string, port: number): HostVerdict {
    const parsed = parseHost(host);
    if (parsed.kind === 'invalid') return { admitted: false, reason: 'invalid-host' };
    if (parsed.kind === 'name' && (parsed.name === 'localhost' || parsed.name.endsWith('.localhost'))) {
      const named = this.entries.some((e) => e.kind === 'name' && e.name === parsed.name && (e.port === null || e.port === port));
      if (!named) return { admitted: false, reason: 'loopback' };
    }
    return { admitted: true, host: parsed };
  }

  /**
   * The verdict on connecting to `address` (one the host resolved to, or the
   * host itself when it is an address) for `host`:`port`.
   */
  decide(host: string, port: number, address: IpAddress | string): EgressVerdict {
    const ip = typeof address === 'string' ? parseIp(address) : address;
    if (!ip) throw new TypeError(`not an IP address: ${JSON.stringify(address)}`);
    const cls = classifyAddress(ip);
    if (cls === 'public') return ADMITTED;
    const plain = unmapIp(ip);
    const parsedHost = parseHost(host);
    const name = parsedHost.kind === 'name' ? parsedHost.name : null;
    for (const entry of this.entries) {
      if (entry.kind === 'address') {
        // Naming the exact address is the operator's explicit choice, so it admits even a metadata address.
        if (ipEquals(entry.ip, plain) && (entry.port === null || entry.port === port)) return ADMITTED;
      } else if (cls === 'metadata') {
        continue;
      } else if (entry.kind === 'name') {
        if (name !== null && entry.name === name && (entry.port === null || entry.port === port)) return ADMITTED;
      } else if (inCidr(plain, entry.cidr) || inCidr(ip, entry.cidr)) {
        return ADMITTED;
      }
    }
    return { admitted: false, reason: cls };
  }

  /** Whether `decide` admits it. */
  isAdmitted(host: string, port: number, address: IpAddress | string): boolean {
    return this.decide(host, port, address).admitted;
  }
}

/** Canonical text of a host for display and comparison: the address's canonical form, or the lower-cased name. */
export function canonicalHost(host: string): string | null {
  const parsed = parseHost(host);
  if (parsed.kind === 'ip') return formatIp(parsed.ip);
  if (parsed.kind === 'name') return parsed.name;
  return null;
}
