import { createHash, createHmac } from 'node:crypto';
import type { Queryable } from '../db/index.js';
import { listLinks, setLinkTokenHashes, type StoredLink } from '../store/approvals.js';
import type { KeyRing } from './crypto.js';

/**
 * Single-use approval links. Each eligible approver of an approval has one
 * link row holding a random 256-bit nonce; the link's token is
 *
 *   swl_<base64url of HMAC-SHA256(K, "<approval id>:<user id>:<nonce hex>")>
 *
 * where K is derived (HKDF) from a key of the server's key ring
 * (STEPWISE_ENCRYPTION_KEYS) for this purpose alone. Only SHA-256(token) is
 * stored, so a copy of the database yields no usable link, and the ring key
 * alone yields none either (the nonce is random per link). Why derive rather
 * than store the token sealed: the link must be shown again to OWNER/ADMIN
 * whenever they ask (so the workflow can send it), the worker that opens an
 * approval holds no key ring, and a derivation needs no ciphertext to keep
 * or rotate. The ring key used is recorded per link (key_id), so a link
 * keeps working, and can still be shown, until that key leaves the ring;
 * after that it still works but can no longer be shown.
 *
 * A link is spent by its first decision (used_at, under a row lock) and
 * expires with its approval; both then answer 410.
 */
const PURPOSE = 'stepwise approval links v1';
const TOKEN_PREFIX = 'swl_';
const TOKEN_RE = /^swl_[A-Za-z0-9_-]{43}$/;

/** True when `token` has the shape of a link token (checked before any lookup). */
export function isLinkToken(token: string): boolean {
  return TOKEN_RE.test(token);
}

/** What is stored and looked up: SHA-256 of the whole token. A fast hash suffices: the token carries 256 unguessable bits. */
export function hashLinkToken(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/** The token of one link under ring key `keyId`; null when that key is no longer in the ring. */
export function deriveLinkToken(keyRing: KeyRing, keyId: string, link: Pick<StoredLink, 'approvalId' | 'userId' | 'nonce'>): string | null {
  const key = keyRing.deriveKey(PURPOSE, keyId);
  if (!key) return null;
  const mac = createHmac('sha256', key).update(`${link.approvalId}:${link.userId}:${link.nonce.toString('hex')}`, 'utf8').digest('base64url');
  return `${TOKEN_PREFIX}${mac}`;
}

/** One approver's link as OWNER/ADMIN see it. */
export interface ApprovalLinkView {
  userId: string;
  email: string | null;
  name: string | null;
  /** The token, while the link can be used and its ring key is still there; else null. */
  token: string | null;
  /** Where the approver opens it, relative to the API's base URL. */
  path: string | null;
  expiresAt: Date | null;
  usedAt: Date | null;
}

/**
 * An approval's links, each with its token while it can still be used.
 * Tokens not derived before are derived now under the ring's newest key and
 * their hashes stored (call inside the request's transaction). Null without
 * a key ring: links cannot be made then.
 */
export async function approvalLinks(db: Queryable, keyRing: KeyRing | null, organizationId: string, approvalId: string): Promise<ApprovalLinkView[] | null> {
  if (!keyRing) return null;
  let links = await listLinks(db, organizationId, approvalId);
  const fresh = links.filter((l) => l.keyId === null);
  if (fresh.length > 0) {
    const keyId = keyRing.currentKeyId;
    await setLinkTokenHashes(
      db,
      organizationId,
      approvalId,
      fresh.map((l) => ({ userId: l.userId, keyId, tokenHash: hashLinkToken(deriveLinkToken(keyRing, keyId, l)!) })),
    );
    // Read back: a concurrent request may have derived some first, under its own newest key.
    links = await listLinks(db, organizationId, approvalId);
  }
  return links.map((l) => {
    const usable = l.usedAt === null && !l.expired && l.keyId !== null;
    const token = usable ? deriveLinkToken(keyRing, l.keyId!, l) : null;
    return {
      userId: l.userId,
      email: l.email,
      name: l.name,
      token,
      path: token === null ? null : `/v1/approval-links/${token}`,
      expiresAt: l.expiresAt,
      usedAt: l.usedAt,
    };
  });
}
