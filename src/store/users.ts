import type { Queryable } from '../db/index.js';
import { ConflictError } from '../errors/index.js';
import { uuidv7 } from '../util/ids.js';
import type { Role } from './api-keys.js';
import { deleteUserWebSessions } from './sessions.js';

export interface User {
  id: string;
  organizationId: string;
  email: string;
  name: string | null;
  role: Role;
  createdAt: Date;
  updatedAt: Date;
  disabledAt: Date | null;
}

interface UserRow {
  id: string;
  organization_id: string;
  email: string;
  name: string | null;
  role: Role;
  created_at: Date;
  updated_at: Date;
  disabled_at: Date | null;
}

const USER_COLUMNS = 'id, organization_id, email, name, role, created_at, updated_at, disabled_at';

function toUser(row: UserRow): User {
  return {
    id: row.id,
    organizationId: row.organization_id,
    email: row.email,
    name: row.name,
    role: row.role,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    disabledAt: row.disabled_at,
  };
}

export interface NewUser {
  email: string;
  name?: string | null | undefined;
  role: Role;
}

/** Create a user; an email already used in the organization (any case) is a ConflictError. */
export async function createUser(db: Queryable, organizationId: string, input: NewUser): Promise<User> {
  try {
    const { rows } = await db.query<UserRow>(
      `INSERT INTO stepwise.users (id, organization_id, email, name, role) VALUES ($1, $2, $3, $4, $5)
       RETURNING ${USER_COLUMNS}`,
      [uuidv7(), organizationId, input.email, input.name ?? null, input.role],
    );
    return toUser(rows[0]!);
  } catch (err) {
    if (err instanceof ConflictError && err.details.constraint === 'users_org_email_idx') {
      throw new ConflictError(`a user with email ${input.email} already exists in this organization`, { path: '/body/email' });
    }
    throw err;
  }
}

export async function findUser(db: Queryable, organizationId: string, userId: string): Promise<User | null> {
  const { rows } = await db.query<UserRow>(
    `SELECT ${USER_COLUMNS} FROM stepwise.users WHERE organization_id = $1 AND id = $2`,
    [organizationId, userId],
  );
  return rows[0] ? toUser(rows[0]) : null;
}

/** The organization's first OWNER that is not disabled (keys created without a user belong to it). */
export async function findFirstOwner(db: Queryable, organizationId: string): Promise<User | null> {
  const { rows } = await db.query<UserRow>(
    `SELECT ${USER_COLUMNS} FROM stepwise.users
      WHERE organization_id = $1 AND role = 'OWNER' AND disabled_at IS NULL ORDER BY id LIMIT 1`,
    [organizationId],
  );
  return rows[0] ? toUser(rows[0]) : null;
}

/** Newest first, keyset-paginated on the (time-ordered) id. */
export async function listUsers(
  db: Queryable,
  organizationId: string,
  opts: { after?: string | undefined; limit: number },
): Promise<{ items: User[]; nextCursor: string | null }> {
  const { rows } = await db.query<UserRow>(
    `SELECT ${USER_COLUMNS} FROM stepwise.users
      WHERE organization_id = $1 AND ($2::uuid IS NULL OR id < $2::uuid)
      ORDER BY id DESC LIMIT $3`,
    [organizationId, opts.after ?? null, opts.limit + 1],
  );
  const items = rows.slice(0, opts.limit).map(toUser);
  return { items, nextCursor: rows.length > opts.limit ? items[items.length - 1]!.id : null };
}

/**
 * Refuse a change that would leave the organization without an active OWNER.
 * Locks the organization's row first, so two concurrent demotions of the last
 * two owners are decided one after the other (the second sees one owner left).
 */
