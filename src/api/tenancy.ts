import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ReadReplica } from '../db/replica.js';
import { openTenantTransaction, type ContextDb, type OpenTransaction } from '../db/tenant.js';
import { DatabaseUnavailableError } from '../db/errors.js';
import { DatabaseError, NotFoundError } from '../errors/index.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The request's tenant transaction (authenticated routes only), until its response is sent. */
    tenantTx: OpenTransaction | null;
    /** Which server the request's tenant transaction is on: 'replica' only while a replica-eligible read runs there. */
    readsFrom: ReadTarget;
  }
  interface FastifyContextConfig {
    /**
     * A long-lived response (server-sent events): the handler runs its checks
     * in a short tenant transaction and returns a `StreamStart`, called once
     * that transaction has committed, outside it.
     */
    streaming?: boolean;
    /**
     * 'replica': a read that may be answered from the read replica, up to
     * its lag bound stale. Only for routes that write nothing and whose
     * caller does not expect to see its own write of a moment ago; a handler
     * that finds the replica may be stale for what it reads calls
     * `requirePrimary`.
     */
    reads?: 'replica';
  }
}

/** What a streaming route's handler returns: starts the response (reply.hijack()) with no transaction held. */
export type StreamStart = () => Promise<void>;

export type ReadTarget = 'primary' | 'replica';

/**
 * A handler's signal that what it read on the replica may be stale for its
 * purpose (a job still running: its newest stream rows may not have reached
 * the replica). The request runs again on the primary; nothing was changed,
 * the replica's transaction being read-only.
 */
export class PrimaryRequired extends Error {
  constructor(readonly reason: string) {
    super(`read needs the primary: ${reason}`);
    this.name = 'PrimaryRequired';
  }
}

/** In a handler: continue only on the primary (throws PrimaryRequired while on the replica, else nothing). */
export function requirePrimary(req: FastifyRequest, reason: string): void {
  if (req.readsFrom === 'replica') throw new PrimaryRequired(reason);
}

/** Where a request's transaction opens: the replica only for a route that opted in while a replica is usable. */
export function initialReadTarget(reads: 'replica' | undefined, replica: Pick<ReadReplica, 'usable'> | undefined): ReadTarget {
  return reads === 'replica' && replica !== undefined && replica.usable() ? 'replica' : 'primary';
}

/**
 * Whether a failure on the replica is answered by running the request again
 * on the primary rather than by an error response:
 * - PrimaryRequired: the handler asked for it;
 * - NotFoundError: the object may be younger than the replica's copy of the
 *   data (a workflow or job created a second ago), so only the primary may say
 *   it does not exist; a true 404 costs one more lookup;
 * - DatabaseError: not the caller's fault, and on a replica mostly the
 *   replica's own — a write it refused (SQLSTATE 25006, ReadOnlyTransactionError:
 *   a PHI read's audit row), a query cancelled by a conflict with replay
 *   (40001). Any other database error simply fails again on the primary;
 * - DatabaseUnavailableError: the replica refused or lost the connection, is
 *   shutting down or restarting, or gave no connection within its bound.
 *   Should the primary be down too, it answers the 503 itself.
 * Everything else (validation, permission, a statement past its time budget)
 * would be the same answer on the primary and is answered as is.
 */
export function retriesOnPrimary(err: unknown): boolean {
  return err instanceof PrimaryRequired || err instanceof NotFoundError || err instanceof DatabaseError || err instanceof DatabaseUnavailableError;
}

/**
 * Row-level security for the API: every authenticated route's handler runs
 * inside one transaction that is the caller's organization's tenant
 * (db/tenant.ts), and `db` — the ContextDb every route was given — sends the
 * handler's queries there. Even a query that forgot its organization filter
 * sees only the caller's rows.
 *
 * The transaction ends in onSend, before a byte of the response leaves: a
 * success commits (a commit failure becomes a 5xx, never a 2xx for work that
 * may not have been kept: a 503 when the connection broke around the COMMIT,
 * whose outcome is then unknown, so a client retries a start with the same
 * idempotency key), an error status rolls back, so a refused request changes
 * nothing. Public routes (health, webhook deliveries) and authentication
 * itself run outside it, as the service.
 *
 * With a read replica, a route declaring `config: { reads: 'replica' }` opens
 * its tenant transaction on the replica while the replica is usable (db/replica.ts),
 * and runs again on the primary when that attempt fails in a way the primary
 * may not (retriesOnPrimary). Both outcomes are counted on the replica.
 *
 * Registered before any route: it wraps handlers as routes are added.
 */
export function installTenantScope(app: FastifyInstance, db: ContextDb, replica?: ReadReplica): void {
  app.decorateRequest('tenantTx', null);
  app.decorateRequest('readsFrom', 'primary');
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
    const eligible = route.config?.reads === 'replica' && replica !== undefined;
    route.handler = async function tenantScoped(req, reply) {
      if (initialReadTarget(route.config?.reads, replica) === 'replica') {
        let open: OpenTransaction | undefined;
        try {
          open = await openTenantTransaction(replica!.db, req.principal.organizationId);
          req.tenantTx = open;
          req.readsFrom = 'replica';
          const result: unknown = await db.runIn(open.tx, () => handler.call(this, req, reply));
          replica!.countRead('replica');
          return result;
        } catch (err) {
          // Not ours to retry: onSend rolls the replica transaction back with the error response.
          if (!retriesOnPrimary(err)) throw err;
          req.tenantTx = null;
          req.readsFrom = 'primary';
          await open?.rollback();
        }
      }
      const open = await openTenantTransaction(db.base, req.principal.organizationId);
      req.tenantTx = open;
      if (eligible) replica!.countRead('primary');
      return db.runIn(open.tx, () => handler.call(this, req, reply));
    };
  });
  app.addHook('onSend', async (req, reply, payload) => {
    const open = req.tenantTx;
    if (!open) return payload;
    req.tenantTx = null;
    if (reply.statusCode >= 400) await open.rollback();
    // A replica transaction is read-only: its answer is complete once read, and a
    // replica lost before COMMIT loses nothing, so that failure is no 500.
    else if (req.readsFrom === 'replica') await open.commit().catch(() => undefined);
    else await open.commit();
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
