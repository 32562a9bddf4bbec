import type { FastifyInstance } from 'fastify';
import { metrics } from '../metrics/index.js';

/**
 * Record every answered request's duration under its route template
 * (`/v1/jobs/:id`, never the raw URL, so ids do not become label values),
 * method and status; a request no route matched is recorded as `unmatched`.
 * One histogram observation per request, in onResponse (after the reply is
 * sent: it adds nothing to the request's own time).
 */
export function installHttpMetrics(app: FastifyInstance): void {
  app.addHook('onResponse', (req, reply, done) => {
    // The not-found handler's requests carry no route url.
    metrics.observeHttp(req.routeOptions.url, req.method, reply.statusCode, reply.elapsedTime / 1000);
    done();
  });
}
