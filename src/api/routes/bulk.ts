import type { FastifyInstance } from 'fastify';
import { withStatementTimeout } from '../../store/index.js';
import { DEFAULT_QUERY_BUDGETS } from './jobs.js';
import type { Db } from '../../db/index.js';
import { BULK_MAX_IDS, countBulkTargets, createBulkOperation, type BulkRequest, type BulkRunner } from '../../engine/bulk.js';
import { NotFoundError, ValidationError } from '../../errors/index.js';
import { bulkJobSelector } from '../../read/bulk-selection.js';
import { MAX_SEARCH_TERMS, parseSearchTerms } from '../../read/search-terms.js';
import {
  findBulkOperation,
  INITIATOR_TYPES,
  JOB_STATUSES,
  listBulkOperations,
  type BulkJobFilter,
  type BulkOperation,
  type BulkRetryFrom,
  type InitiatorType,
  type JobStatus,
} from '../../store/index.js';
import { actorName } from '../phi.js';
import { idParams, responses, uuid } from '../schemas.js';

interface BulkBody {
  ids?: string[];
  filter?: {
    status?: JobStatus[];
    workflowId?: string;
    clientId?: string;
    initiatorType?: InitiatorType;
    createdFrom?: string;
    createdTo?: string;
    errorCode?: string;
    search?: string[];
  };
  action: 'cancel' | 'retry';
  from?: BulkRetryFrom;
  dryRun?: boolean;
}

/** The same fields as GET /v1/jobs's query (status and search also as a comma list / single string). */
const filterSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    status: { type: 'array', items: { type: 'string', enum: [...JOB_STATUSES] }, maxItems: JOB_STATUSES.length },
    workflowId: uuid,
    clientId: uuid,
    initiatorType: { type: 'string', enum: [...INITIATOR_TYPES] },
    createdFrom: { type: 'string', format: 'date-time', description: 'inclusive' },
    createdTo: { type: 'string', format: 'date-time', description: 'exclusive' },
    errorCode: { type: 'string', minLength: 1, maxLength: 100 },
    search: {
      type: 'array',
      items: { type: 'string', maxLength: 500 },
      maxItems: MAX_SEARCH_TERMS,
      description: '`input.memberId:M-123` (a search key, the first colon, the exact value); all must match',
    },
  },
} as const;

/** Operation as the API shows it. */
export function operationView(op: BulkOperation) {
  return {
    id: op.id,
    action: op.action,
    from: op.retryFrom,
    status: op.status,
    total: op.total,
    done: op.done,
    succeeded: op.succeeded,
    failed: op.failed,
    errors: op.errors,
    createdBy: op.createdBy,
    lastError: op.lastError,
    createdAt: op.createdAt.toISOString(),
    updatedAt: op.updatedAt.toISOString(),
    finishedAt: op.finishedAt ? op.finishedAt.toISOString() : null,
  };
}

/** Checks the schema cannot express; the body as the engine takes it. */
function toBulkRequest(body: BulkBody): BulkRequest {
  if (body.ids !== undefined && body.filter !== undefined) {
    throw new ValidationError('/body/filter cannot be sent with /body/ids: choose the jobs one way', { path: '/body/filter' });
  }
  if (body.ids === undefined && body.filter === undefined) {
    throw new ValidationError('/body/ids or /body/filter is required', { path: '/body/ids' });
  }
  if (body.action === 'cancel' && body.from !== undefined) {
    throw new ValidationError('/body/from applies to retry only', { path: '/body/from' });
  }
  const request: BulkRequest = { action: body.action, from: body.from };
  if (body.ids) {
    // Ids are compared in one case, so one job sent twice in two spellings is refused too.
    const ids = body.ids.map((id) => id.toLowerCase());
    const dup = ids.findIndex((id, i) => ids.indexOf(id) !== i);
    if (dup >= 0) throw new ValidationError(`/body/ids/${dup} repeats an id; each job once`, { path: `/body/ids/${dup}` });
    return { ...request, ids };
  }
  const f = body.filter!;
  if (f.createdFrom && f.createdTo && new Date(f.createdFrom) >= new Date(f.createdTo)) {
    throw new ValidationError('/body/filter/createdFrom must be before /body/filter/createdTo', { path: '/body/filter/createdFrom' });
  }
  // Checked now, so the runner never meets a term it cannot read.
  parseSearchTerms(f.search, '/body/filter/search');
  const filter: BulkJobFilter = {
    statuses: f.status && f.status.length > 0 ? [...new Set(f.status)] : undefined,
    workflowId: f.workflowId,
    clientId: f.clientId,
    initiatorType: f.initiatorType,
    createdFrom: f.createdFrom !== undefined ? new Date(f.createdFrom).toISOString() : undefined,
    createdTo: f.createdTo !== undefined ? new Date(f.createdTo).toISOString() : undefined,
    errorCode: f.errorCode,
    search: f.search && f.search.length > 0 ? f.search : undefined,
  };
  // Left out rather than stored as null: the stored filter holds only what was asked.
  for (const key of Object.keys(filter) as (keyof BulkJobFilter)[]) if (filter[key] === undefined) delete filter[key];
  return { ...request, filter };
}

