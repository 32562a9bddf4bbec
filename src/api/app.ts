import Fastify, { type FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import type { BlobStore } from '../blob/index.js';
import { DEFAULT_CHECKPOINT_TTL_MS } from '../config/index.js';
import type { Db } from '../db/index.js';
import type { ReadReplica } from '../db/replica.js';
import type { Logger } from '../util/logger.js';
import { installAuth, type RouteEntry } from './auth.js';
import { installSecurityHeaders } from './headers.js';
import { DEFAULT_RATE_LIMIT, type RateLimitConfig } from './rate-limit.js';
import { installTenantScope } from './tenancy.js';
import { ContextDb } from '../db/tenant.js';
import { installErrorHandling } from './errors.js';
import { installValidation } from './validation.js';
import { rejectNulCharacters } from './nul.js';
import { healthRoutes } from './routes/health.js';
import { metricsRoutes } from './routes/metrics.js';
import { installHttpMetrics } from './http-metrics.js';
import type { WorkerLiveness } from './readiness.js';
import { workflowRoutes } from './routes/workflows.js';
import { DEFAULT_QUERY_BUDGETS, jobRoutes, type QueryBudgets } from './routes/jobs.js';
import { jobControlRoutes } from './routes/job-control.js';
import { webhookRoutes } from './routes/webhooks.js';
import { clientRoutes } from './routes/clients.js';
import { organizationRoutes } from './routes/organization.js';
import { scheduleRoutes } from './routes/schedules.js';
import { retentionRoutes } from './routes/retention.js';
import { screenshotRoutes } from './routes/screenshots.js';
import { knowledgeRoutes } from './routes/knowledge.js';
import { analyticsRoutes } from './routes/analytics.js';
import {
  clientSchema,
  durationStatsSchema,
  errorSchema,
  jobListItemSchema,
  jobSchema,
  jobStateSchema,
  nestedStepStateSchema,
  operationSchema,
  stepStateSchema,
  stepStatsSchema,
  streamEntrySchema,
  timeSeriesPointSchema,
  workflowSchema,
  workflowStatsSchema,
} from './schemas.js';
import { credentialRoutes } from './routes/credentials.js';
import { auditRoutes } from './routes/audit.js';
import type { KeyRing } from '../security/crypto.js';
import type { SessionLimits } from '../security/sessions.js';
import { userRoutes } from './routes/users.js';
import { apiKeyRoutes } from './routes/api-keys.js';
import { sessionRoutes } from './routes/sessions.js';
import { usageRoutes } from './routes/usage.js';
import { recorderImportRoutes } from './routes/recorder-import.js';
import { approvalRoutes } from './routes/approvals.js';
import { liveRoutes } from './routes/live.js';
import { DEFAULT_LIVE_OPTIONS, LiveHub, type LiveOptions } from './live/index.js';
import { bulkRoutes } from './routes/bulk.js';
import type { BulkRunner } from '../engine/bulk.js';
import { viewRoutes } from './routes/views.js';
import { templateRoutes } from './routes/templates.js';
import { atlasRoutes } from './atlas.js';
import { EgressPolicy } from '../net/address-policy.js';

/**
 * Request bodies up to 2 MiB are parsed, so a 1 MB definition or input still
 * reaches our own check and gets a 413 that names the field; beyond that
 * Fastify refuses the body before parsing it.
 */
export const BODY_LIMIT = 2 * 1024 * 1024;

export interface AppOptions {
  db: Db;
  logger: Logger;
  version: string;
  /** Where archived streams (and other large bytes) live; without it an archived job's stream answers 503. */
  blobs?: BlobStore | undefined;
  /** What credentials' secrets may name as a place to connect (STEPWISE_EGRESS_ALLOW); default: public addresses only. */
  egressPolicy?: EgressPolicy | undefined;
  /** Seals credentials (security/crypto.ts); without one, credential routes answer 503. */
  keyRing?: KeyRing | null | undefined;
  /** Per-key rate limit (default DEFAULT_RATE_LIMIT; perSecond 0 turns it off). */
  rateLimit?: RateLimitConfig | undefined;
  /**
   * How long the checkpoint a retry from the failed step copies lives: the workers' own
   * config.worker.checkpointTtlMs (STEPWISE_CHECKPOINT_TTL_MS); default DEFAULT_CHECKPOINT_TTL_MS.
   */
  checkpointTtlMs?: number | undefined;
  /**
   * Trust X-Forwarded-* from the proxy in front (Fastify's trustProxy): then a request that reached the proxy
   * over HTTPS gets the `__Host-` Secure session cookie and is checked against its https origin. Default false.
   */
  trustProxy?: boolean | undefined;
  /** Live updates (server-sent events): coalescing and per-connection queue limits (default DEFAULT_LIVE_OPTIONS). */
  live?: Partial<LiveOptions> | undefined;
  /** The process's bulk-operation runner (engine/bulk.ts), woken when POST /v1/jobs/bulk creates one; without it operations wait for a runner elsewhere. */
  bulkRunner?: BulkRunner | undefined;
  /** Where the built dashboard is (default dist/atlas); null serves no dashboard. */
  atlasDir?: string | null | undefined;
  /** Time budgets of the runs list and count (default DEFAULT_QUERY_BUDGETS, routes/jobs.ts). */
  queryBudgets?: QueryBudgets | undefined;
  /** How long dashboard sessions live, unused and at most (default DEFAULT_SESSION_LIMITS: 15 min, 12 h). */
  sessionLimits?: SessionLimits | undefined;
  /** STEPWISE_METRICS_TOKEN: serves GET /metrics to this Bearer token; without it /metrics is 404. */
  metricsToken?: string | undefined;
  /** The process's worker loop (Worker.liveness), checked by GET /health/ready; absent in a process without a worker. */
  workerLiveness?: (() => WorkerLiveness) | undefined;
  /** A read replica (db/replica.ts) for routes declaring `reads: 'replica'` (api/tenancy.ts); without one every read is on `db`. The caller closes it. */
  readReplica?: ReadReplica | undefined;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Every route registered, with its declared action (api/auth.ts). */
    routeTable: readonly RouteEntry[];
    /** The process's live-update hub (api/live/): one LISTEN shared by every server-sent-events client. */
    liveHub: LiveHub;
  }
}

