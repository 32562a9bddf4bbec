import type { Queryable } from '../db/index.js';

/** An invitation to set a password (migration 0021). Only the token's SHA-256 is stored. */
export interface NewInvitation {
  id: string;
  userId: string;
  tokenHash: Buffer;
  createdBy: string;
  /** Lifetime from now (the database's clock). */
  lifetimeMs: number;
}

/**
 * Store a new invitation for a user. Earlier unused invitations of the same
 * user are deleted first: only the newest link works, so re-inviting
 * someone also withdraws a link sent to the wrong place.
 */
export async function insertInvitation(db: Queryable, organizationId: string, inv: NewInvitation): Promise<{ expiresAt: Date }> {
  await db.query(`DELETE FROM stepwise.user_invitations WHERE organization_id = $1 AND user_id = $2 AND used_at IS NULL`, [organizationId, inv.userId]);
  const { rows } = await db.query<{ expires_at: Date }>(
    `INSERT INTO stepwise.user_invitations (id, organization_id, user_id, token_hash, created_by, expires_at)
     VALUES ($1, $2, $3, $4, $5, now() + $6 * interval '1 millisecond')
     RETURNING expires_at`,
    [inv.id, organizationId, inv.userId, inv.tokenHash, inv.createdBy, inv.lifetimeMs],
  );
  return { expiresAt: rows[0]!.expires_at };
}

export type InvitationUse =
  | { ok: true; organizationId: string; userId: string }
  | { ok: false; reason: 'unknown' | 'used' | 'expired' };

/**
 * Spend an invitation: one statement marks it used only if it was unused and
 * unexpired, so two concurrent accepts cannot both succeed. Starts from no
 * tenant (the token names it). When nothing was spent, says why.
 */
export async function consumeInvitation(db: Queryable, tokenHash: Buffer): Promise<InvitationUse> {
  const { rows } = await db.query<{ organization_id: string; user_id: string }>(
    `UPDATE stepwise.user_invitations SET used_at = now()
      WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now()
      RETURNING organization_id, user_id`,
    [tokenHash],
  );
  if (rows[0]) return { ok: true, organizationId: rows[0].organization_id, userId: rows[0].user_id };
  const { rows: found } = await db.query<{ used: boolean }>(
    `SELECT used_at IS NOT NULL AS used FROM stepwise.user_invitations WHERE token_hash = $1`,
    [tokenHash],
  );
  if (!found[0]) return { ok: false, reason: 'unknown' };
  return { ok: false, reason: found[0].used ? 'used' : 'expired' };
}
