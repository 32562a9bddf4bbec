import type { Queryable } from '../db/index.js';
import type { SealedSecret } from './credentials.js';

/**
 * A webhook secret as stored: sealed under the key ring (migration 0010),
 * or in clear on a deployment without one (and in rows written before 0010,
 * until `stepwise keys rotate` seals them).
 */
export type StoredWebhookSecret = { clear: string } | { sealed: SealedSecret };

/** A workflow's webhook trigger as the API shows it: never the secret. */
export interface WebhookTrigger {
  workflowId: string;
  organizationId: string;
  enabled: boolean;
  createdAt: Date;
  rotatedAt: Date | null;
}

/** What verifying a delivery needs, secret included. Never leaves the security layer. */
export interface WebhookKey {
  workflowId: string;
  organizationId: string;
  secret: StoredWebhookSecret;
  enabled: boolean;
}

interface TriggerRow {
  workflow_id: string;
  organization_id: string;
  enabled: boolean;
  created_at: Date;
  rotated_at: Date | null;
}

interface KeyRow {
  workflow_id: string;
  organization_id: string;
  secret: string | null;
  secret_ciphertext: Uint8Array | null;
  secret_iv: Uint8Array | null;
  secret_tag: Uint8Array | null;
  secret_key_id: string | null;
  enabled: boolean;
}

const KEY_COLUMNS = 'workflow_id, organization_id, secret, secret_ciphertext, secret_iv, secret_tag, secret_key_id, enabled';

function toStoredSecret(row: KeyRow): StoredWebhookSecret {
  if (row.secret !== null) return { clear: row.secret };
  return {
    sealed: {
      ciphertext: Buffer.from(row.secret_ciphertext!),
      iv: Buffer.from(row.secret_iv!),
      tag: Buffer.from(row.secret_tag!),
      keyId: row.secret_key_id!,
    },
  };
}

/** The five secret columns' values for a stored secret (clear, or sealed with the clear column null). */
function secretParams(secret: StoredWebhookSecret): unknown[] {
  if ('clear' in secret) return [secret.clear, null, null, null, null];
  const s = secret.sealed;
  return [null, s.ciphertext, s.iv, s.tag, s.keyId];
}

function toTrigger(row: TriggerRow): WebhookTrigger {
  return {
    workflowId: row.workflow_id,
    organizationId: row.organization_id,
    enabled: row.enabled,
    createdAt: row.created_at,
    rotatedAt: row.rotated_at,
  };
}

function toKey(row: KeyRow): WebhookKey {
  return { workflowId: row.workflow_id, organizationId: row.organization_id, secret: toStoredSecret(row), enabled: row.enabled };
}

const TRIGGER_COLUMNS = 'workflow_id, organization_id, enabled, created_at, rotated_at';

export async function findWebhookTrigger(db: Queryable, organizationId: string, workflowId: string): Promise<WebhookTrigger | null> {
  const { rows } = await db.query<TriggerRow>(
    `SELECT ${TRIGGER_COLUMNS} FROM stepwise.webhook_triggers WHERE organization_id = $1 AND workflow_id = $2`,
    [organizationId, workflowId],
  );
  return rows[0] ? toTrigger(rows[0]) : null;
}

/**
 * Delivery lookup by workflow id. Like the API key lookup, this read does not
 * start from a tenant: an unauthenticated delivery names only the workflow,
 * and the secret it is checked against is what names the tenant.
 */
export async function findWebhookKey(db: Queryable, workflowId: string): Promise<WebhookKey | null> {
  const { rows } = await db.query<KeyRow>(
    `SELECT ${KEY_COLUMNS} FROM stepwise.webhook_triggers WHERE workflow_id = $1`,
    [workflowId],
  );
  return rows[0] ? toKey(rows[0]) : null;
}

/**
 * Enable the trigger with this secret: insert it, or re-enable a disabled one
 * with the new secret. Null when it is already enabled (one statement, so two
 * concurrent enables cannot both hand out a secret).
 */
export async function createWebhookTrigger(
  db: Queryable,
  organizationId: string,
  workflowId: string,
  secret: StoredWebhookSecret,
): Promise<WebhookTrigger | null> {
  const { rows } = await db.query<TriggerRow>(
    `INSERT INTO stepwise.webhook_triggers AS t
       (workflow_id, organization_id, secret, secret_ciphertext, secret_iv, secret_tag, secret_key_id)
     VALUES ($2, $1, $3, $4, $5, $6, $7)
     ON CONFLICT (workflow_id) DO UPDATE
        SET secret = EXCLUDED.secret, secret_ciphertext = EXCLUDED.secret_ciphertext, secret_iv = EXCLUDED.secret_iv,
            secret_tag = EXCLUDED.secret_tag, secret_key_id = EXCLUDED.secret_key_id, enabled = true, rotated_at = now()
      WHERE t.organization_id = $1 AND NOT t.enabled
     RETURNING ${TRIGGER_COLUMNS}`,
    [organizationId, workflowId, ...secretParams(secret)],
  );
  return rows[0] ? toTrigger(rows[0]) : null;
}

