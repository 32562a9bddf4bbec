import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { BlobNotFoundError, type BlobStore } from '../../blob/index.js';
import { openPaced, type Pacer } from './paced-read.js';

/** One blob opened for copying: its size fixed at open, and its bytes. */
export interface OpenedBlob {
  size: number;
  chunks: AsyncIterable<Buffer>;
  /** Release what reading holds (a descriptor, a stream); call it in a finally. */
  close(): void;
}

/** Where a backup reads blobs from: their keys in order, and each one's bytes. */
export interface BlobSource {
  /** `fs:<dir>` or `<kind>:…`, written into the backup's header. */
  readonly description: string;
  keys(): AsyncIterable<string>;
  /** null when the blob is gone since it was listed. */
  open(key: string, pacer: Pacer): Promise<OpenedBlob | null>;
}

/**
 * The filesystem blob store's directory, walked lazily one directory at a
 * time (a year of screenshots is many files; no full listing is held).
 * A blob is sized from its open descriptor, so one replaced while it is
 * copied (a put renames a new file over it) is copied whole, as it was.
 */
export function fsBlobSource(root: string): BlobSource {
  async function* walk(dir: string, prefix: string): AsyncGenerator<string> {
    let entries;
    try {
      entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    for (const e of entries) {
      // Dot entries are the store's temp directory (half-written puts), never a blob (keys cannot start with '.').
      if (e.name.startsWith('.')) continue;
      if (e.isDirectory()) yield* walk(join(dir, e.name), `${prefix}${e.name}/`);
      else if (e.isFile()) yield `${prefix}${e.name}`;
    }
  }
  return {
    description: `fs:${root}`,
    keys: () => walk(root, ''),
    async open(key, pacer) {
      const file = openPaced(join(root, key), pacer);
      return file && { size: file.size, chunks: file.chunks, close: file.close };
    },
  };
}

/**
 * Any other blob store (Azure) through its interface: one listing of every
 * key, then a stream per blob. Its size is the listed one.
 */
export function storeBlobSource(store: BlobStore, description: string): BlobSource {
  let sizes: Map<string, number> | undefined;
  return {
    description,
    async *keys() {
      const listed = await store.list('');
      sizes = new Map(listed.map((b) => [b.key, b.size]));
      for (const b of listed) yield b.key;
    },
    async open(key) {
      try {
        const stream = await store.getStream(key);
        return { size: sizes?.get(key) ?? 0, chunks: stream, close: () => stream.destroy() };
      } catch (err) {
        if (err instanceof BlobNotFoundError) return null;
        throw err;
      }
    },
  };
}
