import type { FastifyRequest } from 'fastify';
import { CrossOriginRequestError } from '../errors/index.js';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** The origin this request was addressed to (scheme, host, port normalised as browsers write Origin). */
function ownOrigin(req: FastifyRequest): string | null {
  try {
    return new URL(`${req.protocol}://${req.host}`).origin;
  } catch {
    return null;
  }
}

/**
 * A browser attaches the session cookie to whatever request it makes to us,
 * so a state-changing request authenticated by the cookie must prove it
 * came from our own pages (SameSite=Strict is the first wall; this is the
 * second, and it also covers same-site siblings SameSite admits). `Origin`,
 * which browsers send with every non-GET fetch, must be our origin; without
 * it, `Sec-Fetch-Site` must say same-origin or none (typed by the user).
 * With neither, the request is refused: a browser always sends one of them,
 * and a script that holds a cookie instead of a key can send Origin.
 */
export function assertSameOrigin(req: FastifyRequest): void {
  if (SAFE_METHODS.has(req.method)) return;
  const origin = req.headers.origin;
  if (typeof origin === 'string') {
    let presented: string | null = null;
    try {
      presented = origin === 'null' ? null : new URL(origin).origin;
    } catch {
      presented = null;
    }
    const own = ownOrigin(req);
    if (presented !== null && own !== null && presented === own) return;
    throw new CrossOriginRequestError(`this request came from ${origin}, not from ${own ?? 'this server'}: a signed-in browser session accepts changes only from its own pages`, {
      path: '/headers/origin',
      origin,
    });
  }
  const site = req.headers['sec-fetch-site'];
  if (site === 'same-origin' || site === 'none') return;
  throw new CrossOriginRequestError(
    site === undefined
      ? 'a signed-in browser session accepts changes only with an Origin or Sec-Fetch-Site header naming its own origin'
      : `this request came from a ${String(site)} page: a signed-in browser session accepts changes only from its own pages`,
    { path: site === undefined ? '/headers/origin' : '/headers/sec-fetch-site', ...(site === undefined ? {} : { secFetchSite: site }) },
  );
}
