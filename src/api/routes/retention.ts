import type { FastifyInstance } from 'fastify';
import type { Db } from '../../db/index.js';
import { parseResourceType, setRetentionPolicy } from '../../lifecycle/retention.js';
import { getRetentionPolicy, listRetentionPolicies, RETENTION_RESOURCE_TYPES, type RetentionPolicy } from '../../store/index.js';
import { responses } from '../schemas.js';

const policySchema = {
  type: 'object',
  properties: {
    resourceType: { type: 'string', enum: [...RETENTION_RESOURCE_TYPES] },
    hotRetentionDays: { type: 'integer' },
    archiveRetentionDays: { type: 'integer' },
    deleteAfterDays: { type: ['integer', 'null'] },
    isDefault: { type: 'boolean' },
    updatedAt: { type: ['string', 'null'], format: 'date-time' },
  },
} as const;

/** The API shape of a policy: the store's field names, as the CLI and the docs name them. */
export function retentionView(p: RetentionPolicy) {
  return {
    resourceType: p.resourceType,
    hotRetentionDays: p.hotRetentionDays,
    archiveRetentionDays: p.archiveRetentionDays,
    deleteAfterDays: p.deleteAfterDays,
    isDefault: p.isDefault,
    updatedAt: p.updatedAt,
  };
}

interface PolicyBody {
  hotRetentionDays?: number;
  archiveRetentionDays?: number;
  deleteAfterDays?: number | null;
}

/** Per-organization retention policies: how long data stays hot, archived, and when it is deleted. */
export function retentionRoutes(app: FastifyInstance, db: Db): void {
  app.get(
    '/v1/retention-policies',
    {
      config: { action: 'retention.read' },
      schema: {
        tags: ['retention'],
        summary: "The organization's retention policy for every resource type (defaults where none was set)",
        response: responses({ 200: { type: 'object', properties: { items: { type: 'array', items: policySchema } } } }),
      },
    },
    async (req) => ({ items: (await listRetentionPolicies(db, req.principal.organizationId)).map(retentionView) }),
  );

  app.put<{ Params: { resourceType: string }; Body: PolicyBody }>(
    '/v1/retention-policies/:resourceType',
    {
      config: { action: 'retention.manage' },
      schema: {
        tags: ['retention'],
        summary: 'Set the retention policy of one resource type; omitted fields keep their current value',
        description: 'Days of age: hot until hotRetentionDays, then archived in blob storage (kept at least archiveRetentionDays), deleted at deleteAfterDays (null: never). PHI audit records are kept at least six years (2192 days).',
        params: { type: 'object', properties: { resourceType: { type: 'string', maxLength: 50 } }, required: ['resourceType'] },
        body: {
          type: 'object',
          additionalProperties: false,
          minProperties: 1,
          properties: {
            hotRetentionDays: { type: 'integer' },
            archiveRetentionDays: { type: 'integer' },
            deleteAfterDays: { type: ['integer', 'null'] },
          },
        },
        response: responses({ 200: policySchema }),
      },
    },
    async (req) => {
      const resourceType = parseResourceType(req.params.resourceType);
      const current = await getRetentionPolicy(db, req.principal.organizationId, resourceType);
      const saved = await setRetentionPolicy(db, req.principal.organizationId, resourceType, {
        hotRetentionDays: req.body.hotRetentionDays ?? current.hotRetentionDays,
        archiveRetentionDays: req.body.archiveRetentionDays ?? current.archiveRetentionDays,
        deleteAfterDays: req.body.deleteAfterDays === undefined ? current.deleteAfterDays : req.body.deleteAfterDays,
      });
      return retentionView(saved);
    },
  );
}
