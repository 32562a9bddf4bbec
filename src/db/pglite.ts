import { PGlite, type Transaction } from '@electric-sql/pglite';
import { metrics } from '../metrics/index.js';
import { acquireDataDirLock } from './lockfile.js';
import { mapDbError } from './errors.js';
import type { Db, ListenOptions, Queryable, QueryOptions, QueryResult } from './types.js';

type PgliteLike = Pick<PGlite, 'query' | 'exec'> | Transaction;

async function run<R>(conn: PgliteLike, text: string, params?: readonly unknown[]): Promise<QueryResult<R>> {
  try {
    const res = await conn.query<R>(text, params as unknown[] | undefined);
    return { rows: res.rows, rowCount: res.affectedRows ?? res.rows.length };
  } catch (err) {
    throw mapDbError(err);
  }
}

/** A parameter as an SQL literal, or undefined when it is not a plain scalar (then the statement runs unprepared). */
function literal(value: unknown): string | undefined {
  if (value === null || value === undefined) return 'NULL';
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : undefined;
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  // standard_conforming_strings is on: only the quote needs doubling.
  if (typeof value === 'string') return value.includes('\u0000') ? undefined : `'${value.replaceAll("'", "''")}'`;
  return undefined;
}

const STATEMENT_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

export interface PgliteOptions {
  /** Persist under this directory (locked for this process); omit for an in-memory database. */
  dataDir?: string;
  /** Start from a dumped data directory (test template). */
  loadDataDir?: Blob | File;
}

/**
 * Embedded PGlite adapter. PGlite is a single connection: every query and
 * transaction is serialised through one promise chain, so a transaction
 * never interleaves with another caller's statements. Uses PGlite's own API
 * (not pg.Pool over its shim, which broke after one failed query here).
 */
export class PgliteDb implements Db {
  readonly backend = 'pglite' as const;
  private tail: Promise<unknown> = Promise.resolve();
  private closed = false;
  /** Statements prepared on the one connection (SQL PREPARE), by name: their text. */
  private readonly prepared = new Map<string, string>();

  private constructor(
    private readonly pg: PGlite,
    private readonly releaseLock: () => void,
  ) {}

  static async open(options: PgliteOptions = {}): Promise<PgliteDb> {
    const release = options.dataDir ? acquireDataDirLock(options.dataDir) : () => undefined;
    try {
      const pg = new PGlite({
        ...(options.dataDir ? { dataDir: options.dataDir } : {}),
        ...(options.loadDataDir ? { loadDataDir: options.loadDataDir } : {}),
      });
      await pg.waitReady;
      return new PgliteDb(pg, release);
    } catch (err) {
      release();
      throw mapDbError(err);
    }
  }

  /**
   * Queue `fn` behind everything already submitted. How long it waited for
   * the connection goes to the metrics: with one connection shared by API,
   * workers and maintenance, that wait is where PGlite's load shows.
   */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const queued = performance.now();
    const start = () => {
      metrics.observePgliteQueueWait((performance.now() - queued) / 1000);
      return fn();
    };
    const next = this.tail.then(start, start);
    this.tail = next.catch(() => undefined);
    return next;
  }

  query<R = Record<string, unknown>>(text: string, params?: readonly unknown[], options?: QueryOptions): Promise<QueryResult<R>> {
    const literals = options?.name && STATEMENT_NAME.test(options.name) ? (params ?? []).map(literal) : undefined;
    if (literals && literals.every((l): l is string => l !== undefined)) {
      return this.serial(() => this.runPrepared<R>(options!.name!, text, literals));
    }
    return this.serial(() => run<R>(this.pg, text, params));
  }

  /**
   * A named statement (QueryOptions.name): PGlite offers no protocol-level
   * prepared statements, so it is prepared once with SQL PREPARE on the one
   * connection and run with EXECUTE, its parameters as literals (plain
   * scalars only). The claim planned on every call cost 1.5–3 ms more than
   * the statement before it here (16–18 ms a claim of 500); prepared, the
   * same as before (14–16 ms).
   */
  private async runPrepared<R>(name: string, text: string, literals: readonly string[]): Promise<QueryResult<R>> {
    const known = this.prepared.get(name);
    if (known !== text) {
      if (known !== undefined) await run(this.pg, `DEALLOCATE ${name}`);
      this.prepared.delete(name);
      await run(this.pg, `PREPARE ${name} AS ${text}`);
      this.prepared.set(name, text);
    }
    return run<R>(this.pg, `EXECUTE ${name}(${literals.join(', ')})`);
  }

  exec(sql: string): Promise<void> {
    return this.serial(async () => {
      try {
        await this.pg.exec(sql);
      } catch (err) {
        throw mapDbError(err);
      }
    });
  }

  /** In-process LISTENs per channel (`listen` adds one, its unlisten removes it). */
  private readonly listeners = new Map<string, number>();

  /** Every listener of this database is in this process: nobody else can receive a NOTIFY. */
  listening(channel: string): boolean {
    return (this.listeners.get(channel) ?? 0) > 0;
  }

  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    return this.serial(async () => {
      try {
        return await this.pg.transaction(async (tx) =>
          fn({
            listening: (channel) => this.listening(channel),
            query: (text, params) => run(tx, text, params),
            exec: async (sql) => {
              try {
                await tx.exec(sql);
              } catch (err) {
                throw mapDbError(err);
              }
            },
          }),
        );
      } catch (err) {
        throw mapDbError(err);
      }
    });
  }

  /**
   * The one connection, outside a transaction, held for `fn` alone: other
   * callers queue behind it as they do behind a transaction. Session state
   * `fn` sets is shared with everything after it, so `fn` must undo it.
   */
  session<T>(fn: (conn: Queryable) => Promise<T>): Promise<T> {
    return this.serial(() =>
      fn({
        listening: (channel) => this.listening(channel),
        query: (text, params) => run(this.pg, text, params),
        exec: async (sql) => {
          try {
            await this.pg.exec(sql);
          } catch (err) {
            throw mapDbError(err);
          }
        },
      }),
    );
  }

  /**
   * Delivered in-process: PGlite's listen sees NOTIFYs committed on this
   * same instance. There is no connection to lose, so `onReconnect` is
   * accepted and never called.
   */
  async listen(channel: string, onNotify: (payload: string) => void, _options?: ListenOptions): Promise<() => Promise<void>> {
    const unlisten = await this.serial(() => this.pg.listen(channel, onNotify));
    this.listeners.set(channel, (this.listeners.get(channel) ?? 0) + 1);
    let done = false;
    return () => {
      if (!done) {
        done = true;
        this.listeners.set(channel, (this.listeners.get(channel) ?? 1) - 1);
      }
      return this.serial(() => unlisten());
    };
  }

  /** Snapshot of the data directory (tar), for backups and test templates. */
  dumpDataDir(): Promise<File | Blob> {
    return this.serial(() => this.pg.dumpDataDir('none'));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.serial(() => this.pg.close());
    } finally {
      this.releaseLock();
    }
  }
}
