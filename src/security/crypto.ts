import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ValidationError } from '../errors/index.js';

/**
 * AES-256-GCM (authenticated: a changed ciphertext fails to open) under a key ring. The ring comes from
 *
 *   STEPWISE_ENCRYPTION_KEYS=<id>:<base64 32-byte key>[,<id>:<base64 key>…]
 *
 * newest first: new ciphertexts are sealed with the first key, and any key
 * in the ring opens what it sealed (every ciphertext stores its key id), so
 * rotation is "put a new key first, run `stepwise keys rotate`, then drop
 * the old key". Ids are 1–64 characters of [A-Za-z0-9_-].
 *
 * Every seal binds associated data (the row's id and organization): GCM then
 * refuses a ciphertext moved to another row or tenant, so a database-level
 * copy of one tenant's secret into another's row decrypts to nothing.
 */
export const ENCRYPTION_KEYS_ENV = 'STEPWISE_ENCRYPTION_KEYS';
/** File that holds the generated key ring in embedded mode (mode 0600). */
export const KEY_FILE_NAME = 'encryption-keys';

const KEY_ID_RE = /^[A-Za-z0-9_-]{1,64}$/;
const IV_BYTES = 12; // the GCM standard nonce size; random per seal (2^32 seals per key stay far from collision risk)

export interface Sealed {
  ciphertext: Buffer;
  iv: Buffer;
  tag: Buffer;
  keyId: string;
}

/** A ciphertext that cannot be opened: unknown key id, or authentication failed (tampered, moved, wrong key). */
export class DecryptError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DecryptError';
  }
}

export class KeyRing {
  private readonly keys: ReadonlyMap<string, Buffer>;
  /** Id of the key new ciphertexts are sealed with. */
  readonly currentKeyId: string;

  constructor(entries: readonly { id: string; key: Buffer }[]) {
    if (entries.length === 0) throw new ValidationError(`${ENCRYPTION_KEYS_ENV} holds no keys`, { path: ENCRYPTION_KEYS_ENV });
    const keys = new Map<string, Buffer>();
    for (const e of entries) keys.set(e.id, e.key);
    this.keys = keys;
    this.currentKeyId = entries[0]!.id;
  }

  /** Key ids, newest first. */
  get keyIds(): string[] {
    return [...this.keys.keys()];
  }

  seal(plaintext: Buffer, associatedData: string): Sealed {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.keys.get(this.currentKeyId)!, iv);
    cipher.setAAD(Buffer.from(associatedData, 'utf8'));
    const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return { ciphertext, iv, tag: cipher.getAuthTag(), keyId: this.currentKeyId };
  }

  open(sealed: Sealed, associatedData: string): Buffer {
    const key = this.keys.get(sealed.keyId);
    if (!key) throw new DecryptError(`key "${sealed.keyId}" is not in ${ENCRYPTION_KEYS_ENV}; add it back (after the new key) until \`stepwise keys rotate\` has run`);
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, sealed.iv);
      decipher.setAAD(Buffer.from(associatedData, 'utf8'));
      decipher.setAuthTag(sealed.tag);
      return Buffer.concat([decipher.update(sealed.ciphertext), decipher.final()]);
    } catch {
      throw new DecryptError('ciphertext failed authentication (tampered, or not sealed for this row)');
    }
  }

  /**
   * A 256-bit key for one purpose (e.g. "stepwise approval links v1"),
   * derived with HKDF-SHA256 from ring key `keyId` (default: the newest), so
   * no ring key is ever used by two algorithms. Null when `keyId` is not in
   * the ring (it was rotated out).
   */
  deriveKey(purpose: string, keyId: string = this.currentKeyId): Buffer | null {
    const key = this.keys.get(keyId);
    return key ? Buffer.from(hkdfSync('sha256', key, Buffer.alloc(0), purpose, 32)) : null;
  }

  sealJson(value: unknown, associatedData: string): Sealed {
    return this.seal(Buffer.from(JSON.stringify(value), 'utf8'), associatedData);
  }

  openJson(sealed: Sealed, associatedData: string): unknown {
    return JSON.parse(this.open(sealed, associatedData).toString('utf8'));
  }
}

