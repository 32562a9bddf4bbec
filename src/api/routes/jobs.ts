import type { FastifyInstance } from 'fastify';
import type { BlobStore } from '../../blob/index.js';
import type { Db } from '../../db/index.js';
import { NotFoundError, ValidationError } from '../../errors/index.js';
import { jobListItemView, jobView, listJobSummaries, pageJobState, pageSteps, replayJobEvents, type IterationPaging } from '../../read/index.js';
import { findJob, INITIATOR_TYPES, JOB_STATUSES, LOG_LEVELS, type InitiatorType, type JobStatus, type LogLevel } from '../../store/index.js';
import { decodeJobCursor, encodeJobCursor } from '../cursor.js';
import { idParams, iterationQuery, pageQuery, responses, uuid, type IterationQuery } from '../schemas.js';
import { readJobEvents, readJobStream } from '../../lifecycle/index.js';
import { withStoredResult } from '../../engine/results.js';
import { auditJobReads, auditStreamRead } from '../phi.js';

type JobListQuery = {
  limit: number;
  cursor?: string;
  status?: JobStatus[];
  workflowId?: string;
  clientId?: string;
  initiatorType?: InitiatorType;
  createdFrom?: string;
  createdTo?: string;
  errorCode?: string;
  parentJobId?: string;
};

