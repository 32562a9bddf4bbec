import type { FastifyInstance } from 'fastify';
import type { Db } from '../../db/index.js';
import { defineWorkflow, reviseWorkflow, retireWorkflow, startRuns, type RunRequest } from '../../engine/index.js';
import { NotFoundError } from '../../errors/index.js';
import { workflowView } from '../../read/index.js';
import { findWorkflow, findWorkflowVersion, listWorkflows, type WorkflowStatus } from '../../store/index.js';
import { decodeCursor, encodeCursor } from '../cursor.js';
import { emptyBodyAsObject } from '../empty-body.js';
import { anyJson, idParams, pageQuery, responses, uuid } from '../schemas.js';

const editable = {
  name: { type: 'string', minLength: 1, maxLength: 200, pattern: '\\S' },
  description: { type: ['string', 'null'], maxLength: 2000 },
  category: { type: ['string', 'null'], maxLength: 100 },
  status: { type: 'string', enum: ['ACTIVE', 'PAUSED', 'DRAFT'] },
  maxConcurrentRuns: { type: ['integer', 'null'], minimum: 1, maximum: 100_000 },
  definition: anyJson,
} as const;

interface WorkflowBody {
  name: string;
  description?: string | null;
  category?: string | null;
  status?: Exclude<WorkflowStatus, 'ARCHIVED'>;
  maxConcurrentRuns?: number | null;
  definition: unknown;
}

const runBody = {
  type: 'object',
  additionalProperties: false,
  properties: {
    input: anyJson,
    clientId: { ...uuid, type: ['string', 'null'] },
    idempotencyKey: { type: 'string', minLength: 1, maxLength: 200 },
    priority: {
      type: 'integer',
      minimum: -32768,
      maximum: 32767,
      description: "Higher first. Without it, the workflow's priority expression decides (its value v, lower first, counts as -v)",
    },
  },
} as const;

interface RunBody {
  input?: unknown;
  clientId?: string | null;
  idempotencyKey?: string;
  priority?: number;
}

const runAccepted = {
  type: 'object',
  properties: { jobId: uuid, runNumber: { type: 'integer' }, status: { type: 'string' } },
  required: ['jobId', 'runNumber', 'status'],
} as const;

function toRunRequest(body: RunBody, headerKey: string | undefined, initiatedBy: string | null): RunRequest {
  return {
    input: body.input,
    clientId: body.clientId ?? null,
    idempotencyKey: body.idempotencyKey ?? headerKey ?? null,
    priority: body.priority,
    initiatorType: 'API',
    initiatedBy,
  };
}

