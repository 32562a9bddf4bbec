import { isIPv6 } from 'node:net';

/**
 * IP addresses as bytes, parsed from every form a host string may take.
 *
 * Why not just `net.isIP`: a tenant-written host such as `0177.0.0.1`,
 * `0x7f.1`, `127.1` or `2130706433` is not an IP literal to `net.isIP`, yet
 * the resolver (inet_aton rules) and every browser (the WHATWG URL parser)
 * read it as 127.0.0.1. A policy that took it for a name would let it through,
 * so these forms are parsed here exactly as the URL standard parses them.
 */

/** An IPv4 (4 bytes) or IPv6 (16 bytes) address. */
export interface IpAddress {
  readonly family: 4 | 6;
  readonly bytes: Uint8Array;
}

/** A host string read as what it designates: an address, a DNS name, or nothing valid. */
export type ParsedHost =
  | { readonly kind: 'ip'; readonly ip: IpAddress }
  | { readonly kind: 'name'; readonly name: string }
  | { readonly kind: 'invalid' };

/** An address range: `prefix` leading bits of `base`. */
export interface Cidr {
  readonly base: IpAddress;
  readonly prefix: number;
}

/** One dot-separated part of an IPv4 host: decimal, octal (leading 0) or hex (0x), as the URL standard reads it. */
function parseIpv4Part(part: string): number | null {
  if (part === '') return null;
  let digits = part;
  let radix = 10;
  if (/^0x/i.test(digits)) {
    radix = 16;
    digits = digits.slice(2);
  } else if (digits.length > 1 && digits.startsWith('0')) {
    radix = 8;
    digits = digits.slice(1);
  }
  // "0x" alone is 0 in the URL standard (and to inet_aton).
  if (digits === '') return 0;
  const valid = radix === 16 ? /^[0-9a-f]+$/i : radix === 8 ? /^[0-7]+$/ : /^[0-9]+$/;
  if (!valid.test(digits)) return null;
  // Anything longer than 12 digits is far beyond 2^32 in every radix; parseInt would lose precision.
  if (digits.replace(/^0+/, '').length > 12) return Number.POSITIVE_INFINITY;
  return parseInt(digits, radix);
}

/** Splits off the one trailing dot the URL standard allows (`127.0.0.1.`). */
function ipv4Parts(text: string): string[] {
  const parts = text.split('.');
  if (parts.length > 1 && parts[parts.length - 1] === '') parts.pop();
  return parts;
}

/**
 * Whether a host string must be read as IPv4 (the URL standard's "ends in a
 * number"): its last label is all digits or 0x-hex. Such a host is an
 * address or invalid, never a DNS name.
 */
export function endsInNumber(text: string): boolean {
  const parts = ipv4Parts(text);
  const last = parts[parts.length - 1] ?? '';
  if (last !== '' && /^[0-9]+$/.test(last)) return true;
  return /^0x[0-9a-f]*$/i.test(last);
}

/** IPv4 in any form the URL standard accepts: `a.b.c.d`, `a.b.c`, `a.b`, `a`, each part decimal, octal or hex. */
export function parseIpv4(text: string): IpAddress | null {
  const parts = ipv4Parts(text);
  if (parts.length === 0 || parts.length > 4) return null;
  const numbers: number[] = [];
  for (const part of parts) {
    const n = parseIpv4Part(part);
    if (n === null) return null;
    numbers.push(n);
  }
  const last = numbers.pop()!;
  if (numbers.some((n) => n > 255)) return null;
  // The last part fills every byte the earlier parts left: 127.1 is 127.0.0.1, 2130706433 is 127.0.0.1.
  if (last >= 256 ** (4 - numbers.length)) return null;
  let value = last;
  numbers.forEach((n, i) => (value += n * 256 ** (3 - i)));
  return { family: 4, bytes: Uint8Array.of(value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255) };
}

/** IPv6, with an optional zone (`%eth0`, ignored: the address is what the policy judges) and an embedded dotted IPv4 tail. */
export function parseIpv6(text: string): IpAddress | null {
  const zone = text.indexOf('%');
  const bare = zone >= 0 ? text.slice(0, zone) : text;
  if (zone >= 0 && zone === text.length - 1) return null; // "%" with no zone after it
  if (!isIPv6(bare)) return null;
  const groups = (half: string): number[] => {
    if (half === '') return [];
    const out: number[] = [];
    for (const piece of half.split(':')) {
      if (piece.includes('.')) {
        // Only the strict dotted-quad is allowed here (isIPv6 checked it); reuse the IPv4 parser for the bytes.
        const v4 = parseIpv4(piece);
        if (!v4 || v4.family !== 4) return [];
        out.push((v4.bytes[0]! << 8) | v4.bytes[1]!, (v4.bytes[2]! << 8) | v4.bytes[3]!);
      } else {
        out.push(parseInt(piece, 16));
      }
    }
    return out;
  };
  const [head = '', tail] = bare.split('::') as [string, string | undefined];
  const front = groups(head);
  const back = tail === undefined ? [] : groups(tail);
  const missing = 8 - front.length - back.length;
  if (missing < 0 || (tail === undefined && missing !== 0)) return null;
  const all = [...front, ...new Array<number>(missing).fill(0), ...back];
  const bytes = new Uint8Array(16);
  all.forEach((g, i) => {
    bytes[i * 2] = g >> 8;
    bytes[i * 2 + 1] = g & 255;
  });
  return { family: 6, bytes };
}

