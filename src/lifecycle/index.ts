export * from './retention.js';
export { archiveExecutionLogs, ArchiveVerificationError, type ArchiveHooks, type ArchiveOptions, type ArchiveReport } from './archiver.js';
export { readJobStream, readArchiveRows, type JobStreamPage } from './stream-reader.js';
export { restoreJob, restoreRange, type RestoreOptions, type RestoreReport } from './restore.js';
export { runMaintenance, MAINTENANCE_LEASE, type MaintenanceOptions, type MaintenanceReport } from './maintain.js';
export { MaintenanceLoop, DEFAULT_MAINTENANCE_LOOP, type MaintenanceLoopOptions } from './loop.js';
export { archiveJobResults, RESULT_ARCHIVE_MIN_BYTES, type ResultArchiveReport } from './result-archiver.js';
export { collectUnreferencedBlobs, sweepOrphanArchiveBlobs, STREAM_ARCHIVE_PREFIX } from './blob-gc.js';
export * from './screenshot-cleanup.js';
