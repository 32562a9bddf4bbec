import type { Db, Queryable } from '../db/index.js';

/** An index and its size on disk. */
export interface IndexSize {
  name: string;
  bytes: number;
}

/** The indexes of a stepwise table (valid ones only) with their sizes. */
export async function listTableIndexes(db: Queryable, table: string): Promise<IndexSize[]> {
  const { rows } = await db.query<{ name: string; bytes: string }>(
    `SELECT c.relname AS name, pg_relation_size(c.oid)::text AS bytes
       FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
      WHERE i.indrelid = ('stepwise.' || $1)::regclass AND i.indisvalid
      ORDER BY c.relname`,
    [table],
  );
  return rows.map((r) => ({ name: r.name, bytes: Number(r.bytes) }));
}

/**
 * Drop what an interrupted REINDEX CONCURRENTLY left behind: an invalid
 * copy named <index>_ccnew (or _ccnewN). It is never used by a query but
 * every insert still maintains it.
 */
export async function dropInvalidIndexCopies(db: Queryable, table: string): Promise<string[]> {
  const { rows } = await db.query<{ name: string }>(
    `SELECT c.relname AS name
       FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
      WHERE i.indrelid = ('stepwise.' || $1)::regclass AND NOT i.indisvalid AND c.relname ~ '_ccnew[0-9]*$'`,
    [table],
  );
  for (const r of rows) await db.exec(`DROP INDEX IF EXISTS stepwise."${r.name.replace(/"/g, '""')}"`);
  return rows.map((r) => r.name);
}

/**
 * Rebuild one index packed. On a PostgreSQL server CONCURRENTLY, so writes
 * go on meanwhile; PGlite has one connection, where the plain form is the
 * same thing.
 */
export async function rebuildIndex(db: Db, name: string): Promise<void> {
  const quoted = `stepwise."${name.replace(/"/g, '""')}"`;
  await db.exec(db.backend === 'postgres' ? `REINDEX INDEX CONCURRENTLY ${quoted}` : `REINDEX INDEX ${quoted}`);
}