async function assertOwnerRemains(tx: Queryable, organizationId: string, userId: string, what: string): Promise<void> {
  await tx.query(`SELECT 1 FROM stepwise.organizations WHERE id = $1 FOR NO KEY UPDATE`, [organizationId]);
  const { rows } = await tx.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM stepwise.users
      WHERE organization_id = $1 AND role = 'OWNER' AND disabled_at IS NULL AND id <> $2`,
    [organizationId, userId],
  );
  if (rows[0]!.n === 0) {
    throw new ConflictError(`cannot ${what} the last OWNER of the organization; make another user OWNER first`, {
      userId,
    });
  }
}

export interface UserChanges {
  role?: Role | undefined;
  name?: string | null | undefined;
  disabled?: boolean | undefined;
}

/**
 * Change a user's role, name or disabled state (call inside a transaction).
 * A demoted user's keys are capped at authentication (min of key and user
 * role), so the keys need no rewrite. Null when the user does not exist.
 */
export async function updateUser(tx: Queryable, organizationId: string, userId: string, changes: UserChanges): Promise<User | null> {
  const current = await findUser(tx, organizationId, userId);
  if (!current) return null;
  const losesOwner =
    current.role === 'OWNER' && current.disabledAt === null && ((changes.role !== undefined && changes.role !== 'OWNER') || changes.disabled === true);
  if (losesOwner) await assertOwnerRemains(tx, organizationId, userId, changes.disabled ? 'disable' : 'demote');
  const { rows } = await tx.query<UserRow>(
    `UPDATE stepwise.users
        SET role = coalesce($3, role),
            name = CASE WHEN $4::boolean THEN $5 ELSE name END,
            disabled_at = CASE WHEN $6::boolean IS NULL THEN disabled_at
                               WHEN $6::boolean THEN coalesce(disabled_at, now()) ELSE NULL END,
            updated_at = now()
      WHERE organization_id = $1 AND id = $2
      RETURNING ${USER_COLUMNS}`,
    [organizationId, userId, changes.role ?? null, changes.name !== undefined, changes.name ?? null, changes.disabled ?? null],
  );
  // Authentication already refuses a disabled user's sessions; the rows go too.
  if (changes.disabled === true && rows[0]) await deleteUserWebSessions(tx, organizationId, userId);
  return rows[0] ? toUser(rows[0]) : null;
}

/**
 * Delete a user (a hard delete: what they did stays in the audit logs, which do not reference the user row). Their
 * keys are revoked first and kept, with user_id cleared by the foreign key,
 * so audit rows that name a key still resolve. False when the user does not exist.
 */
export async function deleteUser(tx: Queryable, organizationId: string, userId: string): Promise<boolean> {
  const current = await findUser(tx, organizationId, userId);
  if (!current) return false;
  if (current.role === 'OWNER' && current.disabledAt === null) await assertOwnerRemains(tx, organizationId, userId, 'delete');
  await tx.query(
    `UPDATE stepwise.api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE organization_id = $1 AND user_id = $2`,
    [organizationId, userId],
  );
  // Their dashboard sessions and invitations go with the row (foreign keys ON DELETE CASCADE).
  const { rowCount } = await tx.query(`DELETE FROM stepwise.users WHERE organization_id = $1 AND id = $2`, [organizationId, userId]);
  return rowCount > 0;
}

/** A user who may sign in with a password, with the stored hash (security/sessions.ts only). */
export interface PasswordUser {
  user: User;
  passwordHash: string;
}

/**
 * Sign-in lookup by email (any case), across organizations — an email is
 * unique per organization only — or in one. Only users with a password who
 * are not disabled; at most `limit`, oldest first. Starts from no tenant.
 */
export async function findPasswordUsers(
  db: Queryable,
  email: string,
  opts: { organizationId?: string | undefined; limit: number },
): Promise<PasswordUser[]> {
  const { rows } = await db.query<UserRow & { password_hash: string }>(
    `SELECT ${USER_COLUMNS}, password_hash FROM stepwise.users
      WHERE lower(email) = lower($1) AND password_hash IS NOT NULL AND disabled_at IS NULL
        AND ($2::uuid IS NULL OR organization_id = $2::uuid)
      ORDER BY id LIMIT $3`,
    [email, opts.organizationId ?? null, opts.limit],
  );
  return rows.map((r) => ({ user: toUser(r), passwordHash: r.password_hash }));
}

/** Users with this email (any case), across organizations or in one (the CLI's `user` commands). */
export async function findUsersByEmail(db: Queryable, email: string, organizationId?: string): Promise<User[]> {
  const { rows } = await db.query<UserRow>(
    `SELECT ${USER_COLUMNS} FROM stepwise.users
      WHERE lower(email) = lower($1) AND ($2::uuid IS NULL OR organization_id = $2::uuid) ORDER BY id`,
    [email, organizationId ?? null],
  );
  return rows.map(toUser);
}

/**
 * Set a user's password hash (call inside a transaction). Their password
 * sessions end: whoever signed in with the old password is signed out.
 * False when the user does not exist.
 */
export async function setPasswordHash(tx: Queryable, organizationId: string, userId: string, passwordHash: string): Promise<boolean> {
  const { rowCount } = await tx.query(
    `UPDATE stepwise.users SET password_hash = $3, password_changed_at = now(), updated_at = now()
      WHERE organization_id = $1 AND id = $2`,
    [organizationId, userId, passwordHash],
  );
  if (rowCount === 0) return false;
  await deleteUserWebSessions(tx, organizationId, userId, { passwordOnly: true });
  return true;
}

/** Whether a user has set a password (an invitation for them would replace it). */
export async function userHasPassword(db: Queryable, organizationId: string, userId: string): Promise<boolean> {
  const { rows } = await db.query<{ has: boolean }>(
    `SELECT password_hash IS NOT NULL AS has FROM stepwise.users WHERE organization_id = $1 AND id = $2`,
    [organizationId, userId],
  );
  return rows[0]?.has === true;
}
