import type { Db } from '../db/index.js';
import { findCredentialsToReseal, resealCredentials } from '../store/credentials.js';
import { findWebhookKeysToReseal, resealWebhookKeys } from '../store/webhooks.js';
import { uuidv7 } from '../util/ids.js';
import { DecryptError, type KeyRing } from './crypto.js';
import { credentialAad } from './credentials.js';
import { webhookAad } from './webhooks.js';

/**
 * `stepwise keys rotate`: re-seal every credential and webhook secret under
 * the ring's newest key, in batches of `batchSize`, each batch its own
 * transaction (rows locked with SKIP LOCKED, so two rotations share the work
 * instead of colliding). Killed half-way, the batches already committed stay
 * re-sealed and the next run takes only what is left: it converges. Rows
 * whose key is no longer in the ring cannot be opened; they are skipped and
 * reported, never overwritten.
 */
export interface RotationResult {
  credentials: number;
  webhooks: number;
  /** Ids of rows that could not be opened with this ring (key missing or tampered). */
  unreadable: { credentials: string[]; webhooks: string[] };
}

export interface RotationOptions {
  batchSize?: number;
  /** Called after each committed batch (progress; tests use it to stop half-way). */
  onBatch?: (done: { credentials: number; webhooks: number }) => void;
}

export async function rotateKeys(db: Db, ring: KeyRing, opts: RotationOptions = {}): Promise<RotationResult> {
  const batchSize = opts.batchSize ?? 100;
  const result: RotationResult = { credentials: 0, webhooks: 0, unreadable: { credentials: [], webhooks: [] } };
  const progress = () => opts.onBatch?.({ credentials: result.credentials, webhooks: result.webhooks });

  let after: string | null = null;
  for (;;) {
    const batch = await db.transaction(async (tx) => {
      const rows = await findCredentialsToReseal(tx, ring.currentKeyId, after, batchSize);
      const items: { id: string; sealed: ReturnType<KeyRing['seal']>; auditId: string }[] = [];
      for (const row of rows) {
        const aad = credentialAad(row.id, row.organizationId);
        try {
          items.push({ id: row.id, sealed: ring.seal(ring.open(row.sealed, aad), aad), auditId: uuidv7() });
        } catch (err) {
          if (!(err instanceof DecryptError)) throw err;
          result.unreadable.credentials.push(row.id);
        }
      }
      result.credentials += await resealCredentials(tx, items, { actor: 'cli:keys-rotate' });
      return rows;
    });
    if (batch.length === 0) break;
    after = batch[batch.length - 1]!.id;
    progress();
  }

  let afterWorkflow: string | null = null;
  for (;;) {
    const batch = await db.transaction(async (tx) => {
      const rows = await findWebhookKeysToReseal(tx, ring.currentKeyId, afterWorkflow, batchSize);
      const items: { workflowId: string; sealed: ReturnType<KeyRing['seal']> }[] = [];
      for (const row of rows) {
        const aad = webhookAad(row.workflowId, row.organizationId);
        try {
          const plain = 'clear' in row.secret ? Buffer.from(row.secret.clear, 'utf8') : ring.open(row.secret.sealed, aad);
          items.push({ workflowId: row.workflowId, sealed: ring.seal(plain, aad) });
        } catch (err) {
          if (!(err instanceof DecryptError)) throw err;
          result.unreadable.webhooks.push(row.workflowId);
        }
      }
      result.webhooks += await resealWebhookKeys(tx, items);
      return rows;
    });
    if (batch.length === 0) break;
    afterWorkflow = batch[batch.length - 1]!.workflowId;
    progress();
  }
  return result;
}
