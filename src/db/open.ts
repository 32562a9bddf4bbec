import type { Config } from '../config/index.js';
import type { Logger } from '../util/logger.js';
import { PgliteDb } from './pglite.js';
import { PostgresDb } from './postgres.js';
import type { Db, ProcessRole } from './types.js';

export interface OpenDbOptions {
  /** Named in the server connections' application_name (PGlite has no connections to name). */
  role?: ProcessRole;
  /** Where the server adapter logs connection drops and reconnections (default: stderr). */
  logger?: Logger;
}

/** Open the configured backend: the server when DATABASE_URL is set, else PGlite under the data directory. */
export async function openDb(config: Pick<Config, 'databaseUrl' | 'dataDir' | 'dbPoolSize'>, options: OpenDbOptions = {}): Promise<Db> {
  if (config.databaseUrl) {
    return new PostgresDb(config.databaseUrl, { poolSize: config.dbPoolSize, role: options.role, logger: options.logger });
  }
  return PgliteDb.open({ dataDir: config.dataDir });
}
