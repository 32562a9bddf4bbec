import { AsyncLocalStorage } from 'node:async_hooks';
import type { Db, ListenOptions, Queryable, QueryOptions, QueryResult } from './types.js';

/**
 * Row-level security plumbing (migration 0010). Tenant-scoped work runs in a
 * transaction whose first statement switches to the NOLOGIN role
 * `stepwise_tenant` and names the organization, both transaction-local; the
 * RLS policies then admit only that organization's rows, whatever the SQL
 * after it says. One extra statement per request, not per query.
 */
export const TENANT_ROLE = 'stepwise_tenant';

const ENTER_TENANT_SQL =
  "SELECT set_config('role', 'stepwise_tenant', true), set_config('stepwise.organization_id', $1, true)";

/** Make `tx` (an open transaction) tenant-scoped to `organizationId` until it ends. */
export async function enterTenant(tx: Queryable, organizationId: string): Promise<void> {
  await tx.query(ENTER_TENANT_SQL, [organizationId]);
}

/** Run `fn` in one transaction as `organizationId`'s tenant: RLS admits nothing else. */
export function withTenant<T>(db: Db, organizationId: string, fn: (tx: Queryable) => Promise<T>): Promise<T> {
  return db.transaction(async (tx) => {
    await enterTenant(tx, organizationId);
    return fn(tx);
  });
}

/** A transaction held open across awaits that are not nested inside one callback (an HTTP request). */
export interface OpenTransaction {
  readonly tx: Queryable;
  commit(): Promise<void>;
  rollback(): Promise<void>;
}

class Rollback extends Error {}

/**
 * Open a tenant transaction that stays open until `commit` or `rollback`.
 * Built on `Db.transaction`, so it works on both adapters: on PGlite it
 * holds the single connection's queue (other callers wait), on the server a
 * pooled client.
 */
export async function openTenantTransaction(db: Db, organizationId: string): Promise<OpenTransaction> {
  let settle!: (commit: boolean) => void;
  const decided = new Promise<boolean>((resolve) => (settle = resolve));
  let ready!: (tx: Queryable) => void;
  let failed!: (err: unknown) => void;
  const started = new Promise<Queryable>((resolve, reject) => {
    ready = resolve;
    failed = reject;
  });
  const done = db
    .transaction(async (tx) => {
      await enterTenant(tx, organizationId);
      ready(tx);
      if (!(await decided)) throw new Rollback();
    })
    .then(
      () => undefined,
      (err: unknown) => {
        failed(err); // no-op once started
        return err instanceof Rollback ? undefined : err;
      },
    );
  const tx = await started;
  let ended = false;
  const end = async (commit: boolean): Promise<void> => {
    if (ended) return;
    ended = true;
    settle(commit);
    const err = await done;
    if (err !== undefined) throw err;
  };
  return { tx, commit: () => end(true), rollback: () => end(false).catch(() => undefined) };
}

/**
 * A Db whose queries go to the transaction of the current async context when
 * there is one (`runIn`), and to the wrapped Db otherwise. The API hands it to
 * every route, so route and store code stays `db.query(…)` while running
 * inside the request's tenant transaction. A nested `transaction()` becomes
 * a savepoint, so a caught failure inside it (an idempotency race answered
 * with the winner's row) leaves the request's transaction usable.
 */
export class ContextDb implements Db {
  private readonly current = new AsyncLocalStorage<Queryable>();
  private savepoints = 0;

  constructor(readonly base: Db) {}

  get backend(): Db['backend'] {
    return this.base.backend;
  }

  /** Run `fn` with every query of this Db going to `tx`. */
  runIn<T>(tx: Queryable, fn: () => T): T {
    return this.current.run(tx, fn);
  }

  /** The transaction of the current context, if any. */
  get scope(): Queryable | undefined {
    return this.current.getStore();
  }

  query<R = Record<string, unknown>>(text: string, params?: readonly unknown[], options?: QueryOptions): Promise<QueryResult<R>> {
    return (this.current.getStore() ?? this.base).query<R>(text, params, options);
  }

  exec(sql: string): Promise<void> {
    return (this.current.getStore() ?? this.base).exec(sql);
  }

  async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    const tx = this.current.getStore();
    if (!tx) return this.base.transaction(fn);
    const name = `sw_sp_${++this.savepoints}`;
    await tx.query(`SAVEPOINT ${name}`);
    try {
      const result = await fn(tx);
      await tx.query(`RELEASE SAVEPOINT ${name}`);
      return result;
    } catch (err) {
      await tx.query(`ROLLBACK TO SAVEPOINT ${name}`);
      throw err;
    }
  }

  /**
   * A dedicated connection of the wrapped Db, never the context's
   * transaction: a session is by definition outside any transaction.
   */
  session<T>(fn: (conn: Queryable) => Promise<T>): Promise<T> {
    return this.base.session(fn);
  }

  listen(channel: string, onNotify: (payload: string) => void, options?: ListenOptions): Promise<() => Promise<void>> {
    return this.base.listen(channel, onNotify, options);
  }

  close(): Promise<void> {
    return this.base.close();
  }
}
