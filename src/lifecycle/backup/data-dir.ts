import { readdir } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Which files of the embedded data directory are the database. PGlite's
 * PGDATA is the data directory itself, shared with Stepwise's own files
 * (the lock, the key file, `blobs/`, the control socket), so the copy takes
 * PostgreSQL's entries by name and nothing else.
 */

const DB_TOP_FILES = new Set(['PG_VERSION', 'postgresql.conf', 'postgresql.auto.conf', 'pg_hba.conf', 'pg_ident.conf']);
const DB_TOP_DIR = /^(base|global|pg_[a-z_]+)$/;

/**
 * Directories kept empty in a base backup, as pg_basebackup does: WAL is
 * added separately (only the segments the backup needs), and the others
 * hold runtime state PostgreSQL rebuilds at start (replication slots —
 * the backup's own among them — statistics scratch, shared memory
 * segments, NOTIFY and SSI queues, exported snapshots, subtransactions).
 */
const KEPT_EMPTY = new Set(['pg_wal', 'pg_replslot', 'pg_stat_tmp', 'pg_dynshmem', 'pg_notify', 'pg_serial', 'pg_snapshots', 'pg_subtrans']);

/** The control file goes last, after every file it describes (pg_basebackup's order). */
export const CONTROL_FILE = 'global/pg_control';

export interface DataDirEntry {
  /** Path relative to the data directory, `/`-separated. */
  rel: string;
  type: 'file' | 'dir';
}

function skipped(name: string): boolean {
  // Relation cache init files are rebuilt at start; temporary files belong to queries that are gone.
  return name === 'pg_internal.init' || name.startsWith('pgsql_tmp');
}

/**
 * The database's entries in a stable order, each directory before what it
 * holds, the control file last. Read lazily, one directory at a time, so
 * a data directory of any size is listed in bounded memory. A directory
 * that disappears while it is listed (a dropped database) is skipped.
 */
export async function* databaseEntries(dataDir: string): AsyncGenerator<DataDirEntry> {
  const top = (await readdir(dataDir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1));
  for (const e of top) {
    if (e.isFile() && DB_TOP_FILES.has(e.name)) yield { rel: e.name, type: 'file' };
    else if (e.isDirectory() && DB_TOP_DIR.test(e.name)) yield* walk(dataDir, e.name);
  }
  yield { rel: CONTROL_FILE, type: 'file' };
}

async function* walk(dataDir: string, rel: string): AsyncGenerator<DataDirEntry> {
  yield { rel, type: 'dir' };
  let entries;
  try {
    entries = (await readdir(join(dataDir, rel), { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  const emptyKept = KEPT_EMPTY.has(rel);
  for (const e of entries) {
    if (skipped(e.name)) continue;
    const child = `${rel}/${e.name}`;
    // pg_wal keeps its subdirectories (archive_status, summaries), not its segments.
    if (e.isDirectory()) {
      if (rel === 'pg_wal') yield { rel: child, type: 'dir' };
      else if (!emptyKept) yield* walk(dataDir, child);
    } else if (e.isFile() && !emptyKept && child !== CONTROL_FILE) {
      yield { rel: child, type: 'file' };
    }
  }
}
