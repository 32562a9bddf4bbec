import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Queryable } from '../db/index.js';
import { UnauthorizedError } from '../errors/index.js';
import { findApiKeyByPrefix, insertApiKey, type Role } from '../store/index.js';
import { uuidv7 } from '../util/ids.js';

/**
 * API keys look like `sw_<prefix>_<secret>`. The prefix (public, indexed)
 * finds the row; only the SHA-256 of the whole key is stored, and it is
 * compared in constant time. A fast hash is right here: the secret is 256
 * random bits, so there is nothing for a slow hash to protect against.
 */
const KEY_RE = /^sw_([a-z0-9]{12})_([A-Za-z0-9_-]{43})$/;

export interface Principal {
  organizationId: string;
  apiKeyId: string;
  role: Role;
}

function hashKey(key: string): Buffer {
  return createHash('sha256').update(key).digest();
}

/** Create a key for an organization. The returned `key` is shown once and never stored. */
export async function createApiKey(
  db: Queryable,
  organizationId: string,
  opts: { name: string; role?: Role },
): Promise<{ id: string; key: string; prefix: string }> {
  const prefix = randomBytes(9).toString('base64url').toLowerCase().replace(/[^a-z0-9]/g, '0').slice(0, 12);
  const key = `sw_${prefix}_${randomBytes(32).toString('base64url')}`;
  const id = uuidv7();
  await insertApiKey(db, organizationId, { id, name: opts.name, prefix, keyHash: hashKey(key), role: opts.role ?? 'OWNER' });
  return { id, key, prefix };
}

/** Resolve a bearer token to its organization and role; UnauthorizedError otherwise (same message for every cause). */
export async function authenticate(db: Queryable, token: string | undefined, now: Date = new Date()): Promise<Principal> {
  const invalid = () => new UnauthorizedError('missing or invalid API key; send Authorization: Bearer <key>');
  if (!token) throw invalid();
  const m = KEY_RE.exec(token);
  if (!m) throw invalid();
  const record = await findApiKeyByPrefix(db, m[1]!);
  if (!record) throw invalid();
  const presented = hashKey(token);
  if (!timingSafeEqual(presented, record.keyHash)) throw invalid();
  if (record.revokedAt || (record.expiresAt && record.expiresAt <= now)) throw invalid();
  return { organizationId: record.organizationId, apiKeyId: record.id, role: record.role };
}
