import type { Queryable } from '../db/index.js';
import { ValidationError } from '../errors/index.js';
import { DAY_MS } from '../util/clock.js';
import {
  PHI_AUDIT_MIN_DAYS,
  RETENTION_RESOURCE_TYPES,
  upsertRetentionPolicy,
  type RetentionPolicy,
  type RetentionResourceType,
  type RetentionSettings,
} from '../store/index.js';

/** A hundred years: beyond it a number of days is a typo, not a policy. */
export const MAX_RETENTION_DAYS = 36_500;

/** Parse a resource type from a path or flag, or a 400 naming the allowed ones. */
export function parseResourceType(value: string): RetentionResourceType {
  const found = RETENTION_RESOURCE_TYPES.find((t) => t === value);
  if (!found) {
    throw new ValidationError(`resourceType must be one of ${RETENTION_RESOURCE_TYPES.join(', ')}; got "${value}"`, {
      path: 'resourceType',
      allowed: [...RETENTION_RESOURCE_TYPES],
    });
  }
  return found;
}

function checkDays(field: string, value: unknown, nullable: boolean): void {
  if (value === null && nullable) return;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > MAX_RETENTION_DAYS) {
    throw new ValidationError(`${field} must be an integer from 1 to ${MAX_RETENTION_DAYS}${nullable ? ', or null (never)' : ''}`, {
      path: field,
      min: 1,
      max: MAX_RETENTION_DAYS,
    });
  }
}

/**
 * Validate a policy: each number a whole count of days, the stages in order
 * (hot <= archive <= delete-after), and PHI audit records kept at least six
 * years whatever is asked. Throws ValidationError naming the field and limit.
 */
export function validateRetention(resourceType: RetentionResourceType, s: RetentionSettings): void {
  checkDays('hotRetentionDays', s.hotRetentionDays, false);
  checkDays('archiveRetentionDays', s.archiveRetentionDays, false);
  checkDays('deleteAfterDays', s.deleteAfterDays, true);
  if (resourceType === 'phi_audit') {
    for (const [field, value] of [['archiveRetentionDays', s.archiveRetentionDays], ['deleteAfterDays', s.deleteAfterDays]] as const) {
      if (value !== null && value < PHI_AUDIT_MIN_DAYS) {
        throw new ValidationError(
          `PHI audit records must be kept at least six years (${PHI_AUDIT_MIN_DAYS} days); ${field} ${value} is shorter`,
          { path: field, min: PHI_AUDIT_MIN_DAYS },
        );
      }
    }
  }
  if (s.archiveRetentionDays < s.hotRetentionDays) {
    throw new ValidationError(
      `archiveRetentionDays (${s.archiveRetentionDays}) must be at least hotRetentionDays (${s.hotRetentionDays}): data is archived after its hot days`,
      { path: 'archiveRetentionDays', min: s.hotRetentionDays },
    );
  }
  if (s.deleteAfterDays !== null && s.deleteAfterDays < s.archiveRetentionDays) {
    throw new ValidationError(
      `deleteAfterDays (${s.deleteAfterDays}) must be at least archiveRetentionDays (${s.archiveRetentionDays}), or null to keep for ever`,
      { path: 'deleteAfterDays', min: s.archiveRetentionDays },
    );
  }
}

/** Validate and store the organization's policy for one resource type. */
export async function setRetentionPolicy(
  db: Queryable,
  organizationId: string,
  resourceType: RetentionResourceType,
  s: RetentionSettings,
): Promise<RetentionPolicy> {
  validateRetention(resourceType, s);
  return upsertRetentionPolicy(db, organizationId, resourceType, s);
}

/** The instant before which data of this policy is past its hot window, as of `asOf`. */
export function hotCutoff(policy: RetentionSettings, asOf: Date): Date {
  return new Date(asOf.getTime() - policy.hotRetentionDays * DAY_MS);
}

/** The instant before which archived data is deleted, or null when the policy keeps it for ever. */
export function deleteCutoff(policy: RetentionSettings, asOf: Date): Date | null {
  return policy.deleteAfterDays === null ? null : new Date(asOf.getTime() - policy.deleteAfterDays * DAY_MS);
}