/** Parse the STEPWISE_ENCRYPTION_KEYS format; ValidationError naming the entry on any mistake. */
export function parseKeyRing(raw: string, source = ENCRYPTION_KEYS_ENV): KeyRing {
  const entries: { id: string; key: Buffer }[] = [];
  const parts = raw.split(',').map((p) => p.trim()).filter((p) => p !== '');
  parts.forEach((part, i) => {
    const colon = part.indexOf(':');
    const where = `${source} entry ${i + 1}`;
    if (colon < 0) throw new ValidationError(`${where} must be <id>:<base64 key>`, { path: source, entry: i + 1 });
    const id = part.slice(0, colon);
    const b64 = part.slice(colon + 1);
    if (!KEY_ID_RE.test(id)) {
      throw new ValidationError(`${where}: key id must be 1-64 characters of A-Z a-z 0-9 _ -`, { path: source, entry: i + 1 });
    }
    if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(b64)) {
      throw new ValidationError(`${where} (${id}): key is not base64`, { path: source, entry: i + 1 });
    }
    const key = Buffer.from(b64, b64.includes('-') || b64.includes('_') ? 'base64url' : 'base64');
    if (key.length !== 32) {
      throw new ValidationError(`${where} (${id}): key must be 32 bytes (256 bits), got ${key.length}; make one with \`openssl rand -base64 32\``, {
        path: source,
        entry: i + 1,
        bytes: key.length,
      });
    }
    if (entries.some((e) => e.id === id)) throw new ValidationError(`${where}: key id "${id}" appears twice`, { path: source, entry: i + 1 });
    entries.push({ id, key });
  });
  if (entries.length === 0) throw new ValidationError(`${source} is empty; set it to <id>:<base64 32-byte key>[,…]`, { path: source });
  return new KeyRing(entries);
}

/** A new ring entry: `<id>:<base64 key>` with a date-stamped id. */
export function generateKeyEntry(now: Date = new Date()): string {
  const id = `k${now.toISOString().slice(0, 10).replaceAll('-', '')}${randomBytes(2).toString('hex')}`;
  return `${id}:${randomBytes(32).toString('base64')}`;
}

export interface KeyRingSource {
  ring: KeyRing | null;
  /** Set when an embedded key file was created just now (the caller logs it). */
  generatedFile?: string;
}

/**
 * The key ring for this process. From STEPWISE_ENCRYPTION_KEYS when set.
 * Otherwise, in embedded mode, from `<dataDir>/encryption-keys`, created
 * with one new key (mode 0600) on first start — whoever can read the data
 * directory can read the key, which is the embedded mode's trust boundary
 * anyway. A server deployment without the variable gets no ring: features
 * that need one (credentials) answer 503 saying to set it.
 */
export function loadKeyRing(env: Record<string, string | undefined>, opts: { embedded: boolean; dataDir: string }): KeyRingSource {
  const raw = env[ENCRYPTION_KEYS_ENV];
  if (raw !== undefined && raw.trim() !== '') return { ring: parseKeyRing(raw) };
  if (!opts.embedded) return { ring: null };
  const file = join(opts.dataDir, KEY_FILE_NAME);
  let text: string | undefined;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (text !== undefined) return { ring: parseKeyRing(text.trim(), file) };
  mkdirSync(opts.dataDir, { recursive: true });
  const entry = generateKeyEntry();
  writeFileSync(file, `${entry}\n`, { mode: 0o600, flag: 'wx' });
  chmodSync(file, 0o600); // the umask may have narrowed it further, never widened; make it exact
  return { ring: parseKeyRing(entry, file), generatedFile: file };
}
