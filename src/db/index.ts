export type { Backend, Db, Queryable, QueryResult } from './types.js';
export { mapDbError } from './errors.js';
export { PostgresDb } from './postgres.js';
export { PgliteDb, type PgliteOptions } from './pglite.js';
export { openDb } from './open.js';
export { migrate, loadMigrations, findAppliedMigrations, type Migration, type MigrateResult } from './migrate.js';
export { analyzeStreamParent, ensureStreamPartitions, ensurePhiAuditPartitions } from './partitions.js';
export { acquireDataDirLock } from './lockfile.js';
export { pgArray, pgJsonArray } from './arrays.js';
