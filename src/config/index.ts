import { resolve } from 'node:path';
import { ValidationError } from '../errors/index.js';
import { parseEgressAllow, type EgressAllowEntry } from '../net/address-policy.js';
import { parsePriceTable, type PriceTable } from '../ai/prices.js';

/** Everything Stepwise reads from its environment, validated once and frozen. */
export interface Config {
  /** PostgreSQL server URL; absent means embedded PGlite under `dataDir`. */
  readonly databaseUrl: string | undefined;
  readonly dataDir: string;
  readonly host: string;
  readonly port: number;
  readonly dbPoolSize: number;
  /**
   * STEPWISE_DIRECT_DATABASE_URL: the same database reached without a transaction-pooling
   * PgBouncer, for the work that needs a connection of its own for a while — LISTEN and
   * `Db.session` (migrations' session lock). Undefined: DATABASE_URL serves everything.
   */
  readonly directDatabaseUrl: string | undefined;
  /**
   * STEPWISE_DB_PREPARED_STATEMENTS=false: run the few named prepared statements (the claim)
   * unnamed, for a PgBouncer in transaction mode older than 1.21 (or max_prepared_statements=0),
   * which hands a statement's parse and its executions to different server connections.
   */
  readonly dbPreparedStatements: boolean;
  /** STEPWISE_READ_DATABASE_URL and its settings: a streaming read replica of the server (db/replica.ts); undefined when unset. */
  readonly readReplica: ReadReplicaConfig | undefined;
  /** STEPWISE_MIGRATION_LOCK_TIMEOUT_MS: how long a migration waits for a table lock before failing (default 5 s). */
  readonly migrationLockTimeoutMs: number;
  readonly worker: WorkerConfig;
  readonly logLevel: string;
  /** Per API key, per process: sustained requests per second (0: off) and burst. */
  readonly rateLimit: { readonly perSecond: number; readonly burst: number };
  /**
   * STEPWISE_EGRESS_ALLOW: what tenant-driven connections may reach beyond public addresses
   * (comma-separated host, host:port, address, CIDR; see net/address-policy.ts). Empty by default.
   */
  readonly egressAllow: readonly EgressAllowEntry[];
  readonly blob: BlobConfig;
  /** STEPWISE_CHROMIUM_PATH: the Chromium binary browser steps drive (Debian's package by default; never downloaded). */
  readonly chromiumPath: string;
  /** STEPWISE_BROWSER_CONTEXTS: browser contexts one worker process keeps open at once (default 3); more browser steps wait. */
  readonly browserContexts: number;
  /** STEPWISE_SESSION_IDLE_S / STEPWISE_SESSION_MAX_S: dashboard sessions end this long unused (default 15 min) or this long after sign-in (default 12 h). */
  readonly sessions: { readonly idleMs: number; readonly absoluteMs: number };
  /**
   * STEPWISE_TRUST_PROXY=true: the API is behind a TLS-terminating proxy whose X-Forwarded-Proto/-For
   * it believes — the session cookie becomes `__Host-` + Secure, the same-origin check compares
   * https origins, and sign-in throttling counts the client's address, not the proxy's.
   */
  readonly trustProxy: boolean;
  /** STEPWISE_METRICS_TOKEN: the Bearer token GET /metrics requires; undefined (unset) and /metrics is 404. */
  readonly metricsToken: string | undefined;
  /** STEPWISE_METRICS_ORGANIZATION_LABELS=true: the per-run counters get an `organization` label (one series per organization). */
  readonly metricsOrganizationLabels: boolean;
  /** STEPWISE_METRICS_PORT: also serve /metrics and /health/* on this port (how `stepwise worker` exposes them); undefined: not. */
  readonly metricsPort: number | undefined;
  /**
   * STEPWISE_LLM_PRICES: USD per 1M input/output tokens by model (`{"model":{"input":x,"output":y}}`)
   * over the built-in table (ai/prices.ts), for llm steps' costUsd and usage; unknown models cost 0.
   */
  readonly llmPrices: PriceTable;
}

/** A read replica for replica-eligible API reads (run lists, analytics, finished jobs' streams, audit reads). */
export interface ReadReplicaConfig {
  /** STEPWISE_READ_DATABASE_URL: a hot standby streaming from DATABASE_URL's server. */
  readonly url: string;
  /** STEPWISE_REPLICA_MAX_LAG_MS: above this lag, reads go to the primary (default 5 s). */
  readonly maxLagMs: number;
  /** STEPWISE_READ_DB_POOL_SIZE: connections to the replica per process (default 10). */
  readonly poolSize: number;
}

