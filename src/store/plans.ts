import type { Queryable } from '../db/index.js';
import { PlanLimitError } from '../errors/index.js';

export const PLANS = ['STARTER', 'PROFESSIONAL', 'ENTERPRISE'] as const;
export type Plan = (typeof PLANS)[number];

/** What a plan allows; null means unlimited. */
export interface PlanLimits {
  /** Workflows that are not archived. */
  workflows: number | null;
  credentials: number | null;
  /** Runs created per calendar month (UTC), by any initiator. */
  executionsPerMonth: number | null;
  /** Jobs running at once across the organization (enforced by the limited claim, store/queue.ts). */
  concurrentRuns: number | null;
  /** AI tokens (input + output of llm steps) per calendar month (UTC); checked before each provider call. */
  aiTokensPerMonth: number | null;
}

/**
 * What each plan allows: STARTER 5 workflows and 3 integrations (credentials),
 * PROFESSIONAL 25 and 10, ENTERPRISE unlimited; executions per month and runs at
 * once grow with the plan the same way. AI tokens: STARTER 2M a month (about
 * 2,000 short drafts of 1k tokens), PROFESSIONAL 20M, ENTERPRISE unlimited.
 */
export const STARTER_LIMITS: PlanLimits = Object.freeze({
  workflows: 5,
  credentials: 3,
  executionsPerMonth: 10_000,
  concurrentRuns: 5,
  aiTokensPerMonth: 2_000_000,
});
export const PROFESSIONAL_LIMITS: PlanLimits = Object.freeze({
  workflows: 25,
  credentials: 10,
  executionsPerMonth: 100_000,
  concurrentRuns: 25,
  aiTokensPerMonth: 20_000_000,
});
export const ENTERPRISE_LIMITS: PlanLimits = Object.freeze({
  workflows: null,
  credentials: null,
  executionsPerMonth: null,
  concurrentRuns: null,
  aiTokensPerMonth: null,
});

export const PLAN_LIMITS: Readonly<Record<Plan, PlanLimits>> = Object.freeze({
  STARTER: STARTER_LIMITS,
  PROFESSIONAL: PROFESSIONAL_LIMITS,
  ENTERPRISE: ENTERPRISE_LIMITS,
});

export function isPlan(value: string): value is Plan {
  return PLANS.some((p) => p === value);
}

/** Limits of a plan name read from the database (an unknown name gets the strictest plan). */
export function limitsOf(plan: string): PlanLimits {
  return isPlan(plan) ? PLAN_LIMITS[plan] : STARTER_LIMITS;
}

/** Resources a plan counts when something is added. */
export type PlanResource = 'workflows' | 'credentials' | 'executions';

function limitFor(limits: PlanLimits, resource: PlanResource): number | null {
  switch (resource) {
    case 'workflows':
      return limits.workflows;
    case 'credentials':
      return limits.credentials;
    case 'executions':
      return limits.executionsPerMonth;
  }
}

/** The first day of the current month in UTC, as the database computes it (the usage triggers' key). */
const CURRENT_PERIOD = `(date_trunc('month', now() AT TIME ZONE 'UTC'))::date`;

/** How many of `resource` the organization has now (executions: this month's). */
export async function getResourceCount(db: Queryable, organizationId: string, resource: PlanResource): Promise<number> {
  switch (resource) {
    case 'workflows': {
      const { rows } = await db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM stepwise.workflows
          WHERE organization_id = $1 AND deleted_at IS NULL AND status <> 'ARCHIVED'`,
        [organizationId],
      );
      return rows[0]!.n;
    }
    case 'credentials': {
      // The credentials table arrives with its own migration; until it exists there are none.
      const { rows: exists } = await db.query<{ t: string | null }>(`SELECT to_regclass('stepwise.credentials')::text AS t`);
      if (!exists[0]?.t) return 0;
      const { rows } = await db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM stepwise.credentials WHERE organization_id = $1`,
        [organizationId],
      );
      return rows[0]!.n;
    }
    case 'executions': {
      const { rows } = await db.query<{ n: string }>(
        `SELECT executions::text AS n FROM stepwise.usage_records WHERE organization_id = $1 AND period_start = ${CURRENT_PERIOD}`,
        [organizationId],
      );
      return rows[0] ? Number(rows[0].n) : 0;
    }
  }
}

function refuse(plan: string, resource: PlanResource, limit: number, current: number, adding: number): PlanLimitError {
  const what = resource === 'executions' ? 'runs this month' : resource;
  return new PlanLimitError(
    `the ${plan} plan allows ${limit} ${what}; the organization has ${current} and this would add ${adding}` +
      ' (upgrade the plan or remove some first)',
    { resource, limit, current, adding, plan },
  );
}

/**
 * Refuse (PlanLimitError, nothing written) when adding `adding` of `resource`
 * would take the organization past its plan. Call it inside the transaction
 * that adds them: it locks the organization's row (FOR NO KEY UPDATE, the lock
 * enqueue takes anyway for run numbers), so two concurrent additions are
 * counted one after the other and cannot both squeeze under the limit.
 * Unlimited plans cost one statement.
 */
export async function assertWithinPlan(tx: Queryable, organizationId: string, resource: PlanResource, adding: number): Promise<void> {
  const { rows } = await tx.query<{ plan: string }>(
    `SELECT plan FROM stepwise.organizations WHERE id = $1 FOR NO KEY UPDATE`,
    [organizationId],
  );
  if (!rows[0]) return;
  await assertPlanAllows(tx, organizationId, rows[0].plan, resource, adding);
}

/** assertWithinPlan when the caller already holds the organization's row lock and knows its plan. */
export async function assertPlanAllows(
  tx: Queryable,
  organizationId: string,
  plan: string,
  resource: PlanResource,
  adding: number,
): Promise<void> {
  const limit = limitFor(limitsOf(plan), resource);
  if (limit === null || adding <= 0) return;
  const current = await getResourceCount(tx, organizationId, resource);
  if (current + adding > limit) throw refuse(plan, resource, limit, current, adding);
}
