import type { Queryable } from '../db/index.js';

/** A credential's public face: never the secret, which only security/credentials.ts opens. */
export interface Credential {
  id: string;
  organizationId: string;
  provider: string;
  name: string;
  keyId: string;
  createdAt: Date;
  updatedAt: Date;
}

/** The sealed secret of a credential (AES-256-GCM parts, security/crypto.ts). */
export interface SealedSecret {
  ciphertext: Buffer;
  iv: Buffer;
  tag: Buffer;
  keyId: string;
}

export interface SealedCredential extends Credential {
  sealed: SealedSecret;
}

export type CredentialAction = 'CREATE' | 'UPDATE' | 'ROTATE' | 'DELETE' | 'USE';

/** Who did something to a credential, for its audit row. */
export interface CredentialActor {
  /** 'user:<user id>' or 'key:<api key id>' (API), 'worker:<worker id>' (use in a step), 'cli:keys-rotate'. */
  actor: string;
  apiKeyId?: string | null;
  jobId?: string | null;
  stepId?: string | null;
}

interface CredentialRow {
  id: string;
  organization_id: string;
  provider: string;
  name: string;
  key_id: string;
  created_at: Date;
  updated_at: Date;
}

interface SealedRow extends CredentialRow {
  ciphertext: Uint8Array;
  iv: Uint8Array;
  tag: Uint8Array;
}

const COLUMNS = 'id, organization_id, provider, name, key_id, created_at, updated_at';

