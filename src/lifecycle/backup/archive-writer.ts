import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { link, open, rename, stat, unlink } from 'node:fs/promises';
import { once } from 'node:events';
import { basename, dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip, type Gzip } from 'node:zlib';
import { ValidationError } from '../../errors/index.js';
import { entryLine, MANIFEST_ENTRY, type ManifestSummary } from './manifest.js';
import { TarWriter, type TarBody, type TarEntryHeader, type WrittenEntry } from './tar.js';
import { syncDir } from '../../util/sync-dir.js';

/**
 * gzip level 1: PostgreSQL's files (half-empty pages, zero-filled WAL
 * tails) shrink to about a sixth at it, at ~127 MB/s of input on one core
 * here (400 MB of relation files → 64 MB in 3.2 s); level 6 gained another
 * 15% for twice the time, on a process that is serving requests meanwhile.
 */
const GZIP_LEVEL = 1;
/** zlib's output buffer: its default 16 KB took a thread-pool round trip (and an event-loop turn) per 16 KB written. */
const GZIP_CHUNK_BYTES = 1 << 20;

/**
 * A backup file being written: a gzipped tar streamed to a temporary name
 * in the target's directory, every entry's size and SHA-256 spooled to a
 * second temporary file (the manifest can list millions of blobs without
 * holding them in memory). `commit` appends the manifest, fsyncs and links
 * the file to its name; until then, and after `abort`, the target name
 * does not exist.
 */
export class BackupFileWriter {
  private entries = 0;
  private finished = false;
  private spoolError: Error | undefined;

  private constructor(
    readonly target: string,
    private readonly partial: string,
    private readonly spoolPath: string,
    private readonly gzip: Gzip,
    private readonly written: Promise<void>,
    private readonly spool: WriteStream,
    readonly tar: TarWriter,
  ) {}

  /** Open `target`'s temporary file. Refuses a target that exists (a backup is never overwritten). */
  static async create(target: string): Promise<BackupFileWriter> {
    if (await exists(target)) throw new ValidationError(`--out ${target} exists; choose a new file name (a backup never overwrites one)`, { path: '--out' });
    const dir = dirname(target);
    if (!(await isDirectory(dir))) throw new ValidationError(`--out ${target}: directory ${dir} does not exist`, { path: '--out' });
    const stem = `.${basename(target)}.${randomBytes(6).toString('hex')}`;
    const partial = join(dir, `${stem}.partial`);
    const spoolPath = join(dir, `${stem}.manifest`);
    const file = createWriteStream(partial, { flags: 'wx', mode: 0o600, highWaterMark: 1 << 20 });
    await once(file, 'open');
    const gzip = createGzip({ level: GZIP_LEVEL, chunkSize: GZIP_CHUNK_BYTES });
    const written = pipeline(gzip, file);
    written.catch(() => undefined); // awaited in commit; an early failure surfaces as the next write's error
    const spool = createWriteStream(spoolPath, { flags: 'wx', mode: 0o600, highWaterMark: 1 << 20 });
    try {
      await once(spool, 'open');
    } catch (err) {
      gzip.destroy();
      await written.catch(() => undefined);
      await unlink(partial).catch(() => undefined);
      throw err;
    }
    const writer = new BackupFileWriter(target, partial, spoolPath, gzip, written, spool, new TarWriter(gzip));
    // A later write error (disk full) surfaces at the next add() or at commit(), never as an unhandled 'error' event.
    spool.on('error', (err) => (writer.spoolError ??= err));
    return writer;
  }

  /** Write one entry and list it in the manifest. */
  async add(header: TarEntryHeader, body?: TarBody, signal?: AbortSignal): Promise<WrittenEntry> {
    if (this.spoolError) throw this.spoolError;
    const w = await this.tar.entry(header, body, signal);
    this.entries++;
    const line = entryLine({ name: header.name, type: header.type, size: w.size, ...(header.type === 'file' ? { sha256: w.sha256 } : {}) });
    if (!this.spool.write(line)) await once(this.spool, 'drain');
    return w;
  }

  addBytes(name: string, data: Buffer, mode?: number): Promise<WrittenEntry> {
    return this.add({ name, type: 'file', size: data.length, ...(mode !== undefined ? { mode } : {}) }, [data]);
  }

  /**
   * Append the manifest (the summary line, then the spooled entry lines),
   * finish the gzip stream, fsync, and give the file its name. Returns the
   * file's size in bytes.
   */
  async commit(summary: Omit<ManifestSummary, 'entries'>): Promise<{ bytes: number; entries: number }> {
    if (this.spoolError) throw this.spoolError;
    this.spool.end();
    await once(this.spool, 'close');
    if (this.spoolError) throw this.spoolError;
    const head = Buffer.from(`${JSON.stringify({ ...summary, entries: this.entries })}\n`);
    const spooled = (await stat(this.spoolPath)).size;
    await this.tar.entry({ name: MANIFEST_ENTRY, type: 'file', size: head.length + spooled }, concat(head, createReadStream(this.spoolPath)));
    await this.tar.end();
    this.gzip.end();
    await this.written;
    await fsyncFile(this.partial);
    await unlink(this.spoolPath);
    await publish(this.partial, this.target);
    this.finished = true;
    return { bytes: (await stat(this.target)).size, entries: this.entries };
  }

  /** Drop everything written so far; the target name was never created. */
  async abort(): Promise<void> {
    if (this.finished) return;
    this.finished = true;
    this.gzip.destroy();
    this.spool.destroy();
    await this.written.catch(() => undefined);
    await unlink(this.partial).catch(() => undefined);
    await unlink(this.spoolPath).catch(() => undefined);
  }
}

async function* concat(head: Buffer, rest: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  yield head;
  yield* rest;
}

/**
 * Give the finished file its name without replacing one that appeared
 * meanwhile (link fails if the name exists), then fsync the directory so the
 * name survives a power cut. A filesystem without hard links gets a rename.
 */
async function publish(partial: string, target: string): Promise<void> {
  try {
    await link(partial, target);
    await unlink(partial);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new ValidationError(`--out ${target} appeared while the backup was written; the backup was not kept`, { path: '--out' });
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EXDEV') throw err;
    await rename(partial, target);
  }
  await syncDir(dirname(target));
}

/** fsync a file by name (fsync is per file, so a new descriptor flushes what the closed one wrote). */
async function fsyncFile(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}
