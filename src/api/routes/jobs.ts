import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { BlobStore } from '../../blob/index.js';
import type { Db } from '../../db/index.js';
import { NotFoundError, ValidationError } from '../../errors/index.js';
import { jobListItemView, jobView, listJobSummaries, pageJobState, pageSteps, replayJobEvents, type IterationPaging } from '../../read/index.js';
import { countJobs, parseSearchTerms, type JobMatchFilter } from '../../read/index.js';
import { declaresPhi, maskJobView, maskStreamEntries } from '../../read/index.js';
import { findJob, INITIATOR_TYPES, JOB_STATUSES, LOG_LEVELS, TERMINAL_STATUSES, type InitiatorType, type Job, type JobStatus, type LogLevel } from '../../store/index.js';
import { withStatementTimeout } from '../../store/index.js';
import { decodeJobCursor, encodeJobCursor } from '../cursor.js';
import { idParams, iterationQuery, pageQuery, responses, uuid, type IterationQuery } from '../schemas.js';
import { phiMaskedProperty, phiQuery, type PhiQuery } from '../schemas.js';
import { readJobEvents, readJobStream } from '../../lifecycle/index.js';
import { withStoredResult } from '../../engine/results.js';
import { auditJobReads, auditStreamRead, phiPathsOf } from '../phi.js';
import { requirePrimary } from '../tenancy.js';

type JobFilterQuery = {
  status?: JobStatus[];
  workflowId?: string;
  clientId?: string;
  initiatorType?: InitiatorType;
  createdFrom?: string;
  createdTo?: string;
  errorCode?: string;
  parentJobId?: string;
  search?: string[];
};
type JobListQuery = JobFilterQuery & { limit: number; cursor?: string };

/**
 * Time budgets of the runs list and count. A filter the indexes serve
 * answers in milliseconds; one they serve badly (a search term matching a
 * million runs of which none has the status asked for) could otherwise hold
 * a connection and a core for minutes. Past its budget a request answers 503
 * QUERY_TIMEOUT — never a short or empty page that would read as "no runs".
 * The list gets more than the count: it is what the page cannot do without.
 */
export interface QueryBudgets {
  listMs: number;
  countMs: number;
}
export const DEFAULT_QUERY_BUDGETS: QueryBudgets = { listMs: 8_000, countMs: 5_000 };

/** The list's and count's filters (everything but the page): the same names, the same checks. */
const jobFilterProperties = {
  // ?status=FAILED&status=TIMED_OUT or ?status=FAILED,TIMED_OUT (split in preValidation)
  status: { type: 'array', items: { type: 'string', enum: [...JOB_STATUSES] }, maxItems: JOB_STATUSES.length },
  workflowId: uuid,
  clientId: uuid,
  initiatorType: { type: 'string', enum: [...INITIATOR_TYPES] },
  createdFrom: { type: 'string', format: 'date-time', description: 'inclusive' },
  createdTo: { type: 'string', format: 'date-time', description: 'exclusive' },
  errorCode: { type: 'string', minLength: 1, maxLength: 100 },
  parentJobId: { ...uuid, description: "a job's children: the jobs its workflow steps started" },
  // Repeatable, never split on commas (a value may hold one); checked by parseSearchTerms.
  search: {
    type: 'array',
    items: { type: 'string', maxLength: 1000 },
    description: "path:value (repeatable, all must match): runs whose workflow's searchKeys indexed that value, e.g. input.memberId:M-123",
  },
} as const;

/** Accept ?status=A,B and a single ?search= as well as repeated parameters. */
async function splitListParams(req: { query: unknown }): Promise<void> {
  const q = req.query as Record<string, unknown>;
  if (typeof q.status === 'string') q.status = q.status.split(',');
  else if (Array.isArray(q.status)) q.status = q.status.flatMap((s) => String(s).split(','));
  if (typeof q.search === 'string') q.search = [q.search];
}

