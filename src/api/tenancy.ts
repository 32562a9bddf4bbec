import type { FastifyInstance } from 'fastify';
import { openTenantTransaction, type ContextDb, type OpenTransaction } from '../db/tenant.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The request's tenant transaction (authenticated routes only), until its response is sent. */
    tenantTx: OpenTransaction | null;
  }
  interface FastifyContextConfig {
    /**
     * A long-lived response (server-sent events): the handler runs its checks
     * in a short tenant transaction and returns a `StreamStart`, called once
     * that transaction has committed, outside it.
     */
    streaming?: boolean;
  }
}

/** What a streaming route's handler returns: starts the response (reply.hijack()) with no transaction held. */
export type StreamStart = () => Promise<void>;

/**
 * Row-level security for the API: every authenticated route's handler runs
 * inside one transaction that is the caller's organization's tenant
 * (db/tenant.ts), and `db` — the ContextDb every route was given — sends the
 * handler's queries there. Even a query that forgot its organization filter
 * sees only the caller's rows.
 *
 * The transaction ends in onSend, before a byte of the response leaves: a
 * success commits (a commit failure becomes a 500, never a 2xx for work that
 * was not kept), an error status rolls back, so a refused request changes
 * nothing. Public routes (health, webhook deliveries) and authentication
 * itself run outside it, as the service.
 *
 * Registered before any route: it wraps handlers as routes are added.
 */
export function installTenantScope(app: FastifyInstance, db: ContextDb): void {
  app.decorateRequest('tenantTx', null);
  app.addHook('onRoute', (route) => {
    if (route.config?.public) return;
    const handler = route.handler;
    if (route.config?.streaming) {
      // Its response may last hours: it must hold neither a transaction nor a
      // connection. Checks (the object exists for this tenant → else 404) run
      // in a tenant transaction that commits before the stream starts; later
      // reads name the organization explicitly (api/live/).
      route.handler = async function tenantChecked(req, reply) {
        const open = await openTenantTransaction(db.base, req.principal.organizationId);
        let start: unknown;
        try {
          start = await db.runIn(open.tx, () => handler.call(this, req, reply));
        } catch (err) {
          await open.rollback();
          throw err;
        }
        await open.commit();
        if (typeof start !== 'function') throw new Error(`streaming route ${route.url} returned no StreamStart`);
        return (start as StreamStart)();
      };
      return;
    }
    route.handler = async function tenantScoped(req, reply) {
      const open = await openTenantTransaction(db.base, req.principal.organizationId);
      req.tenantTx = open;
      return db.runIn(open.tx, () => handler.call(this, req, reply));
    };
  });
  app.addHook('onSend', async (req, reply, payload) => {
    const open = req.tenantTx;
    if (!open) return payload;
    req.tenantTx = null;
    if (reply.statusCode < 400) await open.commit();
    else await open.rollback();
    return payload;
  });
  // A request that ended without a response being sent (client gone) must not hold its transaction.
  const release = async (req: { tenantTx: OpenTransaction | null }) => {
    const open = req.tenantTx;
    req.tenantTx = null;
    if (open) await open.rollback();
  };
  app.addHook('onResponse', release);
  app.addHook('onRequestAbort', release);
}
