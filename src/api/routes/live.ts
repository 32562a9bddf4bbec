import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Db } from '../../db/index.js';
import { NotFoundError, ValidationError } from '../../errors/index.js';
import { jobListItemView, maskJobView, maskStreamEntries, type JobListItem } from '../../read/index.js';
import { findJob, type StreamEntry } from '../../store/index.js';
import type { LiveHub } from '../live/live-hub.js';
import { SseConnection, type SseLimits } from '../live/sse-connection.js';
import { auditJobReads, auditStreamRead, phiPathsOf } from '../phi.js';
import { idParams, phiQuery, responses, type PhiQuery } from '../schemas.js';
import type { StreamStart } from '../tenancy.js';

/** The success response of an event stream, for /openapi.json (the body is never serialised by Fastify). */
const eventStream = (description: string) => ({ description, content: { 'text/event-stream': { schema: { type: 'string' } } } });

/** Query of the live stream; `phi=mask` sends a PHI workflow's rows masked (read/phi-mask.ts) and audits nothing. */
type LiveStreamQuery = { afterSeq: number } & PhiQuery;

/**
 * How each stream row is sent: the StreamEntry JSON of GET /v1/jobs/:id/stream.
 * The one place rows are shaped for a live client (PHI masking goes here).
 */
export async function shapeStreamEntries(
  _job: JobListItem,
  rows: readonly StreamEntry[],
  query: LiveStreamQuery,
  phiPaths?: readonly string[],
): Promise<unknown[]> {
  const entries = rows.map((r) => ({ seq: r.seq, ts: r.ts, kind: r.kind, level: r.level, stepIndex: r.stepIndex, message: r.message, data: r.data, path: r.path }));
  // Masked rows say so one by one (`phiMasked: true`), as on GET /v1/jobs/:id/stream?phi=mask.
  return query.phi === 'mask' ? maskStreamEntries(entries, phiPaths) : entries;
}

/** `Last-Event-ID` (an EventSource reconnecting) wins over `afterSeq`. */
function resumePosition(req: FastifyRequest, afterSeq: number): number {
  const header = req.headers['last-event-id'];
  if (header === undefined) return afterSeq;
  const text = Array.isArray(header) ? header[0] : header;
  if (text === undefined || !/^\d{1,10}$/.test(text) || Number(text) > 2_147_483_647) {
    throw new ValidationError('the Last-Event-ID header must be a stream seq (a non-negative integer)', { path: 'headers/last-event-id' });
  }
  return Number(text);
}

/**
 * Server-sent events (api/live/): the organization's job changes, and one
 * job's stream as it is written. Both are `streaming` routes
 * (api/tenancy.ts): their checks run in a short tenant transaction, then
 * the response streams holding none.
 */
export function liveRoutes(app: FastifyInstance, db: Db, hub: LiveHub, limits: SseLimits): void {
  app.get(
    '/v1/events',
    {
      config: { action: 'jobs.read', streaming: true },
      schema: {
        tags: ['jobs'],
        summary: "Live changes of the organization's jobs (server-sent events)",
        description:
          '`event: job` with a JobListItem for every job created or changed (status, progress); changes are coalesced (at most one event per job every 200 ms). `: ping` every 15 s.',
        querystring: { type: 'object', additionalProperties: false, properties: phiQuery },
        response: responses({ 200: eventStream('text/event-stream of `job` events') }),
      },
    },
    async (req, reply): Promise<StreamStart> => {
      const organizationId = req.principal.organizationId;
      // phi=mask: a PHI workflow's items are masked as on GET /v1/jobs?phi=mask, and nothing is audited
      // (the dashboard's runs list shows no input or result, so watching it reads no PHI).
      const masked = (req.query as PhiQuery).phi === 'mask';
      return async () => {
        reply.hijack();
        const connection = new SseConnection(reply.raw, limits);
        await subscribeOrEnd(connection, req, limits, () =>
          hub.subscribeEvents({
            organizationId,
            connection,
            audit: async (tx, items) => {
              if (!masked) await auditJobReads(tx, req, items);
            },
            shape: async (tx, items) => {
              if (!masked) return items.map(jobListItemView);
              const phi = await phiPathsOf(tx, organizationId, items);
              return items.map((j) => maskJobView(jobListItemView(j), phi.get(j.id)));
            },
          }),
        );
      };
    },
  );

  app.get<{ Params: { id: string }; Querystring: LiveStreamQuery }>(
    '/v1/jobs/:id/stream/live',
    {
      config: { action: 'jobs.read', streaming: true },
      schema: {
        tags: ['jobs'],
        summary: "A job's stream as it is written (server-sent events)",
        description:
          '`id: <seq>`, `event: entry`, `data: <StreamEntry>` for each row after afterSeq (the `Last-Event-ID` header wins), in order, then live; `event: status` when the status changes; `event: end` once the job has finished and every row was sent, then the response ends.',
        params: idParams,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { afterSeq: { type: 'integer', minimum: 0, maximum: 2147483647, default: 0 }, ...phiQuery },
        },
        response: responses({ 200: eventStream('text/event-stream of `entry`, `status` and `end` events') }),
      },
    },
    async (req, reply): Promise<StreamStart> => {
      const organizationId = req.principal.organizationId;
      const lastSeq = resumePosition(req, req.query.afterSeq);
      const job = await findJob(db, organizationId, req.params.id);
      if (!job) throw new NotFoundError('job', req.params.id);
      const query = req.query;
      // A job's workflow version never changes: its PHI paths are looked up once, before streaming.
      const phiPaths = query.phi === 'mask' ? (await phiPathsOf(db, organizationId, [job])).get(job.id) : undefined;
      return async () => {
        reply.hijack();
        const connection = new SseConnection(reply.raw, limits);
        await subscribeOrEnd(connection, req, limits, () =>
          hub.subscribeStream({
            organizationId,
            jobId: job.id,
            connection,
            lastSeq,
            lastStatus: null,
            // Each batch of a PHI workflow's rows is audited (in the hub's transaction) as the polling route audits a page;
            // masked rows carry no PHI, so they are not.
            audit: async (tx, j, rows) => {
              if (query.phi !== 'mask') await auditStreamRead(tx, req, j, rows.length);
            },
            shape: (j, rows) => shapeStreamEntries(j, rows, query, phiPaths),
          }),
        );
      };
    },
  );
}

/**
 * The response is already streaming: a failure to subscribe ends it
 * (EventSource retries). While it lasts, the request's credentials are
 * checked again every `limits.recheckMs` (30 s): a revoked key, a signed-out or expired
 * session or a disabled user ends the stream (its reconnect then gets 401).
 */
async function subscribeOrEnd(connection: SseConnection, req: FastifyRequest, limits: SseLimits, subscribe: () => Promise<void>): Promise<void> {
  const organizationId = req.principal.organizationId;
  const timer = setInterval(() => {
    req.recheckPrincipal().then(
      (p) => {
        if (p.organizationId !== organizationId) connection.end('server');
      },
      () => connection.end('server'),
    );
  }, limits.recheckMs);
  timer.unref();
  connection.onClose(() => clearInterval(timer));
  try {
    await subscribe();
  } catch {
    connection.end('server');
  }
}
