import type { FastifyInstance } from 'fastify';
import type { Db } from '../../db/index.js';
import { NotFoundError, ValidationError } from '../../errors/index.js';
import { getDurationStats, getStepStats, getTimeSeries, getWorkflowStats, type AnalyticsRange, type Granularity } from '../../read/index.js';
import { findClient, findWorkflow, INITIATOR_TYPES, type InitiatorType } from '../../store/index.js';
import { DAY_MS } from '../../util/clock.js';
import { responses, uuid } from '../schemas.js';

/** A year and a month: "this year versus last month" fits, a decade does not. */
export const MAX_ANALYTICS_RANGE_DAYS = 400;
/** Hourly series: 31 days is 744 points, about what a chart can show. */
export const MAX_HOURLY_RANGE_DAYS = 31;

const rangeQuery = {
  from: { type: 'string', format: 'date-time', description: 'inclusive; default: `to` minus 30 days (1 day for hourly series)' },
  to: { type: 'string', format: 'date-time', description: 'exclusive; default: now' },
} as const;

interface RangeQuery {
  from?: string;
  to?: string;
}

/** The range of a request, or a ValidationError naming the field and the limit. */
function parseRange(q: RangeQuery, maxDays: number, defaultDays: number): AnalyticsRange {
  const to = q.to !== undefined ? new Date(q.to) : new Date();
  const from = q.from !== undefined ? new Date(q.from) : new Date(to.getTime() - defaultDays * DAY_MS);
  if (from >= to) throw new ValidationError('/querystring/from must be before /querystring/to', { path: '/querystring/from' });
  if (to.getTime() - from.getTime() > maxDays * DAY_MS) {
    throw new ValidationError(`the range from /querystring/from to /querystring/to is over the limit of ${maxDays} days`, {
      path: '/querystring/from',
      limit: maxDays,
      unit: 'days',
    });
  }
  return { from, to };
}

/** 404 unless the workflow (and client) belong to the caller's organization. */
async function checkOwned(db: Db, organizationId: string, q: { workflowId?: string; clientId?: string }): Promise<void> {
  if (q.workflowId && !(await findWorkflow(db, organizationId, q.workflowId))) throw new NotFoundError('workflow', q.workflowId);
  if (q.clientId && !(await findClient(db, organizationId, q.clientId))) throw new NotFoundError('client', q.clientId);
}

const filterQuery = {
  workflowId: uuid,
  clientId: uuid,
  initiatorType: { type: 'string', enum: [...INITIATOR_TYPES] },
} as const;

type FilterQuery = RangeQuery & { workflowId?: string; clientId?: string; initiatorType?: InitiatorType };

/**
 * Analytics over the pre-computed aggregates (never a scan of jobs): every
 * read is scoped to the caller's organization, and a workflow or client id
 * of another organization is answered 404.
 */
export function analyticsRoutes(app: FastifyInstance, db: Db): void {
  app.get<{ Querystring: RangeQuery }>(
    '/v1/analytics/workflows',
    {
      config: { action: 'analytics.read', reads: 'replica' },
      schema: {
        tags: ['analytics'],
        summary: 'Execution stats per workflow (totals, success rate, average, median, p95, p99) in one query',
        querystring: { type: 'object', additionalProperties: false, properties: rangeQuery },
        response: responses({
          200: {
            type: 'object',
            properties: { from: { type: 'string', format: 'date-time' }, to: { type: 'string', format: 'date-time' }, items: { type: 'array', items: { $ref: 'WorkflowStats#' } } },
          },
        }),
      },
    },
    async (req) => {
      const range = parseRange(req.query, MAX_ANALYTICS_RANGE_DAYS, 30);
      return { ...range, items: await getWorkflowStats(db, req.principal.organizationId, range) };
    },
  );

  app.get<{ Querystring: FilterQuery }>(
    '/v1/analytics/durations',
    {
      config: { action: 'analytics.read', reads: 'replica' },
      schema: {
        tags: ['analytics'],
        summary: 'Outcome counts and duration percentiles for a workflow, client, initiator, a combination, or all',
        querystring: { type: 'object', additionalProperties: false, properties: { ...rangeQuery, ...filterQuery } },
        response: responses({ 200: { $ref: 'DurationStats#' } }),
      },
    },
    async (req) => {
      const range = parseRange(req.query, MAX_ANALYTICS_RANGE_DAYS, 30);
      await checkOwned(db, req.principal.organizationId, req.query);
      return getDurationStats(db, req.principal.organizationId, range, req.query);
    },
  );

  app.get<{ Querystring: RangeQuery & { workflowId: string } }>(
    '/v1/analytics/steps',
    {
      config: { action: 'analytics.read', reads: 'replica' },
      schema: {
        tags: ['analytics'],
        summary: "Per-step stats of a workflow: executions, successes, failures, average, p50, p95, top errors",
        querystring: {
          type: 'object',
          additionalProperties: false,
          required: ['workflowId'],
          properties: { ...rangeQuery, workflowId: uuid },
        },
        response: responses({
          200: { type: 'object', properties: { workflowId: uuid, items: { type: 'array', items: { $ref: 'StepStats#' } } } },
        }),
      },
    },
    async (req) => {
      const range = parseRange(req.query, MAX_ANALYTICS_RANGE_DAYS, 30);
      await checkOwned(db, req.principal.organizationId, req.query);
      return { workflowId: req.query.workflowId, items: await getStepStats(db, req.principal.organizationId, req.query.workflowId, range) };
    },
  );

  app.get<{ Querystring: FilterQuery & { granularity: Granularity } }>(
    '/v1/analytics/timeseries',
    {
      config: { action: 'analytics.read', reads: 'replica' },
      schema: {
        tags: ['analytics'],
        summary: 'Outcome counts, average and p95 per hour or per day',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { ...rangeQuery, ...filterQuery, granularity: { type: 'string', enum: ['hour', 'day'], default: 'day' } },
        },
        response: responses({
          200: {
            type: 'object',
            properties: { granularity: { type: 'string' }, items: { type: 'array', items: { $ref: 'TimeSeriesPoint#' } } },
          },
        }),
      },
    },
    async (req) => {
      const hourly = req.query.granularity === 'hour';
      const range = parseRange(req.query, hourly ? MAX_HOURLY_RANGE_DAYS : MAX_ANALYTICS_RANGE_DAYS, hourly ? 1 : 30);
      await checkOwned(db, req.principal.organizationId, req.query);
      return { granularity: req.query.granularity, items: await getTimeSeries(db, req.principal.organizationId, range, req.query.granularity, req.query) };
    },
  );
}
