import type { Db, Queryable } from '../db/index.js';
import { NotFoundError, PayloadTooLargeError, ValidationError } from '../errors/index.js';
import {
  createSchedule,
  createScheduleAuditEntry,
  deleteSchedule,
  findSchedule,
  findWorkflow,
  updateSchedule,
  type MisfirePolicy,
  type Schedule,
  type ScheduleAuditAction,
  type ScheduleState,
} from '../store/index.js';
import { jsonByteLength } from '../util/json.js';
import { compileCron } from './schedule-timing.js';
import { MAX_INPUT_BYTES } from './service.js';

/**
 * Schedule use cases shared by the API and the CLI. Each change and its
 * schedule_audit_log row are written in one transaction: there is never a
 * change without its audit row, or an audit row for a change that rolled back.
 * `actor` is who made the change (an API key id, or 'cli:<key id>').
 */

export interface ScheduleInput {
  workflowId: string;
  name: string;
  cron: string;
  timezone?: string | undefined;
  input?: unknown;
  enabled?: boolean | undefined;
  misfirePolicy?: MisfirePolicy | undefined;
}

export type ScheduleChanges = Partial<ScheduleInput>;

/** `now` decides the first fire time; tests inject it. */
export interface ClockOption {
  now?: Date;
}

/** What an audit row records of a schedule: its configuration and when it fires next. */
export function scheduleSnapshot(s: Schedule): Record<string, unknown> {
  return {
    workflowId: s.workflowId,
    name: s.name,
    cron: s.cron,
    timezone: s.timezone,
    input: s.input ?? null,
    enabled: s.enabled,
    misfirePolicy: s.misfirePolicy,
    nextFireAt: s.nextFireAt?.toISOString() ?? null,
    deletedAt: s.deletedAt?.toISOString() ?? null,
  };
}

function checkName(name: string): void {
  if (name.trim() === '' || name.length > 200) {
    throw new ValidationError('/name must be 1 to 200 characters and not blank', { path: '/name' });
  }
}

function checkInput(input: unknown): void {
  const bytes = jsonByteLength(input);
  if (bytes > MAX_INPUT_BYTES) throw new PayloadTooLargeError('input', bytes, MAX_INPUT_BYTES);
}

/** The workflow must be this organization's and not archived (else 404, like starting a run). */
async function checkWorkflow(tx: Queryable, organizationId: string, workflowId: string): Promise<void> {
  const wf = await findWorkflow(tx, organizationId, workflowId);
  if (!wf || wf.deletedAt) throw new NotFoundError('workflow', workflowId);
}

async function audit(tx: Queryable, organizationId: string, actor: string, action: ScheduleAuditAction, before: Schedule | null, after: Schedule): Promise<void> {
  await createScheduleAuditEntry(tx, organizationId, {
    scheduleId: after.id,
    action,
    actor,
    before: before ? scheduleSnapshot(before) : null,
    after: scheduleSnapshot(after),
  });
}

/** Create a schedule; its first fire time is the first after `now` (null when created disabled). */
export async function defineSchedule(db: Db, organizationId: string, actor: string, input: ScheduleInput, opts: ClockOption = {}): Promise<Schedule> {
  checkName(input.name);
  const timezone = input.timezone ?? 'UTC';
  const cron = compileCron({ cron: input.cron, timezone });
  checkInput(input.input);
  const enabled = input.enabled ?? true;
  return db.transaction(async (tx) => {
    await checkWorkflow(tx, organizationId, input.workflowId);
    const created = await createSchedule(tx, organizationId, {
      workflowId: input.workflowId,
      name: input.name,
      cron: input.cron.trim(),
      timezone,
      input: input.input,
      enabled,
      misfirePolicy: input.misfirePolicy ?? 'SKIP',
      nextFireAt: enabled ? cron.nextRun(opts.now ?? new Date()) : null,
    });
    await audit(tx, organizationId, actor, 'CREATE', null, created);
    return created;
  });
}

