import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Db } from '../../db/index.js';
import { ValidationError } from '../../errors/index.js';
import {
  listCredentialAudit,
  listPhiAudit,
  type AuditFilter,
  type CredentialAuditEntry,
  type PhiAuditEntry,
} from '../../store/audit.js';
import { decodeCursor, encodeCursor } from '../cursor.js';
import { toCsv } from '../csv.js';
import { responses, uuid } from '../schemas.js';

interface AuditQuery {
  from?: string;
  to?: string;
  actor?: string;
  jobId?: string;
  credentialId?: string;
  limit: number;
  cursor?: string;
  format: 'json' | 'csv';
}

const dateTime = { type: 'string', format: 'date-time' } as const;

function querySchema(withCredential: boolean) {
  return {
    type: 'object',
    additionalProperties: false,
    properties: {
      from: { ...dateTime, description: 'inclusive' },
      to: { ...dateTime, description: 'exclusive' },
      actor: { type: 'string', minLength: 1, maxLength: 200, description: 'user:<user id>, key:<api key id>, worker:<worker id> or cli:keys-rotate' },
      jobId: uuid,
      ...(withCredential ? { credentialId: uuid } : {}),
      // CSV exports take bigger pages than the JSON listing.
      limit: { type: 'integer', minimum: 1, maximum: 10_000, default: 100 },
      cursor: { type: 'string', maxLength: 200 },
      format: { type: 'string', enum: ['json', 'csv'], default: 'json' },
    },
  } as const;
}

function filterOf(q: AuditQuery): AuditFilter {
  const from = q.from ? new Date(q.from) : undefined;
  const to = q.to ? new Date(q.to) : undefined;
  if (from && to && from >= to) throw new ValidationError('/querystring/to must be after from', { path: '/querystring/to' });
  if (q.format === 'json' && q.limit > 500) {
    throw new ValidationError('/querystring/limit must be <= 500 for JSON (up to 10000 with format=csv)', {
      path: '/querystring/limit',
      limit: 500,
    });
  }
  return { from, to, actor: q.actor, jobId: q.jobId, credentialId: q.credentialId, before: decodeCursor(q.cursor), limit: q.limit };
}

/** CSV body, with the next page's cursor in a header (empty when this is the last page). */
function sendCsv(reply: FastifyReply, name: string, csv: string, nextCursor: string | null): FastifyReply {
  return reply
    .header('content-type', 'text/csv; charset=utf-8')
    .header('content-disposition', `attachment; filename="${name}.csv"`)
    .header('x-next-cursor', nextCursor ?? '')
    .send(csv);
}

const PHI_COLUMNS = [
  { header: 'id', value: (e: PhiAuditEntry) => e.id },
  { header: 'at', value: (e: PhiAuditEntry) => e.at },
  { header: 'actor', value: (e: PhiAuditEntry) => e.actor },
  { header: 'api_key_id', value: (e: PhiAuditEntry) => e.apiKeyId },
  { header: 'resource_type', value: (e: PhiAuditEntry) => e.resourceType },
  { header: 'resource_id', value: (e: PhiAuditEntry) => e.resourceId },
  { header: 'job_id', value: (e: PhiAuditEntry) => e.jobId },
  { header: 'workflow_id', value: (e: PhiAuditEntry) => e.workflowId },
  { header: 'fields', value: (e: PhiAuditEntry) => e.fields },
  { header: 'ip', value: (e: PhiAuditEntry) => e.ip },
  { header: 'user_agent', value: (e: PhiAuditEntry) => e.userAgent },
] as const;

const CREDENTIAL_COLUMNS = [
  { header: 'id', value: (e: CredentialAuditEntry) => e.id },
  { header: 'at', value: (e: CredentialAuditEntry) => e.at },
  { header: 'action', value: (e: CredentialAuditEntry) => e.action },
  { header: 'credential_id', value: (e: CredentialAuditEntry) => e.credentialId },
  { header: 'credential_name', value: (e: CredentialAuditEntry) => e.credentialName },
  { header: 'actor', value: (e: CredentialAuditEntry) => e.actor },
  { header: 'api_key_id', value: (e: CredentialAuditEntry) => e.apiKeyId },
  { header: 'job_id', value: (e: CredentialAuditEntry) => e.jobId },
  { header: 'step_id', value: (e: CredentialAuditEntry) => e.stepId },
] as const;

const phiEntry = {
  type: 'object',
  properties: {
    id: uuid,
    at: dateTime,
    actor: { type: 'string' },
    apiKeyId: { type: ['string', 'null'] },
    resourceType: { type: 'string' },
    resourceId: uuid,
    jobId: { type: ['string', 'null'] },
    workflowId: { type: ['string', 'null'] },
    fields: { type: 'array', items: { type: 'string' } },
    ip: { type: ['string', 'null'] },
    userAgent: { type: ['string', 'null'] },
  },
} as const;

const credentialEntry = {
  type: 'object',
  properties: {
    id: uuid,
    at: dateTime,
    action: { type: 'string' },
    credentialId: uuid,
    credentialName: { type: 'string' },
    actor: { type: 'string' },
    apiKeyId: { type: ['string', 'null'] },
    jobId: { type: ['string', 'null'] },
    stepId: { type: ['string', 'null'] },
  },
} as const;

const page = (items: unknown) => ({ type: 'object', properties: { items: { type: 'array', items }, nextCursor: { type: ['string', 'null'] } } });

/** GET /v1/audit/phi and /v1/audit/credentials: newest first, keyset-paginated, JSON or CSV. OWNER and ADMIN. */
export function auditRoutes(app: FastifyInstance, db: Db): void {
  app.get<{ Querystring: AuditQuery }>(
    '/v1/audit/phi',
    {
      config: { action: 'audit.read', reads: 'replica' },
      schema: {
        tags: ['audit'],
        summary: 'Every API read that returned PHI (actor, key, resource, fields, IP, user agent, time)',
        querystring: querySchema(false),
        response: responses({ 200: page(phiEntry) }),
      },
    },
    async (req, reply) => {
      const found = await listPhiAudit(db, req.principal.organizationId, filterOf(req.query));
      const nextCursor = encodeCursor(found.nextCursor);
      if (req.query.format === 'csv') return sendCsv(reply, 'phi-audit', toCsv(PHI_COLUMNS, found.items), nextCursor);
      return { items: found.items, nextCursor };
    },
  );

  app.get<{ Querystring: AuditQuery }>(
    '/v1/audit/credentials',
    {
      config: { action: 'audit.read', reads: 'replica' },
      schema: {
        tags: ['audit'],
        summary: 'Every credential create, update, rotate, delete and use (actor, job, step)',
        querystring: querySchema(true),
        response: responses({ 200: page(credentialEntry) }),
      },
    },
    async (req, reply) => {
      const found = await listCredentialAudit(db, req.principal.organizationId, filterOf(req.query));
      const nextCursor = encodeCursor(found.nextCursor);
      if (req.query.format === 'csv') return sendCsv(reply, 'credential-audit', toCsv(CREDENTIAL_COLUMNS, found.items), nextCursor);
      return { items: found.items, nextCursor };
    },
  );
}
