import type { Db, Queryable } from '../db/index.js';
import { ConflictError, NotFoundError, UnavailableError, ValidationError } from '../errors/index.js';
import { assertWithinPlan } from '../store/plans.js';
import {
  deleteCredential,
  findCredential,
  findCredentialsForUse,
  insertCredential,
  replaceCredential,
  type Credential,
  type CredentialActor,
} from '../store/credentials.js';
import { uuidv7 } from '../util/ids.js';
import { isPlainObject, jsonByteLength } from '../util/json.js';
import { DecryptError, ENCRYPTION_KEYS_ENV, type KeyRing } from './crypto.js';

/**
 * Integration credentials: a provider, a name steps refer to
 * (`{{ credentials.<name>.<field> }}`) and secret fields, sealed with
 * AES-256-GCM under the key ring. The secret is accepted on create and
 * replace and never returned; it is opened only inside step execution
 * (`resolveCredentials`), and every opening is audited.
 */

/** Largest secret object, as compact JSON. */
const MAX_SECRET_BYTES = 16 * 1024;
const MAX_SECRET_FIELDS = 50;
const FIELD_RE = /^[A-Za-z_][A-Za-z0-9_]{0,99}$/;

export interface CredentialInput {
  provider: string;
  name: string;
  secret: Record<string, unknown>;
}

/** The associated data that binds a ciphertext to its row and tenant. */
export function credentialAad(id: string, organizationId: string): string {
  return `credential:${id}:${organizationId}`;
}

function requireRing(ring: KeyRing | null): KeyRing {
  if (!ring) {
    throw new UnavailableError(`credentials need an encryption key ring; set ${ENCRYPTION_KEYS_ENV}=<id>:<base64 32-byte key>`, {
      path: ENCRYPTION_KEYS_ENV,
    });
  }
  return ring;
}

/** Secret fields: a flat object of strings, numbers or booleans (what templates put into headers and bodies). */
function validateSecret(secret: unknown): Record<string, string | number | boolean> {
  if (!isPlainObject(secret)) throw new ValidationError('/body/secret must be an object of fields', { path: '/body/secret' });
  const entries = Object.entries(secret);
  if (entries.length === 0) throw new ValidationError('/body/secret needs at least one field', { path: '/body/secret' });
  if (entries.length > MAX_SECRET_FIELDS) {
    throw new ValidationError(`/body/secret has ${entries.length} fields; the limit is ${MAX_SECRET_FIELDS}`, {
      path: '/body/secret',
      limit: MAX_SECRET_FIELDS,
    });
  }
  for (const [k, v] of entries) {
    const path = `/body/secret/${k}`;
    if (!FIELD_RE.test(k)) throw new ValidationError(`${path}: field names are identifiers (letters, digits, _; at most 100)`, { path });
    if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') {
      throw new ValidationError(`${path} must be a string, number or boolean`, { path });
    }
    if (typeof v === 'string' && v.length === 0) throw new ValidationError(`${path} must not be empty`, { path });
  }
  const bytes = jsonByteLength(secret);
  if (bytes > MAX_SECRET_BYTES) {
    throw new ValidationError(`/body/secret is ${bytes} bytes; the limit is ${MAX_SECRET_BYTES}`, {
      path: '/body/secret',
      bytes,
      limit: MAX_SECRET_BYTES,
    });
  }
  return secret as Record<string, string | number | boolean>;
}

function nameTaken(err: unknown, name: string): unknown {
  if (err instanceof ConflictError) {
    return new ConflictError(`a credential named "${name}" already exists in this organization`, { path: '/body/name', name });
  }
  return err;
}

/** Create a credential (sealed) with its CREATE audit row; PlanLimitError past the plan's credential limit. */
export async function createCredential(
  db: Db,
  ring: KeyRing | null,
  organizationId: string,
  input: CredentialInput,
  actor: CredentialActor,
): Promise<Credential> {
  const keys = requireRing(ring);
  const secret = validateSecret(input.secret);
  const id = uuidv7();
  const sealed = keys.sealJson(secret, credentialAad(id, organizationId));
  try {
    // The plan's credential limit, counted under the organization's row lock (store/plans.ts).
    return await db.transaction(async (tx) => {
      await assertWithinPlan(tx, organizationId, 'credentials', 1);
      return insertCredential(tx, organizationId, { id, provider: input.provider, name: input.name, sealed, auditId: uuidv7() }, actor);
    });
  } catch (err) {
    throw nameTaken(err, input.name);
  }
}

