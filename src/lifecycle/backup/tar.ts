import { createHash } from 'node:crypto';
import { once } from 'node:events';
import type { Writable } from 'node:stream';

/**
 * The backup file's container: a POSIX ustar archive (pax records for long
 * names and sizes), so `tar -tzf FILE` lists a backup with standard tools.
 * Written and read as streams, one 512-byte header and the entry's bytes
 * at a time: neither side ever holds a whole entry in memory.
 */

export const TAR_BLOCK = 512;

/** ustar's size field: 11 octal digits. Larger entries carry a pax `size` record. */
const MAX_USTAR_SIZE = 0o77777777777;
/** ustar's name field; longer (or non-ASCII) names carry a pax `path` record. */
const MAX_USTAR_NAME = 100;

export type TarEntryType = 'file' | 'dir';

/** An entry's bytes: a stream, or chunks already in memory. */
export type TarBody = AsyncIterable<Buffer | Uint8Array | string> | Iterable<Buffer | Uint8Array | string>;

export interface TarEntryHeader {
  /** `/`-separated relative path; directories without a trailing slash. */
  name: string;
  type: TarEntryType;
  size: number;
  /** Permission bits (0o600 for files, 0o700 for directories by default). */
  mode?: number;
  /** Seconds since the epoch. */
  mtime?: number;
}

/** The archive is not a valid tar stream (bad header checksum, unknown entry type, cut short). */
export class TarFormatError extends Error {
  override readonly name = 'TarFormatError';
}

function writeString(block: Buffer, offset: number, length: number, value: string): void {
  block.write(value, offset, Math.min(length, Buffer.byteLength(value)), 'utf8');
}

function writeOctal(block: Buffer, offset: number, length: number, value: number): void {
  // length - 1 digits, then NUL.
  writeString(block, offset, length - 1, value.toString(8).padStart(length - 1, '0'));
}

/** A pax record: "<len> <key>=<value>\n", where <len> counts the whole record including itself. */
function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let len = Buffer.byteLength(body) + 1;
  while (String(len).length + Buffer.byteLength(body) !== len) len = String(len).length + Buffer.byteLength(body);
  return `${len}${body}`;
}

function ustarBlock(name: string, typeflag: string, size: number, mode: number, mtime: number): Buffer {
  const block = Buffer.alloc(TAR_BLOCK);
  writeString(block, 0, MAX_USTAR_NAME, name);
  writeOctal(block, 100, 8, mode);
  writeOctal(block, 108, 8, 0);
  writeOctal(block, 116, 8, 0);
  writeOctal(block, 124, 12, size);
  writeOctal(block, 136, 12, mtime);
  block.write(typeflag, 156, 1, 'ascii');
  block.write('ustar\u000000', 257, 8, 'ascii');
  // The checksum is computed with its own field read as eight spaces.
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of block) sum += byte;
  writeString(block, 148, 7, sum.toString(8).padStart(6, '0'));
  block[155] = 0x20;
  return block;
}

/** Zero bytes from `size` up to the next block boundary. */
export function tarPadding(size: number): Buffer {
  return Buffer.alloc((TAR_BLOCK - (size % TAR_BLOCK)) % TAR_BLOCK);
}

/** The header block(s) of one entry: a pax header first when the name or size does not fit ustar. */
export function encodeTarHeader(header: TarEntryHeader): Buffer {
  const mode = header.mode ?? (header.type === 'dir' ? 0o700 : 0o600);
  const mtime = Math.max(0, Math.floor(header.mtime ?? Date.now() / 1000));
  const size = header.type === 'dir' ? 0 : header.size;
  const name = header.type === 'dir' ? `${header.name}/` : header.name;
  const records: string[] = [];
  // eslint-disable-next-line no-control-regex
  const plain = Buffer.byteLength(name) <= MAX_USTAR_NAME && /^[\x20-\x7e]*$/.test(name);
  if (!plain) records.push(paxRecord('path', name));
  if (size > MAX_USTAR_SIZE) records.push(paxRecord('size', String(size)));
  const main = ustarBlock(plain ? name : name.slice(0, 99).replace(/[^\x20-\x7e]/g, '_'), header.type === 'dir' ? '5' : '0', Math.min(size, MAX_USTAR_SIZE), mode, mtime);
  if (records.length === 0) return main;
  const pax = Buffer.from(records.join(''), 'utf8');
  return Buffer.concat([ustarBlock('PaxHeader', 'x', pax.length, 0o600, mtime), pax, tarPadding(pax.length), main]);
}

