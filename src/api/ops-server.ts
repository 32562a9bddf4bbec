import Fastify, { type FastifyInstance } from 'fastify';
import type { Db } from '../db/index.js';
import type { Logger } from '../util/logger.js';
import { installErrorHandling } from './errors.js';
import { installHttpMetrics } from './http-metrics.js';
import type { WorkerLiveness } from './readiness.js';
import { healthRoutes } from './routes/health.js';
import { metricsRoutes } from './routes/metrics.js';

export interface OpsAppOptions {
  db: Db;
  logger: Logger;
  version: string;
  /** STEPWISE_METRICS_TOKEN: without it `/metrics` is 404 here too. */
  metricsToken?: string | undefined;
  /** The process's worker loop, for /health/ready. */
  workerLiveness?: (() => WorkerLiveness) | undefined;
}

/** Requests here carry no body; anything bigger is refused before parsing. */
const OPS_BODY_LIMIT = 1024;

/**
 * What a process without the API serves on STEPWISE_METRICS_PORT (`stepwise
 * worker`): `/metrics`, `/health`, `/health/live` and `/health/ready`, the
 * same routes and rules as the API's, and nothing else (404 in the API's
 * error format). Not listening; the caller listens.
 */
export async function buildOpsApp(options: OpsAppOptions): Promise<FastifyInstance> {
  const app = Fastify({ logger: false, bodyLimit: OPS_BODY_LIMIT });
  installErrorHandling(app, options.logger, OPS_BODY_LIMIT);
  installHttpMetrics(app);
  healthRoutes(app, options.db, options.version, { workerLiveness: options.workerLiveness });
  metricsRoutes(app, options.metricsToken);
  await app.ready();
  return app;
}
