import type { FastifyInstance } from 'fastify';
import type { Db } from '../../db/index.js';
import { NotFoundError } from '../../errors/index.js';
import { findOrganization, PLANS, updateOrganizationLimits, updateOrganizationPlan, type Organization, type Plan } from '../../store/index.js';
import { responses, uuid } from '../schemas.js';

const organizationSchema = {
  type: 'object',
  properties: {
    id: uuid,
    name: { type: 'string' },
    plan: { type: 'string' },
    maxConcurrentRuns: { type: ['integer', 'null'] },
    createdAt: { type: 'string', format: 'date-time' },
  },
} as const;

function view(o: Organization) {
  return { id: o.id, name: o.name, plan: o.plan, maxConcurrentRuns: o.maxConcurrentRuns, createdAt: o.createdAt };
}

/** The caller's own organization (the key names it). */
export function organizationRoutes(app: FastifyInstance, db: Db): void {
  app.get(
    '/v1/organization',
    { config: { action: 'organization.read' }, schema: { tags: ['organization'], summary: "The key's organization", response: responses({ 200: organizationSchema }) } },
    async (req) => {
      const org = await findOrganization(db, req.principal.organizationId);
      if (!org) throw new NotFoundError('organization', req.principal.organizationId);
      return view(org);
    },
  );

  app.patch<{ Body: { maxConcurrentRuns: number | null } }>(
    '/v1/organization',
    {
      config: { action: 'organization.manage' },
      schema: {
        tags: ['organization'],
        summary: 'Set the limit on jobs running at once across the organization (null removes it)',
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['maxConcurrentRuns'],
          properties: { maxConcurrentRuns: { type: ['integer', 'null'], minimum: 1, maximum: 100_000 } },
        },
        response: responses({ 200: organizationSchema }),
      },
    },
    async (req) => {
      await updateOrganizationLimits(db, req.principal.organizationId, { maxConcurrentRuns: req.body.maxConcurrentRuns });
      const org = await findOrganization(db, req.principal.organizationId);
      return view(org!);
    },
  );

  app.put<{ Body: { plan: Plan } }>(
    '/v1/organization/plan',
    {
      config: { action: 'plan.manage' },
      schema: {
        tags: ['organization'],
        summary: 'Change the plan; its limits apply to what is added from now on (GET /v1/usage shows them)',
        body: { type: 'object', additionalProperties: false, required: ['plan'], properties: { plan: { type: 'string', enum: PLANS } } },
        response: responses({ 200: organizationSchema }),
      },
    },
    async (req) => {
      await updateOrganizationPlan(db, req.principal.organizationId, req.body.plan);
      const org = await findOrganization(db, req.principal.organizationId);
      return view(org!);
    },
  );
}
