import { createHash, randomBytes } from 'node:crypto';
import type { Db, Queryable } from '../db/index.js';
import { GoneError, InvalidCredentialsError, isStepwiseError, NotFoundError, SessionExpiredError, UnauthorizedError } from '../errors/index.js';
import {
  consumeInvitation,
  deleteEndedWebSessions,
  deleteWebSession,
  findPasswordUsers,
  findUser,
  findWebSessionForAuth,
  insertInvitation,
  insertWebSession,
  setPasswordHash,
  touchWebSession,
  type User,
  type WebSession,
} from '../store/index.js';
import { uuidv7 } from '../util/ids.js';
import { authenticate, type Principal } from './api-keys.js';
import { checkPasswordRules, hashPassword, verifyAgainstDummy, verifyPassword } from './passwords.js';
import { minRole } from './permissions.js';

/**
 * Server-side dashboard sessions. The browser holds a random 256-bit value
 * in an HttpOnly cookie (api/session-cookie.ts); the database holds only its
 * SHA-256 as the session's id. A session ends after 15 minutes unused or 12
 * hours after it opened, whichever comes first, and at once when its user is
 * disabled or removed or — for a session opened by pasting an API key — the
 * key is revoked or expires (checked in the lookup's one query).
 *
 * last_seen_at moves at most once a minute, so a dashboard polling several
 * routes a second writes one row a minute, not one per request; the idle
 * limit is therefore kept to within that minute.
 */
export const SESSION_IDLE_MS = 15 * 60_000;
export const SESSION_ABSOLUTE_MS = 12 * 60 * 60_000;
export const SESSION_TOUCH_MS = 60_000;

/** How long sessions live: unused, and at most (config: STEPWISE_SESSION_IDLE_S, STEPWISE_SESSION_MAX_S). */
export interface SessionLimits {
  readonly idleMs: number;
  readonly absoluteMs: number;
}
export const DEFAULT_SESSION_LIMITS: SessionLimits = Object.freeze({ idleMs: SESSION_IDLE_MS, absoluteMs: SESSION_ABSOLUTE_MS });

/** last_seen_at moves once a minute, or every quarter of a shorter idle limit (else a used session would lapse). */
function touchMsOf(limits: SessionLimits): number {
  return Math.min(SESSION_TOUCH_MS, Math.max(250, Math.floor(limits.idleMs / 4)));
}

/** "15 minutes", "3 seconds": a limit as the expiry message says it. */
function spoken(ms: number): string {
  const [n, unit] = ms % 3_600_000 === 0 ? [ms / 3_600_000, 'hour'] : ms % 60_000 === 0 ? [ms / 60_000, 'minute'] : [Math.round(ms / 1000), 'second'];
  return `${n} ${unit}${n === 1 ? '' : 's'}`;
}
export const INVITATION_LIFETIME_MS = 72 * 60 * 60_000;

/** Users with the same email in more organizations than this are not all tried (each costs a scrypt). */
const MAX_PASSWORD_CANDIDATES = 5;

const TOKEN_RE = /^[A-Za-z0-9_-]{43}$/;

