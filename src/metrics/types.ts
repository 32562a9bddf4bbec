/**
 * What the scrape-time instruments read from the rest of the process. They
 * are plain shapes so that src/metrics imports nothing of Stepwise: the
 * database adapters, the store and the replica router satisfy them
 * structurally, and tests pass fakes.
 */

/** One database connection pool at this moment (pg.Pool's totalCount/idleCount/waitingCount and its max). */
export interface PoolSnapshot {
  /** Connections open, busy or idle. */
  total: number;
  /** Open connections nobody is using. */
  idle: number;
  /** Callers waiting for a connection because all `max` are busy. */
  waiting: number;
  /** The most connections the pool opens. */
  max: number;
}

/** The job queue at this moment (store/queue-depth.ts measures it in one statement). */
export interface QueueSnapshot {
  /** Due and not leased (or leased to a worker whose lease expired): waiting for a worker now. */
  runnable: number;
  /** Leased to a live worker. */
  running: number;
  /** Not due yet: a delay, a wait with a timeout, a retry's backoff, a parked keyed run. */
  delayed: number;
  /** How long the oldest runnable row has been due, in seconds; null when nothing is runnable. */
  oldestRunnableAgeSeconds: number | null;
}

/** The read-replica router's state, as `observeReplica` reads it at every scrape. */
export interface ReplicaSnapshot {
  /** STEPWISE_READ_DATABASE_URL is set. */
  configured: boolean;
  /** The replica's replay lag in seconds; null when unknown (not configured, or never measured). */
  lagSeconds: number | null;
  /** Reads go to the replica now (false while it lags too far or is unreachable). */
  usingReplica: boolean;
  /** Reads served by the replica since the process started (monotonic). */
  readsOnReplica: number;
  /** Reads that could have gone to the replica and went to the primary (monotonic). */
  readsOnPrimary: number;
}

/** How a maintenance run ended (lifecycle/maintain.ts). */
/** `stopped`: the process shut down between two batches (the next run continues). */
export type MaintenanceResult = 'completed' | 'failed' | 'skipped' | 'stopped';

/** What a maintenance run did, by kind (lifecycle/maintain.ts maps its report to these). */
export const MAINTENANCE_ROW_KINDS = [
  'archived_stream_rows',
  'deleted_stream_rows',
  'dropped_partitions',
  'expired_archives',
  'expired_jobs',
  'expired_stream_rows',
  'expired_phi_audit_rows',
  'archived_results',
  'deleted_screenshots',
  'deleted_blobs',
  'deleted_web_sessions',
] as const;

export type MaintenanceRowKind = (typeof MAINTENANCE_ROW_KINDS)[number];
