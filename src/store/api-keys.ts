import type { Queryable } from '../db/index.js';
import { deleteKeyWebSessions } from './sessions.js';

export type Role = 'OWNER' | 'ADMIN' | 'MEMBER' | 'VIEWER';

/** A key as listed: never its hash. */
export interface ApiKey {
  id: string;
  organizationId: string;
  userId: string | null;
  name: string;
  prefix: string;
  role: Role;
  createdAt: Date;
  expiresAt: Date | null;
  revokedAt: Date | null;
}

/** What authentication needs: the hash and the owning user's role and state. */
export interface ApiKeyRecord extends ApiKey {
  keyHash: Buffer;
  /** Null when the key has no user (its user was deleted; such keys are revoked). */
  userRole: Role | null;
  userDisabled: boolean;
}

interface ApiKeyRow {
  id: string;
  organization_id: string;
  user_id: string | null;
  name: string;
  prefix: string;
  role: Role;
  created_at: Date;
  expires_at: Date | null;
  revoked_at: Date | null;
}

interface ApiKeyAuthRow extends ApiKeyRow {
  key_hash: Uint8Array;
  user_role: Role | null;
  user_disabled: boolean | null;
}

const KEY_COLUMNS = 'k.id, k.organization_id, k.user_id, k.name, k.prefix, k.role, k.created_at, k.expires_at, k.revoked_at';

function toApiKey(row: ApiKeyRow): ApiKey {
  return {
    id: row.id,
    organizationId: row.organization_id,
    userId: row.user_id,
    name: row.name,
    prefix: row.prefix,
    role: row.role,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    revokedAt: row.revoked_at,
  };
}

export interface NewApiKey {
  id: string;
  userId: string;
  name: string;
  prefix: string;
  keyHash: Buffer;
  role: Role;
  expiresAt?: Date | null | undefined;
}

export async function insertApiKey(db: Queryable, organizationId: string, key: NewApiKey): Promise<void> {
  await db.query(
    `INSERT INTO stepwise.api_keys (id, organization_id, user_id, name, prefix, key_hash, role, expires_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
    [key.id, organizationId, key.userId, key.name, key.prefix, key.keyHash, key.role, key.expiresAt ?? null],
  );
}

/**
 * Authentication lookup by the key's public prefix. This is the one store
 * read that does not start from a tenant: the key is what names the tenant.
 * The user's role comes along (one primary-key join) so the effective role is
 * decided without a second round trip.
 */
export async function findApiKeyByPrefix(db: Queryable, prefix: string): Promise<ApiKeyRecord | null> {
  const { rows } = await db.query<ApiKeyAuthRow>(
    `SELECT ${KEY_COLUMNS}, k.key_hash, u.role AS user_role, u.disabled_at IS NOT NULL AS user_disabled
       FROM stepwise.api_keys k LEFT JOIN stepwise.users u ON u.id = k.user_id AND u.organization_id = k.organization_id
      WHERE k.prefix = $1`,
    [prefix],
  );
  const row = rows[0];
  if (!row) return null;
  return { ...toApiKey(row), keyHash: Buffer.from(row.key_hash), userRole: row.user_role, userDisabled: row.user_disabled === true };
}

export async function findApiKey(db: Queryable, organizationId: string, keyId: string): Promise<ApiKey | null> {
  const { rows } = await db.query<ApiKeyRow>(
    `SELECT ${KEY_COLUMNS} FROM stepwise.api_keys k WHERE k.organization_id = $1 AND k.id = $2`,
    [organizationId, keyId],
  );
  return rows[0] ? toApiKey(rows[0]) : null;
}

/** Newest first, keyset-paginated on the (time-ordered) id; revoked and expired keys included. */
export async function listApiKeys(
  db: Queryable,
  organizationId: string,
  opts: { after?: string | undefined; limit: number; userId?: string | undefined },
): Promise<{ items: ApiKey[]; nextCursor: string | null }> {
  const { rows } = await db.query<ApiKeyRow>(
    `SELECT ${KEY_COLUMNS} FROM stepwise.api_keys k
      WHERE k.organization_id = $1 AND ($2::uuid IS NULL OR k.id < $2::uuid) AND ($4::uuid IS NULL OR k.user_id = $4::uuid)
      ORDER BY k.id DESC LIMIT $3`,
    [organizationId, opts.after ?? null, opts.limit + 1, opts.userId ?? null],
  );
  const items = rows.slice(0, opts.limit).map(toApiKey);
  return { items, nextCursor: rows.length > opts.limit ? items[items.length - 1]!.id : null };
}

/**
 * Revoke a key (revoking again keeps the first time) and end the dashboard
 * sessions opened with it. Null when the key does not exist.
 */
export async function revokeApiKey(db: Queryable, organizationId: string, keyId: string): Promise<ApiKey | null> {
  const { rows } = await db.query<ApiKeyRow>(
    `UPDATE stepwise.api_keys k SET revoked_at = coalesce(k.revoked_at, now())
      WHERE k.organization_id = $1 AND k.id = $2
      RETURNING ${KEY_COLUMNS}`,
    [organizationId, keyId],
  );
  if (rows[0]) await deleteKeyWebSessions(db, organizationId, keyId);
  return rows[0] ? toApiKey(rows[0]) : null;
}
