import type { Queryable } from '../db/index.js';
import type { WorkflowDefinition } from '../model/definition.js';
import { uuidv7 } from '../util/ids.js';
import { LIMITS_CHANNEL } from './jobs.js';

export type WorkflowStatus = 'ACTIVE' | 'PAUSED' | 'ARCHIVED' | 'DRAFT';

export interface Workflow {
  id: string;
  organizationId: string;
  name: string;
  description: string | null;
  category: string | null;
  status: WorkflowStatus;
  version: number;
  definition: WorkflowDefinition;
  /** Most jobs of this workflow running at once (null: no limit). */
  maxConcurrentRuns: number | null;
  createdAt: Date;
  updatedAt: Date;
  deletedAt: Date | null;
}

interface WorkflowRow {
  id: string;
  organization_id: string;
  name: string;
  description: string | null;
  category: string | null;
  status: WorkflowStatus;
  current_version: number;
  definition: WorkflowDefinition;
  max_concurrent_runs: number | null;
  created_at: Date;
  updated_at: Date;
  deleted_at: Date | null;
}

function toWorkflow(row: WorkflowRow): Workflow {
  return {
    id: row.id,
    organizationId: row.organization_id,
    name: row.name,
    description: row.description,
    category: row.category,
    status: row.status,
    version: row.current_version,
    definition: row.definition,
    maxConcurrentRuns: row.max_concurrent_runs,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    deletedAt: row.deleted_at,
  };
}

const SELECT_WORKFLOW = `
  SELECT w.id, w.organization_id, w.name, w.description, w.category, w.status, w.current_version,
         v.definition, w.max_concurrent_runs, w.created_at, w.updated_at, w.deleted_at
    FROM stepwise.workflows w
    JOIN stepwise.workflow_versions v ON v.workflow_id = w.id AND v.version = w.current_version`;

export interface NewWorkflow {
  name: string;
  description?: string | null;
  category?: string | null;
  status?: WorkflowStatus;
  maxConcurrentRuns?: number | null;
  definition: WorkflowDefinition;
}

/** Create a workflow and its version 1 (call inside a transaction). */
export async function createWorkflow(tx: Queryable, organizationId: string, input: NewWorkflow): Promise<Workflow> {
  const id = uuidv7();
  await tx.query(
    `INSERT INTO stepwise.workflows (id, organization_id, name, description, category, status, max_concurrent_runs)
     VALUES ($1, $2, $3, $4, $5, $6, $7)`,
    [id, organizationId, input.name, input.description ?? null, input.category ?? null, input.status ?? 'ACTIVE', input.maxConcurrentRuns ?? null],
  );
  await tx.query(
    `INSERT INTO stepwise.workflow_versions (workflow_id, version, organization_id, definition) VALUES ($1, 1, $2, $3)`,
    [id, organizationId, JSON.stringify(input.definition)],
  );
  if (input.maxConcurrentRuns != null) await tx.query(`SELECT pg_notify($1, '')`, [LIMITS_CHANNEL]);
  return (await findWorkflow(tx, organizationId, id))!;
}

export async function findWorkflow(db: Queryable, organizationId: string, workflowId: string): Promise<Workflow | null> {
  const { rows } = await db.query<WorkflowRow>(`${SELECT_WORKFLOW} WHERE w.organization_id = $1 AND w.id = $2`, [
    organizationId,
    workflowId,
  ]);
  return rows[0] ? toWorkflow(rows[0]) : null;
}

export interface WorkflowPage {
  items: Workflow[];
  nextCursor: string | null;
}

/** Newest first, keyset-paginated on id (UUIDv7 is time-ordered). */
export async function listWorkflows(
  db: Queryable,
  organizationId: string,
  opts: { after?: string | undefined; limit: number; includeArchived?: boolean | undefined },
): Promise<WorkflowPage> {
  const { rows } = await db.query<WorkflowRow>(
    `${SELECT_WORKFLOW}
      WHERE w.organization_id = $1
        AND ($2::uuid IS NULL OR w.id < $2::uuid)
        AND ($3::boolean OR w.deleted_at IS NULL)
      ORDER BY w.id DESC
      LIMIT $4`,
    [organizationId, opts.after ?? null, opts.includeArchived ?? false, opts.limit + 1],
  );
  const items = rows.slice(0, opts.limit).map(toWorkflow);
  return { items, nextCursor: rows.length > opts.limit ? items[items.length - 1]!.id : null };
}

