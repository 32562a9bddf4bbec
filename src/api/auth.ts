import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Db } from '../db/index.js';
import { ForbiddenError } from '../errors/index.js';
import { assertAllowed, authenticate, isAction, type Action, type Principal } from '../security/index.js';
import { RateLimiter, type RateLimitConfig } from './rate-limit.js';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal;
  }
  interface FastifyContextConfig {
    /** Route needs no API key (health, OpenAPI, signed webhook deliveries). */
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
 * Every route is authenticated unless it says `config: { public: true }`, and
 * every authenticated route must declare its action: a route without one (or
 * with an action not in the matrix) fails at startup, so a route added later
 * cannot slip through unguarded. Per request, in order: the key (401), the
 * key's rate (429), the role the action needs (403) — all before the body is
 * validated or anything is read, so a refused request touches no tenant data.
 * Returns the route table, filled as routes are registered.
 */
export function installAuth(app: FastifyInstance, db: Db, rateLimit: RateLimitConfig): RouteEntry[] {
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
  app.addHook('onRequest', async (req) => {
    const config = req.routeOptions.config;
    if (config.public || !req.routeOptions.url) return;
    req.principal = await authenticate(db, bearer(req));
    limiter.take(req.principal.apiKeyId);
    // Registration refused routes without a valid action; fail closed all the same.
    if (!isAction(config.action)) throw new ForbiddenError('this route declares no action', { path: req.routeOptions.url });
    assertAllowed(req.principal.role, config.action);
  });
  return routes;
}
