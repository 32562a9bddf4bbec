import type { FastifyInstance } from 'fastify';
import { buildOpsApp } from '../api/ops-server.js';
import type { WorkerLiveness } from '../api/readiness.js';
import type { Config } from '../config/index.js';
import type { Db, ReadReplica } from '../db/index.js';
import { metrics, observeReplica } from '../metrics/index.js';
import { measureQueueDepth } from '../store/queue-depth.js';
import type { Logger } from '../util/logger.js';

/**
 * Point the process's metrics at its configuration and database: organization
 * labels as configured, the pools' figures, the queue's depth and the read
 * replica's lag and routing read at scrapes. Returns the function that stops
 * reading them (before the database closes).
 */
export function watchProcessMetrics(config: Pick<Config, 'metricsOrganizationLabels'>, db: Db, replica?: ReadReplica | undefined): () => void {
  metrics.setOrganizationLabels(config.metricsOrganizationLabels);
  const stops = [metrics.watchQueue(() => measureQueueDepth(db))];
  if (db.poolStats) stops.push(metrics.watchPool('primary', () => db.poolStats?.()));
  if (replica) {
    const replicaDb = replica.db;
    if (replicaDb.poolStats) stops.push(metrics.watchPool('replica', () => replicaDb.poolStats?.()));
    stops.push(observeReplica(() => replica.status()));
  }
  return () => stops.forEach((stop) => stop());
}

/**
 * STEPWISE_METRICS_PORT: serve `/metrics` and `/health/*` on their own port
 * (the only HTTP a `stepwise worker` serves), on the configured host. Returns
 * the listening server to close at shutdown, or undefined when unset.
 */
export async function startOpsServer(
  config: Pick<Config, 'metricsPort' | 'metricsToken' | 'host'>,
  runtime: { db: Db; logger: Logger; version: string; workerLiveness?: (() => WorkerLiveness) | undefined },
): Promise<FastifyInstance | undefined> {
  if (config.metricsPort === undefined) return undefined;
  const app = await buildOpsApp({ ...runtime, metricsToken: config.metricsToken });
  const address = await app.listen({ port: config.metricsPort, host: config.host });
  runtime.logger.info({ address, metrics: config.metricsToken !== undefined }, 'metrics and health probes listening');
  return app;
}