/**
 * Bulk cancel and retry (engine/bulk.ts). The request creates the operation
 * and answers 202; `runner` (the process's BulkRunner, when there is one) is
 * woken once the request's transaction has committed.
 */
export function bulkRoutes(app: FastifyInstance, db: Db, runner?: BulkRunner): void {
  app.post<{ Body: BulkBody }>(
    '/v1/jobs/bulk',
    {
      config: { action: 'jobs.control' },
      schema: {
        tags: ['jobs'],
        summary: 'Cancel or retry many jobs, chosen by id (≤ 1000) or by the job list filter; dryRun counts them',
        description:
          'A filter selects the jobs created before the request (at most 100,000) whose status the action can touch: cancel → PENDING, RUNNING, WAITING; ' +
          'retry → FAILED, TIMED_OUT, CANCELLED. Jobs sent by id that the action cannot touch are counted failed, with a code. ' +
          'The operation runs in the background: poll GET /v1/operations/:id.',
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['action'],
          properties: {
            ids: { type: 'array', items: uuid, minItems: 1, maxItems: BULK_MAX_IDS },
            filter: filterSchema,
            action: { type: 'string', enum: ['cancel', 'retry'] },
            from: { type: 'string', enum: ['failed-step', 'start'], description: 'retry only; default failed-step' },
            dryRun: { type: 'boolean', default: false },
          },
        },
        response: responses({
          200: {
            type: 'object',
            description: 'dryRun',
            properties: { count: { type: 'integer' }, capped: { type: 'boolean', description: 'true: 100,000 or more' } },
            required: ['count', 'capped'],
          },
          202: { type: 'object', properties: { operation: { $ref: 'Operation#' } }, required: ['operation'] },
        }),
      },
      preValidation: async (req) => {
        // Like the list's query: status as a comma list, search as one term.
        const f = (req.body as { filter?: Record<string, unknown> } | null)?.filter;
        if (f && typeof f === 'object') {
          if (typeof f.status === 'string') f.status = f.status.split(',').filter((s) => s !== '');
          if (typeof f.search === 'string') f.search = [f.search];
        }
      },
      onResponse: async (_req, reply) => {
        // After the tenant transaction committed (api/tenancy.ts commits in onSend): the runner can see the row.
        if (reply.statusCode === 202) runner?.wake();
      },
    },
    async (req, reply) => {
      const request = toBulkRequest(req.body);
      const organizationId = req.principal.organizationId;
      // Selecting by filter pages through up to 100,000 matches: each statement gets the count's budget
      // (past it, 503 QUERY_TIMEOUT), so a filter the indexes serve badly cannot hold the connection.
      const budget = DEFAULT_QUERY_BUDGETS.countMs;
      if (req.body.dryRun) {
        return reply.status(200).send(await withStatementTimeout(db, budget, () => countBulkTargets(db, bulkJobSelector, organizationId, request)));
      }
      const operation = await withStatementTimeout(db, budget, () => createBulkOperation(db, bulkJobSelector, organizationId, actorName(req), request));
      return reply.status(202).send({ operation: operationView(operation) });
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/operations/:id',
    {
      config: { action: 'jobs.read' },
      schema: { tags: ['jobs'], summary: 'A bulk operation: status, counters and refusals', params: idParams, response: responses({ 200: { $ref: 'Operation#' } }) },
    },
    async (req) => {
      const op = await findBulkOperation(db, req.principal.organizationId, req.params.id);
      if (!op) throw new NotFoundError('operation', req.params.id);
      return operationView(op);
    },
  );

  app.get(
    '/v1/operations',
    {
      config: { action: 'jobs.read' },
      schema: {
        tags: ['jobs'],
        summary: "The organization's 50 latest bulk operations, newest first",
        response: responses({ 200: { type: 'object', properties: { items: { type: 'array', items: { $ref: 'Operation#' } } }, required: ['items'] } }),
      },
    },
    async (req) => ({ items: (await listBulkOperations(db, req.principal.organizationId, 50)).map(operationView) }),
  );
}
