import type { Queryable } from '../db/index.js';
import type { CredentialAction } from './credentials.js';

/**
 * The credential and PHI audit logs: written by the API (PHI reads,
 * credential changes) and the engine (credential use), read back newest
 * first with keyset pagination on the UUIDv7 id (time-ordered).
 */

export const PHI_RESOURCE_TYPES = ['JOB', 'STREAM', 'SCREENSHOT'] as const;
export type PhiResourceType = (typeof PHI_RESOURCE_TYPES)[number];

/** Six years, as HIPAA requires (45 CFR 164.316(b)(2)); migration 0010 refuses deleting younger rows, whatever a policy says. */
export const PHI_AUDIT_RETENTION_YEARS = 6;

export interface PhiAccess {
  id: string;
  resourceType: PhiResourceType;
  resourceId: string;
  jobId: string | null;
  workflowId: string | null;
  fields: string[];
}

export interface AccessContext {
  /** 'user:<user id>' (the API key's user), or 'key:<api key id>' for a key without one. */
  actor: string;
  apiKeyId: string | null;
  ip: string | null;
  userAgent: string | null;
}

/** One PHI read per resource returned, all in one statement (a list page of 100 PHI jobs is one INSERT). */
export async function insertPhiAccesses(db: Queryable, organizationId: string, ctx: AccessContext, accesses: readonly PhiAccess[]): Promise<void> {
  if (accesses.length === 0) return;
  await db.query(
    `INSERT INTO stepwise.phi_audit_log
       (id, organization_id, actor, api_key_id, ip, user_agent, resource_type, resource_id, job_id, workflow_id, fields)
     SELECT a.id, $1, $2, $3, $4, $5, a.resource_type, a.resource_id, a.job_id, a.workflow_id,
            ARRAY(SELECT jsonb_array_elements_text(a.fields))
       FROM unnest($6::uuid[], $7::text[], $8::uuid[], $9::uuid[], $10::uuid[], $11::jsonb[])
         AS a (id, resource_type, resource_id, job_id, workflow_id, fields)`,
    [
      organizationId,
      ctx.actor,
      ctx.apiKeyId,
      ctx.ip,
      ctx.userAgent,
      accesses.map((a) => a.id),
      accesses.map((a) => a.resourceType),
      accesses.map((a) => a.resourceId),
      accesses.map((a) => a.jobId),
      accesses.map((a) => a.workflowId),
      accesses.map((a) => JSON.stringify(a.fields)),
    ],
  );
}

export interface AuditFilter {
  from?: Date | undefined;
  to?: Date | undefined;
  actor?: string | undefined;
  jobId?: string | undefined;
  credentialId?: string | undefined;
  /** Keyset cursor: entries with ids below this one. */
  before?: string | undefined;
  limit: number;
}

/** Conditions on $1–$5 that both audit logs filter by: organization, time range (`to` exclusive), actor, job. */
const COMMON_FILTER = `organization_id = $1
        AND ($2::timestamptz IS NULL OR at >= $2::timestamptz)
        AND ($3::timestamptz IS NULL OR at < $3::timestamptz)
        AND ($4::text IS NULL OR actor = $4::text)
        AND ($5::uuid IS NULL OR job_id = $5::uuid)`;

function commonParams(organizationId: string, f: AuditFilter): unknown[] {
  return [organizationId, f.from ?? null, f.to ?? null, f.actor ?? null, f.jobId ?? null];
}

/** A page of `limit` entries from `limit + 1` rows read newest first; the cursor is the last id shown. */
function newestFirstPage<R, T extends { id: string }>(rows: R[], limit: number, map: (r: R) => T): { items: T[]; nextCursor: string | null } {
  const items = rows.slice(0, limit).map(map);
  return { items, nextCursor: rows.length > limit ? items[items.length - 1]!.id : null };
}

export interface PhiAuditEntry {
  id: string;
  at: Date;
  actor: string;
  apiKeyId: string | null;
  resourceType: PhiResourceType;
  resourceId: string;
  jobId: string | null;
  workflowId: string | null;
  fields: string[];
  ip: string | null;
  userAgent: string | null;
}

