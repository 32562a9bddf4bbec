import { mkdir, open, readdir, readFile, rename, stat, unlink } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { BlobNotFoundError, BlobUnavailableError, type BlobFailureReason } from './errors.js';
import { syncDir } from '../util/sync-dir.js';
import {
  sha256Hex,
  toBuffer,
  validateBlobKey,
  validateBlobPrefix,
  type BlobInfo,
  type BlobStore,
  type PutOptions,
  type PutResult,
} from './types.js';

// Temp files live in one directory inside the root (same filesystem, so rename is atomic);
// validateBlobKey refuses segments starting with '.', so no key can name it.
const TMP_DIR = '.tmp';

/** Map a Node fs error to the typed blob error (ENOSPC → full, EACCES/EROFS → denied, …). */
function fsFailure(operation: string, key: string, err: unknown): Error {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT' && (operation === 'get' || operation === 'getStream')) return new BlobNotFoundError(key);
  const reason: BlobFailureReason =
    code === 'ENOSPC' || code === 'EDQUOT' || code === 'EFBIG'
      ? 'full'
      : code === 'EACCES' || code === 'EPERM' || code === 'EROFS'
        ? 'denied'
        : 'io';
  return new BlobUnavailableError(operation, key, reason, { cause: err });
}

/**
 * Blobs as files under one root directory (by default `<dataDir>/blobs`).
 * A put writes a temp file, fsyncs it, renames it over the final name and fsyncs
 * the directory, so a crash leaves either the whole blob or none under the key.
 */
export class FsBlobStore implements BlobStore {
  readonly kind = 'fs';
  constructor(readonly root: string) {}

  private pathOf(key: string): string {
    // validateBlobKey already refuses '..' and absolute keys; the relative() check is the second wall.
    const full = join(this.root, validateBlobKey(key));
    const rel = relative(this.root, full);
    if (rel.startsWith('..') || rel === '' || rel.split(sep).includes('..')) {
      throw new BlobUnavailableError('resolve', key, 'denied');
    }
    return full;
  }

  async put(key: string, body: Buffer | Uint8Array | string, _options?: PutOptions): Promise<PutResult> {
    const path = this.pathOf(key);
    const bytes = toBuffer(body);
    const tmp = join(this.root, TMP_DIR, `${randomBytes(12).toString('hex')}.part`);
    try {
      await mkdir(join(this.root, TMP_DIR), { recursive: true });
      await mkdir(dirname(path), { recursive: true });
      const handle = await open(tmp, 'wx', 0o640);
      try {
        await handle.writeFile(bytes);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(tmp, path);
      await syncDir(dirname(path));
    } catch (err) {
      await unlink(tmp).catch(() => undefined);
      throw fsFailure('put', key, err);
    }
    return { key, size: bytes.length, sha256: sha256Hex(bytes) };
  }

  async get(key: string): Promise<Buffer> {
    const path = this.pathOf(key);
    try {
      return await readFile(path);
    } catch (err) {
      throw fsFailure('get', key, err);
    }
  }

  async getStream(key: string): Promise<Readable> {
    const path = this.pathOf(key);
    // Open first so a missing key fails here (typed), not later as a stream 'error' event.
    try {
      const handle = await open(path, 'r');
      return handle.createReadStream({ autoClose: true });
    } catch (err) {
      throw fsFailure('getStream', key, err);
    }
  }

  async delete(key: string): Promise<boolean> {
    const path = this.pathOf(key);
    try {
      await unlink(path);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw fsFailure('delete', key, err);
    }
  }

  async exists(key: string): Promise<boolean> {
    const path = this.pathOf(key);
    try {
      return (await stat(path)).isFile();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw fsFailure('exists', key, err);
    }
  }

  async list(prefix: string): Promise<BlobInfo[]> {
    validateBlobPrefix(prefix);
    // Walk only the directory the prefix reaches ("a/b/c" → walk "a/b", filter by "a/b/c").
    const slash = prefix.lastIndexOf('/');
    const base = slash < 0 ? '' : prefix.slice(0, slash);
    const out: BlobInfo[] = [];
    try {
      await this.walk(base, prefix, out);
    } catch (err) {
      throw fsFailure('list', prefix, err);
    }
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  private async walk(dirKey: string, prefix: string, out: BlobInfo[]): Promise<void> {
    let entries;
    try {
      entries = await readdir(join(this.root, dirKey), { withFileTypes: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    for (const entry of entries) {
      if (entry.name.startsWith('.')) continue;
      const key = dirKey === '' ? entry.name : `${dirKey}/${entry.name}`;
      if (entry.isDirectory()) {
        if (key.startsWith(prefix) || prefix.startsWith(`${key}/`)) await this.walk(key, prefix, out);
      } else if (entry.isFile() && key.startsWith(prefix)) {
        out.push({ key, size: (await stat(join(this.root, key))).size });
      }
    }
  }

  /** The filesystem has no URL to hand out: the API streams the bytes instead. */
  async signedReadUrl(key: string, _expiresInSeconds: number): Promise<string | null> {
    this.pathOf(key);
    return null;
  }

  async close(): Promise<void> {}
}

