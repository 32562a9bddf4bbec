import type { Queryable } from '../db/index.js';
import { uuidv7 } from '../util/ids.js';
import { LIMITS_CHANNEL } from './jobs.js';
import type { Plan } from './plans.js';

export interface Organization {
  id: string;
  name: string;
  plan: string;
  /** Most jobs running at once across the organization (null: no limit). */
  maxConcurrentRuns: number | null;
  createdAt: Date;
}

interface OrganizationRow {
  id: string;
  name: string;
  plan: string;
  max_concurrent_runs: number | null;
  created_at: Date;
}

function toOrganization(row: OrganizationRow): Organization {
  return { id: row.id, name: row.name, plan: row.plan, maxConcurrentRuns: row.max_concurrent_runs, createdAt: row.created_at };
}

/** Create an organization; its plan defaults to STARTER, the smallest, like the column default. */
export async function createOrganization(db: Queryable, input: { name: string; plan?: Plan }): Promise<Organization> {
  const { rows } = await db.query<OrganizationRow>(
    `INSERT INTO stepwise.organizations (id, name, plan) VALUES ($1, $2, coalesce($3, 'STARTER'))
     RETURNING id, name, plan, max_concurrent_runs, created_at`,
    [uuidv7(), input.name, input.plan ?? null],
  );
  return toOrganization(rows[0]!);
}

export async function findOrganization(db: Queryable, organizationId: string): Promise<Organization | null> {
  const { rows } = await db.query<OrganizationRow>(
    `SELECT id, name, plan, max_concurrent_runs, created_at FROM stepwise.organizations WHERE id = $1`,
    [organizationId],
  );
  return rows[0] ? toOrganization(rows[0]) : null;
}

/** Admin: how many organizations exist (first-start bootstrap). */
export async function getOrganizationCount(db: Queryable): Promise<number> {
  const { rows } = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM stepwise.organizations`);
  return rows[0]!.n;
}

/** Set (or clear, with null) the organization's limit on jobs running at once. */
export async function updateOrganizationLimits(
  db: Queryable,
  organizationId: string,
  limits: { maxConcurrentRuns: number | null },
): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE stepwise.organizations SET max_concurrent_runs = $2, updated_at = now() WHERE id = $1`,
    [organizationId, limits.maxConcurrentRuns],
  );
  await db.query(`SELECT pg_notify($1, '')`, [LIMITS_CHANNEL]);
  return rowCount > 0;
}

/**
 * Change the organization's plan. Limits apply to what is added from now on;
 * what already exists over a lower plan's limits stays. Workers re-read
 * concurrency limits at once (the plan caps concurrent runs).
 */
export async function updateOrganizationPlan(db: Queryable, organizationId: string, plan: Plan): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE stepwise.organizations SET plan = $2, updated_at = now() WHERE id = $1`,
    [organizationId, plan],
  );
  await db.query(`SELECT pg_notify($1, '')`, [LIMITS_CHANNEL]);
  return rowCount > 0;
}
