import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';

/**
 * HTTP details of the egress proxy: which headers never cross it, reading a
 * Basic Proxy-Authorization, and plain responses on a raw socket (CONNECT
 * and upgrade requests leave Node's HTTP server with the bare socket).
 */

// Hop-by-hop headers (RFC 9110 §7.6.1) and the proxy's own: they concern the
// client-to-proxy hop only, and Proxy-Authorization carries the context's credential.
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

function dropped(name: string, connectionTokens: ReadonlySet<string>): boolean {
  const lower = name.toLowerCase();
  return HOP_BY_HOP.has(lower) || lower.startsWith('proxy-') || connectionTokens.has(lower);
}

function connectionTokens(rawHeaders: readonly string[]): Set<string> {
  const tokens = new Set<string>();
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (rawHeaders[i]!.toLowerCase() !== 'connection') continue;
    for (const token of rawHeaders[i + 1]!.split(',')) tokens.add(token.trim().toLowerCase());
  }
  return tokens;
}

/**
 * Headers to pass on (flat name/value list, as Node's rawHeaders), without
 * hop-by-hop and Proxy-* headers nor those the Connection header names.
 * `replace` sets headers afresh (Host, Connection, Upgrade).
 */
export function forwardableHeaders(rawHeaders: readonly string[], replace: Record<string, string> = {}): string[] {
  const tokens = connectionTokens(rawHeaders);
  const replaced = new Set(Object.keys(replace).map((k) => k.toLowerCase()));
  const out: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    if (dropped(name, tokens) || replaced.has(name.toLowerCase())) continue;
    out.push(name, rawHeaders[i + 1]!);
  }
  for (const [name, value] of Object.entries(replace)) out.push(name, value);
  return out;
}

/** The user name and password of a `Basic` Proxy-Authorization header, or null. */
export function basicCredentials(header: string | undefined): { username: string; password: string } | null {
  const match = header === undefined ? null : /^Basic\s+([A-Za-z0-9+/]+={0,2})\s*$/i.exec(header);
  if (!match) return null;
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return null;
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/**
 * Set (`x-stepwise-egress: denied`) on every answer the proxy gives instead
 * of a request it refused, so the runtime can tell its 403 page from the
 * site's own (browser/navigation.ts reads it as EGRESS_DENIED).
 */
export const EGRESS_DENIED_HEADER = { name: 'X-Stepwise-Egress', value: 'denied' } as const;

/** The realm of the proxy's 407 challenge (Chromium answers it with the context's credential, through Playwright). */
export const PROXY_AUTHENTICATE = 'Basic realm="stepwise-egress", charset="UTF-8"';

/** Writes a complete plain-text response on a raw socket and closes it. */
export function endWithStatus(socket: Duplex, status: number, message: string, extraHeaders: Record<string, string> = {}): void {
  if (socket.destroyed || !socket.writable) {
    socket.destroy();
    return;
  }
  const body = Buffer.from(`${message}\n`, 'utf8');
  const headers = {
    ...extraHeaders,
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': String(body.length),
    Connection: 'close',
  };
  const head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n${Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('')}\r\n`;
  socket.end(Buffer.concat([Buffer.from(head, 'latin1'), body]));
}
