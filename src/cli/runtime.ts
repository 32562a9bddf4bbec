import { readFileSync } from 'node:fs';
import type { Config } from '../config/index.js';
import { analyzeStreamParent, ensurePhiAuditPartitions, ensureStreamPartitions, migrate, openDb, type Db, type ProcessRole } from '../db/index.js';
import { createLogger, type Logger } from '../util/logger.js';
import { deleteExpiredCheckpoints } from '../store/index.js';
// sync.js, not the templates index: that one loads the engine (instantiate), ~1 s of every CLI command's start.
import { syncOfficialTemplates } from '../templates/sync.js';

export const VERSION: string = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

export interface Runtime {
  config: Config;
  db: Db;
  logger: Logger;
}

export interface OpenRuntimeOptions {
  /** false: leave the schema as it is (the `migrate` command applies it itself). */
  migrate?: boolean;
  /** What this process is, named in its connections' application_name (default `cli`). */
  role?: ProcessRole;
}

/**
 * Open the database and bring its schema up to date (migrations, partitions
 * ahead). Fails with SchemaTooNewError when the database was migrated by a
 * newer Stepwise, so an old process (re)started during an upgrade stops
 * instead of running against a schema it does not know.
 */
export async function openRuntime(config: Config, opts: OpenRuntimeOptions = {}): Promise<Runtime> {
  const logger = createLogger(config.logLevel);
  const db = await openDb(config, { role: opts.role ?? 'cli', logger });
  try {
    if (opts.migrate !== false) {
      const { applied } = await migrate(db, undefined, { lockTimeoutMs: config.migrationLockTimeoutMs, logger });
      if (applied.length > 0) logger.info({ applied }, 'migrations applied');
      await ensureStreamPartitions(db);
      await ensurePhiAuditPartitions(db);
      // Official templates are code: the table follows it at every start (templates/sync.ts says why).
      await syncOfficialTemplates(db);
    }
  } catch (err) {
    await db.close().catch(() => undefined);
    throw err;
  }
  return { config, db, logger };
}

/** How often housekeeping runs in serve and worker processes. */
const MAINTENANCE_INTERVAL_MS = 3600 * 1000;

/** The partitioned parent is analyzed at most this often (it re-samples every month partition). */
const ANALYZE_INTERVAL_MS = 24 * 3600 * 1000;

/**
 * Housekeeping for as long as the process runs: every hour, month
 * partitions created ahead (idempotent, advisory-locked) and expired
 * checkpoints deleted; once a day (the first hour after start, then every
 * 24 h), ANALYZE of the partitioned stream parent.
 */
export function scheduleMaintenance(db: Db, logger: Logger): () => void {
  let lastAnalyze = 0;
  const timer = setInterval(() => {
    ensureStreamPartitions(db).then(
      (created) => created.length > 0 && logger.info({ created }, 'stream partitions created'),
      (err: unknown) => logger.error({ err }, 'partition maintenance failed'),
    );
    ensurePhiAuditPartitions(db).then(
      (created) => created.length > 0 && logger.info({ created }, 'PHI audit partitions created'),
      (err: unknown) => logger.error({ err }, 'PHI audit partition maintenance failed'),
    );
    deleteExpiredCheckpoints(db).then(
      (deleted) => deleted > 0 && logger.info({ deleted }, 'expired checkpoints deleted'),
      (err: unknown) => logger.error({ err }, 'checkpoint cleanup failed'),
    );
    if (Date.now() - lastAnalyze >= ANALYZE_INTERVAL_MS) {
      lastAnalyze = Date.now();
      analyzeStreamParent(db).catch((err: unknown) => logger.error({ err }, 'ANALYZE of the stream parent failed'));
    }
  }, MAINTENANCE_INTERVAL_MS);
  timer.unref();
  return () => clearInterval(timer);
}

/** Run `shutdown` once on SIGTERM or SIGINT, then exit. A second signal exits at once. */
export function onShutdownSignal(shutdown: () => Promise<void>, logger: Logger): void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals) => {
    if (stopping) process.exit(130);
    stopping = true;
    logger.info({ signal }, 'shutting down');
    shutdown().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
}
