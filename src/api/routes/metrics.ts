import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { UnauthorizedError } from '../../errors/index.js';
import { metrics } from '../../metrics/index.js';

/** SHA-256 of the text: equal-length inputs for timingSafeEqual, whatever was sent. */
function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/** The Bearer token of the request, or undefined. */
function bearer(req: FastifyRequest): string | undefined {
  const header = req.headers.authorization;
  if (typeof header !== 'string') return undefined;
  const m = /^Bearer +(\S+) *$/i.exec(header);
  return m?.[1];
}

/**
 * `GET /metrics`: every metric in the Prometheus text format. Metrics reveal
 * load, so the route exists only when STEPWISE_METRICS_TOKEN is set (without
 * it, 404 like any unknown route) and answers only a request that carries
 * that token as `Authorization: Bearer <token>` (compared in constant time;
 * 401 otherwise). Not an API key: Prometheus scrapes with a static token,
 * and API keys are per organization. Public as far as api/auth.ts goes, so
 * no API key is asked for and no rate limit spent.
 */
export function metricsRoutes(app: FastifyInstance, token: string | undefined): void {
  if (token === undefined) return;
  const expected = digest(token);
  app.get(
    '/metrics',
    {
      config: { public: true },
      schema: {
        tags: ['service'],
        summary: 'Prometheus metrics (Authorization: Bearer <STEPWISE_METRICS_TOKEN>; 404 while that is unset)',
        security: [{ bearer: [] }],
      },
    },
    async (req, reply) => {
      const sent = bearer(req);
      if (sent === undefined || !timingSafeEqual(digest(sent), expected)) {
        reply.header('www-authenticate', 'Bearer realm="metrics"');
        throw new UnauthorizedError(
          sent === undefined ? 'metrics need Authorization: Bearer <STEPWISE_METRICS_TOKEN>' : 'wrong metrics token',
          { path: '/headers/authorization' },
        );
      }
      const text = await metrics.render();
      return reply.header('content-type', metrics.contentType).header('cache-control', 'no-store').send(text);
    },
  );
}