/** STEPWISE_REPLICA_MAX_LAG_MS when unset. */
export const DEFAULT_REPLICA_MAX_LAG_MS = 5_000;

/** Where Debian's `chromium` package puts the binary (the /usr/bin wrapper script is not used). */
export const DEFAULT_CHROMIUM_PATH = '/usr/lib/chromium/chromium';

/** Where large bytes go (src/blob): screenshots, archived streams, large job results. */
export interface BlobConfig {
  /** STEPWISE_BLOB_BACKEND: 'fs' (default) or 'azure'. */
  readonly backend: 'fs' | 'azure';
  /** STEPWISE_BLOB_DIR: root of the fs backend; default `<dataDir>/blobs`. */
  readonly dir: string;
  /** STEPWISE_AZURE_STORAGE_CONNECTION_STRING (or AZURE_STORAGE_CONNECTION_STRING). */
  readonly azureConnectionString: string | undefined;
  /** STEPWISE_AZURE_CONTAINER: created on first use if missing. */
  readonly azureContainer: string;
}

export interface WorkerConfig {
  /** Jobs one worker process runs at once. */
  readonly concurrency: number;
  /** Most jobs taken in one claim statement. */
  readonly claimBatchSize: number;
  /** Fallback poll when no notification arrives (missed NOTIFY, delayed runs). */
  readonly pollIntervalMs: number;
  /** A claimed job's lease; heartbeats renew it at a third of this. */
  readonly leaseMs: number;
  /** Stream rows and completions are flushed at least this often. */
  readonly flushIntervalMs: number;
  /** Default per-step timeout (a step may lower or raise it later). */
  readonly stepTimeoutMs: number;
  /** Bytes of an HTTP response body kept in the step's output. */
  readonly httpMaxResponseBytes: number;
  /** How long a SIGTERM waits for in-flight jobs before handing them back. */
  readonly shutdownGraceMs: number;
  /** How long a checkpoint lives (a FAILED job's is kept this long for retry-from-failed-step). */
  readonly checkpointTtlMs: number;
  /**
   * STEPWISE_RESULT_INLINE_BYTES: a job result larger than this goes to blob storage and the
   * jobs row keeps only a reference, so job reads and the hot table stay small whatever a workflow returns.
   */
  readonly resultInlineBytes: number;
  /** STEPWISE_EGRESS_ALLOW (the same entries as Config.egressAllow): what steps may reach beyond public addresses. */
  readonly egressAllow: readonly EgressAllowEntry[];
}

/** STEPWISE_CHECKPOINT_TTL_MS when unset: a day, for someone to look at a failure and retry it from the failed step. */
export const DEFAULT_CHECKPOINT_TTL_MS = 24 * 3600 * 1000;

type Env = Record<string, string | undefined>;

export interface ConfigOverrides {
  databaseUrl?: string;
  dataDir?: string;
  host?: string;
  port?: number;
  worker?: Partial<WorkerConfig>;
  blob?: Partial<BlobConfig>;
}

function bool(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (raw === 'true' || raw === '1') return true;
  if (raw === 'false' || raw === '0') return false;
  throw new ValidationError(`${name} must be true or false, got "${raw}"`, { path: name });
}

function int(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ValidationError(`${name} must be an integer between ${min} and ${max}, got "${raw}"`, {
      path: name,
      min,
      max,
    });
  }
  return value;
}

