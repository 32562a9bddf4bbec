import type { FastifyInstance } from 'fastify';
import type { Db } from '../../db/index.js';
import { NotFoundError } from '../../errors/index.js';
import { findJob, JOB_STATUSES, listJobs, listStream, LOG_LEVELS, type JobStatus, type LogLevel } from '../../store/index.js';
import { decodeNumberCursor, encodeNumberCursor } from '../cursor.js';
import { idParams, pageQuery, responses, uuid } from '../schemas.js';
import { jobView } from '../views.js';
import { auditJobReads, auditStreamRead } from '../phi.js';

export function jobRoutes(app: FastifyInstance, db: Db): void {
  app.get<{ Querystring: { limit: number; cursor?: string; status?: JobStatus[]; workflowId?: string } }>(
    '/v1/jobs',
    {
      config: { action: 'jobs.read' },
      schema: {
        tags: ['jobs'],
        summary: 'List jobs, newest first, keyset-paginated',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            ...pageQuery,
            // ?status=FAILED&status=TIMED_OUT or ?status=FAILED,TIMED_OUT (split in preValidation)
            status: { type: 'array', items: { type: 'string', enum: [...JOB_STATUSES] }, maxItems: JOB_STATUSES.length },
            workflowId: uuid,
          },
        },
        response: responses({
          200: {
            type: 'object',
            properties: { items: { type: 'array', items: { $ref: 'Job#' } }, nextCursor: { type: ['string', 'null'] } },
          },
        }),
      },
      preValidation: async (req) => {
        const q = req.query as Record<string, unknown>;
        if (typeof q.status === 'string') q.status = q.status.split(',');
        else if (Array.isArray(q.status)) q.status = q.status.flatMap((s) => String(s).split(','));
      },
    },
    async (req) => {
      const page = await listJobs(db, req.principal.organizationId, {
        statuses: req.query.status,
        workflowId: req.query.workflowId,
        before: decodeNumberCursor(req.query.cursor),
        limit: req.query.limit,
      });
      await auditJobReads(db, req, page.items);
      return { items: page.items.map(jobView), nextCursor: encodeNumberCursor(page.nextCursor) };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/jobs/:id',
    { config: { action: 'jobs.read' }, schema: { tags: ['jobs'], summary: 'Get a job', params: idParams, response: responses({ 200: { $ref: 'Job#' } }) } },
    async (req) => {
      const job = await findJob(db, req.principal.organizationId, req.params.id);
      if (!job) throw new NotFoundError('job', req.params.id);
      await auditJobReads(db, req, [job]);
      return jobView(job);
    },
  );

  app.get<{ Params: { id: string }; Querystring: { afterSeq: number; level?: LogLevel; limit: number } }>(
    '/v1/jobs/:id/stream',
    {
      config: { action: 'jobs.read' },
      schema: {
        tags: ['jobs'],
        summary: "A job's events and log lines in order; poll with afterSeq = the last seq seen",
        params: idParams,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            afterSeq: { type: 'integer', minimum: 0, default: 0 },
            level: { type: 'string', enum: Object.keys(LOG_LEVELS), description: 'minimum level' },
            limit: { type: 'integer', minimum: 1, maximum: 5000, default: 1000 },
          },
        },
        response: responses({
          200: {
            type: 'object',
            properties: {
              jobId: uuid,
              status: { type: 'string' },
              items: { type: 'array', items: { $ref: 'StreamEntry#' } },
              nextAfterSeq: { type: 'integer' },
            },
          },
        }),
      },
    },
    async (req) => {
      const job = await findJob(db, req.principal.organizationId, req.params.id);
      if (!job) throw new NotFoundError('job', req.params.id);
      const items = await listStream(db, req.principal.organizationId, job, {
        afterSeq: req.query.afterSeq,
        minLevel: req.query.level ? LOG_LEVELS[req.query.level] : undefined,
        limit: req.query.limit,
      });
      await auditStreamRead(db, req, job, items.length);
      return {
        jobId: job.id,
        status: job.status,
        items,
        nextAfterSeq: items.length > 0 ? items[items.length - 1]!.seq : req.query.afterSeq,
      };
    },
  );
}