/** Two zero blocks end an archive. */
export const TAR_END = Buffer.alloc(2 * TAR_BLOCK);

/** What one entry's body was once written: its size and SHA-256, and how many zero bytes padded a source that ended early. */
export interface WrittenEntry {
  size: number;
  sha256: string;
  /** Bytes the source was short of the declared size (written as zeros). */
  shortBy: number;
}

/**
 * Bytes gathered before one write to the output. A data directory is
 * thousands of small files: written one header and one body at a time, gzip
 * got a write of a few hundred bytes per call, each a round trip through the
 * thread pool and a turn of the event loop.
 */
const COALESCE_BYTES = 1 << 20;

/**
 * Writes entries to a stream, honouring its backpressure. A body is cut or
 * zero-padded to the size declared in its header: a database file that
 * shrank while it was copied keeps its header truthful (WAL replay restores
 * its pages), and the archive stays readable.
 */
export class TarWriter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  constructor(private readonly out: Writable) {}

  private async write(chunk: Buffer): Promise<void> {
    if (chunk.length === 0) return;
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    if (this.pendingBytes >= COALESCE_BYTES) await this.flush();
  }

  /** Hand what is gathered to the output, waiting while it is full. */
  async flush(): Promise<void> {
    if (this.pendingBytes === 0) return;
    const data = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    if (!this.out.write(data)) await once(this.out, 'drain');
  }

  async entry(header: TarEntryHeader, body?: TarBody, signal?: AbortSignal): Promise<WrittenEntry> {
    await this.write(encodeTarHeader(header));
    const size = header.type === 'dir' ? 0 : header.size;
    const hash = createHash('sha256');
    let written = 0;
    if (body && size > 0) {
      for await (const piece of body) {
        signal?.throwIfAborted();
        const buf = typeof piece === 'string' ? Buffer.from(piece) : Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
        const take = buf.subarray(0, size - written);
        hash.update(take);
        await this.write(take);
        written += take.length;
        if (written === size) break;
      }
    }
    const shortBy = size - written;
    for (let left = shortBy; left > 0; ) {
      const zeros = Buffer.alloc(Math.min(left, 1 << 20));
      hash.update(zeros);
      await this.write(zeros);
      left -= zeros.length;
    }
    await this.write(tarPadding(size));
    return { size, sha256: hash.digest('hex'), shortBy };
  }

  /** An entry whose bytes are in memory (small: headers, labels, the key file). */
  bytes(name: string, data: Buffer, mode?: number): Promise<WrittenEntry> {
    return this.entry({ name, type: 'file', size: data.length, ...(mode !== undefined ? { mode } : {}) }, [data]);
  }

  async end(): Promise<void> {
    await this.write(TAR_END);
    await this.flush();
  }
}

/** One entry as read: its header fields (name without a directory's trailing slash). */
export interface TarEntry {
  name: string;
  type: TarEntryType;
  size: number;
  mode: number;
  mtime: number;
}

function readString(block: Buffer, offset: number, length: number): string {
  const field = block.subarray(offset, offset + length);
  const nul = field.indexOf(0);
  return field.subarray(0, nul < 0 ? length : nul).toString('utf8');
}

function readOctal(block: Buffer, offset: number, length: number, what: string): number {
  const text = readString(block, offset, length).trim();
  if (!/^[0-7]*$/.test(text)) throw new TarFormatError(`tar header field ${what} is not octal: "${text}"`);
  return text === '' ? 0 : Number.parseInt(text, 8);
}

function parsePax(data: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  let at = 0;
  while (at < data.length) {
    const space = data.indexOf(0x20, at);
    if (space < 0) throw new TarFormatError('pax header record has no length');
    const len = Number(data.subarray(at, space).toString('ascii'));
    if (!Number.isInteger(len) || len <= space - at || at + len > data.length) throw new TarFormatError('pax header record length is invalid');
    const record = data.subarray(space + 1, at + len - 1).toString('utf8');
    const eq = record.indexOf('=');
    if (eq < 0) throw new TarFormatError('pax header record has no "="');
    out.set(record.slice(0, eq), record.slice(eq + 1));
    at += len;
  }
  return out;
}

/** Exact-length reads over an async stream of chunks. */
class ByteSource {
  private readonly it: AsyncIterator<Buffer | Uint8Array | string>;
  private pending: Buffer = Buffer.alloc(0);

