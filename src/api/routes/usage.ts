import type { FastifyInstance } from 'fastify';
import type { Db } from '../../db/index.js';
import { NotFoundError } from '../../errors/index.js';
import { findOrganization, getCurrentPeriod, getResourceCount, limitsOf, listUsage, type UsageRecord } from '../../store/index.js';
import { responses } from '../schemas.js';

const limit = { type: ['integer', 'null'] } as const;
const month = {
  type: 'object',
  properties: {
    period: { type: 'string', format: 'date' },
    executions: { type: 'integer' },
    steps: { type: 'integer' },
    storageBytes: { type: 'integer' },
    aiInputTokens: { type: 'integer' },
    aiOutputTokens: { type: 'integer' },
    /** Micro-USD summed in the table, shown in USD. */
    aiCostUsd: { type: 'number' },
  },
} as const;

function monthView(r: UsageRecord) {
  return {
    period: r.period,
    executions: r.executions,
    steps: r.steps,
    storageBytes: r.storageBytes,
    aiInputTokens: r.aiInputTokens,
    aiOutputTokens: r.aiOutputTokens,
    aiCostUsd: r.aiCostMicros / 1_000_000,
  };
}

/** Usage this month and before, with the plan's limits. */
export function usageRoutes(app: FastifyInstance, db: Db): void {
  app.get<{ Querystring: { months: number } }>(
    '/v1/usage',
    {
      config: { action: 'usage.read', reads: 'replica' },
      schema: {
        tags: ['organization'],
        summary: 'Usage of the current month (UTC) and earlier months, with the plan and its limits (null: unlimited)',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { months: { type: 'integer', minimum: 1, maximum: 120, default: 12 } },
        },
        response: responses({
          200: {
            type: 'object',
            properties: {
              plan: { type: 'string' },
              limits: {
                type: 'object',
                properties: { workflows: limit, credentials: limit, executionsPerMonth: limit, concurrentRuns: limit, aiTokensPerMonth: limit },
              },
              current: {
                type: 'object',
                properties: { ...month.properties, workflows: { type: 'integer' }, credentials: { type: 'integer' } },
              },
              history: { type: 'array', items: month },
            },
          },
        }),
      },
    },
    async (req) => {
      const organizationId = req.principal.organizationId;
      const org = await findOrganization(db, organizationId);
      if (!org) throw new NotFoundError('organization', organizationId);
      const [period, months, workflows, credentials] = [
        await getCurrentPeriod(db),
        await listUsage(db, organizationId, req.query.months),
        await getResourceCount(db, organizationId, 'workflows'),
        await getResourceCount(db, organizationId, 'credentials'),
      ];
      const thisMonth = months.find((m) => m.period === period);
      return {
        plan: org.plan,
        limits: limitsOf(org.plan),
        current: { ...(thisMonth ? monthView(thisMonth) : { period, executions: 0, steps: 0, storageBytes: 0, aiInputTokens: 0, aiOutputTokens: 0, aiCostUsd: 0 }), workflows, credentials },
        history: months.map(monthView),
      };
    },
  );
}
