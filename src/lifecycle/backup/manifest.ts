import { ValidationError } from '../../errors/index.js';
import type { TarEntryType } from './tar.js';

/**
 * What a backup file holds, in this order (a gzipped tar):
 *
 *   stepwise-backup.json     the header: format, versions, when, from where
 *   db/…                     the PGlite data directory (an online base backup: files, WAL, backup_label)
 *   blobs/<key>              every blob, after the database copy
 *   keys/encryption-keys     the credentials key file, when the data directory has one
 *   manifest.jsonl           the header again with totals, then one line per entry above: size and SHA-256
 *
 * The manifest comes last because the hashes are known only once the bytes
 * are written; a restore checks every entry against it before it keeps anything.
 */

/** Bumped when the layout changes; a restore refuses a format it does not know. */
export const BACKUP_FORMAT = 1;
export const BACKUP_KIND = 'stepwise-embedded-backup';

export const HEADER_ENTRY = 'stepwise-backup.json';
export const MANIFEST_ENTRY = 'manifest.jsonl';
export const DB_PREFIX = 'db/';
export const BLOB_PREFIX = 'blobs/';
export const KEY_ENTRY = 'keys/encryption-keys';

export interface BackupHeader {
  format: typeof BACKUP_FORMAT;
  kind: typeof BACKUP_KIND;
  stepwiseVersion: string;
  /** Highest applied migration of the database copied (its schema level). */
  schemaVersion: number;
  createdAt: string;
  source: {
    dataDir: string;
    /** Where the blobs came from: `fs:<dir>` or `azure:<container>`. */
    blobs: string;
    /** The blob directory was `<dataDir>/blobs` (where a restore puts them). */
    blobsInDataDir: boolean;
  };
}

export interface ManifestSummary extends BackupHeader {
  finishedAt: string;
  database: { method: 'online-base-backup'; startLsn: string; stopLsn: string; files: number; bytes: number; walSegments: number };
  blobs: { count: number; bytes: number };
  keyFile: boolean;
  /** Entries listed after this line (every entry of the archive before the manifest). */
  entries: number;
}

export interface ManifestEntry {
  name: string;
  type: TarEntryType;
  size: number;
  /** Of the entry's bytes; absent for directories. */
  sha256?: string;
}

/** The file is not a Stepwise backup, or not one this version can restore. */
export class BackupFormatError extends ValidationError {
  constructor(file: string, why: string) {
    super(`${file} is not a Stepwise backup this version can restore: ${why}`, { path: 'FILE' });
  }
}

/** The file is a backup but its bytes are not the ones written (corrupted, truncated, edited). */
export class BackupDamagedError extends ValidationError {
  constructor(file: string, why: string, options?: { cause?: unknown }) {
    super(`backup ${file} is damaged: ${why}; nothing was restored`, { path: 'FILE' }, options);
  }
}

/** The header entry, checked: a wrong format or kind is refused before anything is written. */
export function parseHeader(file: string, text: string): BackupHeader {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new BackupFormatError(file, `${HEADER_ENTRY} is not JSON`);
  }
  const h = value as Partial<BackupHeader> | null;
  if (h === null || typeof h !== 'object' || h.kind !== BACKUP_KIND) throw new BackupFormatError(file, `${HEADER_ENTRY} is not a Stepwise backup header`);
  if (h.format !== BACKUP_FORMAT) throw new BackupFormatError(file, `backup format ${String(h.format)}, this Stepwise reads format ${BACKUP_FORMAT}`);
  if (typeof h.schemaVersion !== 'number' || typeof h.stepwiseVersion !== 'string' || typeof h.source !== 'object' || h.source === null) {
    throw new BackupFormatError(file, `${HEADER_ENTRY} lacks its versions or source`);
  }
  return h as BackupHeader;
}

export function entryLine(entry: ManifestEntry): string {
  return `${JSON.stringify(entry)}\n`;
}

/**
 * Where an archive entry goes under the restored directory, or why it may
 * not: only the four known areas, no empty, `.` or `..` segment, no
 * absolute path, so a crafted file cannot write outside the directory.
 */
export function restorePath(name: string): { area: 'db' | 'blobs' | 'key'; rel: string } {
  if (name === KEY_ENTRY) return { area: 'key', rel: 'encryption-keys' };
  const area = name.startsWith(DB_PREFIX) ? 'db' : name.startsWith(BLOB_PREFIX) ? 'blobs' : null;
  const rel = area === 'db' ? name.slice(DB_PREFIX.length) : area === 'blobs' ? name.slice(BLOB_PREFIX.length) : '';
  if (area === null || rel === '' || rel.split('/').some((s) => s === '' || s === '.' || s === '..') || rel.includes('\\') || rel.includes('\u0000')) {
    throw new ValidationError(`archive entry "${name.slice(0, 200)}" is not one a Stepwise backup contains`, { path: 'FILE' });
  }
  return { area, rel };
}