/** Replace a credential's provider, name and secret (PUT) with an UPDATE audit row; 404 when not this organization's. */
export async function updateCredential(
  db: Queryable,
  ring: KeyRing | null,
  organizationId: string,
  id: string,
  input: CredentialInput,
  actor: CredentialActor,
): Promise<Credential> {
  const keys = requireRing(ring);
  const secret = validateSecret(input.secret);
  const sealed = keys.sealJson(secret, credentialAad(id, organizationId));
  let updated: Credential | null;
  try {
    updated = await replaceCredential(db, organizationId, id, { provider: input.provider, name: input.name, sealed, auditId: uuidv7() }, actor);
  } catch (err) {
    throw nameTaken(err, input.name);
  }
  if (!updated) throw new NotFoundError('credential', id);
  return updated;
}

/** Delete a credential (its audit trail stays); 404 when not this organization's. */
export async function removeCredential(db: Queryable, organizationId: string, id: string, actor: CredentialActor): Promise<void> {
  if (!(await deleteCredential(db, organizationId, id, uuidv7(), actor))) throw new NotFoundError('credential', id);
}

export async function getCredential(db: Queryable, organizationId: string, id: string): Promise<Credential> {
  const found = await findCredential(db, organizationId, id);
  if (!found) throw new NotFoundError('credential', id);
  return found;
}

/** The decrypted credentials one step uses, and the names that did not resolve. */
export interface ResolvedCredentials {
  values: Record<string, Record<string, unknown>>;
  /** Each opened credential's provider (`openai`, `smtp`, `postgres`, …), by name. */
  providers: Record<string, string>;
  /** Names with no credential in the organization. */
  missing: string[];
  /** Names whose ciphertext did not open (key not in the ring, or tampered). */
  unreadable: string[];
}

/**
 * Open the credentials `names` for one step of one job: one statement
 * fetches them and writes a USE audit row each (actor, job, step), then they
 * are decrypted in memory for this step only. A name that does not exist is
 * reported in `missing`, a ciphertext that does not open in `unreadable`;
 * the engine fails the step with a clear code either way.
 */
export async function resolveCredentials(
  db: Queryable,
  ring: KeyRing | null,
  use: { organizationId: string; jobId: string; stepId: string; actor: string },
  names: readonly string[],
): Promise<ResolvedCredentials> {
  if (!ring) return { values: {}, providers: {}, missing: [], unreadable: [...names] };
  const rows = await findCredentialsForUse(db, use.organizationId, names, names.map(() => uuidv7()), {
    actor: use.actor,
    jobId: use.jobId,
    stepId: use.stepId,
  });
  const values: Record<string, Record<string, unknown>> = {};
  const providers: Record<string, string> = {};
  const unreadable: string[] = [];
  for (const row of rows) {
    try {
      const secret = ring.openJson(row.sealed, credentialAad(row.id, row.organizationId));
      if (isPlainObject(secret)) {
        values[row.name] = secret;
        providers[row.name] = row.provider;
      }
      else unreadable.push(row.name);
    } catch (err) {
      if (!(err instanceof DecryptError)) throw err;
      unreadable.push(row.name);
    }
  }
  const found = new Set(rows.map((r) => r.name));
  return { values, providers, missing: names.filter((n) => !found.has(n)), unreadable };
}

/** The engine's CredentialResolver (engine/credentials.ts) over this database and key ring. */
export function credentialResolver(
  db: Queryable,
  ring: KeyRing | null,
): { resolve: (use: { organizationId: string; jobId: string; stepId: string; actor: string }, names: readonly string[]) => Promise<ResolvedCredentials> } {
  return { resolve: (use, names) => resolveCredentials(db, ring, use, names) };
}
