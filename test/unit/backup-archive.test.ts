import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BackupFileWriter } from '../../src/lifecycle/backup/archive-writer.js';
import {
  BACKUP_FORMAT,
  BACKUP_KIND,
  BackupDamagedError,
  BackupFormatError,
  HEADER_ENTRY,
  MANIFEST_ENTRY,
  parseHeader,
  restorePath,
} from '../../src/lifecycle/backup/manifest.js';
import { restoreBackup } from '../../src/lifecycle/backup/restore.js';
import { TarFormatError, TarReader, TarWriter, type TarEntry } from '../../src/lifecycle/backup/tar.js';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** Write entries with TarWriter into memory; returns the archive bytes and what the writer reported. */
async function archive(entries: { name: string; type?: 'file' | 'dir'; data?: Buffer; size?: number; chunks?: Buffer[] }[]) {
  const out = new PassThrough();
  const parts: Buffer[] = [];
  out.on('data', (c: Buffer) => parts.push(c));
  const tar = new TarWriter(out);
  const written = [];
  for (const e of entries) {
    const type = e.type ?? 'file';
    const size = e.size ?? e.data?.length ?? 0;
    written.push(await tar.entry({ name: e.name, type, size }, e.chunks ?? (e.data ? [e.data] : undefined)));
  }
  await tar.end();
  out.end();
  return { bytes: Buffer.concat(parts), written };
}

async function readAll(bytes: Buffer, chunkSize = 777): Promise<{ entry: TarEntry; data: Buffer }[]> {
  async function* chunks() {
    for (let i = 0; i < bytes.length; i += chunkSize) yield bytes.subarray(i, i + chunkSize);
  }
  const reader = new TarReader(chunks());
  const out = [];
  for (let e = await reader.next(); e; e = await reader.next()) {
    const parts: Buffer[] = [];
    for await (const c of reader.body()) parts.push(c);
    out.push({ entry: e, data: Buffer.concat(parts) });
  }
  return out;
}

describe('backup tar format', () => {
  const longName = `blobs/results/${'0193a0c2-7b1e-7000-8000-000000000001/'.repeat(4)}job.json.gz`;
  const big = Buffer.alloc(300_000, 7);
  big.write('start', 0);
  big.write('end', big.length - 3);

  it('round-trips files, directories, empty files, long and non-ASCII names, in any chunking', async () => {
    const entries = [
      { name: 'db', type: 'dir' as const },
      { name: 'db/PG_VERSION', data: Buffer.from('18\n') },
      { name: 'db/empty', data: Buffer.alloc(0) },
      { name: longName, data: big },
      { name: 'blobs/naïve-ключ', data: Buffer.from('unicode name') },
    ];
    const { bytes, written } = await archive(entries);
    expect(bytes.length % 512).toBe(0);
    for (const chunkSize of [1, 512, 777, 65536]) {
      const got = await readAll(bytes, chunkSize);
      expect(got.map((g) => [g.entry.name, g.entry.type, g.entry.size])).toEqual([
        ['db', 'dir', 0],
        ['db/PG_VERSION', 'file', 3],
        ['db/empty', 'file', 0],
        [longName, 'file', big.length],
        ['blobs/naïve-ключ', 'file', 12],
      ]);
      expect(got[3]!.data.equals(big)).toBe(true);
    }
    expect(written[3]).toEqual({ size: big.length, sha256: sha(big), shortBy: 0 });
  });

  it('is a standard archive: tar lists the long and unicode names', async () => {
    const tarBin = spawnSync('tar', ['--version']);
    if (tarBin.status !== 0) return;
    const { bytes } = await archive([
      { name: 'db', type: 'dir' },
      { name: longName, data: Buffer.from('x') },
      { name: 'blobs/naïve-ключ', data: Buffer.from('y') },
    ]);
    const listed = spawnSync('tar', ['-tf', '-'], { input: bytes, encoding: 'utf8' });
    expect(listed.status, listed.stderr).toBe(0);
    expect(listed.stdout.trim().split('\n')).toEqual(['db/', longName, 'blobs/naïve-ключ']);
  });

  it('pads a body that ends early with zeros and cuts one that runs long, hashing what it wrote', async () => {
    const { bytes, written } = await archive([
      { name: 'shrunk', size: 10, chunks: [Buffer.from('abcd')] },
      { name: 'grown', size: 3, chunks: [Buffer.from('abcdef')] },
    ]);
    const got = await readAll(bytes);
    expect(got[0]!.data).toEqual(Buffer.from('abcd\0\0\0\0\0\0'));
    expect(got[1]!.data).toEqual(Buffer.from('abc'));
    expect(written[0]).toEqual({ size: 10, sha256: sha(got[0]!.data), shortBy: 6 });
    expect(written[1]!.shortBy).toBe(0);
  });

  it('skips a body its reader left unread', async () => {
    const { bytes } = await archive([
      { name: 'a', data: big },
      { name: 'b', data: Buffer.from('bee') },
    ]);
    async function* chunks() {
      for (let i = 0; i < bytes.length; i += 4096) yield bytes.subarray(i, i + 4096);
    }
    const reader = new TarReader(chunks());
    expect((await reader.next())!.name).toBe('a');
    for await (const _ of reader.body()) break; // one chunk, then walk away
    const b = await reader.next();
    expect(b!.name).toBe('b');
    const parts: Buffer[] = [];
    for await (const c of reader.body()) parts.push(c);
    expect(Buffer.concat(parts).toString()).toBe('bee');
    expect(await reader.next()).toBeNull();
  });

  it('refuses a damaged header, a cut-short archive and one without its end blocks', async () => {
    const { bytes } = await archive([{ name: 'a', data: Buffer.from('payload') }]);
    const flipped = Buffer.from(bytes);
    flipped[3] = flipped[3]! ^ 0x01; // inside the first header's name
    await expect(readAll(flipped)).rejects.toThrow(/checksum/);
    await expect(readAll(bytes.subarray(0, 512 + 3))).rejects.toBeInstanceOf(TarFormatError);
    await expect(readAll(bytes.subarray(0, bytes.length - 1024))).rejects.toThrow(/end-of-archive/);
  });
});

