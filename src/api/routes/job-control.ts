import type { FastifyInstance } from 'fastify';
import type { Db } from '../../db/index.js';
import { cancelJob, retryJob, sendSignal, type RetryFrom } from '../../engine/control.js';
import { findJob } from '../../store/index.js';
import { ValidationError } from '../../errors/index.js';
import { emptyBodyAsObject } from '../empty-body.js';
import { anyJson, responses, uuid } from '../schemas.js';

const jobParams = { type: 'object', properties: { id: uuid }, required: ['id'], additionalProperties: false } as const;

/** Signal, cancel and retry; `checkpointTtlMs` is how long a retry's copied checkpoint lives (config.worker.checkpointTtlMs). */
export function jobControlRoutes(app: FastifyInstance, db: Db, checkpointTtlMs: number): void {
  app.post<{ Params: { id: string; name: string }; Body: { payload?: unknown } }>(
    '/v1/jobs/:id/signals/:name',
    {
      config: { action: 'jobs.control' },
      schema: {
        tags: ['jobs'],
        summary: 'Send a signal to a job; stored, so it counts even before the job reaches its wait step',
        params: {
          type: 'object',
          additionalProperties: false,
          required: ['id', 'name'],
          properties: { id: uuid, name: { type: 'string', pattern: '^[A-Za-z0-9_.:-]{1,100}$' } },
        },
        body: { type: 'object', additionalProperties: false, properties: { payload: anyJson } },
        response: responses({ 202: { type: 'object', properties: { signalId: uuid } } }),
      },
      preValidation: emptyBodyAsObject,
    },
    async (req, reply) =>
      reply.status(202).send(await sendSignal(db, req.principal.organizationId, req.params.id, req.params.name, req.body.payload)),
  );

  app.post<{ Params: { id: string } }>(
    '/v1/jobs/:id/cancel',
    {
      config: { action: 'jobs.control' },
      schema: {
        tags: ['jobs'],
        summary: 'Cancel a job: honoured mid-step; compensations run if the workflow has them',
        params: jobParams,
        response: responses({ 202: { type: 'object', properties: { jobId: uuid, status: { type: 'string' } } } }),
      },
    },
    async (req, reply) => {
      await cancelJob(db, req.principal.organizationId, req.params.id);
      const job = await findJob(db, req.principal.organizationId, req.params.id);
      return reply.status(202).send({ jobId: req.params.id, status: job?.status ?? 'CANCELLED' });
    },
  );

  app.post<{ Params: { id: string }; Body: { from?: RetryFrom; input?: Record<string, unknown> } }>(
    '/v1/jobs/:id/retry',
    {
      config: { action: 'jobs.control' },
      schema: {
        tags: ['jobs'],
        summary: 'Run a FAILED, TIMED_OUT or CANCELLED job again as a new linked job, from the failed step (reusing outputs) or from the start',
        description: 'With `input` (from "start" only; the same 1 MiB limit as starting a run), the new job runs with that input instead of the old one.',
        params: jobParams,
        body: {
          type: 'object',
          additionalProperties: false,
          properties: {
            from: { type: 'string', enum: ['failed-step', 'start'], default: 'failed-step' },
            input: { type: 'object', description: 'the new input (an edited copy of the old one, typically); requires from: "start"' },
          },
        },
        response: responses({
          202: {
            type: 'object',
            properties: {
              jobId: uuid,
              runNumber: { type: 'integer' },
              status: { type: 'string' },
              retryOf: uuid,
              inputEdited: { type: 'boolean', description: 'true: the new job runs with the input sent, not the old job\'s' },
            },
          },
        }),
      },
      preValidation: emptyBodyAsObject,
    },
    async (req, reply) => {
      const from = req.body.from ?? 'failed-step';
      const { input } = req.body;
      // Outputs a failed-step retry reuses were computed from the old input: an edited input runs everything again.
      if (input !== undefined && from !== 'start') {
        throw new ValidationError('/body/input can only be sent with from: "start"', { path: '/body/input' });
      }
      const created = await retryJob(db, req.principal.organizationId, req.params.id, from, checkpointTtlMs, { input });
      return reply
        .status(202)
        .send({ jobId: created.id, runNumber: created.runNumber, status: created.status, retryOf: req.params.id, inputEdited: input !== undefined });
    },
  );
}
