import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, rmdir, stat } from 'node:fs/promises';
import { once } from 'node:events';
import { basename, dirname, join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { StringDecoder } from 'node:string_decoder';
import { createGunzip } from 'node:zlib';
import { validateBlobKey } from '../../blob/index.js';
import { countJobsForBackup } from '../../db/base-backup.js';
import { findAppliedMigrations, loadMigrations, PgliteDb } from '../../db/index.js';
import { SchemaTooNewError, UnavailableError, ValidationError } from '../../errors/index.js';
import { syncDir } from '../../util/sync-dir.js';
import {
  BackupDamagedError,
  entryLine,
  HEADER_ENTRY,
  MANIFEST_ENTRY,
  parseHeader,
  restorePath,
  type BackupHeader,
  type ManifestEntry,
  type ManifestSummary,
} from './manifest.js';
import { TarFormatError, TarReader, type TarEntry } from './tar.js';

export interface RestoreBackupOptions {
  /** The backup file. */
  file: string;
  /** The directory to create (or an empty one to fill). */
  dataDir: string;
}

export interface RestoreReport {
  dataDir: string;
  file: string;
  entries: number;
  backup: { stepwiseVersion: string; createdAt: string; schemaVersion: number };
  database: { files: number; bytes: number };
  blobs: { count: number; bytes: number; dir: string };
  keyFile: boolean;
  /** Jobs in the restored database (read when it was opened to prove it starts). */
  jobs: number;
  /** What the operator must know before starting the restored service. */
  notes: string[];
  durationMs: number;
}

/** A header larger than this is not a Stepwise header. */
const MAX_HEADER_BYTES = 1 << 20;

async function isEmptyOrMissing(dir: string): Promise<'missing' | 'empty' | 'not-empty' | 'not-a-directory'> {
  try {
    if (!(await stat(dir)).isDirectory()) return 'not-a-directory';
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'missing';
    throw err;
  }
  return (await readdir(dir)).length === 0 ? 'empty' : 'not-empty';
}

async function* lines(chunks: AsyncIterable<Buffer | string>): AsyncGenerator<string> {
  const decoder = new StringDecoder('utf8');
  let rest = '';
  for await (const chunk of chunks) {
    rest += typeof chunk === 'string' ? chunk : decoder.write(chunk);
    for (let i = rest.indexOf('\n'); i >= 0; i = rest.indexOf('\n')) {
      yield rest.slice(0, i);
      rest = rest.slice(i + 1);
    }
  }
  rest += decoder.end();
  if (rest !== '') yield rest;
}

/** Write one entry's bytes to `dest`, hashing them on the way. */
async function writeEntry(reader: TarReader, dest: string, mode: number): Promise<{ size: number; sha256: string }> {
  const hash = createHash('sha256');
  let size = 0;
  await pipeline(
    async function* () {
      for await (const chunk of reader.body()) {
        hash.update(chunk);
        size += chunk.length;
        yield chunk;
      }
    },
    createWriteStream(dest, { flags: 'wx', mode }),
  );
  return { size, sha256: hash.digest('hex') };
}

/** fsync every file and directory under `dir`: PGlite runs with fsync off, so nothing else makes the restored files durable. */
async function syncTree(dir: string): Promise<void> {
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, e.name);
    if (e.isDirectory()) await syncTree(path);
    else if (e.isFile()) {
      const handle = await open(path, 'r');
      try {
        await handle.sync();
      } finally {
        await handle.close();
      }
    }
  }
  await syncDir(dir);
}

function describe(entry: ManifestEntry | undefined): string {
  return entry ? `${entry.name} (${entry.type}, ${entry.size} bytes${entry.sha256 ? `, sha256 ${entry.sha256.slice(0, 12)}…` : ''})` : 'nothing';
}

/**
 * Compare the manifest's entry lines with what was read, in order: every
 * entry must be listed with its exact size and SHA-256, and nothing more.
 */
