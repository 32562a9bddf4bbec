import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BlobNotFoundError, BlobUnavailableError, FsBlobStore, sha256Hex, type BlobStore } from '../../src/blob/index.js';
import { AzureBlobStore } from '../../src/blob/azure.js';
import { ValidationError } from '../../src/errors/index.js';
import { azuriteConnectionString, startAzurite, type Azurite } from '../helpers/azurite.js';

let azurite: Azurite;
let fsRoot: string;

beforeAll(async () => {
  azurite = await startAzurite();
  fsRoot = await mkdtemp(join(tmpdir(), 'stepwise-blob-'));
});

afterAll(async () => {
  await azurite?.stop();
  if (fsRoot) await rm(fsRoot, { recursive: true, force: true });
});

async function text(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.from(c as Buffer));
  return Buffer.concat(chunks).toString();
}

const backends: { name: string; make: () => BlobStore; signs: boolean }[] = [
  { name: 'fs', make: () => new FsBlobStore(join(fsRoot, 'contract')), signs: false },
  { name: 'azure', make: () => AzureBlobStore.fromConnectionString(azurite.connectionString, 'contract'), signs: true },
];

describe.each(backends)('BlobStore contract: $name', ({ make, signs }) => {
  let store: BlobStore;
  beforeAll(() => {
    store = make();
  });

  it('put returns size and sha256; get and getStream return the bytes', async () => {
    const body = Buffer.from('hello blob ✓');
    const put = await store.put('c/one.txt', body, { contentType: 'text/plain' });
    expect(put).toEqual({ key: 'c/one.txt', size: body.length, sha256: sha256Hex(body) });
    expect((await store.get('c/one.txt')).equals(body)).toBe(true);
    expect(await text(await store.getStream('c/one.txt'))).toBe('hello blob ✓');
  });

  it('put overwrites the whole blob', async () => {
    await store.put('c/over', 'a much longer first value');
    await store.put('c/over', 'short');
    expect((await store.get('c/over')).toString()).toBe('short');
  });

  it('exists, delete and typed not-found', async () => {
    await store.put('c/gone', 'x');
    expect(await store.exists('c/gone')).toBe(true);
    expect(await store.delete('c/gone')).toBe(true);
    expect(await store.delete('c/gone')).toBe(false);
    expect(await store.exists('c/gone')).toBe(false);
    await expect(store.get('c/gone')).rejects.toBeInstanceOf(BlobNotFoundError);
    await expect(store.getStream('c/never')).rejects.toBeInstanceOf(BlobNotFoundError);
  });

  it('lists by prefix in key order, including nested keys and partial segments', async () => {
    for (const k of ['l/b/2', 'l/a', 'l/b/1', 'l/bc/x', 'lz/other']) await store.put(k, k);
    expect((await store.list('l/')).map((b) => b.key)).toEqual(['l/a', 'l/b/1', 'l/b/2', 'l/bc/x']);
    expect((await store.list('l/b')).map((b) => b.key)).toEqual(['l/b/1', 'l/b/2', 'l/bc/x']);
    expect((await store.list('l/b/'))).toEqual([
      { key: 'l/b/1', size: 5 },
      { key: 'l/b/2', size: 5 },
    ]);
    expect(await store.list('nothing/here/')).toEqual([]);
  });

  it('refuses keys that could escape the store, writing nothing', async () => {
    for (const bad of ['../x', '/abs', 'a//b', 'a/../b', '.hidden', 'a/.tmp/x', '', 'a\\b', 'sp ace']) {
      await expect(store.put(bad, 'x'), bad).rejects.toBeInstanceOf(ValidationError);
      await expect(store.get(bad), bad).rejects.toBeInstanceOf(ValidationError);
    }
    await expect(store.list('../')).rejects.toBeInstanceOf(ValidationError);
  });

  it.runIf(signs)('signs a read URL that works until it expires and only with its signature', async () => {
    await store.put('s/signed.png', Buffer.from('png bytes'), { contentType: 'image/png' });
    const url = (await store.signedReadUrl('s/signed.png', 300))!;
    const res = await fetch(url);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/png');
    expect(await res.text()).toBe('png bytes');
    const expired = (await store.signedReadUrl('s/signed.png', -60))!;
    expect((await fetch(expired)).status).toBe(403);
    const u = new URL(url);
    u.searchParams.set('sig', Buffer.alloc(32, 1).toString('base64'));
    expect((await fetch(u)).status).toBe(403);
  });

  it.runIf(!signs)('has no signed URL (the API streams instead)', async () => {
    await store.put('s/plain', 'x');
    expect(await store.signedReadUrl('s/plain', 300)).toBeNull();
  });
});

