import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Db } from '../db/index.js';
import { authenticate, type Principal } from '../security/index.js';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal;
  }
  interface FastifyContextConfig {
    /** Route needs no API key (health, OpenAPI). */
    public?: boolean;
  }
}

function bearer(req: FastifyRequest): string | undefined {
  const header = req.headers.authorization;
  if (!header) return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return m?.[1];
}

/** Every route is authenticated unless it says `config: { public: true }`; the key names the organization. */
export function installAuth(app: FastifyInstance, db: Db): void {
  app.decorateRequest('principal', null as unknown as Principal);
  app.addHook('onRequest', async (req) => {
    if (req.routeOptions.config.public || !req.routeOptions.url) return;
    req.principal = await authenticate(db, bearer(req));
  });
}
