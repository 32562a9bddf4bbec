import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Db } from '../db/index.js';
import { ForbiddenError } from '../errors/index.js';
import { assertAllowed, authenticate, DEFAULT_SESSION_LIMITS, isAction, resolveSession, type Action, type Principal, type SessionLimits } from '../security/index.js';
import { RateLimiter, type RateLimitConfig } from './rate-limit.js';
import { assertSameOrigin } from './same-origin.js';
import { clearSessionCookie, readSessionCookie } from './session-cookie.js';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal;
    /**
     * Authenticate this request's credentials again, now: a long-lived response
     * (server-sent events) checks that its key or session still stands. Does
     * not count as use of a session (no idle extension). Rejects when not.
     */
    recheckPrincipal: () => Promise<Principal>;
  }
  interface FastifyContextConfig {
    /** Route needs no API key or session (health, OpenAPI, signed webhook deliveries, sign-in). */
    public?: boolean;
    /** What the route does, from the permission matrix (security/permissions.ts); required unless public. */
    action?: Action;
  }
}

/** A route as the app registered it: what the hostile-request suite and `stepwise permissions` enumerate. */
export interface RouteEntry {
  method: string;
  url: string;
  public: boolean;
  action: Action | null;
}

function bearer(req: FastifyRequest): string | undefined {
  const header = req.headers.authorization;
  if (!header) return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return m?.[1];
}

/**
 * A request carries a Bearer key or the dashboard's session cookie. Any
 * Authorization header decides alone (a Bearer request is unaffected by a
 * cookie beside it; a malformed header is 401 as before). A cookie request
 * must name a live session (a dead one is cleared in the 401), and if it
 * changes anything it must come from our own origin (api/same-origin.ts).
 */
async function authenticateRequest(db: Db, req: FastifyRequest, reply: FastifyReply, limits: SessionLimits): Promise<Principal> {
  const token = bearer(req);
  if (token !== undefined || req.headers.authorization !== undefined) return authenticate(db, token);
  const cookie = readSessionCookie(req);
  if (cookie === undefined) return authenticate(db, undefined);
  let principal: Principal;
  try {
    ({ principal } = await resolveSession(db, cookie, limits));
  } catch (err) {
    clearSessionCookie(req, reply);
    throw err;
  }
  assertSameOrigin(req);
  return principal;
}

/** The same credentials as authenticateRequest, checked again without touching the session. */
async function recheckRequest(db: Db, req: FastifyRequest, limits: SessionLimits): Promise<Principal> {
  const token = bearer(req);
  if (token !== undefined || req.headers.authorization !== undefined) return authenticate(db, token);
  const cookie = readSessionCookie(req);
  if (cookie === undefined) return authenticate(db, undefined);
  return (await resolveSession(db, cookie, limits, { touch: false })).principal;
}

/**
 * Every route is authenticated unless it says `config: { public: true }`, and
 * every authenticated route must declare its action: a route without one (or
 * with an action not in the matrix) fails at startup, so a route added later
 * cannot slip through unguarded. Per request, in order: the key (401), the
 * key's rate (429), the role the action needs (403) — all before the body is
 * validated or anything is read, so a refused request touches no tenant data.
 * Returns the route table, filled as routes are registered.
 */
export function installAuth(app: FastifyInstance, db: Db, rateLimit: RateLimitConfig, sessionLimits: SessionLimits = DEFAULT_SESSION_LIMITS): RouteEntry[] {
  const routes: RouteEntry[] = [];
  const limiter = new RateLimiter(rateLimit);
  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    const isPublic = route.config?.public === true;
    const declared: unknown = route.config?.action;
    const action = isAction(declared) ? declared : null;
    if (!isPublic && action === null) {
      throw new Error(
        `route ${methods.join(',')} ${route.url} declares no known action: add config: { action: '<action>' } ` +
          `from src/security/permissions.ts, or config: { public: true }`,
      );
    }
    for (const method of methods) {
      // Fastify adds a HEAD twin of every GET; it is the same route.
      if (method === 'HEAD') continue;
      routes.push({ method, url: route.url, public: isPublic, action: isPublic ? null : action });
    }
  });
  app.decorateRequest('principal', null as unknown as Principal);
  app.decorateRequest('recheckPrincipal', null as unknown as () => Promise<Principal>);
  app.addHook('onRequest', async (req, reply) => {
    const config = req.routeOptions.config;
    if (config.public || !req.routeOptions.url) return;
    req.principal = await authenticateRequest(db, req, reply, sessionLimits);
    req.recheckPrincipal = () => recheckRequest(db, req, sessionLimits);
    // A password session has no key: its user's bucket (a key session shares its key's).
    limiter.take(req.principal.apiKeyId ?? `session:${req.principal.userId}`);
    // Registration refused routes without a valid action; fail closed all the same.
    if (!isAction(config.action)) throw new ForbiddenError('this route declares no action', { path: req.routeOptions.url });
    assertAllowed(req.principal.role, config.action);
  });
  return routes;
}
