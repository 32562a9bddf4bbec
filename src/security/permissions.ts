import { ForbiddenError } from '../errors/index.js';
import type { Role } from '../store/index.js';

/** Roles from least to most powerful. */
export const ROLES: readonly Role[] = ['VIEWER', 'MEMBER', 'ADMIN', 'OWNER'];

export function roleRank(role: Role): number {
  return ROLES.indexOf(role);
}

/** True when `role` is `required` or above. */
export function roleAtLeast(role: Role, required: Role): boolean {
  return roleRank(role) >= roleRank(required);
}

/** The lower of two roles (a key's effective role is min(key role, user role)). */
export function minRole(a: Role, b: Role): Role {
  return roleRank(a) <= roleRank(b) ? a : b;
}

/**
 * THE permission matrix: every action a route can declare, the least role
 * that may perform it, and what it covers. VIEWER reads; MEMBER runs and
 * steers runs; ADMIN manages what runs (workflows, schedules, webhooks,
 * clients, credentials, retention) and reads audit logs; OWNER manages
 * users, other people's keys and the plan. Any authenticated user may mint
 * and revoke keys for themselves, at most at their own role.
 */
export const PERMISSIONS = {
  'workflows.read': { role: 'VIEWER', covers: 'list and read workflows, their versions and webhook settings' },
  'jobs.read': { role: 'VIEWER', covers: 'list and read jobs, their streams, timelines and screenshots' },
  'analytics.read': { role: 'VIEWER', covers: 'read execution statistics, duration percentiles, step stats and time series' },
  'schedules.read': { role: 'VIEWER', covers: 'list and read schedules and their audit log' },
  'clients.read': { role: 'VIEWER', covers: 'list clients' },
  'credentials.read': { role: 'VIEWER', covers: 'list credentials (never their secrets)' },
  'retention.read': { role: 'VIEWER', covers: 'read retention policies' },
  'organization.read': { role: 'VIEWER', covers: 'read the organization' },
  'usage.read': { role: 'VIEWER', covers: 'read usage and plan limits' },
  'approvals.read': { role: 'VIEWER', covers: 'list the approvals addressed to one and read approvals with their decisions (links: ADMIN and OWNER only)' },
  'approvals.decide': { role: 'VIEWER', covers: 'decide approvals whose approvers list one\'s role or user' },
  'keys.self': { role: 'VIEWER', covers: 'create, list and revoke one\'s own API keys (at most one\'s own role)' },
  'session.self': { role: 'VIEWER', covers: 'read and end one\'s own dashboard session (sign-out)' },
  'knowledge.read': { role: 'VIEWER', covers: 'list, read and search knowledge documents and read their retrieval analytics' },
  'templates.read': { role: 'VIEWER', covers: 'search and read the template library (official, public and own templates)' },
  'templates.rate': { role: 'VIEWER', covers: 'rate a template (one rating per user, changeable)' },
  'workflows.run': { role: 'MEMBER', covers: 'start runs' },
  'jobs.control': { role: 'MEMBER', covers: 'cancel, retry and signal jobs' },
  'templates.manage': { role: 'MEMBER', covers: 'create, change and delete the organization\'s own (community) templates while private' },
  'workflows.manage': { role: 'ADMIN', covers: 'create, change and archive workflows' },
  'knowledge.manage': { role: 'ADMIN', covers: 'add, replace and delete knowledge documents' },
  'templates.publish': { role: 'ADMIN', covers: 'make the organization\'s own templates public or private again' },
  'webhooks.manage': { role: 'ADMIN', covers: 'enable, rotate and disable workflow webhooks' },
  'schedules.manage': { role: 'ADMIN', covers: 'create, change, pause, resume and delete schedules' },
  'clients.manage': { role: 'ADMIN', covers: 'create clients' },
  'credentials.manage': { role: 'ADMIN', covers: 'create, replace and delete credentials' },
  'retention.manage': { role: 'ADMIN', covers: 'change retention policies' },
  'organization.manage': { role: 'ADMIN', covers: 'change organization settings (concurrency limits)' },
  'audit.read': { role: 'ADMIN', covers: 'read and export the credential and PHI audit logs' },
  'users.read': { role: 'ADMIN', covers: 'list and read users' },
  'users.invite': { role: 'ADMIN', covers: 'invite new users and issue single-use links for users to set their password (at most the caller\'s role)' },
  'users.manage': { role: 'OWNER', covers: 'create users, change their roles, disable and delete them' },
  'keys.manage': { role: 'OWNER', covers: 'create, list and revoke other users\' API keys' },
  'plan.manage': { role: 'OWNER', covers: 'change the plan' },
} as const satisfies Record<string, { role: Role; covers: string }>;

export type Action = keyof typeof PERMISSIONS;

/** Every action, in the matrix's order. */
export const ACTIONS: readonly Action[] = Object.keys(PERMISSIONS).filter(isAction);

export function isAction(value: unknown): value is Action {
  return typeof value === 'string' && Object.hasOwn(PERMISSIONS, value);
}

/** The least role an action needs. */
export function requiredRole(action: Action): Role {
  return PERMISSIONS[action].role;
}

export function isAllowed(role: Role, action: Action): boolean {
  return roleAtLeast(role, requiredRole(action));
}

/** Throw ForbiddenError (403) naming the action and the role it needs unless `role` may perform it. */
export function assertAllowed(role: Role, action: Action): void {
  if (isAllowed(role, action)) return;
  const required = requiredRole(action);
  throw new ForbiddenError(`${action} needs role ${required} or above; this key acts as ${role}`, { action, requiredRole: required, role });
}

/** Refuse granting a role above the grantor's own (a key or user above the caller's role). */
export function assertCanGrant(grantorRole: Role, granted: Role, what: string): void {
  if (roleAtLeast(grantorRole, granted)) return;
  throw new ForbiddenError(`cannot ${what} with role ${granted}: above this key's role ${grantorRole}`, {
    requiredRole: granted,
    role: grantorRole,
    path: '/body/role',
  });
}

/** The matrix as rows (action, least role, and which roles may do it), for the CLI and docs. */
export function getPermissionMatrix(): { action: Action; role: Role; allowed: Record<Role, boolean>; covers: string }[] {
  return [...ACTIONS]
    .map((action) => ({
      action,
      role: requiredRole(action),
      allowed: { VIEWER: isAllowed('VIEWER', action), MEMBER: isAllowed('MEMBER', action), ADMIN: isAllowed('ADMIN', action), OWNER: isAllowed('OWNER', action) },
      covers: PERMISSIONS[action].covers,
    }))
    .sort((a, b) => roleRank(a.role) - roleRank(b.role));
}

/** The matrix as a Markdown table (`stepwise permissions`). */
export function renderPermissionMatrix(): string {
  const lines = ['| action | least role | VIEWER | MEMBER | ADMIN | OWNER | covers |', '|---|---|:-:|:-:|:-:|:-:|---|'];
  for (const row of getPermissionMatrix()) {
    const mark = (r: Role) => (row.allowed[r] ? '✓' : '—');
    lines.push(`| ${row.action} | ${row.role} | ${mark('VIEWER')} | ${mark('MEMBER')} | ${mark('ADMIN')} | ${mark('OWNER')} | ${row.covers} |`);
  }
  return lines.join('\n');
}
