import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Db } from '../../db/index.js';
import { ForbiddenError, NotFoundError } from '../../errors/index.js';
import { decideApproval, decideByLink, describeLink, type DecisionInput } from '../../engine/approval-decisions.js';
import { approvalLinks } from '../../security/approval-links.js';
import type { KeyRing } from '../../security/crypto.js';
import { roleAtLeast } from '../../security/permissions.js';
import { findApproval, listApprovals, listDecisions, type StoredApproval, type StoredApprovalStatus, type StoredDecision } from '../../store/approvals.js';
import { decodeCursor, encodeCursor } from '../cursor.js';
import { RateLimiter, type RateLimitConfig } from '../rate-limit.js';
import { anyJson, idParams, pageQuery, responses, uuid } from '../schemas.js';

const dateTime = { type: 'string', format: 'date-time' } as const;
const nullableDateTime = { type: ['string', 'null'], format: 'date-time' } as const;
const STATUSES = ['pending', 'approved', 'rejected', 'expired'] as const;
type StatusParam = (typeof STATUSES)[number];

const approvalSchema = {
  type: 'object',
  properties: {
    id: uuid,
    status: { type: 'string', enum: STATUSES },
    title: { type: 'string' },
    stepPath: { type: 'string' },
    required: { type: 'integer' },
    approvals: { type: 'integer', description: 'approve decisions so far' },
    approvers: {
      type: 'object',
      properties: { roles: { type: 'array', items: { type: 'string' } }, users: { type: 'array', items: uuid }, excludeInitiator: { type: 'boolean' } },
    },
    form: { type: ['object', 'null'], additionalProperties: true },
    timeoutOutcome: { type: ['string', 'null'], enum: ['approve', 'reject', null], description: 'what the timeout decided (status expired)' },
    requestedAt: dateTime,
    expiresAt: nullableDateTime,
    decidedAt: nullableDateTime,
    job: { type: 'object', properties: { id: uuid, runNumber: { type: 'integer' }, status: { type: 'string' } } },
    workflow: { type: 'object', properties: { id: uuid, name: { type: 'string' } } },
  },
  required: ['id', 'status', 'title', 'required', 'requestedAt', 'job', 'workflow'],
} as const;

const decisionSchema = {
  type: 'object',
  properties: {
    userId: uuid,
    decision: { type: 'string', enum: ['approve', 'reject'] },
    comment: { type: ['string', 'null'] },
    values: anyJson,
    via: { type: 'string', enum: ['API', 'LINK'] },
    apiKeyId: { type: ['string', 'null'] },
    decidedAt: dateTime,
  },
} as const;

const linkSchema = {
  type: 'object',
  properties: {
    userId: uuid,
    email: { type: ['string', 'null'] },
    name: { type: ['string', 'null'] },
    token: { type: ['string', 'null'], description: 'null once used or expired' },
    path: { type: ['string', 'null'], description: 'GET shows the request, POST decides; relative to the API base URL' },
    expiresAt: nullableDateTime,
    usedAt: nullableDateTime,
  },
} as const;

const approvalDetailSchema = {
  type: 'object',
  properties: {
    ...approvalSchema.properties,
    decisions: { type: 'array', items: decisionSchema },
    links: {
      type: ['array', 'null'],
      items: linkSchema,
      description: 'OWNER and ADMIN only: each approver\'s single-use link, to send on (null without an encryption key ring)',
    },
  },
  required: [...approvalSchema.required, 'decisions'],
} as const;

/** What a link shows its holder: the question and nothing else of the organization. */
const linkViewSchema = {
  type: 'object',
  properties: {
    title: { type: 'string' },
    status: { type: 'string', enum: STATUSES },
    form: { type: ['object', 'null'], additionalProperties: true },
    required: { type: 'integer' },
    expiresAt: nullableDateTime,
    workflow: { type: 'string', description: 'the workflow\'s name' },
    runNumber: { type: 'integer' },
  },
  required: ['title', 'status', 'form', 'workflow', 'runNumber'],
} as const;

const decisionBody = {
  type: 'object',
  additionalProperties: false,
  required: ['decision'],
  properties: {
    decision: { type: 'string', enum: ['approve', 'reject'] },
    comment: { type: 'string', maxLength: 2_000 },
    values: { type: 'object', description: 'must match the approval\'s form' },
  },
} as const;

const tokenParams = {
  type: 'object',
  additionalProperties: false,
  required: ['token'],
  properties: { token: { type: 'string', minLength: 1, maxLength: 200 } },
} as const;

/**
 * Link requests carry no key, so they are limited per client address. Guessing
 * is not what this guards (a token has 256 random bits); it keeps an
 * unauthenticated route from being a free way to load the database.
 */
export const LINK_RATE_LIMIT: RateLimitConfig = Object.freeze({ perSecond: 5, burst: 50 });

function statusParam(status: StoredApprovalStatus): StatusParam {
  return status.toLowerCase() as StatusParam;
}

function iso(d: Date | null): string | null {
  return d === null ? null : d.toISOString();
}

function approvalView(a: StoredApproval) {
  return {
    id: a.id,
    status: statusParam(a.status),
    title: a.title,
    stepPath: a.stepPath,
    required: a.required,
    approvals: a.approveCount,
    approvers: { roles: a.approverRoles, users: a.approverUsers, excludeInitiator: a.excludeInitiator },
    form: a.form,
    timeoutOutcome: a.timeoutOutcome === null ? null : a.timeoutOutcome === 'APPROVED' ? 'approve' : 'reject',
    requestedAt: a.requestedAt.toISOString(),
    expiresAt: iso(a.expiresAt),
    decidedAt: iso(a.decidedAt),
    job: { id: a.jobId, runNumber: a.job.runNumber, status: a.job.status },
    workflow: a.workflow,
  };
}