/** The filter a list or count query asks for, checked (400 naming the field). */
function matchFilterOf(q: JobFilterQuery): JobMatchFilter {
  const createdFrom = q.createdFrom !== undefined ? new Date(q.createdFrom) : undefined;
  const createdTo = q.createdTo !== undefined ? new Date(q.createdTo) : undefined;
  if (createdFrom && createdTo && createdFrom >= createdTo) {
    throw new ValidationError('/querystring/createdFrom must be before /querystring/createdTo', { path: '/querystring/createdFrom' });
  }
  return {
    statuses: q.status,
    workflowId: q.workflowId,
    clientId: q.clientId,
    initiatorType: q.initiatorType,
    createdFrom,
    createdTo,
    errorCode: q.errorCode,
    parentJobId: q.parentJobId,
    search: parseSearchTerms(q.search, '/querystring/search'),
  };
}

/**
 * A job's stream, timeline or state may be read on the read replica only
 * when nothing the replica lacks could change the answer: the job is
 * finished (the flush that records its outcome writes its last rows in the
 * same transaction and deletes its queue row, the fence every later write
 * needs, so a replica that shows it finished has all of its rows; a running
 * job's newest rows may not have arrived yet), and the read
 * writes no PHI audit row (a standby refuses it). The second is decided here,
 * before the stream is read, rather than left to the refused INSERT after it:
 * the job is already at hand and its workflow's PHI paths are cached.
 */
async function requirePrimaryUnlessSettled(db: Db, req: FastifyRequest, job: Job, phi: PhiQuery['phi']): Promise<void> {
  if (req.readsFrom !== 'replica') return;
  if (!TERMINAL_STATUSES.includes(job.status)) requirePrimary(req, `job ${job.id} is ${job.status}, not finished`);
  if (phi !== 'mask' && declaresPhi((await phiPathsOf(db, req.principal.organizationId, [job])).get(job.id))) {
    requirePrimary(req, 'an unmasked read of a PHI workflow writes its audit row');
  }
}

