import { randomBytes } from 'node:crypto';
import type { Db } from '../../src/db/index.js';
import { createApiKey } from '../../src/security/index.js';
import { createUser, type Role } from '../../src/store/index.js';

/** One user per role in the organization, each with a key of their role: role → { userId, key }. */
export async function seedRoleKeys(db: Db, organizationId: string): Promise<Record<Role, { userId: string; key: string; keyId: string }>> {
  const out = {} as Record<Role, { userId: string; key: string; keyId: string }>;
  for (const role of ['VIEWER', 'MEMBER', 'ADMIN', 'OWNER'] as const) {
    const user = await createUser(db, organizationId, { email: `${role.toLowerCase()}-${randomBytes(4).toString('hex')}@example.com`, name: role, role });
    const { key, id } = await createApiKey(db, organizationId, { name: `${role} key`, userId: user.id });
    out[role] = { userId: user.id, key, keyId: id };
  }
  return out;
}
