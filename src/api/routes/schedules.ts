import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Db } from '../../db/index.js';
import {
  defineSchedule,
  pauseSchedule,
  removeSchedule,
  resumeSchedule,
  reviseSchedule,
  type ScheduleChanges,
  type ScheduleInput,
} from '../../engine/schedules.js';
import { NotFoundError } from '../../errors/index.js';
import { scheduleView } from '../../read/index.js';
import {
  findSchedule,
  findScheduleAuditEntries,
  findSchedules,
  MISFIRE_POLICIES,
  SCHEDULE_AUDIT_ACTIONS,
  type Schedule,
  type ScheduleAuditEntry,
} from '../../store/index.js';
import { decodeCursor, encodeCursor } from '../cursor.js';
import { anyJson, idParams, pageQuery, responses, uuid } from '../schemas.js';

/** Who changed a schedule, for its audit log: the API key (as before), or `user:<id>` for a dashboard password session. */
function scheduleActor(req: FastifyRequest): string {
  return req.principal.apiKeyId ?? `user:${req.principal.userId}`;
}

const dateTime = { type: 'string', format: 'date-time' } as const;
const nullableDateTime = { type: ['string', 'null'], format: 'date-time' } as const;

export const scheduleSchema = {
  $id: 'Schedule',
  type: 'object',
  properties: {
    id: uuid,
    workflowId: uuid,
    name: { type: 'string' },
    cron: { type: 'string' },
    timezone: { type: 'string' },
    input: anyJson,
    enabled: { type: 'boolean' },
    misfirePolicy: { type: 'string', enum: [...MISFIRE_POLICIES] },
    nextFireAt: { ...nullableDateTime, description: 'next firing; null while paused' },
    lastFiredAt: nullableDateTime,
    createdAt: dateTime,
    updatedAt: dateTime,
  },
  required: ['id', 'workflowId', 'name', 'cron', 'timezone', 'enabled', 'misfirePolicy', 'nextFireAt', 'createdAt', 'updatedAt'],
} as const;

export const scheduleAuditEntrySchema = {
  $id: 'ScheduleAuditEntry',
  type: 'object',
  properties: {
    id: uuid,
    scheduleId: uuid,
    action: { type: 'string', enum: [...SCHEDULE_AUDIT_ACTIONS] },
    actor: { type: 'string', description: 'API key id that made the change' },
    before: anyJson,
    after: anyJson,
    at: dateTime,
  },
  required: ['id', 'scheduleId', 'action', 'actor', 'at'],
} as const;

function auditView(e: ScheduleAuditEntry) {
  return { id: e.id, scheduleId: e.scheduleId, action: e.action, actor: e.actor, before: e.before, after: e.after, at: e.at };
}

const editable = {
  workflowId: uuid,
  name: { type: 'string', minLength: 1, maxLength: 200, pattern: '\\S' },
  cron: { type: 'string', minLength: 1, maxLength: 200, pattern: '\\S', description: 'five-field cron expression or @nickname' },
  timezone: { type: 'string', minLength: 1, maxLength: 64, description: 'IANA time zone, e.g. America/New_York' },
  input: anyJson,
  enabled: { type: 'boolean' },
  misfirePolicy: { type: 'string', enum: [...MISFIRE_POLICIES] },
} as const;

const page = (item: string) => ({
  type: 'object',
  properties: { items: { type: 'array', items: { $ref: `${item}#` } }, nextCursor: { type: ['string', 'null'] } },
});