describe('fs backend atomicity', () => {
  it('keeps temp files out of sight and leaves none after a put', async () => {
    const root = join(fsRoot, 'atomic');
    const store = new FsBlobStore(root);
    await store.put('k/a', 'x');
    // A crash mid-put leaves a .part file in .tmp: never listed, never readable as a key.
    await writeFile(join(root, '.tmp', 'dead.part'), 'half');
    expect((await store.list('')).map((b) => b.key)).toEqual(['k/a']);
    await store.put('k/b', 'y');
    expect(await readdir(join(root, '.tmp'))).toEqual(['dead.part']);
  });

  it('reports a root that is not a directory as a typed failure', async () => {
    const file = join(fsRoot, 'not-a-dir');
    await writeFile(file, 'x');
    const store = new FsBlobStore(file);
    const err = await store.put('k', 'x').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BlobUnavailableError);
  });
});

// A real full disk and a read-only filesystem: a tiny tmpfs, where this machine allows mounting one.
const canMount = (() => {
  if (process.platform !== 'linux' || process.getuid?.() !== 0) return false;
  try {
    execFileSync('mount', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

describe.runIf(canMount)('fs backend on a full or read-only filesystem', () => {
  let mnt: string;
  let mounted = false;
  beforeAll(async () => {
    mnt = await mkdtemp(join(tmpdir(), 'stepwise-tmpfs-'));
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', mnt]);
      mounted = true;
    } catch {
      mounted = false;
    }
  });
  afterAll(async () => {
    if (mounted) execFileSync('umount', [mnt]);
    await rm(mnt, { recursive: true, force: true });
  });

  it('a full disk fails the put with reason "full" and leaves nothing under the key or in .tmp', async ({ skip }) => {
    if (!mounted) skip();
    const store = new FsBlobStore(join(mnt, 'blobs'));
    await store.put('small', 'fits');
    const err = await store.put('big', Buffer.alloc(1024 * 1024, 7)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BlobUnavailableError);
    expect((err as BlobUnavailableError).reason).toBe('full');
    expect(await store.exists('big')).toBe(false);
    expect(await readdir(join(mnt, 'blobs', '.tmp'))).toEqual([]);
    expect((await store.get('small')).toString()).toBe('fits');
  });

  it('a read-only filesystem fails the put with reason "denied"', async ({ skip }) => {
    if (!mounted) skip();
    const store = new FsBlobStore(join(mnt, 'ro'));
    await mkdir(join(mnt, 'ro', '.tmp'), { recursive: true });
    execFileSync('mount', ['-o', 'remount,ro', mnt]);
    try {
      const err = await store.put('k', 'x').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BlobUnavailableError);
      expect((err as BlobUnavailableError).reason).toBe('denied');
    } finally {
      execFileSync('mount', ['-o', 'remount,rw', mnt]);
    }
    expect(await store.exists('k')).toBe(false);
  });
});

describe('azure backend failures', () => {
  it('an unreachable account is a typed "unreachable" failure', async () => {
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    const store = AzureBlobStore.fromConnectionString(azuriteConnectionString(1), 'gone', {
      retryOptions: { maxTries: 1 },
    });
    const err = await store.put('k', 'x').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BlobUnavailableError);
    expect((err as BlobUnavailableError).reason).toBe('unreachable');
  });

  it('a full account refuses the put typed, and the key stays absent', async () => {
    const small = await startAzurite({ extentMemoryLimitMb: 1 });
    try {
      const store = AzureBlobStore.fromConnectionString(small.connectionString, 'full', { retryOptions: { maxTries: 1 } });
      await store.put('ok', 'fits');
      const err = await store.put('big', Buffer.alloc(3 * 1024 * 1024, 1)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BlobUnavailableError);
      expect(await store.exists('big')).toBe(false);
      expect((await store.get('ok')).toString()).toBe('fits');
    } finally {
      await small.stop();
    }
  });
});