async function verifyManifest(file: string, manifest: AsyncIterable<string>, seenPath: string, seenCount: number): Promise<ManifestSummary> {
  const want = manifest[Symbol.asyncIterator]();
  const first = await want.next();
  let summary: ManifestSummary;
  try {
    summary = JSON.parse(first.done ? '' : first.value) as ManifestSummary;
  } catch {
    throw new BackupDamagedError(file, `${MANIFEST_ENTRY} does not start with its summary`);
  }
  if (summary.entries !== seenCount) throw new BackupDamagedError(file, `the manifest lists ${summary.entries} entries, the file holds ${seenCount}`);
  let index = 0;
  for await (const seenLine of lines(createReadStream(seenPath))) {
    const next = await want.next();
    const seen = JSON.parse(seenLine) as ManifestEntry;
    let listed: ManifestEntry | undefined;
    try {
      listed = next.done ? undefined : (JSON.parse(next.value) as ManifestEntry);
    } catch {
      throw new BackupDamagedError(file, `manifest line ${index + 2} is not JSON`);
    }
    if (!listed || entryLine(listed) !== seenLine + '\n') {
      const why = listed && listed.name === seen.name ? (listed.size !== seen.size ? 'size' : 'SHA-256 checksum') : 'entry';
      throw new BackupDamagedError(file, `${why} mismatch at entry ${index + 1}: the manifest lists ${describe(listed)}, the file holds ${describe(seen)}`);
    }
    index++;
  }
  if (!(await want.next()).done) throw new BackupDamagedError(file, 'the manifest lists entries the file does not hold');
  return summary;
}

/** An error from reading the backup (gzip, tar framing) rather than from writing the restore. */
function isReadDamage(err: unknown): boolean {
  if (err instanceof TarFormatError) return true;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' && code.startsWith('Z_');
}

/**
 * Restore a backup file into a new data directory. Everything is written to
 * a temporary sibling directory, checked entry by entry against the
 * manifest's SHA-256s, opened once as a database (which replays the WAL the
 * backup carries and proves it starts), and only then renamed to
 * `dataDir`: a damaged file or a failure anywhere leaves no directory.
 */