/** The session's id: SHA-256 of the cookie value. A fast hash suffices: the value carries 256 random bits. */
export function sessionIdOf(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

export type SignInVia = 'password' | 'apiKey';

export interface OpenedSession {
  /** The cookie value: returned once, never stored. */
  token: string;
  session: WebSession;
}

/** When an unused session ends: its last use plus the idle limit, capped by its absolute end. */
export function idleExpiresAt(session: WebSession, limits: SessionLimits = DEFAULT_SESSION_LIMITS): Date {
  return new Date(Math.min(session.lastSeenAt.getTime() + limits.idleMs, session.expiresAt.getTime()));
}

/** Open a session for a user (and the key it was opened with, if any). Call in a transaction. */
export async function openSession(
  db: Queryable,
  organizationId: string,
  input: { userId: string; apiKeyId: string | null },
  limits: SessionLimits = DEFAULT_SESSION_LIMITS,
): Promise<OpenedSession> {
  await deleteEndedWebSessions(db, organizationId, input.userId, limits.idleMs);
  const token = randomBytes(32).toString('base64url');
  const session = await insertWebSession(db, organizationId, {
    id: sessionIdOf(token),
    userId: input.userId,
    apiKeyId: input.apiKeyId,
    lifetimeMs: limits.absoluteMs,
  });
  return { token, session };
}

/**
 * The principal of a cookie, with its session (last_seen_at as it is after
 * this request). A cookie that names no live session is UnauthorizedError;
 * one past its idle or absolute limit is SessionExpiredError and its row is
 * deleted.
 */
export async function resolveSession(
  db: Queryable,
  token: string,
  limits: SessionLimits = DEFAULT_SESSION_LIMITS,
  opts: { touch?: boolean } = {},
): Promise<{ principal: Principal; session: WebSession }> {
  const ended = () => new UnauthorizedError('not signed in: the session has ended; sign in again', { path: '/headers/cookie' });
  if (!TOKEN_RE.test(token)) throw ended();
  const id = sessionIdOf(token);
  const found = await findWebSessionForAuth(db, id, { idleMs: limits.idleMs, touchMs: touchMsOf(limits) });
  if (!found) throw ended();
  if (found.absoluteExpired || found.idleExpired) {
    await deleteWebSession(db, id);
    const why = found.absoluteExpired ? `it is more than ${spoken(limits.absoluteMs)} old` : `it was unused for ${spoken(limits.idleMs)}`;
    throw new SessionExpiredError(`the session has expired (${why}); sign in again`, { reason: found.absoluteExpired ? 'absolute' : 'idle' });
  }
  const { userRole, keyRole, absoluteExpired: _a, idleExpired: _i, stale, ...session } = found;
  // A re-check of an open live stream is not use: it must not keep an idle session alive.
  if (stale && opts.touch !== false) {
    const touched = await touchWebSession(db, id, touchMsOf(limits));
    if (touched) session.lastSeenAt = touched;
  }
  const principal: Principal = {
    organizationId: session.organizationId,
    apiKeyId: session.apiKeyId,
    userId: session.userId,
    sessionId: id.toString('hex'),
    // A key session acts as its key would (capped by the user's role); a password session as the user.
    role: keyRole ? minRole(keyRole, userRole) : userRole,
    keyRole: keyRole ?? userRole,
  };
  return { principal, session };
}

/** End a session by its id (sign-out). */
export async function endSession(db: Queryable, sessionId: string): Promise<boolean> {
  return deleteWebSession(db, Buffer.from(sessionId, 'hex'));
}

/**
 * Check an email and password. Every failure is the same
 * InvalidCredentialsError and costs at least one scrypt: an email with no
 * user, or with no password, is verified against a dummy hash.
 */
export async function checkPassword(db: Queryable, email: string, password: string, organizationId?: string): Promise<User> {
  const candidates = await findPasswordUsers(db, email, { organizationId, limit: MAX_PASSWORD_CANDIDATES });
  if (candidates.length === 0) {
    await verifyAgainstDummy(password);
    throw new InvalidCredentialsError();
  }
  // The same email in several organizations: the first whose password matches (oldest user first).
  for (const c of candidates) {
    if (await verifyPassword(password, c.passwordHash)) return c.user;
  }
  throw new InvalidCredentialsError();
}

/** A key pasted into the sign-in form: any refusal (unknown, revoked, expired, no user) is InvalidCredentialsError. */
export async function checkApiKey(db: Queryable, key: string): Promise<Principal & { userId: string }> {
  let principal: Principal;
  try {
    principal = await authenticate(db, key);
  } catch (err) {
    if (isStepwiseError(err) && err.code !== 'DATABASE' && err.code !== 'UNAVAILABLE') throw new InvalidCredentialsError();
    throw err;
  }
  if (principal.userId === null) throw new InvalidCredentialsError();
  return { ...principal, userId: principal.userId };
}

/** Hash and store a new password for a user (their password sessions end). */
export async function setUserPassword(db: Db, organizationId: string, userId: string, password: string, path: string): Promise<void> {
  checkPasswordRules(password, path);
  const hash = await hashPassword(password);
  const done = await db.transaction((tx) => setPasswordHash(tx, organizationId, userId, hash));
  if (!done) throw new NotFoundError('user', userId);
}

/** A new single-use invitation for a user: the token (shown once), its link path and expiry. */
export async function inviteUser(
  db: Queryable,
  organizationId: string,
  userId: string,
  createdBy: string,
): Promise<{ token: string; path: string; expiresAt: Date }> {
  const token = randomBytes(32).toString('base64url');
  const { expiresAt } = await insertInvitation(db, organizationId, {
    id: uuidv7(),
    userId,
    tokenHash: sessionIdOf(token),
    createdBy,
    lifetimeMs: INVITATION_LIFETIME_MS,
  });
  return { token, path: `/invite/${token}`, expiresAt };
}

/**
 * Accept an invitation: spend it, set the password, open a password session —
 * all in one transaction, so a refused password leaves the invitation
 * unspent. Unknown tokens are 404; used or expired ones 410.
 */
export async function acceptInvitation(
  db: Db,
  token: string,
  password: string,
  limits: SessionLimits = DEFAULT_SESSION_LIMITS,
): Promise<OpenedSession & { user: User }> {
  checkPasswordRules(password, '/body/password');
  const hash = await hashPassword(password);
  return db.transaction(async (tx) => {
    const use = TOKEN_RE.test(token) ? await consumeInvitation(tx, sessionIdOf(token)) : ({ ok: false, reason: 'unknown' } as const);
    if (!use.ok) {
      if (use.reason === 'unknown') throw new NotFoundError('invitation', 'token');
      throw new GoneError(`this invitation was ${use.reason === 'used' ? 'already used' : 'not used in time'}; ask for a new one`, { path: '/body/token', reason: use.reason });
    }
    const user = await findUser(tx, use.organizationId, use.userId);
    if (!user || user.disabledAt) throw new GoneError('the invited user is disabled; ask for a new invitation', { path: '/body/token', reason: 'disabled' });
    await setPasswordHash(tx, use.organizationId, use.userId, hash);
    const opened = await openSession(tx, use.organizationId, { userId: use.userId, apiKeyId: null }, limits);
    return { ...opened, user };
  });
}
