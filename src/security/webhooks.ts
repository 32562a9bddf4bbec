import type { Queryable } from '../db/index.js';
import { ConflictError, NotFoundError, UnauthorizedError } from '../errors/index.js';
import {
  createWebhookTrigger,
  disableWebhookTrigger,
  findWebhookKey,
  findWebhookTrigger,
  findWorkflow,
  updateWebhookSecret,
} from '../store/index.js';
import { newSecret, TOLERANCE_SECONDS, verify } from './webhook-signature.js';
import { DecryptError, type KeyRing } from './crypto.js';
import type { StoredWebhookSecret } from '../store/webhooks.js';

export * as webhookSignature from './webhook-signature.js';

/**
 * Webhook secrets (issue, rotate, disable) and delivery authentication.
 * Management is per organization like everything else: another tenant's
 * workflow is 404. A secret is returned once, when issued; afterwards only
 * the store layer reads it, to verify deliveries.
 */

export interface IssuedWebhookSecret {
  /** Path to POST deliveries to (relative to the service's base URL). */
  url: string;
  /** Shown once; send it nowhere but to the sender that signs the deliveries. */
  secret: string;
}

export interface WebhookState {
  enabled: boolean;
  createdAt: Date | null;
  rotatedAt: Date | null;
}

export function webhookPath(workflowId: string): string {
  return `/v1/hooks/${workflowId}`;
}

/** The associated data that binds a sealed webhook secret to its workflow and tenant. */
export function webhookAad(workflowId: string, organizationId: string): string {
  return `webhook:${workflowId}:${organizationId}`;
}

/** Sealed under the key ring when there is one (migration 0010); in clear on a deployment without one. */
function storable(ring: KeyRing | null, secret: string, workflowId: string, organizationId: string): StoredWebhookSecret {
  return ring ? { sealed: ring.seal(Buffer.from(secret, 'utf8'), webhookAad(workflowId, organizationId)) } : { clear: secret };
}

/** The secret to verify with, or null when it is sealed and this process cannot open it. */
function openSecret(ring: KeyRing | null, stored: StoredWebhookSecret, workflowId: string, organizationId: string): string | null {
  if ('clear' in stored) return stored.clear;
  if (!ring) return null;
  try {
    return ring.open(stored.sealed, webhookAad(workflowId, organizationId)).toString('utf8');
  } catch (err) {
    if (err instanceof DecryptError) return null;
    throw err;
  }
}

/** 404 unless the workflow is this organization's and, when `live`, not archived. */
async function checkWorkflow(db: Queryable, organizationId: string, workflowId: string, live: boolean): Promise<void> {
  const wf = await findWorkflow(db, organizationId, workflowId);
  if (!wf || (live && wf.deletedAt)) throw new NotFoundError('workflow', workflowId);
}

/** Enable the workflow's webhook with a new secret; 409 when it is already enabled (rotate instead). */
export async function enableWebhook(
  db: Queryable,
  organizationId: string,
  workflowId: string,
  ring: KeyRing | null = null,
): Promise<IssuedWebhookSecret> {
  await checkWorkflow(db, organizationId, workflowId, true);
  const secret = newSecret();
  const trigger = await createWebhookTrigger(db, organizationId, workflowId, storable(ring, secret, workflowId, organizationId));
  if (!trigger) {
    throw new ConflictError(`the webhook of workflow ${workflowId} is already enabled; rotate its secret to get a new one`, {
      workflowId,
    });
  }
  return { url: webhookPath(workflowId), secret };
}

/** Replace the secret; the old one is refused from now on. 409 when the webhook is not enabled. */
export async function rotateWebhookSecret(
  db: Queryable,
  organizationId: string,
  workflowId: string,
  ring: KeyRing | null = null,
): Promise<IssuedWebhookSecret> {
  await checkWorkflow(db, organizationId, workflowId, true);
  const secret = newSecret();
  if (!(await updateWebhookSecret(db, organizationId, workflowId, storable(ring, secret, workflowId, organizationId)))) {
    throw new ConflictError(`the webhook of workflow ${workflowId} is not enabled; enable it first`, { workflowId });
  }
  return { url: webhookPath(workflowId), secret };
}