/** Either family; IPv6 may come in brackets (`[::1]`, as in a URL or a CONNECT authority). */
export function parseIp(text: string): IpAddress | null {
  if (text.startsWith('[') && text.endsWith(']')) return parseIpv6(text.slice(1, -1));
  if (text.includes(':')) return parseIpv6(text);
  return parseIpv4(text);
}

// A DNS label: letters, digits, hyphen, and the underscore some real hosts carry; 1-63 characters.
const LABEL = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/;

/**
 * Reads a host string the way a browser and the resolver would: an address
 * in any notation, or a DNS name (lower-cased, one trailing dot dropped).
 * Anything else — a host that ends in a number but is no valid IPv4, empty
 * labels, spaces, non-ASCII (browsers send punycode) — is `invalid`.
 */
export function parseHost(text: string): ParsedHost {
  if (text.startsWith('[') || text.includes(':')) {
    const ip = parseIp(text);
    return ip ? { kind: 'ip', ip } : { kind: 'invalid' };
  }
  const host = text.toLowerCase();
  if (host === '' || host.length > 254) return { kind: 'invalid' };
  if (endsInNumber(host)) {
    const ip = parseIpv4(host);
    return ip ? { kind: 'ip', ip } : { kind: 'invalid' };
  }
  const name = host.endsWith('.') ? host.slice(0, -1) : host;
  if (name.length > 253 || !name.split('.').every((label) => LABEL.test(label))) return { kind: 'invalid' };
  return { kind: 'name', name };
}

/** The IPv4 address inside an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`), else the address itself. */
export function unmapIp(ip: IpAddress): IpAddress {
  if (ip.family === 6 && ip.bytes.subarray(0, 10).every((b) => b === 0) && ip.bytes[10] === 0xff && ip.bytes[11] === 0xff) {
    return { family: 4, bytes: ip.bytes.slice(12) };
  }
  return ip;
}

/** Canonical text: dotted-quad, or RFC 5952 IPv6 (lower-case, the first longest run of zero groups as `::`). */
export function formatIp(ip: IpAddress): string {
  if (ip.family === 4) return Array.from(ip.bytes).join('.');
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((ip.bytes[i]! << 8) | ip.bytes[i + 1]!);
  let bestStart = -1;
  let bestLength = 1; // a single zero group is never compressed
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}

/** Same family and same bytes (compare `unmapIp` of both to treat `::ffff:a.b.c.d` as `a.b.c.d`). */
export function ipEquals(a: IpAddress, b: IpAddress): boolean {
  return a.family === b.family && a.bytes.every((byte, i) => byte === b.bytes[i]);
}

/** Whether the address lies in the range (same family only). */
export function inCidr(ip: IpAddress, cidr: Cidr): boolean {
  if (ip.family !== cidr.base.family) return false;
  const whole = cidr.prefix >> 3;
  for (let i = 0; i < whole; i++) if (ip.bytes[i] !== cidr.base.bytes[i]) return false;
  const rest = cidr.prefix & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (ip.bytes[whole]! & mask) === (cidr.base.bytes[whole]! & mask);
}

/**
 * `a.b.c.d/n` or `ipv6/n`, strictly: dotted-quad or standard IPv6 base, a
 * decimal prefix within the family's width, and no bits set past the prefix
 * (`10.1.2.3/8` is refused as a likely typo rather than silently widened).
 */
export function parseCidr(text: string): Cidr | null {
  const slash = text.indexOf('/');
  if (slash < 0) return null;
  const baseText = text.slice(0, slash);
  const prefixText = text.slice(slash + 1);
  if (!/^[0-9]{1,3}$/.test(prefixText)) return null;
  const base = baseText.includes(':') ? parseIpv6(baseText) : /^\d{1,3}(\.\d{1,3}){3}$/.test(baseText) ? parseIpv4(baseText) : null;
  if (!base || baseText.includes('%')) return null;
  const prefix = Number(prefixText);
  if (prefix > (base.family === 4 ? 32 : 128)) return null;
  const cidr = { base, prefix };
  const zeroed = new Uint8Array(base.bytes.length);
  const whole = prefix >> 3;
  zeroed.set(base.bytes.subarray(0, whole));
  if (prefix & 7) zeroed[whole] = base.bytes[whole]! & ((0xff << (8 - (prefix & 7))) & 0xff);
  return ipEquals(base, { family: base.family, bytes: zeroed }) ? cidr : null;
}
