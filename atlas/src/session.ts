import { createContext } from 'preact';
import { useContext } from 'preact/hooks';

/** Roles from least to most powerful (the server's permission matrix: src/security/permissions.ts). */
export const ROLES = ['VIEWER', 'MEMBER', 'ADMIN', 'OWNER'] as const;
export type Role = (typeof ROLES)[number];

/** GET /v1/sessions/current. */
export interface SessionInfo {
  user: { id: string; email: string; name: string | null; role: Role };
  organization: { id: string; name: string };
  role: Role;
  via: 'password' | 'apiKey';
  expiresAt: string | null;
  idleExpiresAt: string | null;
}

export function roleAtLeast(role: Role, required: Role): boolean {
  return ROLES.indexOf(role) >= ROLES.indexOf(required);
}

/**
 * What the signed-in user may do, to hide controls they cannot use. Only a
 * convenience: the server checks every request (a forced request gets 403).
 */
export const CAN = {
  runWorkflows: 'MEMBER',
  controlJobs: 'MEMBER',
  manageWorkflows: 'ADMIN',
  manageSchedules: 'ADMIN',
  manageCredentials: 'ADMIN',
  manageRetention: 'ADMIN',
  readAudit: 'ADMIN',
  readUsers: 'ADMIN',
  inviteUsers: 'ADMIN',
  manageUsers: 'OWNER',
  manageKeys: 'OWNER',
} as const satisfies Record<string, Role>;

export const SessionContext = createContext<SessionInfo | null>(null);

/** The signed-in session; pages are only rendered inside one. */
export function useSession(): SessionInfo {
  const session = useContext(SessionContext);
  if (!session) throw new Error('useSession outside a signed-in page');
  return session;
}

export function useCan(what: keyof typeof CAN): boolean {
  return roleAtLeast(useSession().role, CAN[what]);
}
