import type { Queryable } from '../db/index.js';
import { DAY_MS } from '../util/clock.js';

/** Resource types a retention policy can be set for. */
export const RETENTION_RESOURCE_TYPES = ['execution_log', 'screenshot', 'job', 'job_result', 'phi_audit'] as const;
export type RetentionResourceType = (typeof RETENTION_RESOURCE_TYPES)[number];

/** An organization's retention policy for one resource type, in days of age. */
export interface RetentionPolicy {
  organizationId: string;
  resourceType: RetentionResourceType;
  hotRetentionDays: number;
  archiveRetentionDays: number;
  /** null: never deleted. */
  deleteAfterDays: number | null;
  /** False when no policy was set and these are the defaults. */
  isDefault: boolean;
  updatedAt: Date | null;
}

export interface RetentionSettings {
  hotRetentionDays: number;
  archiveRetentionDays: number;
  deleteAfterDays: number | null;
}

/**
 * PHI access records are kept six years (HIPAA requires documentation of its
 * safeguards, 45 CFR 164.316(b)(2), to be kept that long); 2,192 days is
 * six years with two leap days. The migration's CHECK holds the same number.
 */
export const PHI_AUDIT_MIN_DAYS = 2192;

/**
 * The policy of an organization that set none: 30 days hot, 365 archived, never deleted (nothing is
 * lost unless someone asked for it); PHI audit kept six years.
 */
export function defaultRetention(resourceType: RetentionResourceType): RetentionSettings {
  return {
    hotRetentionDays: 30,
    archiveRetentionDays: resourceType === 'phi_audit' ? PHI_AUDIT_MIN_DAYS : 365,
    deleteAfterDays: null,
  };
}

/**
 * When data written at `writtenAt` may be deleted under the policy: written
 * time + deleteAfterDays, or null when the policy never deletes (the default).
 * The one statement of this rule: screenshots get it as retain_until when
 * captured (engine/artifacts.ts), and cleanup deletes them once it passes.
 */
export function retainUntil(policy: RetentionSettings, writtenAt: Date): Date | null {
  return policy.deleteAfterDays === null ? null : new Date(writtenAt.getTime() + policy.deleteAfterDays * DAY_MS);
}

interface PolicyRow {
  resource_type: string;
  hot_retention_days: number;
  archive_retention_days: number;
  delete_after_days: number | null;
  updated_at: Date;
}

function isResourceType(s: string): s is RetentionResourceType {
  return (RETENTION_RESOURCE_TYPES as readonly string[]).includes(s);
}

function toPolicy(organizationId: string, row: PolicyRow): RetentionPolicy {
  if (!isResourceType(row.resource_type)) throw new Error(`unknown resource type ${row.resource_type}`);
  return {
    organizationId,
    resourceType: row.resource_type,
    hotRetentionDays: row.hot_retention_days,
    archiveRetentionDays: row.archive_retention_days,
    deleteAfterDays: row.delete_after_days,
    isDefault: false,
    updatedAt: row.updated_at,
  };
}

function withDefault(organizationId: string, resourceType: RetentionResourceType): RetentionPolicy {
  return { organizationId, resourceType, ...defaultRetention(resourceType), isDefault: true, updatedAt: null };
}

/** Every resource type's policy for the organization, defaults filled in where none was set. */
export async function listRetentionPolicies(db: Queryable, organizationId: string): Promise<RetentionPolicy[]> {
  const { rows } = await db.query<PolicyRow>(
    `SELECT resource_type, hot_retention_days, archive_retention_days, delete_after_days, updated_at
       FROM stepwise.retention_policies WHERE organization_id = $1`,
    [organizationId],
  );
  const set = new Map(rows.map((r) => [r.resource_type, toPolicy(organizationId, r)]));
  return RETENTION_RESOURCE_TYPES.map((t) => set.get(t) ?? withDefault(organizationId, t));
}

/** One resource type's policy (the default when none was set). */
export async function getRetentionPolicy(
  db: Queryable,
  organizationId: string,
  resourceType: RetentionResourceType,
): Promise<RetentionPolicy> {
  const { rows } = await db.query<PolicyRow>(
    `SELECT resource_type, hot_retention_days, archive_retention_days, delete_after_days, updated_at
       FROM stepwise.retention_policies WHERE organization_id = $1 AND resource_type = $2`,
    [organizationId, resourceType],
  );
  return rows[0] ? toPolicy(organizationId, rows[0]) : withDefault(organizationId, resourceType);
}

/** Insert or replace the organization's policy for one resource type (validated by the caller). */
export async function upsertRetentionPolicy(
  db: Queryable,
  organizationId: string,
  resourceType: RetentionResourceType,
  s: RetentionSettings,
): Promise<RetentionPolicy> {
  const { rows } = await db.query<PolicyRow>(
    `INSERT INTO stepwise.retention_policies
            (organization_id, resource_type, hot_retention_days, archive_retention_days, delete_after_days)
     VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (organization_id, resource_type) DO UPDATE
        SET hot_retention_days = EXCLUDED.hot_retention_days,
            archive_retention_days = EXCLUDED.archive_retention_days,
            delete_after_days = EXCLUDED.delete_after_days,
            updated_at = now()
     RETURNING resource_type, hot_retention_days, archive_retention_days, delete_after_days, updated_at`,
    [organizationId, resourceType, s.hotRetentionDays, s.archiveRetentionDays, s.deleteAfterDays],
  );
  return toPolicy(organizationId, rows[0]!);
}

/**
 * Admin (maintenance): every organization's policy for one resource type,
 * defaults filled in. Cross-tenant by design: the archiver serves all tenants.
 */
export async function listPoliciesForAllOrganizations(
  db: Queryable,
  resourceType: RetentionResourceType,
): Promise<RetentionPolicy[]> {
  const { rows } = await db.query<PolicyRow & { id: string }>(
    `SELECT o.id, $1::varchar AS resource_type,
            coalesce(p.hot_retention_days, $2) AS hot_retention_days,
            coalesce(p.archive_retention_days, $3) AS archive_retention_days,
            p.delete_after_days, p.updated_at
       FROM stepwise.organizations o
       LEFT JOIN stepwise.retention_policies p ON p.organization_id = o.id AND p.resource_type = $1
      ORDER BY o.id`,
    [resourceType, defaultRetention(resourceType).hotRetentionDays, defaultRetention(resourceType).archiveRetentionDays],
  );
  return rows.map((r) => ({ ...toPolicy(r.id, r), isDefault: r.updated_at === null }));
}