/** The HTTP API as a Fastify instance (not listening; `inject` works for tests). */
export async function buildApp({ db: serviceDb, logger, version, blobs, rateLimit, keyRing, egressPolicy, checkpointTtlMs, bulkRunner, atlasDir, queryBudgets , live , trustProxy, sessionLimits, readReplica, metricsToken, workerLiveness }: AppOptions): Promise<FastifyInstance> {
  // Routes get a Db that, inside a request, is the request's tenant transaction (api/tenancy.ts).
  const db = new ContextDb(serviceDb);
  const app = Fastify({
    // Our own pino logger records errors (api/errors.ts); per-request logging is off for throughput.
    logger: false,
    bodyLimit: BODY_LIMIT,
    trustProxy: trustProxy ?? false,
  });
  installValidation(app);
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'Stepwise API', version, description: 'Durable workflow orchestration with a complete execution record.' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'API key' } } },
      security: [{ bearer: [] }],
    },
  });
  for (const schema of [
    errorSchema,
    workflowSchema,
    jobSchema,
    jobListItemSchema,
    streamEntrySchema,
    clientSchema,
    workflowStatsSchema,
    durationStatsSchema,
    timeSeriesPointSchema,
    stepStatsSchema,
    nestedStepStateSchema,
    stepStateSchema,
    jobStateSchema,
    operationSchema,
  ]) {
    app.addSchema(schema);
  }
  installErrorHandling(app, logger, BODY_LIMIT);
  installHttpMetrics(app);
  app.decorate('routeTable', installAuth(app, serviceDb, rateLimit ?? DEFAULT_RATE_LIMIT, sessionLimits));
  installTenantScope(app, db, readReplica);
  app.addHook('preValidation', async (req) => rejectNulCharacters(req.body));
  installSecurityHeaders(app);

  app.get('/openapi.json', { config: { public: true }, schema: { hide: true } }, async () => app.swagger());
  healthRoutes(app, db, version, { workerLiveness });
  metricsRoutes(app, metricsToken);
  workflowRoutes(app, db);
  recorderImportRoutes(app, db);
  jobRoutes(app, db, blobs, queryBudgets ?? DEFAULT_QUERY_BUDGETS);
  jobControlRoutes(app, db, checkpointTtlMs ?? DEFAULT_CHECKPOINT_TTL_MS);
  bulkRoutes(app, db, bulkRunner);
  clientRoutes(app, db);
  organizationRoutes(app, db);
  scheduleRoutes(app, db);
  webhookRoutes(app, db, keyRing ?? null);
  analyticsRoutes(app, db);
  retentionRoutes(app, db);
  screenshotRoutes(app, db, blobs, keyRing ?? null);
  knowledgeRoutes(app, db, blobs);
  credentialRoutes(app, db, keyRing ?? null, egressPolicy ?? new EgressPolicy());
  auditRoutes(app, db);
  userRoutes(app, db);
  apiKeyRoutes(app, db);
  sessionRoutes(app, db, sessionLimits);
  usageRoutes(app, db);
  approvalRoutes(app, db, keyRing ?? null, rateLimit ?? DEFAULT_RATE_LIMIT);
  const liveOptions: LiveOptions = { ...DEFAULT_LIVE_OPTIONS, ...live };
  const liveHub = new LiveHub(serviceDb, blobs, logger, liveOptions);
  app.decorate('liveHub', liveHub);
  // Before the server stops listening: open event streams would keep close() waiting forever.
  app.addHook('preClose', () => liveHub.close());
  liveRoutes(app, db, liveHub, liveOptions);
  viewRoutes(app, db);
  templateRoutes(app, db);
  if (atlasDir !== null) atlasRoutes(app, atlasDir);
  await app.ready();
  return app;
}
