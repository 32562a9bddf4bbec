import { LOCK_KEYS, type Queryable } from '../db/index.js';
import { uuidv7 } from '../util/ids.js';
import type { WorkflowDefinition } from '../model/definition.js';
import type { WorkflowStatus } from './workflows.js';

export const MISFIRE_POLICIES = ['SKIP', 'RUN_ONCE'] as const;
export type MisfirePolicy = (typeof MISFIRE_POLICIES)[number];

export const SCHEDULE_AUDIT_ACTIONS = ['CREATE', 'UPDATE', 'PAUSE', 'RESUME', 'DELETE'] as const;
export type ScheduleAuditAction = (typeof SCHEDULE_AUDIT_ACTIONS)[number];

/** Key of the transaction-scoped advisory lock the scheduler leader holds for one tick (from the registry in db/lock-keys.ts). */
export const SCHEDULER_LOCK_KEY = LOCK_KEYS.schedulerLeader;

export interface Schedule {
  id: string;
  organizationId: string;
  workflowId: string;
  name: string;
  cron: string;
  timezone: string;
  input: unknown;
  enabled: boolean;
  misfirePolicy: MisfirePolicy;
  nextFireAt: Date | null;
  lastFiredAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
  deletedAt: Date | null;
}

interface ScheduleRow {
  id: string;
  organization_id: string;
  workflow_id: string;
  name: string;
  cron: string;
  timezone: string;
  input: unknown;
  enabled: boolean;
  misfire_policy: MisfirePolicy;
  next_fire_at: Date | null;
  last_fired_at: Date | null;
  created_at: Date;
  updated_at: Date;
  deleted_at: Date | null;
}

const SCHEDULE_COLUMNS = `id, organization_id, workflow_id, name, cron, timezone, input, enabled, misfire_policy,
  next_fire_at, last_fired_at, created_at, updated_at, deleted_at`;

function toSchedule(row: ScheduleRow): Schedule {
  return {
    id: row.id,
    organizationId: row.organization_id,
    workflowId: row.workflow_id,
    name: row.name,
    cron: row.cron,
    timezone: row.timezone,
    input: row.input,
    enabled: row.enabled,
    misfirePolicy: row.misfire_policy,
    nextFireAt: row.next_fire_at,
    lastFiredAt: row.last_fired_at,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    deletedAt: row.deleted_at,
  };
}

// undefined and null both become SQL NULL ("no input", "no snapshot"), never the jsonb value null.
const json = (value: unknown): string | null => (value === undefined || value === null ? null : JSON.stringify(value));

export interface NewSchedule {
  workflowId: string;
  name: string;
  cron: string;
  timezone: string;
  input?: unknown;
  enabled: boolean;
  misfirePolicy: MisfirePolicy;
  nextFireAt: Date | null;
}

export async function createSchedule(db: Queryable, organizationId: string, input: NewSchedule): Promise<Schedule> {
  const { rows } = await db.query<ScheduleRow>(
    `INSERT INTO stepwise.schedules (id, organization_id, workflow_id, name, cron, timezone, input, enabled, misfire_policy, next_fire_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
     RETURNING ${SCHEDULE_COLUMNS}`,
    [uuidv7(), organizationId, input.workflowId, input.name, input.cron, input.timezone, json(input.input), input.enabled,
      input.misfirePolicy, input.nextFireAt],
  );
  return toSchedule(rows[0]!);
}

/**
 * A schedule of this organization, or null. Deleted schedules are hidden
 * unless `includeDeleted` (their audit trail stays readable). `forUpdate`
 * locks the row so a read-modify-write (and its audit snapshot) is not lost
 * to a concurrent change.
 */
export async function findSchedule(
  db: Queryable,
  organizationId: string,
  scheduleId: string,
  opts: { includeDeleted?: boolean; forUpdate?: boolean } = {},
): Promise<Schedule | null> {
  const { rows } = await db.query<ScheduleRow>(
    `SELECT ${SCHEDULE_COLUMNS} FROM stepwise.schedules
      WHERE organization_id = $1 AND id = $2 AND ($3::boolean OR deleted_at IS NULL)
      ${opts.forUpdate ? 'FOR UPDATE' : ''}`,
    [organizationId, scheduleId, opts.includeDeleted ?? false],
  );
  return rows[0] ? toSchedule(rows[0]) : null;
}