/** Read the environment (and CLI overrides) into a frozen Config. Throws ValidationError on bad values. */
export function loadConfig(env: Env = process.env, overrides: ConfigOverrides = {}): Config {
  const databaseUrl = overrides.databaseUrl ?? (env.DATABASE_URL || undefined);
  if (databaseUrl !== undefined && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    throw new ValidationError('DATABASE_URL must start with postgres:// or postgresql://', { path: 'DATABASE_URL' });
  }
  const port = overrides.port ?? int(env, 'PORT', 3000, 0, 65535);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new ValidationError(`port must be an integer between 0 and 65535, got ${port}`, { path: 'port' });
  }
  const egressAllow = Object.freeze(parseEgressAllow(env.STEPWISE_EGRESS_ALLOW));
  const worker: WorkerConfig = {
    concurrency: int(env, 'STEPWISE_WORKER_CONCURRENCY', 100, 1, 10_000),
    claimBatchSize: int(env, 'STEPWISE_CLAIM_BATCH_SIZE', 100, 1, 5_000),
    pollIntervalMs: int(env, 'STEPWISE_POLL_INTERVAL_MS', 1000, 10, 600_000),
    leaseMs: int(env, 'STEPWISE_LEASE_MS', 30_000, 1_000, 3_600_000),
    flushIntervalMs: int(env, 'STEPWISE_FLUSH_INTERVAL_MS', 5, 0, 10_000),
    stepTimeoutMs: int(env, 'STEPWISE_STEP_TIMEOUT_MS', 30_000, 1, 86_400_000),
    httpMaxResponseBytes: int(env, 'STEPWISE_HTTP_MAX_RESPONSE_BYTES', 256 * 1024, 0, 64 * 1024 * 1024),
    shutdownGraceMs: int(env, 'STEPWISE_SHUTDOWN_GRACE_MS', 10_000, 0, 600_000),
    checkpointTtlMs: int(env, 'STEPWISE_CHECKPOINT_TTL_MS', DEFAULT_CHECKPOINT_TTL_MS, 60_000, 90 * 24 * 3600 * 1000),
    resultInlineBytes: int(env, 'STEPWISE_RESULT_INLINE_BYTES', 64 * 1024, 0, 1024 * 1024),
    egressAllow,
    ...overrides.worker,
  };
  const dataDir = resolve(overrides.dataDir ?? env.STEPWISE_DATA_DIR ?? '.stepwise/data');
  return Object.freeze({
    databaseUrl,
    dataDir,
    host: overrides.host ?? env.HOST ?? '127.0.0.1',
    port,
    dbPoolSize: int(env, 'STEPWISE_DB_POOL_SIZE', 10, 1, 1000),
    directDatabaseUrl: loadDirectDatabaseUrl(env, databaseUrl, overrides.databaseUrl !== undefined && overrides.databaseUrl !== env.DATABASE_URL),
    dbPreparedStatements: bool(env, 'STEPWISE_DB_PREPARED_STATEMENTS', true),
    migrationLockTimeoutMs: int(env, 'STEPWISE_MIGRATION_LOCK_TIMEOUT_MS', 5_000, 1, 3_600_000),
    readReplica: loadReadReplicaConfig(env, databaseUrl),
    worker: Object.freeze(worker),
    logLevel: env.LOG_LEVEL ?? 'info',
    egressAllow,
    blob: Object.freeze({ ...loadBlobConfig(env, dataDir), ...overrides.blob }),
    chromiumPath: env.STEPWISE_CHROMIUM_PATH || DEFAULT_CHROMIUM_PATH,
    browserContexts: int(env, 'STEPWISE_BROWSER_CONTEXTS', 3, 1, 64),
    sessions: Object.freeze({
      idleMs: int(env, 'STEPWISE_SESSION_IDLE_S', 15 * 60, 1, 7 * 86_400) * 1000,
      absoluteMs: int(env, 'STEPWISE_SESSION_MAX_S', 12 * 3600, 60, 30 * 86_400) * 1000,
    }),
    trustProxy: bool(env, 'STEPWISE_TRUST_PROXY', false),
    rateLimit: Object.freeze({
      perSecond: int(env, 'STEPWISE_RATE_LIMIT_PER_SECOND', 100, 0, 1_000_000),
      burst: int(env, 'STEPWISE_RATE_LIMIT_BURST', 500, 1, 10_000_000),
    }),
    ...loadMetricsConfig(env),
    llmPrices: parsePriceTable(env.STEPWISE_LLM_PRICES),
  });
}

function loadDirectDatabaseUrl(env: Env, databaseUrl: string | undefined, databaseOverridden: boolean): string | undefined {
  const url = env.STEPWISE_DIRECT_DATABASE_URL || undefined;
  if (url === undefined) return undefined;
  if (databaseOverridden) {
    // The direct URL names the environment's database: with another one given on the command
    // line, migrations' session lock and LISTEN would go to a different database than the pool.
    throw new ValidationError('STEPWISE_DIRECT_DATABASE_URL is set for DATABASE_URL, but --database-url names another database: unset it or give both', {
      path: 'STEPWISE_DIRECT_DATABASE_URL',
    });
  }
  if (databaseUrl === undefined) {
    throw new ValidationError('STEPWISE_DIRECT_DATABASE_URL needs DATABASE_URL: it is a second way to the same PostgreSQL server', {
      path: 'STEPWISE_DIRECT_DATABASE_URL',
    });
  }
  if (!/^postgres(ql)?:\/\//.test(url)) {
    throw new ValidationError('STEPWISE_DIRECT_DATABASE_URL must start with postgres:// or postgresql://', { path: 'STEPWISE_DIRECT_DATABASE_URL' });
  }
  return url;
}

