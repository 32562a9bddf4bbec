import { ValidationError } from '../errors/index.js';
import { canonicalHost } from '../net/address-policy.js';

/**
 * A browser step's allowed origins as the egress proxy checks them: each
 * origin grants one host and port. The scheme only decides the default port:
 * Chromium tunnels https, wss and also ws through CONNECT host:port, so the
 * proxy never learns the scheme of a tunnel — and a tunnel to a host:port
 * reaches the same server whatever it speaks, so the host:port is what an
 * origin really grants.
 */

/** One host:port an allowed origin grants. */
export interface OriginGrant {
  /** Canonical host: lower-cased name, or the address in canonical notation. */
  readonly host: string;
  readonly port: number;
  /** The origin as written, for messages. */
  readonly origin: string;
}

const DEFAULT_PORTS: Record<string, number> = { 'http:': 80, 'https:': 443, 'ws:': 80, 'wss:': 443 };

/**
 * Parses allowed origins (`https://portal.example.com`, `http://127.0.0.1:8123`).
 * An entry with a path, query, credentials, another scheme or an invalid
 * host throws a ValidationError naming it.
 */
export function parseAllowOrigins(origins: readonly string[]): OriginGrant[] {
  return origins.map((origin) => {
    const bad = (why: string): ValidationError =>
      new ValidationError(`allowed origin "${origin}" ${why}`, { path: 'allowOrigins', origin });
    let url: URL;
    try {
      url = new URL(origin);
    } catch {
      throw bad('is not a URL');
    }
    const defaultPort = DEFAULT_PORTS[url.protocol];
    if (defaultPort === undefined) throw bad('must be http, https, ws or wss');
    if (url.username || url.password) throw bad('must not carry credentials');
    if ((url.pathname !== '/' && url.pathname !== '') || url.search || url.hash) throw bad('must be an origin only (no path, query or fragment)');
    const host = canonicalHost(url.hostname);
    if (host === null) throw bad('has no valid host');
    return { host, port: url.port ? Number(url.port) : defaultPort, origin };
  });
}

/** Whether any grant covers this host (as asked; canonicalised here) and port. */
export function originAllows(grants: readonly OriginGrant[], host: string, port: number): boolean {
  const canonical = canonicalHost(host);
  return canonical !== null && grants.some((g) => g.host === canonical && g.port === port);
}
