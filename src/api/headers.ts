import type { FastifyInstance } from 'fastify';

/**
 * Headers on every response, errors included. The API serves JSON only, so
 * the strictest policies cost nothing: nothing may be framed, sniffed,
 * cached, or load sub-resources; HSTS tells browsers to keep to HTTPS where
 * the service is behind TLS (browsers ignore it over plain HTTP).
 */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'x-content-type-options': 'nosniff',
  'cache-control': 'no-store',
  'x-frame-options': 'DENY',
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
  'referrer-policy': 'no-referrer',
  'strict-transport-security': 'max-age=31536000; includeSubDomains',
  'cross-origin-resource-policy': 'same-origin',
  'cross-origin-opener-policy': 'same-origin',
  'x-permitted-cross-domain-policies': 'none',
});

/**
 * The dashboard's pages may load their own scripts, styles and images and
 * call their own API — nothing else: no inline script or style, no eval, no
 * other origin (script-src 'self' keeps an injected <script> inert). Images
 * allow data: and blob: for screenshots drawn from API bytes.
 */
export const ATLAS_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; " +
  "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/** Assets are named by their content hash: cache them for a year, never revalidate. */
export const ASSET_CACHE = 'public, max-age=31536000, immutable';

export function installSecurityHeaders(app: FastifyInstance): void {
  app.addHook('onSend', async (req, reply) => {
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) reply.header(name, value);
    const atlas = req.routeOptions.config?.atlas;
    if (atlas) {
      reply.header('content-security-policy', ATLAS_CSP);
      if (atlas === 'asset' && reply.statusCode === 200) reply.header('cache-control', ASSET_CACHE);
    }
  });
}
