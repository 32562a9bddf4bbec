import type { Queryable } from '../db/index.js';
import type { Role } from './api-keys.js';

/**
 * Dashboard sessions (migration 0021). A session is found by the SHA-256 of
 * its cookie value (`id`); the cookie value itself is never stored.
 */
export interface WebSession {
  organizationId: string;
  userId: string;
  apiKeyId: string | null;
  createdAt: Date;
  lastSeenAt: Date;
  expiresAt: Date;
}

/** What authentication needs, from one query: the session, its user's role, its key's role, and where it stands in time. */
export interface WebSessionAuth extends WebSession {
  userRole: Role;
  /** The key's role for sessions opened with a key; null for password sessions. */
  keyRole: Role | null;
  /** Past its absolute end (expires_at). */
  absoluteExpired: boolean;
  /** Unused for longer than the idle limit. */
  idleExpired: boolean;
  /** last_seen_at is older than the touch interval: worth moving. */
  stale: boolean;
}

interface SessionRow {
  organization_id: string;
  user_id: string;
  api_key_id: string | null;
  created_at: Date;
  last_seen_at: Date;
  expires_at: Date;
}

interface SessionAuthRow extends SessionRow {
  user_role: Role;
  key_role: Role | null;
  absolute_expired: boolean;
  idle_expired: boolean;
  stale: boolean;
}

const COLUMNS = 's.organization_id, s.user_id, s.api_key_id, s.created_at, s.last_seen_at, s.expires_at';

function toSession(r: SessionRow): WebSession {
  return {
    organizationId: r.organization_id,
    userId: r.user_id,
    apiKeyId: r.api_key_id,
    createdAt: r.created_at,
    lastSeenAt: r.last_seen_at,
    expiresAt: r.expires_at,
  };
}

export interface NewWebSession {
  id: Buffer;
  userId: string;
  apiKeyId: string | null;
  /** Absolute lifetime: expires_at = now() + this. */
  lifetimeMs: number;
}

/** Times come from the database's clock, the one every later check compares against. */
export async function insertWebSession(db: Queryable, organizationId: string, s: NewWebSession): Promise<WebSession> {
  const { rows } = await db.query<SessionRow>(
    `INSERT INTO stepwise.web_sessions AS s (id, organization_id, user_id, api_key_id, expires_at)
     VALUES ($1, $2, $3, $4, now() + $5 * interval '1 millisecond')
     RETURNING ${COLUMNS}`,
    [s.id, organizationId, s.userId, s.apiKeyId, s.lifetimeMs],
  );
  return toSession(rows[0]!);
}

/**
 * Authentication lookup: like findApiKeyByPrefix, it starts from no tenant
 * (the cookie names it). Returns nothing when the session does not exist, its
 * user is disabled or gone, or — for a session opened with a key — the key is
 * revoked, expired or no longer the user's: so removing the user or revoking
 * the key ends its sessions at once, whatever rows are left.
 */
export async function findWebSessionForAuth(
  db: Queryable,
  id: Buffer,
  limits: { idleMs: number; touchMs: number },
): Promise<WebSessionAuth | null> {
  const { rows } = await db.query<SessionAuthRow>(
    `SELECT ${COLUMNS}, u.role AS user_role, k.role AS key_role,
            s.expires_at <= now() AS absolute_expired,
            s.last_seen_at <= now() - $2 * interval '1 millisecond' AS idle_expired,
            s.last_seen_at <= now() - $3 * interval '1 millisecond' AS stale
       FROM stepwise.web_sessions s
       JOIN stepwise.users u ON u.organization_id = s.organization_id AND u.id = s.user_id AND u.disabled_at IS NULL
       LEFT JOIN stepwise.api_keys k ON k.id = s.api_key_id AND k.organization_id = s.organization_id
      WHERE s.id = $1
        AND (s.api_key_id IS NULL
             OR (k.user_id = s.user_id AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now())))`,
    [id, limits.idleMs, limits.touchMs],
  );
  const r = rows[0];
  if (!r) return null;
  return {
    ...toSession(r),
    userRole: r.user_role,
    keyRole: r.key_role,
    absoluteExpired: r.absolute_expired,
    idleExpired: r.idle_expired,
    stale: r.stale,
  };
}

