import type { Queryable } from '../db/index.js';

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
  secret: string;
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
  secret: string;
  enabled: boolean;
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
  return { workflowId: row.workflow_id, organizationId: row.organization_id, secret: row.secret, enabled: row.enabled };
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
    `SELECT workflow_id, organization_id, secret, enabled FROM stepwise.webhook_triggers WHERE workflow_id = $1`,
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
  secret: string,
): Promise<WebhookTrigger | null> {
  const { rows } = await db.query<TriggerRow>(
    `INSERT INTO stepwise.webhook_triggers AS t (workflow_id, organization_id, secret)
     VALUES ($2, $1, $3)
     ON CONFLICT (workflow_id) DO UPDATE
        SET secret = EXCLUDED.secret, enabled = true, rotated_at = now()
      WHERE t.organization_id = $1 AND NOT t.enabled
     RETURNING ${TRIGGER_COLUMNS}`,
    [organizationId, workflowId, secret],
  );
  return rows[0] ? toTrigger(rows[0]) : null;
}

/** Replace the secret of an enabled trigger; null when there is none. The old secret stops working at commit. */
export async function updateWebhookSecret(
  db: Queryable,
  organizationId: string,
  workflowId: string,
  secret: string,
): Promise<WebhookTrigger | null> {
  const { rows } = await db.query<TriggerRow>(
    `UPDATE stepwise.webhook_triggers SET secret = $3, rotated_at = now()
      WHERE organization_id = $1 AND workflow_id = $2 AND enabled
      RETURNING ${TRIGGER_COLUMNS}`,
    [organizationId, workflowId, secret],
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