export function scheduleRoutes(app: FastifyInstance, db: Db): void {
  app.addSchema(scheduleSchema);
  app.addSchema(scheduleAuditEntrySchema);
  const one = responses({ 200: { $ref: 'Schedule#' } });

  app.post<{ Body: ScheduleInput }>(
    '/v1/schedules',
    {
      config: { action: 'schedules.manage' },
      schema: {
        tags: ['schedules'],
        summary: 'Create a cron schedule that starts runs of a workflow',
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['workflowId', 'name', 'cron'],
          properties: { ...editable, timezone: { ...editable.timezone, default: 'UTC' } },
        },
        response: responses({ 201: { $ref: 'Schedule#' } }),
      },
    },
    async (req, reply) => {
      const created = await defineSchedule(db, req.principal.organizationId, scheduleActor(req), req.body);
      return reply.status(201).send(scheduleView(created));
    },
  );

  app.get<{ Querystring: { limit: number; cursor?: string; workflowId?: string } }>(
    '/v1/schedules',
    {
      config: { action: 'schedules.read' },
      schema: {
        tags: ['schedules'],
        summary: 'List schedules, newest first',
        querystring: { type: 'object', additionalProperties: false, properties: { ...pageQuery, workflowId: uuid } },
        response: responses({ 200: page('Schedule') }),
      },
    },
    async (req) => {
      const found = await findSchedules(db, req.principal.organizationId, {
        after: decodeCursor(req.query.cursor),
        limit: req.query.limit,
        workflowId: req.query.workflowId,
      });
      return { items: found.items.map(scheduleView), nextCursor: encodeCursor(found.nextCursor) };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/schedules/:id',
    { config: { action: 'schedules.read' }, schema: { tags: ['schedules'], summary: 'Get a schedule', params: idParams, response: one } },
    async (req) => {
      const s = await findSchedule(db, req.principal.organizationId, req.params.id);
      if (!s) throw new NotFoundError('schedule', req.params.id);
      return scheduleView(s);
    },
  );

  app.patch<{ Params: { id: string }; Body: ScheduleChanges }>(
    '/v1/schedules/:id',
    {
      config: { action: 'schedules.manage' },
      schema: {
        tags: ['schedules'],
        summary: 'Change any field; the next fire time is recomputed when cron, timezone or enabled change',
        params: idParams,
        body: { type: 'object', additionalProperties: false, minProperties: 1, properties: editable },
        response: one,
      },
    },
    async (req) =>
      scheduleView(await reviseSchedule(db, req.principal.organizationId, scheduleActor(req), req.params.id, req.body)),
  );

  app.post<{ Params: { id: string } }>(
    '/v1/schedules/:id/pause',
    { config: { action: 'schedules.manage' }, schema: { tags: ['schedules'], summary: 'Stop firing until resumed', params: idParams, response: one } },
    async (req) => scheduleView(await pauseSchedule(db, req.principal.organizationId, scheduleActor(req), req.params.id)),
  );

  app.post<{ Params: { id: string } }>(
    '/v1/schedules/:id/resume',
    { config: { action: 'schedules.manage' }, schema: { tags: ['schedules'], summary: 'Fire again from the next fire time after now', params: idParams, response: one } },
    async (req) => scheduleView(await resumeSchedule(db, req.principal.organizationId, scheduleActor(req), req.params.id)),
  );

  app.delete<{ Params: { id: string } }>(
    '/v1/schedules/:id',
    { config: { action: 'schedules.manage' }, schema: { tags: ['schedules'], summary: 'Delete a schedule (its audit trail is kept)', params: idParams, response: responses({ 204: { type: 'null' } }) } },
    async (req, reply) => {
      await removeSchedule(db, req.principal.organizationId, scheduleActor(req), req.params.id);
      return reply.status(204).send();
    },
  );

  app.get<{ Params: { id: string }; Querystring: { limit: number; cursor?: string } }>(
    '/v1/schedules/:id/audit',
    {
      config: { action: 'schedules.read' },
      schema: {
        tags: ['schedules'],
        summary: "A schedule's audit trail (who changed what), newest first; readable after the schedule is deleted",
        params: idParams,
        querystring: { type: 'object', additionalProperties: false, properties: pageQuery },
        response: responses({ 200: page('ScheduleAuditEntry') }),
      },
    },
    async (req) => {
      const org = req.principal.organizationId;
      if (!(await findSchedule(db, org, req.params.id, { includeDeleted: true }))) throw new NotFoundError('schedule', req.params.id);
      const found = await findScheduleAuditEntries(db, org, req.params.id, { after: decodeCursor(req.query.cursor), limit: req.query.limit });
      return { items: found.items.map(auditView), nextCursor: encodeCursor(found.nextCursor) };
    },
  );
}