export function jobRoutes(app: FastifyInstance, db: Db, blobs?: BlobStore): void {
  app.get<{ Querystring: JobListQuery }>(
    '/v1/jobs',
    {
      config: { action: 'jobs.read' },
      schema: {
        tags: ['jobs'],
        summary: 'List jobs, newest first, keyset-paginated (served from the execution_metadata read model)',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            ...pageQuery,
            // ?status=FAILED&status=TIMED_OUT or ?status=FAILED,TIMED_OUT (split in preValidation)
            status: { type: 'array', items: { type: 'string', enum: [...JOB_STATUSES] }, maxItems: JOB_STATUSES.length },
            workflowId: uuid,
            clientId: uuid,
            initiatorType: { type: 'string', enum: [...INITIATOR_TYPES] },
            createdFrom: { type: 'string', format: 'date-time', description: 'inclusive' },
            createdTo: { type: 'string', format: 'date-time', description: 'exclusive' },
            errorCode: { type: 'string', minLength: 1, maxLength: 100 },
            parentJobId: { ...uuid, description: "a job's children: the jobs its workflow steps started" },
          },
        },
        response: responses({
          200: {
            type: 'object',
            properties: { items: { type: 'array', items: { $ref: 'JobListItem#' } }, nextCursor: { type: ['string', 'null'] } },
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
      const q = req.query;
      const createdFrom = q.createdFrom !== undefined ? new Date(q.createdFrom) : undefined;
      const createdTo = q.createdTo !== undefined ? new Date(q.createdTo) : undefined;
      if (createdFrom && createdTo && createdFrom >= createdTo) {
        throw new ValidationError('/querystring/createdFrom must be before /querystring/createdTo', { path: '/querystring/createdFrom' });
      }
      const cursor = decodeJobCursor(q.cursor);
      const page = await listJobSummaries(db, req.principal.organizationId, {
        statuses: q.status,
        workflowId: q.workflowId,
        clientId: q.clientId,
        initiatorType: q.initiatorType,
        createdFrom,
        createdTo,
        errorCode: q.errorCode,
        parentJobId: q.parentJobId,
        after: cursor && 'createdUs' in cursor ? cursor : undefined,
        beforeRunNumber: cursor && !('createdUs' in cursor) ? cursor.runNumber : undefined,
        limit: q.limit,
      });
      await auditJobReads(db, req, page.items);
      return { items: page.items.map(jobListItemView), nextCursor: encodeJobCursor(page.next) };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/jobs/:id',
    { config: { action: 'jobs.read' }, schema: { tags: ['jobs'], summary: 'Get a job', params: idParams, response: responses({ 200: { $ref: 'Job#' } }) } },
    async (req) => {
      const job = await findJob(db, req.principal.organizationId, req.params.id);
      if (!job) throw new NotFoundError('job', req.params.id);
      // A large result is in blob storage and the row holds NULL: read it back transparently.
      const full = await withStoredResult(db, blobs, job);
      const stored = full.resultStored;
      await auditJobReads(db, req, [full]);
      return {
        ...jobView(full),
        resultStored: stored && { sizeBytes: stored.sizeBytes, storedBytes: stored.storedBytes, sha256: stored.sha256 },
      };
    },
  );

  app.get<{ Params: { id: string }; Querystring: { afterSeq: number; level?: LogLevel; limit: number } }>(
    '/v1/jobs/:id/stream',
    {
      config: { action: 'jobs.read' },
      schema: {
        tags: ['jobs'],
        summary: "A job's events and log lines in order; poll with afterSeq = the last seq seen",
        description: 'Archived rows (past the retention hot window) are read back from blob storage transparently; archived is true when any of the stream is archived.',
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
              archived: { type: 'boolean' },
            },
          },
        }),
      },
    },
    async (req) => {
      const job = await findJob(db, req.principal.organizationId, req.params.id);
      if (!job) throw new NotFoundError('job', req.params.id);
      const { items, archived } = await readJobStream(db, blobs, req.principal.organizationId, job, {
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
        archived,
      };
    },
  );

  app.get<{ Params: { id: string }; Querystring: IterationQuery }>(
    '/v1/jobs/:id/timeline',
    {
      config: { action: 'jobs.read' },
      schema: {
        tags: ['jobs'],
        summary: 'The step-by-step view of a job: per step its attempts, start, end, duration, status and error',
        description:
          "A block's inner steps are nested under it: an if's, switch's or parallel's branches, a forEach's iterations (a page of them per loop; iterationPage says where the rest is).",
        params: idParams,
        querystring: { type: 'object', additionalProperties: false, properties: iterationQuery },
        response: responses({
          200: {
            type: 'object',
            properties: {
              jobId: uuid,
              status: { type: 'string' },
              steps: { type: 'array', items: { $ref: 'StepState#' } },
              archived: { type: 'boolean', description: 'true when some of the stream was read back from blob storage' },
            },
          },
        }),
      },
    },
    async (req) => {
      const job = await findJob(db, req.principal.organizationId, req.params.id);
      if (!job) throw new NotFoundError('job', req.params.id);
      // Through the lifecycle reader, so an archived job's timeline is rebuilt from its archive.
      const { events, archived } = await readJobEvents(db, blobs, req.principal.organizationId, job);
      // Step errors and outputs come from the stream: a PHI workflow's timeline is a read of its PHI.
      await auditStreamRead(db, req, job, events.length);
      return { jobId: job.id, status: job.status, steps: pageSteps(replayJobEvents(events).steps, iterationPaging(req.query)), archived };
    },
  );

  app.get<{ Params: { id: string }; Querystring: { at: number } & IterationQuery }>(
    '/v1/jobs/:id/state',
    {
      config: { action: 'jobs.read' },
      schema: {
        tags: ['jobs'],
        summary: "The job's state rebuilt from its stream events up to and including sequence number `at` (event sourcing)",
        description: "Blocks are nested and loop iterations paged as in the timeline; currentPath names the step inside a block that runs, waits or retries.",
        params: idParams,
        querystring: {
          type: 'object',
          additionalProperties: false,
          required: ['at'],
          properties: { at: { type: 'integer', minimum: 0, maximum: 2147483647 }, ...iterationQuery },
        },
        response: responses({ 200: { $ref: 'JobState#' } }),
      },
    },
    async (req) => {
      const job = await findJob(db, req.principal.organizationId, req.params.id);
      if (!job) throw new NotFoundError('job', req.params.id);
      const { events } = await readJobEvents(db, blobs, req.principal.organizationId, job, req.query.at);
      await auditStreamRead(db, req, job, events.length);
      return pageJobState(replayJobEvents(events), iterationPaging(req.query));
    },
  );
}

/** The paging of loop iterations a timeline or state request asks for (defaults from the schema). */
function iterationPaging(q: IterationQuery): IterationPaging {
  return { loop: q.loop, offset: q.iterationOffset, limit: q.iterationLimit };
}