export async function restoreBackup(opts: RestoreBackupOptions): Promise<RestoreReport> {
  const started = performance.now();
  const target = resolve(opts.dataDir);
  const file = resolve(opts.file);
  const state = await isEmptyOrMissing(target);
  if (state === 'not-empty' || state === 'not-a-directory') {
    throw new ValidationError(`--data-dir ${target} ${state === 'not-empty' ? 'is not empty' : 'is not a directory'}; restore into a new or empty directory`, {
      path: '--data-dir',
    });
  }
  try {
    if (!(await stat(file)).isFile()) throw new ValidationError(`${file} is not a file`, { path: 'FILE' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new ValidationError(`backup file ${file} does not exist`, { path: 'FILE' });
    throw err;
  }
  const parent = dirname(target);
  await mkdir(parent, { recursive: true });
  const temp = join(parent, `.${basename(target)}.restoring-${randomBytes(6).toString('hex')}`);
  const seenPath = `${temp}.seen`;
  await mkdir(temp, { mode: 0o700 });
  let seen: WriteStream | undefined;
  const source = createReadStream(file, { highWaterMark: 1 << 20 });
  const gunzip = createGunzip();
  source.on('error', (err) => gunzip.destroy(err));
  try {
    seen = createWriteStream(seenPath, { flags: 'wx', mode: 0o600, highWaterMark: 1 << 20 });
    let seenError: Error | undefined;
    seen.on('error', (err) => (seenError ??= err));
    const reader = new TarReader(source.pipe(gunzip));
    const record = async (entry: ManifestEntry): Promise<void> => {
      if (seenError) throw seenError;
      if (!seen!.write(entryLine(entry))) await once(seen!, 'drain');
    };

    const first = await reader.next();
    if (!first || first.name !== HEADER_ENTRY || first.type !== 'file' || first.size > MAX_HEADER_BYTES) {
      throw new ValidationError(`${file} is not a Stepwise backup: it does not start with ${HEADER_ENTRY}`, { path: 'FILE' });
    }
    const headerBytes: Buffer[] = [];
    for await (const chunk of reader.body()) headerBytes.push(chunk);
    const headerData = Buffer.concat(headerBytes);
    const header: BackupHeader = parseHeader(file, headerData.toString('utf8'));
    await record({ name: HEADER_ENTRY, type: 'file', size: headerData.length, sha256: createHash('sha256').update(headerData).digest('hex') });

    const counts = { entries: 1, dbFiles: 0, dbBytes: 0, blobs: 0, blobBytes: 0, keyFile: false };
    let entry: TarEntry | null;
    for (entry = await reader.next(); entry && entry.name !== MANIFEST_ENTRY; entry = await reader.next()) {
      const { area, rel } = restorePath(entry.name);
      if (area === 'blobs') validateBlobKey(rel, 'blob key');
      const dest = area === 'db' ? join(temp, rel) : area === 'blobs' ? join(temp, 'blobs', rel) : join(temp, rel);
      counts.entries++;
      if (entry.type === 'dir') {
        await mkdir(dest, { recursive: true, mode: 0o700 });
        await record({ name: entry.name, type: 'dir', size: 0 });
        continue;
      }
      await mkdir(dirname(dest), { recursive: true, mode: 0o700 });
      const w = await writeEntry(reader, dest, area === 'blobs' ? 0o640 : 0o600);
      await record({ name: entry.name, type: 'file', size: w.size, sha256: w.sha256 });
      if (area === 'db') {
        counts.dbFiles++;
        counts.dbBytes += w.size;
      } else if (area === 'blobs') {
        counts.blobs++;
        counts.blobBytes += w.size;
      } else counts.keyFile = true;
    }
    if (!entry) throw new BackupDamagedError(file, `it ends without its ${MANIFEST_ENTRY}`);
    seen.end();
    await once(seen, 'close');
    if (seenError) throw seenError;
    await verifyManifest(file, lines(reader.body()), seenPath, counts.entries);
    if ((await reader.next()) !== null) throw new BackupDamagedError(file, `entries follow its ${MANIFEST_ENTRY}`);

    // Open once: PostgreSQL replays the backup's WAL from its backup_label and checkpoints; a copy that cannot start fails here.
    const db = await PgliteDb.open({ dataDir: temp }).catch((err: unknown) => {
      throw new UnavailableError(`the restored database did not start: ${err instanceof Error ? err.message : String(err)}; nothing was restored`, {}, { cause: err });
    });
    let jobs: number;
    try {
      const known = (await loadMigrations()).reduce((max, m) => Math.max(max, m.version), 0);
      const applied = (await findAppliedMigrations(db)).reduce((max, v) => Math.max(max, v), 0);
      if (applied > known) throw new SchemaTooNewError(applied, known);
      jobs = await countJobsForBackup(db);
    } finally {
      await db.close();
    }
    await syncTree(temp);
    if (state === 'empty') await rmdir(target);
    await rename(temp, target);
    await syncDir(parent);

    const notes: string[] = [];
    if (!header.source.blobsInDataDir) {
      notes.push(
        `the blobs came from ${header.source.blobs}; they are restored to ${join(target, 'blobs')}: ` +
          'start the restored service with STEPWISE_BLOB_BACKEND and STEPWISE_BLOB_DIR unset (or STEPWISE_BLOB_DIR set to that directory)',
      );
    }
    if (!counts.keyFile) {
      notes.push(
        'the backup has no key file (the data directory had none: its keys came from STEPWISE_ENCRYPTION_KEYS, or it never started a service): ' +
          'start the restored service with the same STEPWISE_ENCRYPTION_KEYS, or credentials sealed before will not open',
      );
    }
    return {
      dataDir: target,
      file,
      entries: counts.entries,
      backup: { stepwiseVersion: header.stepwiseVersion, createdAt: header.createdAt, schemaVersion: header.schemaVersion },
      database: { files: counts.dbFiles, bytes: counts.dbBytes },
      blobs: { count: counts.blobs, bytes: counts.blobBytes, dir: join(target, 'blobs') },
      keyFile: counts.keyFile,
      jobs,
      notes,
      durationMs: Math.round(performance.now() - started),
    };
  } catch (err) {
    await rm(temp, { recursive: true, force: true });
    if (isReadDamage(err)) {
      throw new BackupDamagedError(file, err instanceof TarFormatError ? err.message : `its gzip stream is corrupt or cut short (${(err as Error).message})`, { cause: err });
    }
    throw err;
  } finally {
    source.destroy();
    gunzip.destroy();
    seen?.destroy();
    await rm(seenPath, { force: true });
  }
}
