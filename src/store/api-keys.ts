import type { Queryable } from '../db/index.js';

export type Role = 'OWNER' | 'ADMIN' | 'MEMBER' | 'VIEWER';

export interface ApiKeyRecord {
  id: string;
  organizationId: string;
  name: string;
  prefix: string;
  keyHash: Buffer;
  role: Role;
  expiresAt: Date | null;
  revokedAt: Date | null;
}

interface ApiKeyRow {
  id: string;
  organization_id: string;
  name: string;
  prefix: string;
  key_hash: Uint8Array;
  role: Role;
  expires_at: Date | null;
  revoked_at: Date | null;
}

function toApiKey(row: ApiKeyRow): ApiKeyRecord {
  return {
    id: row.id,
    organizationId: row.organization_id,
    name: row.name,
    prefix: row.prefix,
    keyHash: Buffer.from(row.key_hash),
    role: row.role,
    expiresAt: row.expires_at,
    revokedAt: row.revoked_at,
  };
}

export async function insertApiKey(
  db: Queryable,
  organizationId: string,
  key: { id: string; name: string; prefix: string; keyHash: Buffer; role: Role },
): Promise<void> {
  await db.query(
    `INSERT INTO stepwise.api_keys (id, organization_id, name, prefix, key_hash, role)
     VALUES ($1, $2, $3, $4, $5, $6)`,
    [key.id, organizationId, key.name, key.prefix, key.keyHash, key.role],
  );
}

/**
 * Authentication lookup by the key's public prefix. This is the one store
 * read that does not start from a tenant: the key is what names the tenant.
 */
export async function findApiKeyByPrefix(db: Queryable, prefix: string): Promise<ApiKeyRecord | null> {
  const { rows } = await db.query<ApiKeyRow>(
    `SELECT id, organization_id, name, prefix, key_hash, role, expires_at, revoked_at
       FROM stepwise.api_keys WHERE prefix = $1`,
    [prefix],
  );
  return rows[0] ? toApiKey(rows[0]) : null;
}