export function workflowRoutes(app: FastifyInstance, db: Db): void {
  app.post<{ Body: WorkflowBody }>(
    '/v1/workflows',
    {
      config: { action: 'workflows.manage' },
      schema: {
        tags: ['workflows'],
        summary: 'Create a workflow (version 1)',
        body: { type: 'object', additionalProperties: false, required: ['name', 'definition'], properties: editable },
        response: responses({ 201: { $ref: 'Workflow#' } }),
      },
    },
    async (req, reply) => {
      const wf = await defineWorkflow(db, req.principal.organizationId, req.body);
      return reply.status(201).send(workflowView(wf));
    },
  );

  app.get<{ Querystring: { limit: number; cursor?: string; includeArchived?: boolean } }>(
    '/v1/workflows',
    {
      config: { action: 'workflows.read' },
      schema: {
        tags: ['workflows'],
        summary: 'List workflows, newest first',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { ...pageQuery, includeArchived: { type: 'boolean', default: false } },
        },
        response: responses({
          200: {
            type: 'object',
            properties: { items: { type: 'array', items: { $ref: 'Workflow#' } }, nextCursor: { type: ['string', 'null'] } },
          },
        }),
      },
    },
    async (req) => {
      const page = await listWorkflows(db, req.principal.organizationId, {
        after: decodeCursor(req.query.cursor),
        limit: req.query.limit,
        includeArchived: req.query.includeArchived,
      });
      return { items: page.items.map(workflowView), nextCursor: encodeCursor(page.nextCursor) };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/workflows/:id',
    { config: { action: 'workflows.read' }, schema: { tags: ['workflows'], summary: 'Get a workflow and its current definition', params: idParams, response: responses({ 200: { $ref: 'Workflow#' } }) } },
    async (req) => {
      const wf = await findWorkflow(db, req.principal.organizationId, req.params.id);
      if (!wf) throw new NotFoundError('workflow', req.params.id);
      return workflowView(wf);
    },
  );

  app.get<{ Params: { id: string; version: number } }>(
    '/v1/workflows/:id/versions/:version',
    {
      config: { action: 'workflows.read' },
      schema: {
        tags: ['workflows'],
        summary: "One version of a workflow's definition (versions are immutable; the dashboard compares them)",
        params: {
          type: 'object',
          additionalProperties: false,
          required: ['id', 'version'],
          properties: { id: uuid, version: { type: 'integer', minimum: 1, maximum: 2147483647 } },
        },
        response: responses({
          200: {
            type: 'object',
            properties: { workflowId: uuid, version: { type: 'integer' }, definition: anyJson, createdAt: { type: 'string', format: 'date-time' } },
            required: ['workflowId', 'version', 'definition', 'createdAt'],
          },
        }),
      },
    },
    async (req) => {
      const found = await findWorkflowVersion(db, req.principal.organizationId, req.params.id, req.params.version);
      if (!found) throw new NotFoundError('workflow version', `${req.params.id}@${req.params.version}`);
      return found;
    },
  );

  app.put<{ Params: { id: string }; Body: Partial<WorkflowBody> }>(
    '/v1/workflows/:id',
    {
      config: { action: 'workflows.manage' },
      schema: {
        tags: ['workflows'],
        summary: 'Update a workflow; a new definition becomes a new immutable version',
        params: idParams,
        body: { type: 'object', additionalProperties: false, minProperties: 1, properties: editable },
        response: responses({ 200: { $ref: 'Workflow#' } }),
      },
    },
    async (req) => workflowView(await reviseWorkflow(db, req.principal.organizationId, req.params.id, req.body)),
  );

  app.delete<{ Params: { id: string } }>(
    '/v1/workflows/:id',
    { config: { action: 'workflows.manage' }, schema: { tags: ['workflows'], summary: 'Archive a workflow (its jobs are kept)', params: idParams, response: responses({ 204: { type: 'null' } }) } },
    async (req, reply) => {
      await retireWorkflow(db, req.principal.organizationId, req.params.id);
      return reply.status(204).send();
    },
  );

  app.post<{ Params: { id: string }; Body: RunBody | undefined }>(
    '/v1/workflows/:id/runs',
    {
      config: { action: 'workflows.run' },
      schema: {
        tags: ['runs'],
        summary:
          'Start a run. 202 when created; 200 with the existing job when the idempotency key was used before, ' +
          "the workflow's dedupe key matched a run within its ttl, or its debounce key matched a run not started yet (which takes this input)",
        params: idParams,
        headers: { type: 'object', properties: { 'idempotency-key': { type: 'string', minLength: 1, maxLength: 200 } } },
        body: runBody,
        response: responses({ 200: runAccepted, 202: runAccepted }),
      },
      // Every field is optional, so a POST with no body at all is a run with no input.
      preValidation: emptyBodyAsObject,
    },
    async (req, reply) => {
      const headerKey = req.headers['idempotency-key'];
      const [run] = await startRuns(db, req.principal.organizationId, req.params.id, [
        toRunRequest(req.body ?? {}, typeof headerKey === 'string' ? headerKey : undefined, req.principal.userId),
      ]);
      return reply.status(run!.created ? 202 : 200).send({ jobId: run!.id, runNumber: run!.runNumber, status: run!.status });
    },
  );

  app.post<{ Params: { id: string }; Body: { runs: RunBody[] } }>(
    '/v1/workflows/:id/runs/batch',
    {
      config: { action: 'workflows.run' },
      schema: {
        tags: ['runs'],
        summary: 'Start up to 1,000 runs in one transaction',
        params: idParams,
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['runs'],
          properties: { runs: { type: 'array', minItems: 1, maxItems: 1000, items: runBody } },
        },
        response: responses({
          202: {
            type: 'object',
            properties: {
              jobs: {
                type: 'array',
                items: { ...runAccepted, properties: { ...runAccepted.properties, created: { type: 'boolean' } } },
              },
            },
          },
        }),
      },
    },
    async (req, reply) => {
      const runs = await startRuns(db, req.principal.organizationId, req.params.id, req.body.runs.map((r) => toRunRequest(r, undefined, req.principal.userId)));
      return reply
        .status(202)
        .send({ jobs: runs.map((r) => ({ jobId: r.id, runNumber: r.runNumber, status: r.status, created: r.created })) });
    },
  );
}
