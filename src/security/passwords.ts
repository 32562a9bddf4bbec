import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { ValidationError } from '../errors/index.js';

/**
 * Password hashing with scrypt (Node's crypto, no dependency). Stored as
 * `scrypt$N$r$p$<salt>$<hash>` (salt and hash base64url), so the cost
 * travels with each hash and can be raised later without a migration: old
 * hashes keep verifying under their own parameters.
 *
 * N = 2^15, r = 8, p = 1 (OWASP's scrypt minimum is N = 2^17 with r = 8 at
 * p = 1 — or equivalently lower N with more p; 2^15 is RFC 7914's
 * interactive-login figure): 32 MiB and about 90 ms per hash on this
 * project's 2-core CI machine (measured with crypto.scryptSync). Higher N
 * doubles both per step, and every sign-in attempt pays it — the per-IP and
 * per-email attempt limits (api/routes/sessions.ts) bound how many run at
 * once.
 */
export const PASSWORD_MIN_LENGTH = 12;
export const PASSWORD_MAX_LENGTH = 256;

const COST = { N: 2 ** 15, r: 8, p: 1 } as const;
const SALT_BYTES = 16;
const HASH_BYTES = 32;
/** Memory scrypt may use: 128·N·r is 32 MiB at our cost, which Node's default 32 MiB cap refuses. */
const MAXMEM = 128 * 1024 * 1024;
/** Refuse stored parameters beyond these (a corrupted or hostile row must not cost minutes or gigabytes). */
const LIMITS = { maxN: 2 ** 20, maxR: 16, maxP: 4 };

function derive(password: string, salt: Buffer, n: number, r: number, p: number, length: number): Promise<Buffer> {
  const options: ScryptOptions = { N: n, r, p, maxmem: MAXMEM };
  return new Promise((resolve, reject) => {
    scrypt(password.normalize('NFC'), salt, length, options, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

/** Refuse a password outside the length rules, naming `path` (an API field or a CLI flag). */
export function checkPasswordRules(password: string, path: string): void {
  const length = [...password].length;
  if (length < PASSWORD_MIN_LENGTH) {
    throw new ValidationError(`the password is ${length} characters; it must have at least ${PASSWORD_MIN_LENGTH}`, {
      path,
      minLength: PASSWORD_MIN_LENGTH,
    });
  }
  if (length > PASSWORD_MAX_LENGTH) {
    throw new ValidationError(`the password is ${length} characters; it may have at most ${PASSWORD_MAX_LENGTH}`, {
      path,
      maxLength: PASSWORD_MAX_LENGTH,
    });
  }
}

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const hash = await derive(password, salt, COST.N, COST.r, COST.p, HASH_BYTES);
  return `scrypt$${COST.N}$${COST.r}$${COST.p}$${salt.toString('base64url')}$${hash.toString('base64url')}`;
}

interface Parsed {
  n: number;
  r: number;
  p: number;
  salt: Buffer;
  hash: Buffer;
}

function parse(stored: string): Parsed | null {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return null;
  const [n, r, p] = [Number(parts[1]), Number(parts[2]), Number(parts[3])];
  const ok = (v: number, max: number) => Number.isInteger(v) && v >= 1 && v <= max;
  if (!ok(n, LIMITS.maxN) || (n & (n - 1)) !== 0 || n < 2 || !ok(r, LIMITS.maxR) || !ok(p, LIMITS.maxP)) return null;
  const salt = Buffer.from(parts[4]!, 'base64url');
  const hash = Buffer.from(parts[5]!, 'base64url');
  if (salt.length < 8 || hash.length < 16 || hash.length > 64) return null;
  return { n, r, p, salt, hash };
}

/**
 * True when `password` matches `stored`. The comparison is constant time;
 * a malformed stored value is a mismatch (never an exception a caller could
 * tell apart).
 */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parsed = parse(stored);
  if (!parsed) {
    await derive(password, randomBytes(SALT_BYTES), COST.N, COST.r, COST.p, HASH_BYTES);
    return false;
  }
  const candidate = await derive(password, parsed.salt, parsed.n, parsed.r, parsed.p, parsed.hash.length);
  return timingSafeEqual(candidate, parsed.hash);
}

let dummy: Promise<string> | undefined;

/** Compute the dummy hash ahead (at start-up), so the first unknown-email attempt is not the one slower attempt. */
export async function primeDummyHash(): Promise<void> {
  dummy ??= hashPassword(randomBytes(24).toString('base64url'));
  await dummy;
}

/**
 * Verify against a hash of a random password: a sign-in for an email that
 * has no password (or no user) then costs the same scrypt as a wrong
 * password for one that has, so timing does not tell them apart.
 */
export async function verifyAgainstDummy(password: string): Promise<false> {
  dummy ??= hashPassword(randomBytes(24).toString('base64url'));
  await verifyPassword(password, await dummy);
  return false;
}