describe('backup manifest names', () => {
  it('maps the four areas and refuses anything that could leave the directory', () => {
    expect(restorePath('db/base/1/1259')).toEqual({ area: 'db', rel: 'base/1/1259' });
    expect(restorePath('blobs/results/o/j.json.gz')).toEqual({ area: 'blobs', rel: 'results/o/j.json.gz' });
    expect(restorePath('keys/encryption-keys')).toEqual({ area: 'key', rel: 'encryption-keys' });
    for (const bad of ['db/../../etc/passwd', '/etc/passwd', 'db/', 'db//x', 'other/x', 'blobs/./x', 'keys/other', 'db/a\\b']) {
      expect(() => restorePath(bad), bad).toThrow(/not one a Stepwise backup contains/);
    }
  });

  it('reads a header of this format and refuses another format or kind', () => {
    const header = { format: BACKUP_FORMAT, kind: BACKUP_KIND, stepwiseVersion: '0.1.0', schemaVersion: 23, createdAt: 'x', source: { dataDir: '/d', blobs: 'fs:/d/blobs', blobsInDataDir: true } };
    expect(parseHeader('f', JSON.stringify(header)).schemaVersion).toBe(23);
    expect(() => parseHeader('f', JSON.stringify({ ...header, format: 99 }))).toThrow(BackupFormatError);
    expect(() => parseHeader('f', JSON.stringify({ ...header, kind: 'other' }))).toThrow(/not a Stepwise backup header/);
    expect(() => parseHeader('f', '{')).toThrow(/not JSON/);
  });
});

describe('backup file writer and the restore checksum', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'backup-archive-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const header = { format: BACKUP_FORMAT, kind: BACKUP_KIND, stepwiseVersion: 't', schemaVersion: 1, createdAt: 'now', source: { dataDir: '/d', blobs: 'fs:/d/blobs', blobsInDataDir: true } } as const;
  const summary = {
    ...header,
    finishedAt: 'later',
    database: { method: 'online-base-backup' as const, startLsn: '0/1', stopLsn: '0/2', files: 0, bytes: 0, walSegments: 0 },
    blobs: { count: 1, bytes: 5 },
    keyFile: false,
  };

  async function writeBackup(name: string): Promise<string> {
    const out = join(dir, name);
    const w = await BackupFileWriter.create(out);
    await w.addBytes(HEADER_ENTRY, Buffer.from(JSON.stringify(header)));
    await w.add({ name: 'blobs/a', type: 'dir', size: 0 });
    await w.addBytes('blobs/a/one', Buffer.from('hello'));
    await w.commit(summary);
    return out;
  }

  it('commits a gzipped tar whose manifest lists every entry with its size and SHA-256; nothing else is left', async () => {
    const out = await writeBackup('ok.backup');
    expect(await readdir(dir)).toEqual(['ok.backup']);
    const got = await readAll(gunzipSync(await readFile(out)));
    expect(got.map((g) => g.entry.name)).toEqual([HEADER_ENTRY, 'blobs/a', 'blobs/a/one', MANIFEST_ENTRY]);
    const [first, ...lines] = got[3]!.data.toString().trim().split('\n').map((l) => JSON.parse(l));
    expect(first).toMatchObject({ format: BACKUP_FORMAT, entries: 3, blobs: { count: 1 } });
    expect(lines[2]).toEqual({ name: 'blobs/a/one', type: 'file', size: 5, sha256: sha(Buffer.from('hello')) });
    expect(lines[1]).toEqual({ name: 'blobs/a', type: 'dir', size: 0 });
  });

  it('refuses an existing target, and abort leaves no file at all', async () => {
    await expect(BackupFileWriter.create(join(dir, 'ok.backup'))).rejects.toThrow(/exists/);
    const w = await BackupFileWriter.create(join(dir, 'aborted.backup'));
    await w.addBytes(HEADER_ENTRY, Buffer.from('{}'));
    await w.abort();
    expect(await readdir(dir)).toEqual(['ok.backup']);
  });

  it('a restore refuses bytes that differ from the manifest (valid gzip and tar) and leaves no directory', async () => {
    const out = await writeBackup('tampered.backup');
    const tar = gunzipSync(await readFile(out));
    const at = tar.indexOf('hello');
    tar.write('jello', at);
    await writeFile(out, gzipSync(tar));
    const target = join(dir, 'restored');
    const err = await restoreBackup({ file: out, dataDir: target }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BackupDamagedError);
    expect((err as Error).message).toMatch(/SHA-256 checksum mismatch at entry 3: the manifest lists blobs\/a\/one/);
    expect((await readdir(dir)).sort()).toEqual(['ok.backup', 'tampered.backup']);
  });

  it('a restore of a cut-short file fails as damaged and leaves no directory', async () => {
    const out = join(dir, 'cut.backup');
    const whole = await readFile(join(dir, 'ok.backup'));
    await writeFile(out, whole.subarray(0, Math.floor(whole.length / 2)));
    const err = await restoreBackup({ file: out, dataDir: join(dir, 'restored') }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BackupDamagedError);
    expect((err as Error).message).toMatch(/is damaged: .*cut short|is damaged: the archive ends/);
    expect((await readdir(dir)).sort()).toEqual(['cut.backup', 'ok.backup', 'tampered.backup']);
  });
});
