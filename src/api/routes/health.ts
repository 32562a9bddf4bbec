import type { FastifyInstance } from 'fastify';
import type { Db } from '../../db/index.js';
import { findAppliedMigrations } from '../../db/index.js';
import { UnavailableError } from '../../errors/index.js';
import { checkReadiness, type ReadinessOptions } from '../readiness.js';

const readinessSchema = {
  type: 'object',
  properties: {
    status: { type: 'string', enum: ['ready', 'not ready'] },
    checks: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          name: { type: 'string', enum: ['database', 'migrations', 'worker'] },
          ok: { type: 'boolean' },
          reason: { type: 'string' },
        },
      },
    },
  },
} as const;

/**
 * `GET /health` (backend and schema version), and the Kubernetes probes:
 * `GET /health/live` (the event loop answers; touches nothing) and
 * `GET /health/ready` (api/readiness.ts). All public: they hold no tenant data.
 * `readiness` gives the readiness checks everything but the database.
 */
export function healthRoutes(app: FastifyInstance, db: Db, version: string, readiness: Omit<ReadinessOptions, 'db'> = {}): void {
  app.get(
    '/health',
    {
      config: { public: true },
      schema: {
        tags: ['service'],
        summary: 'Liveness, backend and schema version (no key needed)',
        response: {
          200: {
            type: 'object',
            properties: {
              status: { type: 'string' },
              backend: { type: 'string', enum: ['postgres', 'pglite'] },
              version: { type: 'string' },
              migrations: { type: 'object', properties: { applied: { type: 'integer' }, latest: { type: ['integer', 'null'] } } },
            },
          },
        },
      },
    },
    async () => {
      await db.query('SELECT 1').catch((err: unknown) => {
        throw new UnavailableError('database unreachable', {}, { cause: err });
      });
      const applied = await findAppliedMigrations(db);
      return {
        status: 'ok',
        backend: db.backend,
        version,
        migrations: { applied: applied.length, latest: applied[applied.length - 1] ?? null },
      };
    },
  );

  app.get(
    '/health/live',
    {
      config: { public: true },
      schema: {
        tags: ['service'],
        summary: 'Liveness probe: the process answers (no database call, no key needed)',
        response: { 200: { type: 'object', properties: { status: { type: 'string', enum: ['ok'] } } } },
      },
    },
    async () => ({ status: 'ok' }),
  );

  app.get(
    '/health/ready',
    {
      config: { public: true },
      schema: {
        tags: ['service'],
        summary: 'Readiness probe: database reachable, migrations applied, worker loop alive (503 with the failed checks otherwise; no key needed)',
        response: { 200: readinessSchema, 503: readinessSchema },
      },
    },
    async (_req, reply) => {
      const { ready, checks } = await checkReadiness({ ...readiness, db });
      return reply.status(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not ready', checks });
    },
  );
}
