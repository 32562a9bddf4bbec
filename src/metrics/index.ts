import { StepwiseMetrics } from './metrics.js';
import type { ReplicaSnapshot } from './types.js';

/**
 * The process's metrics: one instance, built on import, that every layer
 * records into and `GET /metrics` renders. Organization labels are off until
 * the process's configuration switches them on (cli/serve.ts, cli/worker.ts).
 */
export const metrics: StepwiseMetrics = new StepwiseMetrics();

/**
 * Export the read-replica router's figures (`stepwise_replica_*`), read from
 * `source` at every scrape: whether a replica is configured, its lag, whether
 * reads use it now, and reads by where they went. Returns the function that
 * stops reporting them.
 */
export function observeReplica(source: () => ReplicaSnapshot): () => void {
  return metrics.observeReplica(source);
}

export { StepwiseMetrics, QUEUE_CACHE_MS, UNMATCHED_ROUTE, type StepwiseMetricsOptions, type RunStartLike, type RunFinishLike } from './metrics.js';
export { CachedSource } from './cached-source.js';
export {
  MAINTENANCE_ROW_KINDS,
  type MaintenanceResult,
  type MaintenanceRowKind,
  type PoolSnapshot,
  type QueueSnapshot,
  type ReplicaSnapshot,
} from './types.js';