  constructor(source: AsyncIterable<Buffer | Uint8Array | string>) {
    this.it = source[Symbol.asyncIterator]();
  }

  private async fill(): Promise<boolean> {
    const { value, done } = await this.it.next();
    if (done) return false;
    const buf = typeof value === 'string' ? Buffer.from(value) : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    this.pending = this.pending.length === 0 ? buf : Buffer.concat([this.pending, buf]);
    return true;
  }

  /** Exactly `n` bytes (n is small: a header block), or null at a clean end of input before any of them. */
  async read(n: number): Promise<Buffer | null> {
    while (this.pending.length < n) {
      if (!(await this.fill())) {
        if (this.pending.length === 0) return null;
        throw new TarFormatError('the archive ends in the middle of a header');
      }
    }
    const out = this.pending.subarray(0, n);
    this.pending = this.pending.subarray(n);
    return out;
  }

  /** The next `n` bytes as chunks (never more than one input chunk held). */
  async *take(n: number): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.pending.length === 0 && !(await this.fill())) throw new TarFormatError('the archive ends in the middle of an entry');
      const out = this.pending.subarray(0, left);
      this.pending = this.pending.subarray(out.length);
      left -= out.length;
      yield out;
    }
  }

  async skip(n: number): Promise<void> {
    for await (const _ of this.take(n)) {
      // discard
    }
  }
}

/**
 * Reads entries in order: `next()` gives the next header, then `body()`
 * must be read to its end (or `next()` skips what is left of it).
 */
export class TarReader {
  private readonly src: ByteSource;
  private unread = 0;
  private padding = 0;

  constructor(source: AsyncIterable<Buffer | Uint8Array | string>) {
    this.src = new ByteSource(source);
  }

  async next(): Promise<TarEntry | null> {
    await this.src.skip(this.unread + this.padding);
    this.unread = 0;
    this.padding = 0;
    let pax: Map<string, string> | undefined;
    for (;;) {
      const block = await this.src.read(TAR_BLOCK);
      if (block === null) throw new TarFormatError('the archive ends without its end-of-archive blocks');
      if (block.every((b) => b === 0)) {
        const second = await this.src.read(TAR_BLOCK);
        if (second === null || !second.every((b) => b === 0)) throw new TarFormatError('the archive ends without its second end-of-archive block');
        return null;
      }
      const stored = readOctal(block, 148, 8, 'checksum');
      let sum = 0;
      for (let i = 0; i < TAR_BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : block[i]!;
      if (sum !== stored) throw new TarFormatError('a tar header checksum does not match (the file is damaged)');
      if (readString(block, 257, 6) !== 'ustar') throw new TarFormatError('not a ustar archive');
      const typeflag = String.fromCharCode(block[156]!);
      let size = readOctal(block, 124, 12, 'size');
      if (typeflag === 'x') {
        const data = Buffer.concat(await collect(this.src.take(size)));
        await this.src.skip(tarPadding(size).length);
        pax = parsePax(data);
        continue;
      }
      if (typeflag !== '0' && typeflag !== '\u0000' && typeflag !== '5') {
        throw new TarFormatError(`tar entry type "${typeflag}" is not one a backup contains`);
      }
      const prefix = readString(block, 345, 155);
      let name = pax?.get('path') ?? (prefix ? `${prefix}/${readString(block, 0, 100)}` : readString(block, 0, 100));
      const paxSize = pax?.get('size');
      if (paxSize !== undefined) {
        if (!/^\d+$/.test(paxSize)) throw new TarFormatError('pax size record is not a number');
        size = Number(paxSize);
      }
      const type: TarEntryType = typeflag === '5' ? 'dir' : 'file';
      if (type === 'dir') {
        name = name.replace(/\/+$/, '');
        size = 0;
      }
      this.unread = size;
      this.padding = tarPadding(size).length;
      return { name, type, size, mode: readOctal(block, 100, 8, 'mode'), mtime: readOctal(block, 136, 12, 'mtime') };
    }
  }

  /** The current entry's bytes; what a reader leaves unread, `next()` skips. */
  async *body(): AsyncGenerator<Buffer> {
    for await (const chunk of this.src.take(this.unread)) {
      this.unread -= chunk.length;
      yield chunk;
    }
  }
}

async function collect(chunks: AsyncIterable<Buffer>): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const c of chunks) out.push(c);
  return out;
}