/** Replace the secret of an enabled trigger; null when there is none. The old secret stops working at commit. */
export async function updateWebhookSecret(
  db: Queryable,
  organizationId: string,
  workflowId: string,
  secret: StoredWebhookSecret,
): Promise<WebhookTrigger | null> {
  const { rows } = await db.query<TriggerRow>(
    `UPDATE stepwise.webhook_triggers
        SET secret = $3, secret_ciphertext = $4, secret_iv = $5, secret_tag = $6, secret_key_id = $7, rotated_at = now()
      WHERE organization_id = $1 AND workflow_id = $2 AND enabled
      RETURNING ${TRIGGER_COLUMNS}`,
    [organizationId, workflowId, ...secretParams(secret)],
  );
  return rows[0] ? toTrigger(rows[0]) : null;
}

/** Disable an enabled trigger; false when there is none. The row stays so GET can report when it was created. */
export async function disableWebhookTrigger(db: Queryable, organizationId: string, workflowId: string): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE stepwise.webhook_triggers SET enabled = false
      WHERE organization_id = $1 AND workflow_id = $2 AND enabled`,
    [organizationId, workflowId],
  );
  return rowCount > 0;
}

export interface NewWebhookDelivery {
  /** The 32-byte HMAC of the delivery (the replay key). */
  signature: Buffer;
  signedAt: Date;
  jobId: string;
}

/**
 * Record an accepted delivery (call in the transaction that enqueues its job).
 * False when the same signature is already recorded: a replay. ON CONFLICT
 * instead of catching the unique violation keeps the transaction usable, and
 * a concurrent identical delivery waits for this one's commit, then conflicts.
 */
export async function createWebhookDelivery(
  tx: Queryable,
  organizationId: string,
  workflowId: string,
  delivery: NewWebhookDelivery,
): Promise<boolean> {
  const { rows } = await tx.query(
    `INSERT INTO stepwise.webhook_deliveries (organization_id, workflow_id, signature, signed_at, job_id)
     VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT ON CONSTRAINT webhook_deliveries_replay_key DO NOTHING
     RETURNING 1 AS inserted`,
    [organizationId, workflowId, delivery.signature, delivery.signedAt.toISOString(), delivery.jobId],
  );
  return rows.length > 0;
}

/** The job an earlier delivery with this signature started (what a replay is told), or null. */
export async function findWebhookDelivery(
  db: Queryable,
  organizationId: string,
  workflowId: string,
  signature: Buffer,
): Promise<{ jobId: string; receivedAt: Date } | null> {
  const { rows } = await db.query<{ job_id: string; received_at: Date }>(
    `SELECT job_id, received_at FROM stepwise.webhook_deliveries
      WHERE organization_id = $1 AND workflow_id = $2 AND signature = $3`,
    [organizationId, workflowId, signature],
  );
  return rows[0] ? { jobId: rows[0].job_id, receivedAt: rows[0].received_at } : null;
}

/** Delete a workflow's deliveries signed before `before` (they can no longer pass the timestamp check). */
export async function deleteWebhookDeliveries(
  db: Queryable,
  organizationId: string,
  workflowId: string,
  before: Date,
): Promise<number> {
  const { rowCount } = await db.query(
    `DELETE FROM stepwise.webhook_deliveries WHERE organization_id = $1 AND workflow_id = $2 AND signed_at < $3`,
    [organizationId, workflowId, before.toISOString()],
  );
  return rowCount;
}

/**
 * A batch of webhook secrets not sealed under `currentKeyId` (in clear, or
 * under an older key), after `afterWorkflowId`, locked for re-sealing.
 * Across all tenants: key rotation is operator code.
 */
export async function findWebhookKeysToReseal(
  db: Queryable,
  currentKeyId: string,
  afterWorkflowId: string | null,
  limit: number,
): Promise<WebhookKey[]> {
  const { rows } = await db.query<KeyRow>(
    `SELECT ${KEY_COLUMNS} FROM stepwise.webhook_triggers
      WHERE (secret IS NOT NULL OR secret_key_id <> $1) AND ($2::uuid IS NULL OR workflow_id > $2::uuid)
      ORDER BY workflow_id LIMIT $3
      FOR UPDATE SKIP LOCKED`,
    [currentKeyId, afterWorkflowId, limit],
  );
  return rows.map(toKey);
}

/** Store re-sealed webhook secrets (clear column emptied), one statement per batch. rotated_at is left alone: the secret itself did not change. */
export async function resealWebhookKeys(db: Queryable, items: readonly { workflowId: string; sealed: SealedSecret }[]): Promise<number> {
  if (items.length === 0) return 0;
  const { rowCount } = await db.query(
    `UPDATE stepwise.webhook_triggers t
        SET secret = NULL, secret_ciphertext = v.ciphertext, secret_iv = v.iv, secret_tag = v.tag, secret_key_id = v.key_id
       FROM unnest($1::uuid[], $2::bytea[], $3::bytea[], $4::bytea[], $5::text[]) AS v (workflow_id, ciphertext, iv, tag, key_id)
      WHERE t.workflow_id = v.workflow_id`,
    [
      items.map((i) => i.workflowId),
      items.map((i) => i.sealed.ciphertext),
      items.map((i) => i.sealed.iv),
      items.map((i) => i.sealed.tag),
      items.map((i) => i.sealed.keyId),
    ],
  );
  return rowCount;
}