/** Newest first, keyset-paginated on the UUIDv7 id; deleted schedules are not listed. */
export async function findSchedules(
  db: Queryable,
  organizationId: string,
  opts: { after?: string | undefined; limit: number; workflowId?: string | undefined },
): Promise<{ items: Schedule[]; nextCursor: string | null }> {
  const { rows } = await db.query<ScheduleRow>(
    `SELECT ${SCHEDULE_COLUMNS} FROM stepwise.schedules
      WHERE organization_id = $1 AND deleted_at IS NULL
        AND ($2::uuid IS NULL OR id < $2::uuid)
        AND ($3::uuid IS NULL OR workflow_id = $3::uuid)
      ORDER BY id DESC LIMIT $4`,
    [organizationId, opts.after ?? null, opts.workflowId ?? null, opts.limit + 1],
  );
  const items = rows.slice(0, opts.limit).map(toSchedule);
  return { items, nextCursor: rows.length > opts.limit ? items[items.length - 1]!.id : null };
}

/** The full new state of a schedule's editable fields (the caller merges changes and computes next_fire_at). */
export type ScheduleState = Omit<NewSchedule, 'input'> & { input: unknown };

/** Overwrite a live schedule's editable state. Returns null when not found in this organization. */
export async function updateSchedule(
  db: Queryable,
  organizationId: string,
  scheduleId: string,
  state: ScheduleState,
): Promise<Schedule | null> {
  const { rows } = await db.query<ScheduleRow>(
    `UPDATE stepwise.schedules
        SET workflow_id = $3, name = $4, cron = $5, timezone = $6, input = $7, enabled = $8,
            misfire_policy = $9, next_fire_at = $10, updated_at = now()
      WHERE organization_id = $1 AND id = $2 AND deleted_at IS NULL
      RETURNING ${SCHEDULE_COLUMNS}`,
    [organizationId, scheduleId, state.workflowId, state.name, state.cron, state.timezone, json(state.input), state.enabled,
      state.misfirePolicy, state.nextFireAt],
  );
  return rows[0] ? toSchedule(rows[0]) : null;
}

/** Soft delete: the row stays for its audit trail but never fires again. Null when not found. */
export async function deleteSchedule(db: Queryable, organizationId: string, scheduleId: string): Promise<Schedule | null> {
  const { rows } = await db.query<ScheduleRow>(
    `UPDATE stepwise.schedules SET deleted_at = now(), updated_at = now(), next_fire_at = NULL
      WHERE organization_id = $1 AND id = $2 AND deleted_at IS NULL
      RETURNING ${SCHEDULE_COLUMNS}`,
    [organizationId, scheduleId],
  );
  return rows[0] ? toSchedule(rows[0]) : null;
}

export interface ScheduleAuditEntry {
  id: string;
  organizationId: string;
  scheduleId: string;
  action: ScheduleAuditAction;
  actor: string;
  before: unknown;
  after: unknown;
  at: Date;
}

interface ScheduleAuditRow {
  id: string;
  organization_id: string;
  schedule_id: string;
  action: ScheduleAuditAction;
  actor: string;
  before: unknown;
  after: unknown;
  at: Date;
}

function toAuditEntry(row: ScheduleAuditRow): ScheduleAuditEntry {
  const { id, action, actor, before, after, at } = row;
  return { id, organizationId: row.organization_id, scheduleId: row.schedule_id, action, actor, before, after, at };
}

const AUDIT_COLUMNS = 'id, organization_id, schedule_id, action, actor, before, after, at';

/** Append an audit row (call in the transaction that made the change). */
export async function createScheduleAuditEntry(
  db: Queryable,
  organizationId: string,
  entry: { scheduleId: string; action: ScheduleAuditAction; actor: string; before: unknown; after: unknown },
): Promise<ScheduleAuditEntry> {
  const { rows } = await db.query<ScheduleAuditRow>(
    `INSERT INTO stepwise.schedule_audit_log (id, organization_id, schedule_id, action, actor, before, after)
     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ${AUDIT_COLUMNS}`,
    [uuidv7(), organizationId, entry.scheduleId, entry.action, entry.actor, json(entry.before), json(entry.after)],
  );
  return toAuditEntry(rows[0]!);
}

