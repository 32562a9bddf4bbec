import type { Config } from '../config/index.js';
import { PgliteDb } from './pglite.js';
import { PostgresDb } from './postgres.js';
import type { Db } from './types.js';

/** Open the configured backend: the server when DATABASE_URL is set, else PGlite under the data directory. */
export async function openDb(config: Pick<Config, 'databaseUrl' | 'dataDir' | 'dbPoolSize'>): Promise<Db> {
  if (config.databaseUrl) return new PostgresDb(config.databaseUrl, config.dbPoolSize);
  return PgliteDb.open({ dataDir: config.dataDir });
}
