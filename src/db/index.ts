export type { Backend, Db, ListenOptions, ProcessRole, Queryable, QueryOptions, QueryResult } from './types.js';
export {
  DATABASE_RETRY_AFTER_SECONDS,
  DatabaseUnavailableError,
  isDatabaseUnavailable,
  isLockNotAvailable,
  mapConnectError,
  mapDbError,
  ReadOnlyTransactionError,
  unavailableReason,
  type UnavailableReason,
} from './errors.js';
export { PostgresDb, applicationName, DEFAULT_CONNECT_TIMEOUT_MS, type PostgresDbOptions } from './postgres.js';
export { PgliteDb, type PgliteOptions } from './pglite.js';
export { API_CHECKOUT_TIMEOUT_MS, apiRequestDb, openDb, openReadReplica, type OpenDbOptions } from './open.js';
export { ReadReplica, replicaStatus, NO_REPLICA_STATUS, DEFAULT_REPLICA_PROBE_INTERVAL_MS, type ReadReplicaOptions, type ReplicaStatus } from './replica.js';
export { assessReplica, replicaLagMs, parseLsn, type ReplicaAssessment, type ReplicaSample } from './replica-lag.js';
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