interface PhiRow {
  id: string;
  at: Date;
  actor: string;
  api_key_id: string | null;
  resource_type: PhiResourceType;
  resource_id: string;
  job_id: string | null;
  workflow_id: string | null;
  fields: string[];
  ip: string | null;
  user_agent: string | null;
}

/** Newest first; `to` is exclusive. */
export async function listPhiAudit(
  db: Queryable,
  organizationId: string,
  f: AuditFilter,
): Promise<{ items: PhiAuditEntry[]; nextCursor: string | null }> {
  const { rows } = await db.query<PhiRow>(
    `SELECT id, at, actor, api_key_id, resource_type, resource_id, job_id, workflow_id, fields, ip, user_agent
       FROM stepwise.phi_audit_log
      WHERE ${COMMON_FILTER}
        AND ($6::uuid IS NULL OR id < $6::uuid)
      ORDER BY id DESC
      LIMIT $7`,
    [...commonParams(organizationId, f), f.before ?? null, f.limit + 1],
  );
  return newestFirstPage(rows, f.limit, (r) => ({
    id: r.id,
    at: r.at,
    actor: r.actor,
    apiKeyId: r.api_key_id,
    resourceType: r.resource_type,
    resourceId: r.resource_id,
    jobId: r.job_id,
    workflowId: r.workflow_id,
    fields: r.fields,
    ip: r.ip,
    userAgent: r.user_agent,
  }));
}

export interface CredentialAuditEntry {
  id: string;
  at: Date;
  credentialId: string;
  credentialName: string;
  action: CredentialAction;
  actor: string;
  apiKeyId: string | null;
  jobId: string | null;
  stepId: string | null;
}

interface CredentialAuditRow {
  id: string;
  at: Date;
  credential_id: string;
  credential_name: string;
  action: CredentialAction;
  actor: string;
  api_key_id: string | null;
  job_id: string | null;
  step_id: string | null;
}

/** Newest first; `to` is exclusive. */
export async function listCredentialAudit(
  db: Queryable,
  organizationId: string,
  f: AuditFilter,
): Promise<{ items: CredentialAuditEntry[]; nextCursor: string | null }> {
  const { rows } = await db.query<CredentialAuditRow>(
    `SELECT id, at, credential_id, credential_name, action, actor, api_key_id, job_id, step_id
       FROM stepwise.credential_audit_log
      WHERE ${COMMON_FILTER}
        AND ($6::uuid IS NULL OR credential_id = $6::uuid)
        AND ($7::uuid IS NULL OR id < $7::uuid)
      ORDER BY id DESC
      LIMIT $8`,
    [...commonParams(organizationId, f), f.credentialId ?? null, f.before ?? null, f.limit + 1],
  );
  return newestFirstPage(rows, f.limit, (r) => ({
    id: r.id,
    at: r.at,
    credentialId: r.credential_id,
    credentialName: r.credential_name,
    action: r.action,
    actor: r.actor,
    apiKeyId: r.api_key_id,
    jobId: r.job_id,
    stepId: r.step_id,
  }));
}

/**
 * The PHI paths each (workflow, version) declares, for the versions given.
 * Versions are immutable, so callers may cache the answer for good.
 */
export async function findPhiPaths(
  db: Queryable,
  organizationId: string,
  versions: readonly { workflowId: string; version: number }[],
): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  if (versions.length === 0) return out;
  const { rows } = await db.query<{ workflow_id: string; version: number; phi: string[] | null }>(
    `SELECT v.workflow_id, v.version, ARRAY(SELECT jsonb_array_elements_text(v.definition->'phi')) AS phi
       FROM stepwise.workflow_versions v
       JOIN unnest($2::uuid[], $3::int[]) AS k (workflow_id, version)
         ON k.workflow_id = v.workflow_id AND k.version = v.version
      WHERE v.organization_id = $1`,
    [organizationId, versions.map((v) => v.workflowId), versions.map((v) => v.version)],
  );
  for (const r of rows) out.set(`${r.workflow_id}:${r.version}`, r.phi ?? []);
  return out;
}
