import { join, resolve } from 'node:path';
import type { BlobStore } from '../../blob/index.js';
import type { BlobConfig } from '../../config/index.js';
import { dropBackupSlot } from '../../db/base-backup.js';
import type { Db } from '../../db/index.js';
import { KEY_FILE_NAME } from '../../security/crypto.js';
import type { Logger } from '../../util/logger.js';
import type { BlobDeletionGate } from './blob-gate.js';
import { fsBlobSource, storeBlobSource, type BlobSource } from './blob-source.js';
import { BackupControlServer } from './control.js';
import { createBackup, type BackupReport } from './create.js';

/** Where the configured blobs are read from for a backup: the directory itself for the filesystem store. */
export function backupBlobSource(config: BlobConfig, blobs: BlobStore): BlobSource {
  return config.backend === 'fs' ? fsBlobSource(config.dir) : storeBlobSource(blobs, `azure:${config.azureContainer}`);
}

export interface EmbeddedBackupOptions {
  db: Db;
  dataDir: string;
  blobConfig: BlobConfig;
  blobs: BlobStore;
  stepwiseVersion: string;
  gate?: BlobDeletionGate | undefined;
}

/** One backup of an embedded data directory into `out`, with everything the configuration says is part of it. */
export function backupEmbedded(opts: EmbeddedBackupOptions, out: string, signal?: AbortSignal): Promise<BackupReport> {
  return createBackup({
    db: opts.db,
    dataDir: opts.dataDir,
    out,
    blobs: backupBlobSource(opts.blobConfig, opts.blobs),
    blobsInDataDir: opts.blobConfig.backend === 'fs' && resolve(opts.blobConfig.dir) === join(resolve(opts.dataDir), 'blobs'),
    keyFile: join(opts.dataDir, KEY_FILE_NAME),
    gate: opts.gate,
    stepwiseVersion: opts.stepwiseVersion,
    signal,
  });
}

/**
 * What `stepwise serve` starts in embedded mode: remove a backup slot a
 * killed process left (it would hold WAL for ever), then listen on the
 * data directory's control socket for `stepwise backup`. Null when the
 * socket cannot exist (path too long; logged).
 */
export async function startBackupControl(opts: EmbeddedBackupOptions & { logger: Logger }): Promise<BackupControlServer | null> {
  if (await opts.db.session((conn) => dropBackupSlot(conn))) {
    opts.logger.warn('removed the WAL slot of a backup that did not finish (its process stopped mid-backup)');
  }
  return BackupControlServer.start(opts.dataDir, (out, signal) => backupEmbedded(opts, out, signal), opts.logger);
}