export function jobRoutes(app: FastifyInstance, db: Db, blobs?: BlobStore, budgets: QueryBudgets = DEFAULT_QUERY_BUDGETS): void {
  app.get<{ Querystring: JobFilterQuery }>(
    '/v1/jobs/count',
    {
      config: { action: 'jobs.read', reads: 'replica' },
      schema: {
        tags: ['jobs'],
        summary: 'Count the jobs a list filter matches, up to 10,000 (capped: true when more match)',
        querystring: { type: 'object', additionalProperties: false, properties: jobFilterProperties },
        response: {
          ...responses({ 200: { type: 'object', properties: { count: { type: 'integer' }, capped: { type: 'boolean' } } } }),
          503: { $ref: 'Error#' },
        },
      },
      preValidation: splitListParams,
    },
    async (req) => {
      const filter = matchFilterOf(req.query);
      return withStatementTimeout(db, budgets.countMs, () => countJobs(db, req.principal.organizationId, filter));
    },
  );

  app.get<{ Querystring: JobListQuery & PhiQuery }>(
    '/v1/jobs',
    {
      // An unmasked page holding a PHI workflow's runs writes their audit rows: on the replica that INSERT
      // is refused (25006) and the request runs again on the primary (api/tenancy.ts). Which runs a page
      // holds is known only once it is read, so no cheaper decision exists up front; Atlas reads it masked.
      config: { action: 'jobs.read', reads: 'replica' },
      schema: {
        tags: ['jobs'],
        summary: 'List jobs, newest first, keyset-paginated (served from the execution_metadata read model)',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            ...pageQuery,
            ...jobFilterProperties,
            ...phiQuery,
          },
        },
        response: {
          ...responses({
            200: {
              type: 'object',
              properties: { items: { type: 'array', items: { $ref: 'JobListItem#' } }, nextCursor: { type: ['string', 'null'] } },
            },
          }),
          503: { $ref: 'Error#' },
        },
      },
      preValidation: splitListParams,
    },
    async (req) => {
      const q = req.query;
      const filter = matchFilterOf(q);
      const cursor = decodeJobCursor(q.cursor);
      const page = await withStatementTimeout(db, budgets.listMs, () =>
        listJobSummaries(db, req.principal.organizationId, {
          ...filter,
          after: cursor && 'createdUs' in cursor ? cursor : undefined,
          beforeRunNumber: cursor && !('createdUs' in cursor) ? cursor.runNumber : undefined,
          limit: q.limit,
        }),
      );
      if (q.phi === 'mask') {
        // Masked: each PHI workflow's item is masked (phiMasked: true), nothing is audited.
        const phi = await phiPathsOf(db, req.principal.organizationId, page.items);
        return { items: page.items.map((j) => maskJobView(jobListItemView(j), phi.get(j.id))), nextCursor: encodeJobCursor(page.next) };
      }
      await auditJobReads(db, req, page.items);
      return { items: page.items.map(jobListItemView), nextCursor: encodeJobCursor(page.next) };
    },
  );

  app.get<{ Params: { id: string }; Querystring: PhiQuery }>(
    '/v1/jobs/:id',
    {
      config: { action: 'jobs.read' },
      schema: {
        tags: ['jobs'],
        summary: 'Get a job',
        params: idParams,
        querystring: { type: 'object', additionalProperties: false, properties: phiQuery },
        response: responses({ 200: { $ref: 'Job#' } }),
      },
    },
    async (req) => {
      const job = await findJob(db, req.principal.organizationId, req.params.id);
      if (!job) throw new NotFoundError('job', req.params.id);
      // A large result is in blob storage and the row holds NULL: read it back transparently.
      const full = await withStoredResult(db, blobs, job);
      const stored = full.resultStored;
      const view = {
        ...jobView(full),
        resultStored: stored && { sizeBytes: stored.sizeBytes, storedBytes: stored.storedBytes, sha256: stored.sha256 },
      };
      // Masked: no PHI leaves, so nothing is audited.
      if (req.query.phi === 'mask') return maskJobView(view, (await phiPathsOf(db, req.principal.organizationId, [full])).get(full.id));
      await auditJobReads(db, req, [full]);
      return view;
    },
  );

  app.get<{ Params: { id: string }; Querystring: { afterSeq: number; level?: LogLevel; limit: number } & PhiQuery }>(
    '/v1/jobs/:id/stream',
    {
      config: { action: 'jobs.read', reads: 'replica' },
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
            ...phiQuery,
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
              lastSeq: { type: 'integer', description: "the job's last sequence number so far (how long its stream is)" },
              archived: { type: 'boolean' },
              ...phiMaskedProperty,
            },
          },
        }),
      },
    },
    async (req) => {
      const job = await findJob(db, req.principal.organizationId, req.params.id);
      if (!job) throw new NotFoundError('job', req.params.id);
      await requirePrimaryUnlessSettled(db, req, job, req.query.phi);
      const { items, archived } = await readJobStream(db, blobs, req.principal.organizationId, job, {
        afterSeq: req.query.afterSeq,
        minLevel: req.query.level ? LOG_LEVELS[req.query.level] : undefined,
        limit: req.query.limit,
      });
      const nextAfterSeq = items.length > 0 ? items[items.length - 1]!.seq : req.query.afterSeq;
      if (req.query.phi === 'mask') {
        const phi = (await phiPathsOf(db, req.principal.organizationId, [job])).get(job.id);
        const masked = declaresPhi(phi);
        return { jobId: job.id, status: job.status, items: maskStreamEntries(items, phi), nextAfterSeq, lastSeq: job.lastSeq, archived, ...(masked ? { phiMasked: true } : {}) };
      }
      await auditStreamRead(db, req, job, items.length);
      return { jobId: job.id, status: job.status, items, nextAfterSeq, lastSeq: job.lastSeq, archived };
    },
  );

  app.get<{ Params: { id: string }; Querystring: IterationQuery & PhiQuery }>(
    '/v1/jobs/:id/timeline',
    {
      config: { action: 'jobs.read', reads: 'replica' },
      schema: {
        tags: ['jobs'],
        summary: 'The step-by-step view of a job: per step its attempts, start, end, duration, status and error',
        description:
          "A block's inner steps are nested under it: an if's, switch's or parallel's branches, a forEach's iterations (a page of them per loop; iterationPage says where the rest is).",
        params: idParams,
        querystring: { type: 'object', additionalProperties: false, properties: { ...iterationQuery, ...phiQuery } },
        response: responses({
          200: {
            type: 'object',
            properties: {
              jobId: uuid,
              status: { type: 'string' },
              steps: { type: 'array', items: { $ref: 'StepState#' } },
              archived: { type: 'boolean', description: 'true when some of the stream was read back from blob storage' },
              ...phiMaskedProperty,
            },
          },
        }),
      },
    },
    async (req) => {
      const job = await findJob(db, req.principal.organizationId, req.params.id);
      if (!job) throw new NotFoundError('job', req.params.id);
      await requirePrimaryUnlessSettled(db, req, job, req.query.phi);
      // Through the lifecycle reader, so an archived job's timeline is rebuilt from its archive.
      const { events, archived } = await readJobEvents(db, blobs, req.principal.organizationId, job);
      if (req.query.phi === 'mask') {
        // Rebuilt from masked rows, so step outputs and error messages are masked by the stream's rule.
        const phi = (await phiPathsOf(db, req.principal.organizationId, [job])).get(job.id);
        const steps = pageSteps(replayJobEvents(maskStreamEntries(events, phi)).steps, iterationPaging(req.query));
        return { jobId: job.id, status: job.status, steps, archived, ...(declaresPhi(phi) ? { phiMasked: true } : {}) };
      }
      // Step errors and outputs come from the stream: a PHI workflow's timeline is a read of its PHI.
      await auditStreamRead(db, req, job, events.length);
      return { jobId: job.id, status: job.status, steps: pageSteps(replayJobEvents(events).steps, iterationPaging(req.query)), archived };
    },
  );

  app.get<{ Params: { id: string }; Querystring: { at: number } & IterationQuery & PhiQuery }>(
    '/v1/jobs/:id/state',
    {
      config: { action: 'jobs.read', reads: 'replica' },
      schema: {
        tags: ['jobs'],
        summary: "The job's state rebuilt from its stream events up to and including sequence number `at` (event sourcing)",
        description: "Blocks are nested and loop iterations paged as in the timeline; currentPath names the step inside a block that runs, waits or retries.",
        params: idParams,
        querystring: {
          type: 'object',
          additionalProperties: false,
          required: ['at'],
          properties: { at: { type: 'integer', minimum: 0, maximum: 2147483647 }, ...iterationQuery, ...phiQuery },
        },
        response: responses({ 200: { $ref: 'JobState#' } }),
      },
    },
    async (req) => {
      const job = await findJob(db, req.principal.organizationId, req.params.id);
      if (!job) throw new NotFoundError('job', req.params.id);
      await requirePrimaryUnlessSettled(db, req, job, req.query.phi);
      const { events } = await readJobEvents(db, blobs, req.principal.organizationId, job, req.query.at);
      if (req.query.phi === 'mask') {
        const phi = (await phiPathsOf(db, req.principal.organizationId, [job])).get(job.id);
        const state = pageJobState(replayJobEvents(maskStreamEntries(events, phi)), iterationPaging(req.query));
        return declaresPhi(phi) ? { ...state, phiMasked: true } : state;
      }
      await auditStreamRead(db, req, job, events.length);
      return pageJobState(replayJobEvents(events), iterationPaging(req.query));
    },
  );
}

/** The paging of loop iterations a timeline or state request asks for (defaults from the schema). */
function iterationPaging(q: IterationQuery): IterationPaging {
  return { loop: q.loop, offset: q.iterationOffset, limit: q.iterationLimit };
}