function toCredential(r: CredentialRow): Credential {
  return {
    id: r.id,
    organizationId: r.organization_id,
    provider: r.provider,
    name: r.name,
    keyId: r.key_id,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

function toSealed(r: SealedRow): SealedCredential {
  return {
    ...toCredential(r),
    sealed: { ciphertext: Buffer.from(r.ciphertext), iv: Buffer.from(r.iv), tag: Buffer.from(r.tag), keyId: r.key_id },
  };
}

/** Parameters $3–$11 of an insert or a replace: the written fields, then the audit row's id and actor. */
function writeParams(input: { provider: string; name: string; sealed: SealedSecret; auditId: string }, actor: CredentialActor): unknown[] {
  const { sealed } = input;
  return [input.provider, input.name, sealed.ciphertext, sealed.iv, sealed.tag, sealed.keyId, input.auditId, actor.actor, actor.apiKeyId ?? null];
}

/**
 * Insert a credential and its CREATE audit row. Every change is written with
 * its audit row in one statement (a data-modifying CTE), so a change without
 * its audit row cannot exist.
 * ConflictError when the name is taken in the organization.
 */
export async function insertCredential(
  db: Queryable,
  organizationId: string,
  input: { id: string; provider: string; name: string; sealed: SealedSecret; auditId: string },
  actor: CredentialActor,
): Promise<Credential> {
  const { rows } = await db.query<CredentialRow>(
    `WITH c AS (
       INSERT INTO stepwise.credentials (id, organization_id, provider, name, ciphertext, iv, tag, key_id)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
       RETURNING ${COLUMNS}
     ), audit AS (
       INSERT INTO stepwise.credential_audit_log (id, organization_id, credential_id, credential_name, action, actor, api_key_id)
       SELECT $9, organization_id, id, name, 'CREATE', $10, $11 FROM c
     )
     SELECT ${COLUMNS} FROM c`,
    [input.id, organizationId, ...writeParams(input, actor)],
  );
  return toCredential(rows[0]!);
}

/** Replace provider, name and secret (PUT); UPDATE audit row in the same statement. Null when not this organization's. */
export async function replaceCredential(
  db: Queryable,
  organizationId: string,
  id: string,
  input: { provider: string; name: string; sealed: SealedSecret; auditId: string },
  actor: CredentialActor,
): Promise<Credential | null> {
  const { rows } = await db.query<CredentialRow>(
    `WITH c AS (
       UPDATE stepwise.credentials
          SET provider = $3, name = $4, ciphertext = $5, iv = $6, tag = $7, key_id = $8, updated_at = now()
        WHERE organization_id = $1 AND id = $2
       RETURNING ${COLUMNS}
     ), audit AS (
       INSERT INTO stepwise.credential_audit_log (id, organization_id, credential_id, credential_name, action, actor, api_key_id)
       SELECT $9, organization_id, id, name, 'UPDATE', $10, $11 FROM c
     )
     SELECT ${COLUMNS} FROM c`,
    [organizationId, id, ...writeParams(input, actor)],
  );
  return rows[0] ? toCredential(rows[0]) : null;
}

/** Delete with a DELETE audit row; false when not this organization's. */
export async function deleteCredential(
  db: Queryable,
  organizationId: string,
  id: string,
  auditId: string,
  actor: CredentialActor,
): Promise<boolean> {
  const { rows } = await db.query(
    `WITH c AS (
       DELETE FROM stepwise.credentials WHERE organization_id = $1 AND id = $2 RETURNING id, organization_id, name
     ), audit AS (
       INSERT INTO stepwise.credential_audit_log (id, organization_id, credential_id, credential_name, action, actor, api_key_id)
       SELECT $3, organization_id, id, name, 'DELETE', $4, $5 FROM c
     )
     SELECT id FROM c`,
    [organizationId, id, auditId, actor.actor, actor.apiKeyId ?? null],
  );
  return rows.length > 0;
}

export async function findCredential(db: Queryable, organizationId: string, id: string): Promise<Credential | null> {
  const { rows } = await db.query<CredentialRow>(
    `SELECT ${COLUMNS} FROM stepwise.credentials WHERE organization_id = $1 AND id = $2`,
    [organizationId, id],
  );
  return rows[0] ? toCredential(rows[0]) : null;
}

/** All of an organization's credentials by name (a handful; no pagination needed below the plan limits). */
export async function listCredentials(db: Queryable, organizationId: string): Promise<Credential[]> {
  const { rows } = await db.query<CredentialRow>(
    `SELECT ${COLUMNS} FROM stepwise.credentials WHERE organization_id = $1 ORDER BY name`,
    [organizationId],
  );
  return rows.map(toCredential);
}

/**
 * The sealed credentials a step uses, fetched in the same statement that
 * writes one USE audit row per credential found: one round trip per step
 * that references credentials, and none for steps that do not. The audit
 * row is written before anything is decrypted, so a use is never missed;
 * `auditIds` are the new rows' ids, one per name.
 */
export async function findCredentialsForUse(
  db: Queryable,
  organizationId: string,
  names: readonly string[],
  auditIds: readonly string[],
  actor: CredentialActor,
): Promise<SealedCredential[]> {
  const { rows } = await db.query<SealedRow>(
    `WITH c AS (
       SELECT ${COLUMNS}, ciphertext, iv, tag FROM stepwise.credentials
        WHERE organization_id = $1 AND name = ANY($2::text[])
     ), audit AS (
       INSERT INTO stepwise.credential_audit_log
         (id, organization_id, credential_id, credential_name, action, actor, job_id, step_id)
       SELECT ids.audit_id, c.organization_id, c.id, c.name, 'USE', $4, $5, $6
         FROM c JOIN unnest($2::text[], $3::uuid[]) AS ids (name, audit_id) ON ids.name = c.name
     )
     SELECT * FROM c`,
    [organizationId, names, auditIds, actor.actor, actor.jobId ?? null, actor.stepId ?? null],
  );
  return rows.map(toSealed);
}

/**
 * A batch of credentials not sealed under `currentKeyId`, after `afterId`
 * in id order, locked so two rotations never re-seal the same row at once.
 * Across all tenants: key rotation is operator (admin) code.
 */
export async function findCredentialsToReseal(
  db: Queryable,
  currentKeyId: string,
  afterId: string | null,
  limit: number,
): Promise<SealedCredential[]> {
  const { rows } = await db.query<SealedRow>(
    `SELECT ${COLUMNS}, ciphertext, iv, tag FROM stepwise.credentials
      WHERE key_id <> $1 AND ($2::uuid IS NULL OR id > $2::uuid)
      ORDER BY id LIMIT $3
      FOR UPDATE SKIP LOCKED`,
    [currentKeyId, afterId, limit],
  );
  return rows.map(toSealed);
}

/** Store re-sealed secrets (same plaintext, new key) with a ROTATE audit row each, in one statement. */
export async function resealCredentials(
  db: Queryable,
  items: readonly { id: string; sealed: SealedSecret; auditId: string }[],
  actor: CredentialActor,
): Promise<number> {
  if (items.length === 0) return 0;
  const { rows } = await db.query(
    `WITH v AS (
       SELECT * FROM unnest($1::uuid[], $2::bytea[], $3::bytea[], $4::bytea[], $5::text[], $6::uuid[])
         AS v (id, ciphertext, iv, tag, key_id, audit_id)
     ), c AS (
       UPDATE stepwise.credentials c
          SET ciphertext = v.ciphertext, iv = v.iv, tag = v.tag, key_id = v.key_id
         FROM v WHERE c.id = v.id
       RETURNING c.id, c.organization_id, c.name, v.audit_id
     ), audit AS (
       INSERT INTO stepwise.credential_audit_log (id, organization_id, credential_id, credential_name, action, actor)
       SELECT audit_id, organization_id, id, name, 'ROTATE', $7 FROM c
     )
     SELECT id FROM c`,
    [
      items.map((i) => i.id),
      items.map((i) => i.sealed.ciphertext),
      items.map((i) => i.sealed.iv),
      items.map((i) => i.sealed.tag),
      items.map((i) => i.sealed.keyId),
      items.map((i) => i.auditId),
      actor.actor,
    ],
  );
  return rows.length;
}