function decisionView(d: StoredDecision) {
  return {
    userId: d.userId,
    decision: d.decision === 'APPROVE' ? 'approve' : 'reject',
    comment: d.comment,
    values: d.values,
    via: d.via,
    apiKeyId: d.apiKeyId,
    decidedAt: d.decidedAt.toISOString(),
  };
}

function linkView(a: StoredApproval) {
  return {
    title: a.title,
    status: statusParam(a.status),
    form: a.form,
    required: a.required,
    expiresAt: iso(a.expiresAt),
    workflow: a.workflow.name,
    runNumber: a.job.runNumber,
  };
}

/** A request's user (an API key always has one while it authenticates). */
function callerId(req: FastifyRequest): string {
  const userId = req.principal.userId;
  if (userId === null) throw new ForbiddenError('this key belongs to no user, so it cannot decide approvals', {});
  return userId;
}

/**
 * Approvals: the list of what the caller may decide, one approval with its
 * decisions (and, for OWNER/ADMIN, each approver's link), a decision by API
 * key, and the public single-use links. Who may decide a given approval is
 * its approvers list; the actions only gate reading and deciding at all.
 */
export function approvalRoutes(app: FastifyInstance, db: Db, keyRing: KeyRing | null, rateLimit: RateLimitConfig): void {
  const tags = ['approvals'];
  // Off when the API's own limit is off (tests of many requests turn both off).
  const linkLimiter = new RateLimiter(rateLimit.perSecond > 0 ? LINK_RATE_LIMIT : { perSecond: 0, burst: 1 });

  app.get<{ Querystring: { status: StatusParam; limit: number; cursor?: string } }>(
    '/v1/approvals',
    {
      config: { action: 'approvals.read' },
      schema: {
        tags,
        summary: 'Approvals addressed to the caller (their role or user listed), newest first; status=pending (the default) lists those they may decide now',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { status: { type: 'string', enum: STATUSES, default: 'pending' }, ...pageQuery },
        },
        response: responses({ 200: { type: 'object', properties: { items: { type: 'array', items: approvalSchema }, nextCursor: { type: ['string', 'null'] } } } }),
      },
    },
    async (req) => {
      const page = await listApprovals(db, req.principal.organizationId, {
        status: req.query.status.toUpperCase() as StoredApprovalStatus,
        role: req.principal.role,
        userId: callerId(req),
        after: decodeCursor(req.query.cursor),
        limit: req.query.limit,
      });
      return { items: page.items.map(approvalView), nextCursor: encodeCursor(page.nextAfter) };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/approvals/:id',
    {
      config: { action: 'approvals.read' },
      schema: {
        tags,
        summary: 'One approval with its decisions (the audit); OWNER and ADMIN also get each approver\'s single-use link',
        params: idParams,
        response: responses({ 200: approvalDetailSchema }),
      },
    },
    async (req) => {
      const { organizationId } = req.principal;
      const approval = await findApproval(db, organizationId, req.params.id);
      if (!approval) throw new NotFoundError('approval', req.params.id);
      const decisions = (await listDecisions(db, organizationId, approval.id)).map(decisionView);
      // Links go to those who send them on, never to the approvers' peers.
      if (!roleAtLeast(req.principal.role, 'ADMIN')) return { ...approvalView(approval), decisions };
      const links = await approvalLinks(db, keyRing, organizationId, approval.id);
      return {
        ...approvalView(approval),
        decisions,
        links: links?.map((l) => ({ ...l, expiresAt: iso(l.expiresAt), usedAt: iso(l.usedAt) })) ?? null,
      };
    },
  );

  app.post<{ Params: { id: string }; Body: DecisionInput }>(
    '/v1/approvals/:id/decision',
    {
      config: { action: 'approvals.decide' },
      schema: {
        tags,
        summary: 'Approve or reject as the caller: their role or user must be listed (403), values must match the form (400); 409 once decided',
        params: idParams,
        body: decisionBody,
        response: responses({ 200: approvalSchema }),
      },
    },
    async (req) => {
      const decided = await decideApproval(
        db,
        req.principal.organizationId,
        req.params.id,
        { userId: callerId(req), role: req.principal.role, via: 'API', apiKeyId: req.principal.apiKeyId },
        req.body,
      );
      return approvalView(decided);
    },
  );

  // Before the body is parsed or anything is read.
  const limitLinks = async (req: FastifyRequest) => linkLimiter.take(req.ip);
  const linkResponses = { ...responses({ 200: linkViewSchema }), 410: { $ref: 'Error#' } };

  app.get<{ Params: { token: string } }>(
    '/v1/approval-links/:token',
    {
      config: { public: true },
      schema: {
        tags,
        summary: 'What a single-use approval link asks (no API key: the token is the credential); 410 once used or expired',
        security: [],
        params: tokenParams,
        response: linkResponses,
      },
      onRequest: limitLinks,
    },
    async (req, reply) => {
      void reply.header('cache-control', 'no-store');
      return linkView(await describeLink(db, req.params.token));
    },
  );

  app.post<{ Params: { token: string }; Body: DecisionInput }>(
    '/v1/approval-links/:token',
    {
      config: { public: true },
      schema: {
        tags,
        summary: 'Decide through a single-use link, as the user it was made for; a second use or an expired link is 410',
        security: [],
        params: tokenParams,
        body: decisionBody,
        response: linkResponses,
      },
      onRequest: limitLinks,
    },
    async (req, reply) => {
      void reply.header('cache-control', 'no-store');
      return linkView(await decideByLink(db, req.params.token, req.body));
    },
  );
}