/** Stop accepting deliveries. 409 when the webhook is not enabled. */
export async function disableWebhook(db: Queryable, organizationId: string, workflowId: string): Promise<void> {
  await checkWorkflow(db, organizationId, workflowId, false);
  if (!(await disableWebhookTrigger(db, organizationId, workflowId))) {
    throw new ConflictError(`the webhook of workflow ${workflowId} is not enabled`, { workflowId });
  }
}

/** Whether the webhook is enabled and when it was created and last re-keyed (never the secret). */
export async function describeWebhook(db: Queryable, organizationId: string, workflowId: string): Promise<WebhookState> {
  await checkWorkflow(db, organizationId, workflowId, false);
  const trigger = await findWebhookTrigger(db, organizationId, workflowId);
  return { enabled: trigger?.enabled ?? false, createdAt: trigger?.createdAt ?? null, rotatedAt: trigger?.rotatedAt ?? null };
}

export interface AuthenticatedDelivery {
  organizationId: string;
  workflowId: string;
  /** The delivery's HMAC: its replay key. */
  signature: Buffer;
  signedAt: Date;
}

/** One message for an unknown workflow, a disabled webhook and a wrong signature: none may be told apart. */
export const INVALID_WEBHOOK_SIGNATURE =
  'invalid webhook signature; send Stepwise-Timestamp: <unix seconds> and ' +
  'Stepwise-Signature: v1=<hex HMAC-SHA256 of "<timestamp>.<raw body>" under the webhook secret>';

/**
 * Authenticate a delivery to `workflowId`. An unknown workflow or a disabled
 * webhook is checked against a throwaway secret, so it costs the same HMAC
 * over the body as a real one and fails with the same error as a wrong
 * signature. Malformed headers and a stale timestamp are reported as such:
 * they are judged on the headers and the clock alone, so saying so reveals
 * nothing about the workflow.
 */
export async function authenticateWebhookDelivery(
  db: Queryable,
  workflowId: string,
  headers: { timestamp: string | undefined; signature: string | undefined },
  rawBody: Buffer,
  nowMs: number = Date.now(),
  ring: KeyRing | null = null,
): Promise<AuthenticatedDelivery> {
  const key = await findWebhookKey(db, workflowId);
  // A secret this process cannot open counts as no secret: refused like a wrong signature.
  const secret = key && key.enabled ? openSecret(ring, key.secret, key.workflowId, key.organizationId) : null;
  const usable = key !== null && secret !== null;
  const verdict = verify(secret ?? newSecret(), headers.timestamp, headers.signature, rawBody, nowMs);
  if (!verdict.ok) {
    if (verdict.reason === 'STALE') {
      throw new UnauthorizedError(
        `Stepwise-Timestamp is outside the ${TOLERANCE_SECONDS / 60}-minute window around the server's clock; sign with the current time`,
        { path: '/headers/stepwise-timestamp', serverTime: Math.floor(nowMs / 1000), toleranceSeconds: TOLERANCE_SECONDS },
      );
    }
    if (verdict.reason === 'MALFORMED') {
      throw new UnauthorizedError(
        'missing or malformed webhook signature headers; send Stepwise-Timestamp: <unix seconds> and Stepwise-Signature: v1=<64 hex digits>',
        { path: '/headers' },
      );
    }
    throw new UnauthorizedError(INVALID_WEBHOOK_SIGNATURE);
  }
  if (!usable) throw new UnauthorizedError(INVALID_WEBHOOK_SIGNATURE);
  return { organizationId: key.organizationId, workflowId, signature: verdict.digest, signedAt: new Date(verdict.timestamp * 1000) };
}
