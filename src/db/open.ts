import type { Config } from '../config/index.js';
import { ValidationError } from '../errors/index.js';
import type { Logger } from '../util/logger.js';
import { PgliteDb } from './pglite.js';
import { PostgresDb } from './postgres.js';
import { ReadReplica } from './replica.js';
import type { Db, ProcessRole } from './types.js';

export interface OpenDbOptions {
  /** Named in the server connections' application_name (PGlite has no connections to name). */
  role?: ProcessRole;
  /** Where the server adapter logs connection drops and reconnections (default: stderr). */
  logger?: Logger;
}

/** Open the configured backend: the server when DATABASE_URL is set, else PGlite under the data directory. */
export async function openDb(
  config: Pick<Config, 'databaseUrl' | 'dataDir' | 'dbPoolSize'> & Partial<Pick<Config, 'directDatabaseUrl' | 'dbPreparedStatements'>>,
  options: OpenDbOptions = {},
): Promise<Db> {
  if (config.databaseUrl) {
    return new PostgresDb(config.databaseUrl, {
      poolSize: config.dbPoolSize,
      role: options.role,
      logger: options.logger,
      directUrl: config.directDatabaseUrl,
      preparedStatements: config.dbPreparedStatements,
    });
  }
  return PgliteDb.open({ dataDir: config.dataDir });
}

/**
 * How long an API request waits for a database connection before it is
 * answered 503 with Retry-After: long enough for a pool busy with a burst,
 * short enough that a client is never left hanging while the server is down
 * or unreachable (a connect to a host that drops packets would otherwise wait
 * for the OS, ~2 min).
 */
export const API_CHECKOUT_TIMEOUT_MS = 5_000;

/**
 * The Db the API serves requests with: on the server, `db` with every
 * checkout bounded to API_CHECKOUT_TIMEOUT_MS (the same pool; the worker
 * `serve` runs beside it keeps unbounded waits, its writes retry). PGlite has
 * one in-process connection and no outage to wait out: `db` as it is.
 */
export function apiRequestDb(db: Db): Db {
  return db instanceof PostgresDb ? db.withCheckoutTimeout(API_CHECKOUT_TIMEOUT_MS) : db;
}

/**
 * The configured read replica (STEPWISE_READ_DATABASE_URL), or undefined
 * when none is configured. Only the API uses one. The caller starts its lag
 * monitor once the process is up (until the first probe round, reads go to
 * the primary) and closes it before the primary.
 */
export function openReadReplica(config: Pick<Config, 'readReplica'>, primary: Db, options: Pick<OpenDbOptions, 'logger'> = {}): ReadReplica | undefined {
  const settings = config.readReplica;
  if (!settings) return undefined;
  // loadConfig already refuses this; a Config assembled elsewhere must not slip past it.
  if (primary.backend !== 'postgres') {
    throw new ValidationError('STEPWISE_READ_DATABASE_URL needs DATABASE_URL (a PostgreSQL server to stream from)', { path: 'STEPWISE_READ_DATABASE_URL' });
  }
  return new ReadReplica({ url: settings.url, primary, maxLagMs: settings.maxLagMs, poolSize: settings.poolSize, logger: options.logger });
}