function loadReadReplicaConfig(env: Env, databaseUrl: string | undefined): ReadReplicaConfig | undefined {
  const url = env.STEPWISE_READ_DATABASE_URL || undefined;
  if (url === undefined) return undefined;
  if (databaseUrl === undefined) {
    // PGlite is one process's embedded database: nothing can stream from it.
    throw new ValidationError('STEPWISE_READ_DATABASE_URL needs DATABASE_URL: a read replica streams from a PostgreSQL server, not the embedded PGlite', {
      path: 'STEPWISE_READ_DATABASE_URL',
    });
  }
  if (!/^postgres(ql)?:\/\//.test(url)) {
    throw new ValidationError('STEPWISE_READ_DATABASE_URL must start with postgres:// or postgresql://', { path: 'STEPWISE_READ_DATABASE_URL' });
  }
  return Object.freeze({
    url,
    // At least 100 ms: lower, every ordinary replay hiccup would send reads back to the primary.
    // At most an hour: a staler answer misleads more than the primary's load it saves.
    maxLagMs: int(env, 'STEPWISE_REPLICA_MAX_LAG_MS', DEFAULT_REPLICA_MAX_LAG_MS, 100, 3_600_000),
    poolSize: int(env, 'STEPWISE_READ_DB_POOL_SIZE', 10, 1, 1000),
  });
}

function loadBlobConfig(env: Env, dataDir: string): BlobConfig {
  const backend = env.STEPWISE_BLOB_BACKEND || 'fs';
  if (backend !== 'fs' && backend !== 'azure') {
    throw new ValidationError(`STEPWISE_BLOB_BACKEND must be "fs" or "azure", got "${backend}"`, {
      path: 'STEPWISE_BLOB_BACKEND',
    });
  }
  const azureConnectionString =
    env.STEPWISE_AZURE_STORAGE_CONNECTION_STRING || env.AZURE_STORAGE_CONNECTION_STRING || undefined;
  if (backend === 'azure' && !azureConnectionString) {
    throw new ValidationError('STEPWISE_BLOB_BACKEND=azure needs STEPWISE_AZURE_STORAGE_CONNECTION_STRING', {
      path: 'STEPWISE_AZURE_STORAGE_CONNECTION_STRING',
    });
  }
  const azureContainer = env.STEPWISE_AZURE_CONTAINER || 'stepwise';
  // Azure container names: 3-63 chars, lowercase letters, digits and single hyphens.
  if (!/^(?!.*--)[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/.test(azureContainer)) {
    throw new ValidationError(`STEPWISE_AZURE_CONTAINER "${azureContainer}" is not a valid container name`, {
      path: 'STEPWISE_AZURE_CONTAINER',
    });
  }
  return {
    backend,
    dir: resolve(env.STEPWISE_BLOB_DIR || resolve(dataDir, 'blobs')),
    azureConnectionString,
    azureContainer,
  };
}

/**
 * A metrics token is a static secret in a scraper's configuration: at least
 * 16 visible ASCII characters (so `openssl rand -hex 16` qualifies and a
 * placeholder like "secret" does not), no spaces (it travels in one header).
 */
const METRICS_TOKEN = /^[\x21-\x7e]{16,1024}$/;

function loadMetricsConfig(env: Env): Pick<Config, 'metricsToken' | 'metricsOrganizationLabels' | 'metricsPort'> {
  const token = env.STEPWISE_METRICS_TOKEN || undefined;
  if (token !== undefined && !METRICS_TOKEN.test(token)) {
    throw new ValidationError('STEPWISE_METRICS_TOKEN must be 16 to 1024 visible ASCII characters without spaces', {
      path: 'STEPWISE_METRICS_TOKEN',
      min: 16,
      max: 1024,
    });
  }
  const port = env.STEPWISE_METRICS_PORT ? int(env, 'STEPWISE_METRICS_PORT', 0, 1, 65535) : undefined;
  return {
    metricsToken: token,
    metricsOrganizationLabels: bool(env, 'STEPWISE_METRICS_ORGANIZATION_LABELS', false),
    metricsPort: port,
  };
}
