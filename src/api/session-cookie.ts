import type { FastifyReply, FastifyRequest } from 'fastify';

/**
 * The dashboard's session cookie. Over HTTPS it is `__Host-stepwise_session`
 * with Secure: the prefix makes browsers refuse it unless it was set over
 * HTTPS, for Path=/, with no Domain — so neither a plain-HTTP response nor a
 * sibling subdomain can plant or overwrite it. Over HTTP (the embedded
 * default on 127.0.0.1) it is `stepwise_session`. Both are HttpOnly (no
 * script reads it) and SameSite=Strict (no other site's page makes the
 * browser send it). Whether the request came over HTTPS is Fastify's
 * `req.protocol`: the socket, or X-Forwarded-Proto only when the app was
 * built with `trustProxy`.
 */
export const SESSION_COOKIE = 'stepwise_session';
export const SECURE_SESSION_COOKIE = `__Host-${SESSION_COOKIE}`;

/** Cookie values we hand out are base64url; anything else in the header is ignored, never decoded. */
const VALUE_RE = /^[A-Za-z0-9_-]{1,200}$/;

/**
 * Parse a Cookie header (RFC 6265 §5.4: `name=value` pairs separated by `;`).
 * The first pair of a name wins, as browsers send the most specific cookie
 * first. Quoted values are unquoted; nothing is percent-decoded (our values
 * never need it).
 */
export function parseCookies(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  if (!header) return out;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const name = part.slice(0, eq).trim();
    let value = part.slice(eq + 1).trim();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    if (name && !out.has(name)) out.set(name, value);
  }
  return out;
}

function isHttps(req: FastifyRequest): boolean {
  return req.protocol === 'https';
}

export function sessionCookieName(req: FastifyRequest): string {
  return isHttps(req) ? SECURE_SESSION_COOKIE : SESSION_COOKIE;
}

/** The session cookie's value on this request, if it carries a well-formed one. */
export function readSessionCookie(req: FastifyRequest): string | undefined {
  const header = req.headers.cookie;
  const value = parseCookies(Array.isArray(header) ? header.join('; ') : header).get(sessionCookieName(req));
  return value !== undefined && VALUE_RE.test(value) ? value : undefined;
}

/** A Set-Cookie value; `maxAgeSeconds` 0 clears the cookie. */
export function serializeSessionCookie(name: string, value: string, opts: { secure: boolean; maxAgeSeconds: number }): string {
  const parts = [`${name}=${value}`, 'Path=/', 'HttpOnly', 'SameSite=Strict', `Max-Age=${Math.max(0, Math.floor(opts.maxAgeSeconds))}`];
  if (opts.secure) parts.push('Secure');
  return parts.join('; ');
}

/** Set the session cookie, living until the session's absolute end. */
export function setSessionCookie(req: FastifyRequest, reply: FastifyReply, token: string, expiresAt: Date): void {
  const maxAgeSeconds = (expiresAt.getTime() - Date.now()) / 1000;
  reply.header('set-cookie', serializeSessionCookie(sessionCookieName(req), token, { secure: isHttps(req), maxAgeSeconds }));
}

/** Tell the browser to drop the session cookie. */
export function clearSessionCookie(req: FastifyRequest, reply: FastifyReply): void {
  reply.header('set-cookie', serializeSessionCookie(sessionCookieName(req), '', { secure: isHttps(req), maxAgeSeconds: 0 }));
}
