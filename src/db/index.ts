export type { Backend, Db, ListenOptions, ProcessRole, Queryable, QueryOptions, QueryResult } from './types.js';
export { mapDbError } from './errors.js';
export { PostgresDb, applicationName, type PostgresDbOptions } from './postgres.js';
export { PgliteDb, type PgliteOptions } from './pglite.js';
export { openDb, type OpenDbOptions } from './open.js';
export {
  migrate,
  loadMigrations,
  findAppliedMigrations,
  DEFAULT_MIGRATION_LOCK_TIMEOUT_MS,
  NO_TRANSACTION_MARKER,
  type Migration,
  type MigrateOptions,
  type MigrateResult,
} from './migrate.js';
export { migrationChecksum } from './migration-checksums.js';
export { LOCK_KEYS, type LockName } from './lock-keys.js';
export { analyzeStreamParent, ensureStreamPartitions, ensurePhiAuditPartitions } from './partitions.js';
export { acquireDataDirLock } from './lockfile.js';
export { pgArray, pgJsonArray } from './arrays.js';
