export { BlobDeletionGate } from './blob-gate.js';
export { fsBlobSource, storeBlobSource, type BlobSource, type OpenedBlob } from './blob-source.js';
export { Pacer, SLICE_MS } from './paced-read.js';
export { BackupControlServer, controlSocketPath, requestBackup, NoControlSocketError, CONTROL_SOCKET_NAME, MAX_SOCKET_PATH_BYTES } from './control.js';
export { createBackup, type BackupReport, type CreateBackupOptions } from './create.js';
export { restoreBackup, type RestoreBackupOptions, type RestoreReport } from './restore.js';
export { backupEmbedded, backupBlobSource, startBackupControl, type EmbeddedBackupOptions } from './service.js';
export { BackupDamagedError, BackupFormatError, BACKUP_FORMAT, HEADER_ENTRY, MANIFEST_ENTRY } from './manifest.js';