/**
 * Move last_seen_at to now, unless another request did within `touchMs`
 * (the condition makes concurrent touches one write). Returns the new
 * last_seen_at, or null when nothing was written.
 */
export async function touchWebSession(db: Queryable, id: Buffer, touchMs: number): Promise<Date | null> {
  const { rows } = await db.query<{ last_seen_at: Date }>(
    `UPDATE stepwise.web_sessions SET last_seen_at = now()
      WHERE id = $1 AND last_seen_at <= now() - $2 * interval '1 millisecond'
      RETURNING last_seen_at`,
    [id, touchMs],
  );
  return rows[0]?.last_seen_at ?? null;
}

export async function findWebSession(db: Queryable, organizationId: string, id: Buffer): Promise<WebSession | null> {
  const { rows } = await db.query<SessionRow>(
    `SELECT ${COLUMNS} FROM stepwise.web_sessions s WHERE s.organization_id = $1 AND s.id = $2`,
    [organizationId, id],
  );
  return rows[0] ? toSession(rows[0]) : null;
}

/** Delete one session (sign-out, or an expired one found at authentication). */
export async function deleteWebSession(db: Queryable, id: Buffer): Promise<boolean> {
  const { rowCount } = await db.query(`DELETE FROM stepwise.web_sessions WHERE id = $1`, [id]);
  return rowCount > 0;
}

/**
 * End a user's sessions: all of them (disabled), or only those opened with a
 * password (`passwordOnly`: the password changed; key sessions stand on their key).
 */
export async function deleteUserWebSessions(db: Queryable, organizationId: string, userId: string, opts: { passwordOnly?: boolean } = {}): Promise<number> {
  const { rowCount } = await db.query(
    `DELETE FROM stepwise.web_sessions
      WHERE organization_id = $1 AND user_id = $2 AND (NOT $3::boolean OR api_key_id IS NULL)`,
    [organizationId, userId, opts.passwordOnly === true],
  );
  return rowCount;
}

/** End every session opened with a key (the key was revoked). */
export async function deleteKeyWebSessions(db: Queryable, organizationId: string, apiKeyId: string): Promise<number> {
  const { rowCount } = await db.query(`DELETE FROM stepwise.web_sessions WHERE organization_id = $1 AND api_key_id = $2`, [organizationId, apiKeyId]);
  return rowCount;
}

/**
 * Housekeeping when a user signs in: their sessions that ended by time are
 * dropped, so rows of abandoned sessions do not pile up per user.
 */
export async function deleteEndedWebSessions(db: Queryable, organizationId: string, userId: string, idleMs: number): Promise<number> {
  const { rowCount } = await db.query(
    `DELETE FROM stepwise.web_sessions
      WHERE organization_id = $1 AND user_id = $2
        AND (expires_at <= now() OR last_seen_at <= now() - $3 * interval '1 millisecond')`,
    [organizationId, userId, idleMs],
  );
  return rowCount;
}

/**
 * The daily sweep (lifecycle/maintain.ts): sessions past their absolute end
 * (every session has one, at most hours after sign-in, so an abandoned
 * session goes within a day whatever its idle limit) and invitations past
 * their expiry, across organizations. Without it, sessions of people who
 * never come back stay until their next sign-in. Both tables hold one row
 * per live sign-in or invitation, so the scan is small.
 */
export async function sweepEndedWebSessions(db: Queryable, asOf: Date): Promise<{ sessions: number; invitations: number }> {
  const sessions = await db.query(`DELETE FROM stepwise.web_sessions WHERE expires_at <= $1::timestamptz`, [asOf.toISOString()]);
  const invitations = await db.query(`DELETE FROM stepwise.user_invitations WHERE expires_at <= $1::timestamptz`, [asOf.toISOString()]);
  return { sessions: sessions.rowCount, invitations: invitations.rowCount };
}
