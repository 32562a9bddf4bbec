import Fastify, { type FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import type { BlobStore } from '../blob/index.js';
import { DEFAULT_CHECKPOINT_TTL_MS } from '../config/index.js';
import type { Db } from '../db/index.js';
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
import { workflowRoutes } from './routes/workflows.js';
import { jobRoutes } from './routes/jobs.js';
import { jobControlRoutes } from './routes/job-control.js';
import { webhookRoutes } from './routes/webhooks.js';
import { clientRoutes } from './routes/clients.js';
import { organizationRoutes } from './routes/organization.js';
import { scheduleRoutes } from './routes/schedules.js';
import { retentionRoutes } from './routes/retention.js';
import { screenshotRoutes } from './routes/screenshots.js';
import { analyticsRoutes } from './routes/analytics.js';
import {
  clientSchema,
  durationStatsSchema,
  errorSchema,
  jobListItemSchema,
  jobSchema,
  jobStateSchema,
  nestedStepStateSchema,
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
import { userRoutes } from './routes/users.js';
import { apiKeyRoutes } from './routes/api-keys.js';
import { usageRoutes } from './routes/usage.js';
import { recorderImportRoutes } from './routes/recorder-import.js';
import { approvalRoutes } from './routes/approvals.js';

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
  /** Seals credentials (security/crypto.ts); without one, credential routes answer 503. */
  keyRing?: KeyRing | null | undefined;
  /** Per-key rate limit (default DEFAULT_RATE_LIMIT; perSecond 0 turns it off). */
  rateLimit?: RateLimitConfig | undefined;
  /**
   * How long the checkpoint a retry from the failed step copies lives: the workers' own
   * config.worker.checkpointTtlMs (STEPWISE_CHECKPOINT_TTL_MS); default DEFAULT_CHECKPOINT_TTL_MS.
   */
  checkpointTtlMs?: number | undefined;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Every route registered, with its declared action (api/auth.ts). */
    routeTable: readonly RouteEntry[];
  }
}

/** The HTTP API as a Fastify instance (not listening; `inject` works for tests). */
export async function buildApp({ db: serviceDb, logger, version, blobs, rateLimit, keyRing, checkpointTtlMs }: AppOptions): Promise<FastifyInstance> {
  // Routes get a Db that, inside a request, is the request's tenant transaction (api/tenancy.ts).
  const db = new ContextDb(serviceDb);
  const app = Fastify({
    // Our own pino logger records errors (api/errors.ts); per-request logging is off for throughput.
    logger: false,
    bodyLimit: BODY_LIMIT,
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
  ]) {
    app.addSchema(schema);
  }
  installErrorHandling(app, logger, BODY_LIMIT);
  app.decorate('routeTable', installAuth(app, serviceDb, rateLimit ?? DEFAULT_RATE_LIMIT));
  installTenantScope(app, db);
  app.addHook('preValidation', async (req) => rejectNulCharacters(req.body));
  installSecurityHeaders(app);

  app.get('/openapi.json', { config: { public: true }, schema: { hide: true } }, async () => app.swagger());
  healthRoutes(app, db, version);
  workflowRoutes(app, db);
  recorderImportRoutes(app, db);
  jobRoutes(app, db, blobs);
  jobControlRoutes(app, db, checkpointTtlMs ?? DEFAULT_CHECKPOINT_TTL_MS);
  clientRoutes(app, db);
  organizationRoutes(app, db);
  scheduleRoutes(app, db);
  webhookRoutes(app, db, keyRing ?? null);
  analyticsRoutes(app, db);
  retentionRoutes(app, db);
  screenshotRoutes(app, db, blobs, keyRing ?? null);
  credentialRoutes(app, db, keyRing ?? null);
  auditRoutes(app, db);
  userRoutes(app, db);
  apiKeyRoutes(app, db);
  usageRoutes(app, db);
  approvalRoutes(app, db, keyRing ?? null, rateLimit ?? DEFAULT_RATE_LIMIT);
  await app.ready();
  return app;
}