/** Lock the live schedule, apply `change` to it, write it and its audit row. */
async function changeSchedule(
  db: Db,
  organizationId: string,
  scheduleId: string,
  actor: string,
  action: ScheduleAuditAction,
  change: (tx: Queryable, before: Schedule) => Promise<ScheduleState> | ScheduleState,
): Promise<Schedule> {
  return db.transaction(async (tx) => {
    const before = await findSchedule(tx, organizationId, scheduleId, { forUpdate: true });
    if (!before) throw new NotFoundError('schedule', scheduleId);
    const after = await updateSchedule(tx, organizationId, scheduleId, await change(tx, before));
    if (!after) throw new NotFoundError('schedule', scheduleId);
    await audit(tx, organizationId, actor, action, before, after);
    return after;
  });
}

/**
 * Change any field. The next fire time is recomputed from `now` when the
 * cron expression, the time zone or the enabled flag changes, and kept
 * otherwise (renaming an overdue schedule does not skip its firing).
 */
export async function reviseSchedule(
  db: Db,
  organizationId: string,
  actor: string,
  scheduleId: string,
  changes: ScheduleChanges,
  opts: ClockOption = {},
): Promise<Schedule> {
  if (changes.name !== undefined) checkName(changes.name);
  if (changes.input !== undefined) checkInput(changes.input);
  return changeSchedule(db, organizationId, scheduleId, actor, 'UPDATE', async (tx, before) => {
    const state: ScheduleState = {
      workflowId: changes.workflowId ?? before.workflowId,
      name: changes.name ?? before.name,
      cron: changes.cron?.trim() ?? before.cron,
      timezone: changes.timezone ?? before.timezone,
      input: changes.input !== undefined ? changes.input : before.input,
      enabled: changes.enabled ?? before.enabled,
      misfirePolicy: changes.misfirePolicy ?? before.misfirePolicy,
      nextFireAt: before.nextFireAt,
    };
    const cron = compileCron(state);
    if (state.workflowId !== before.workflowId) await checkWorkflow(tx, organizationId, state.workflowId);
    const timingChanged = state.cron !== before.cron || state.timezone !== before.timezone || state.enabled !== before.enabled;
    if (!state.enabled) state.nextFireAt = null;
    else if (timingChanged || state.nextFireAt === null) state.nextFireAt = cron.nextRun(opts.now ?? new Date());
    return state;
  });
}

/** Stop firing. The paused period is not a misfire: resuming starts from the next fire time after it. */
export async function pauseSchedule(db: Db, organizationId: string, actor: string, scheduleId: string): Promise<Schedule> {
  return changeSchedule(db, organizationId, scheduleId, actor, 'PAUSE', (_tx, before) => ({
    ...before,
    enabled: false,
    nextFireAt: null,
  }));
}

/** Fire again from the first fire time after `now` (a schedule already running keeps its next fire time). */
export async function resumeSchedule(db: Db, organizationId: string, actor: string, scheduleId: string, opts: ClockOption = {}): Promise<Schedule> {
  return changeSchedule(db, organizationId, scheduleId, actor, 'RESUME', (_tx, before) => ({
    ...before,
    enabled: true,
    nextFireAt:
      before.enabled && before.nextFireAt ? before.nextFireAt : compileCron(before).nextRun(opts.now ?? new Date()),
  }));
}

/** Soft delete: never fires again, hidden from reads; its audit trail stays readable. */
export async function removeSchedule(db: Db, organizationId: string, actor: string, scheduleId: string): Promise<Schedule> {
  return db.transaction(async (tx) => {
    const before = await findSchedule(tx, organizationId, scheduleId, { forUpdate: true });
    if (!before) throw new NotFoundError('schedule', scheduleId);
    const after = await deleteSchedule(tx, organizationId, scheduleId);
    if (!after) throw new NotFoundError('schedule', scheduleId);
    await audit(tx, organizationId, actor, 'DELETE', before, after);
    return after;
  });
}