/** A schedule's audit rows, newest first, keyset-paginated on the UUIDv7 id. */
export async function findScheduleAuditEntries(
  db: Queryable,
  organizationId: string,
  scheduleId: string,
  opts: { after?: string | undefined; limit: number },
): Promise<{ items: ScheduleAuditEntry[]; nextCursor: string | null }> {
  const { rows } = await db.query<ScheduleAuditRow>(
    `SELECT ${AUDIT_COLUMNS} FROM stepwise.schedule_audit_log
      WHERE organization_id = $1 AND schedule_id = $2 AND ($3::uuid IS NULL OR id < $3::uuid)
      ORDER BY id DESC LIMIT $4`,
    [organizationId, scheduleId, opts.after ?? null, opts.limit + 1],
  );
  const items = rows.slice(0, opts.limit).map(toAuditEntry);
  return { items, nextCursor: rows.length > opts.limit ? items[items.length - 1]!.id : null };
}

// ---- Scheduler (system code: the only cross-tenant reads here) ----

/**
 * Try to become the scheduler leader for the rest of this transaction. False
 * means another process holds the lock for its own tick right now.
 */
export async function tryAcquireSchedulerLock(tx: Queryable): Promise<boolean> {
  const { rows } = await tx.query<{ ok: boolean }>('SELECT pg_try_advisory_xact_lock($1) AS ok', [SCHEDULER_LOCK_KEY]);
  return rows[0]?.ok === true;
}

/** A due schedule with what enqueueing its runs needs from its workflow's current version. */
export interface DueSchedule extends Schedule {
  workflowStatus: WorkflowStatus;
  workflowDeleted: boolean;
  workflowVersion: number;
  definition: WorkflowDefinition;
}

/**
 * Schedules of every organization whose next fire time is at or before
 * `now`, oldest first, locked for this transaction (SKIP LOCKED: a row
 * another transaction holds is simply left for the next tick). Walks the
 * partial index schedules_due_idx.
 */
export async function findDueSchedules(tx: Queryable, now: Date, limit: number): Promise<DueSchedule[]> {
  const { rows } = await tx.query<
    ScheduleRow & { workflow_status: WorkflowStatus; workflow_deleted: boolean; workflow_version: number; definition: WorkflowDefinition }
  >(
    `SELECT s.id, s.organization_id, s.workflow_id, s.name, s.cron, s.timezone, s.input, s.enabled, s.misfire_policy,
            s.next_fire_at, s.last_fired_at, s.created_at, s.updated_at, s.deleted_at,
            w.status AS workflow_status, (w.deleted_at IS NOT NULL) AS workflow_deleted,
            w.current_version AS workflow_version,
            v.definition
       FROM stepwise.schedules s
       JOIN stepwise.workflows w ON w.organization_id = s.organization_id AND w.id = s.workflow_id
       JOIN stepwise.workflow_versions v ON v.workflow_id = w.id AND v.version = w.current_version
      WHERE s.enabled AND s.deleted_at IS NULL AND s.next_fire_at IS NOT NULL AND s.next_fire_at <= $1
      ORDER BY s.next_fire_at
      LIMIT $2
      FOR UPDATE OF s SKIP LOCKED`,
    [now, limit],
  );
  return rows.map((r) => ({
    ...toSchedule(r),
    workflowStatus: r.workflow_status,
    workflowDeleted: r.workflow_deleted,
    workflowVersion: r.workflow_version,
    definition: r.definition,
  }));
}

/** Move a schedule on after a tick: its next fire time, and the last time it fired (kept when null). */
export async function updateScheduleFiring(
  tx: Queryable,
  organizationId: string,
  scheduleId: string,
  firing: { nextFireAt: Date | null; lastFiredAt: Date | null },
): Promise<void> {
  // updated_at is left alone: it records changes people made, not the scheduler's progress.
  await tx.query(
    `UPDATE stepwise.schedules
        SET next_fire_at = $3, last_fired_at = coalesce($4, last_fired_at)
      WHERE organization_id = $1 AND id = $2`,
    [organizationId, scheduleId, firing.nextFireAt, firing.lastFiredAt],
  );
}