export interface WorkflowChanges {
  name?: string | undefined;
  description?: string | null | undefined;
  category?: string | null | undefined;
  status?: WorkflowStatus | undefined;
  maxConcurrentRuns?: number | null | undefined;
  /** A new definition makes a new immutable version. */
  definition?: WorkflowDefinition | undefined;
}

/** Apply changes; a definition change appends version n+1. Returns null when not found in this organization. */
export async function updateWorkflow(
  tx: Queryable,
  organizationId: string,
  workflowId: string,
  changes: WorkflowChanges,
): Promise<Workflow | null> {
  const { rows } = await tx.query<{ current_version: number }>(
    `UPDATE stepwise.workflows
        SET name = coalesce($3, name),
            description = CASE WHEN $4::boolean THEN $5 ELSE description END,
            category = CASE WHEN $6::boolean THEN $7 ELSE category END,
            status = coalesce($8, status),
            current_version = current_version + CASE WHEN $9::boolean THEN 1 ELSE 0 END,
            max_concurrent_runs = CASE WHEN $10::boolean THEN $11::int ELSE max_concurrent_runs END,
            updated_at = now()
      WHERE organization_id = $1 AND id = $2 AND deleted_at IS NULL
      RETURNING current_version`,
    [
      organizationId,
      workflowId,
      changes.name ?? null,
      changes.description !== undefined,
      changes.description ?? null,
      changes.category !== undefined,
      changes.category ?? null,
      changes.status ?? null,
      changes.definition !== undefined,
      changes.maxConcurrentRuns !== undefined,
      changes.maxConcurrentRuns ?? null,
    ],
  );
  if (!rows[0]) return null;
  if (changes.maxConcurrentRuns !== undefined) await tx.query(`SELECT pg_notify($1, '')`, [LIMITS_CHANNEL]);
  if (changes.definition !== undefined) {
    await tx.query(
      `INSERT INTO stepwise.workflow_versions (workflow_id, version, organization_id, definition) VALUES ($1, $2, $3, $4)`,
      [workflowId, rows[0].current_version, organizationId, JSON.stringify(changes.definition)],
    );
  }
  return findWorkflow(tx, organizationId, workflowId);
}

/** Soft delete: ARCHIVED, kept for the jobs that ran it. */
export async function archiveWorkflow(db: Queryable, organizationId: string, workflowId: string): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE stepwise.workflows SET status = 'ARCHIVED', deleted_at = now(), updated_at = now()
      WHERE organization_id = $1 AND id = $2 AND deleted_at IS NULL`,
    [organizationId, workflowId],
  );
  return rowCount > 0;
}

export interface VersionKey {
  organizationId: string;
  workflowId: string;
  version: number;
}

/** Definitions of pinned versions, in one query (the worker caches them: versions never change). */
export async function findDefinitions(
  db: Queryable,
  keys: VersionKey[],
): Promise<Map<string, WorkflowDefinition>> {
  const out = new Map<string, WorkflowDefinition>();
  if (keys.length === 0) return out;
  const { rows } = await db.query<{ workflow_id: string; version: number; definition: WorkflowDefinition }>(
    `SELECT v.workflow_id, v.version, v.definition
       FROM unnest($1::uuid[], $2::uuid[], $3::int[]) AS k(organization_id, workflow_id, version)
       JOIN stepwise.workflow_versions v
         ON v.organization_id = k.organization_id AND v.workflow_id = k.workflow_id AND v.version = k.version`,
    [keys.map((k) => k.organizationId), keys.map((k) => k.workflowId), keys.map((k) => k.version)],
  );
  for (const r of rows) out.set(versionKey(r.workflow_id, r.version), r.definition);
  return out;
}

export function versionKey(workflowId: string, version: number): string {
  return `${workflowId}@${version}`;
}

/** One stored version of a workflow's definition (versions are immutable). */
export interface WorkflowVersion {
  workflowId: string;
  version: number;
  definition: WorkflowDefinition;
  createdAt: Date;
}

/** A version of a workflow of this organization, or null (no such workflow here, or no such version). */
export async function findWorkflowVersion(
  db: Queryable,
  organizationId: string,
  workflowId: string,
  version: number,
): Promise<WorkflowVersion | null> {
  const { rows } = await db.query<{ workflow_id: string; version: number; definition: WorkflowDefinition; created_at: Date }>(
    `SELECT workflow_id, version, definition, created_at FROM stepwise.workflow_versions
      WHERE organization_id = $1 AND workflow_id = $2 AND version = $3`,
    [organizationId, workflowId, version],
  );
  const r = rows[0];
  return r ? { workflowId: r.workflow_id, version: r.version, definition: r.definition, createdAt: r.created_at } : null;
}
