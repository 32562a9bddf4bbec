import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Db, Queryable } from '../db/index.js';
import { KeyRejectedError, NotFoundError, UnauthorizedError, ValidationError } from '../errors/index.js';
import {
  createOrganization,
  createUser,
  findApiKeyByPrefix,
  findFirstOwner,
  findUser,
  insertApiKey,
  type Organization,
  type Plan,
  type Role,
  type User,
} from '../store/index.js';
import { uuidv7 } from '../util/ids.js';
import { minRole, roleAtLeast } from './permissions.js';

/**
 * API keys look like `sw_<prefix>_<secret>`. The prefix (public, indexed)
 * finds the row; only the SHA-256 of the whole key is stored, and it is
 * compared in constant time. A fast hash is right here: the secret is 256
 * random bits, so there is nothing for a slow hash to protect against.
 */
const KEY_RE = /^sw_([a-z0-9]{12})_([A-Za-z0-9_-]{43})$/;

/** Who a request acts as. */
export interface Principal {
  organizationId: string;
  /** The key the request came with, or the key a dashboard session was opened with; null for a password session. */
  apiKeyId: string | null;
  /** The key's or session's user (null only for keys whose user was deleted, which are revoked and never authenticate). */
  userId: string | null;
  /** The dashboard session (hex of its id, security/sessions.ts) when the request came with the session cookie; null for a Bearer key. */
  sessionId: string | null;
  /** Effective role: min(key role, user role), so demoting a user caps every key they hold. */
  role: Role;
  /** The key's own role (the user's role for a password session). */
  keyRole: Role;
}

function hashKey(key: string): Buffer {
  return createHash('sha256').update(key).digest();
}

/** Email used for owners created without one (first start, `org create` without --owner-email, migration backfill). */
export const DEFAULT_OWNER_EMAIL = 'owner@localhost';

export interface NewKeyOptions {
  name: string;
  /** Defaults to the user's role; never above it. */
  role?: Role | undefined;
  /** Defaults to the organization's first OWNER (created if there is none: bootstrap). */
  userId?: string | undefined;
  expiresAt?: Date | null | undefined;
}

/**
 * Create a key for a user of an organization. The returned `key` is shown
 * once and never stored. A role above the user's is refused: a key carries
 * at most its user's role.
 */
export async function createApiKey(
  db: Queryable,
  organizationId: string,
  opts: NewKeyOptions,
): Promise<{ id: string; key: string; prefix: string; userId: string; role: Role }> {
  let user: User | null;
  if (opts.userId !== undefined) {
    user = await findUser(db, organizationId, opts.userId);
    if (!user) throw new NotFoundError('user', opts.userId);
  } else {
    user = (await findFirstOwner(db, organizationId)) ?? (await createUser(db, organizationId, { email: DEFAULT_OWNER_EMAIL, name: 'Owner', role: 'OWNER' }));
  }
  const role = opts.role ?? user.role;
  if (!roleAtLeast(user.role, role)) {
    throw new ValidationError(`role ${role} is above the user's role ${user.role}; a key carries at most its user's role`, {
      path: '/body/role',
      userRole: user.role,
    });
  }
  const prefix = randomBytes(9).toString('base64url').toLowerCase().replace(/[^a-z0-9]/g, '0').slice(0, 12);
  const key = `sw_${prefix}_${randomBytes(32).toString('base64url')}`;
  const id = uuidv7();
  await insertApiKey(db, organizationId, { id, userId: user.id, name: opts.name, prefix, keyHash: hashKey(key), role, expiresAt: opts.expiresAt });
  return { id, key, prefix, userId: user.id, role };
}

/**
 * A new organization with its OWNER user and that user's first key, in one
 * transaction (`stepwise org create`, first start, tests).
 */
export async function createOrganizationWithOwner(
  db: Db,
  input: { name: string; plan?: Plan | undefined; ownerEmail?: string | undefined; ownerName?: string | undefined; keyName?: string | undefined },
): Promise<{ organization: Organization; owner: User; apiKey: { id: string; key: string } }> {
  return db.transaction(async (tx) => {
    const organization = await createOrganization(tx, { name: input.name, ...(input.plan ? { plan: input.plan } : {}) });
    const owner = await createUser(tx, organization.id, {
      email: input.ownerEmail ?? DEFAULT_OWNER_EMAIL,
      name: input.ownerName ?? 'Owner',
      role: 'OWNER',
    });
    const { id, key } = await createApiKey(tx, organization.id, { name: input.keyName ?? 'owner key', userId: owner.id });
    return { organization, owner, apiKey: { id, key } };
  });
}

/**
 * Resolve a bearer token to its organization, user and effective role.
 * Anything that is not a whole, matching key is the same UnauthorizedError;
 * a matching key that may no longer be used says why (KEY_REVOKED,
 * KEY_EXPIRED, USER_DISABLED) — only its holder can learn that.
 */
export async function authenticate(db: Queryable, token: string | undefined, now: Date = new Date()): Promise<Principal> {
  const invalid = () => new UnauthorizedError('missing or invalid API key; send Authorization: Bearer <key>');
  if (!token) throw invalid();
  const m = KEY_RE.exec(token);
  if (!m) throw invalid();
  const record = await findApiKeyByPrefix(db, m[1]!);
  if (!record) throw invalid();
  const presented = hashKey(token);
  if (!timingSafeEqual(presented, record.keyHash)) throw invalid();
  if (record.revokedAt) throw new KeyRejectedError('KEY_REVOKED', `API key ${record.prefix} was revoked`, { keyId: record.id, revokedAt: record.revokedAt.toISOString() });
  if (record.expiresAt && record.expiresAt <= now) {
    throw new KeyRejectedError('KEY_EXPIRED', `API key ${record.prefix} expired`, { keyId: record.id, expiresAt: record.expiresAt.toISOString() });
  }
  if (record.userRole === null) throw new KeyRejectedError('KEY_REVOKED', `API key ${record.prefix} belongs to no user`, { keyId: record.id });
  if (record.userDisabled) throw new KeyRejectedError('USER_DISABLED', `the user of API key ${record.prefix} is disabled`, { keyId: record.id });
  return {
    organizationId: record.organizationId,
    apiKeyId: record.id,
    userId: record.userId,
    sessionId: null,
    role: minRole(record.role, record.userRole),
    keyRole: record.role,
  };
}
