import type { Db } from '../db/index.js';
import { ConflictError, NotFoundError, PayloadTooLargeError } from '../errors/index.js';
import type { AuthenticatedDelivery } from '../security/webhooks.js';
import { TOLERANCE_SECONDS } from '../security/webhook-signature.js';
import {
  createWebhookDelivery,
  deleteWebhookDeliveries,
  enqueueJobs,
  findWebhookDelivery,
  findWorkflow,
  type EnqueuedJob,
} from '../store/index.js';
import { jsonByteLength } from '../util/json.js';
import { jobSettings, MAX_INPUT_BYTES } from './service.js';

/**
 * Deliveries signed this long before now can never pass the timestamp check
 * again, so their replay rows can go. The extra minute covers several API
 * processes whose clocks disagree a little: another one may still accept a
 * timestamp this one already considers stale.
 */
const PRUNE_AFTER_MS = (TOLERANCE_SECONDS + 60) * 1000;

/**
 * Thrown inside the transaction to roll it back; never escapes this module.
 * A StepwiseError, so the Db adapters pass it through unchanged (they map
 * anything else to DatabaseError).
 */
class Replay extends ConflictError {}

function replayError(jobId: string | undefined): ConflictError {
  return new ConflictError('this delivery was already received (same timestamp, body and signature): replay refused', {
    reason: 'REPLAY',
    ...(jobId ? { jobId } : {}),
  });
}

/**
 * Start the run an authenticated delivery asks for. The workflow checks are
 * the ones startRuns makes (archived → 404, not ACTIVE → 409); the job and
 * the delivery's replay row are written in ONE transaction, so a replay
 * never enqueues and an accepted delivery always has its job. A replay (the
 * same signature again) is 409 with `details.reason = 'REPLAY'` and the job
 * the first delivery started, so a sender that retried after a lost response
 * can tell its event was taken.
 */
export async function startWebhookRun(
  db: Db,
  delivery: AuthenticatedDelivery,
  input: unknown,
  nowMs: number = Date.now(),
): Promise<EnqueuedJob> {
  const { organizationId, workflowId } = delivery;
  const bytes = jsonByteLength(input);
  if (bytes > MAX_INPUT_BYTES) throw new PayloadTooLargeError('/body', bytes, MAX_INPUT_BYTES);
  const workflow = await findWorkflow(db, organizationId, workflowId);
  if (!workflow || workflow.deletedAt) throw new NotFoundError('workflow', workflowId);
  if (workflow.status !== 'ACTIVE') {
    throw new ConflictError(`workflow ${workflowId} is ${workflow.status}; only ACTIVE workflows can run`, {
      status: workflow.status,
    });
  }
  // Cheap early answer for the common replay, before taking the organization's
  // run counter lock; the insert below stays the guard against concurrent twins.
  const seen = await findWebhookDelivery(db, organizationId, workflowId, delivery.signature);
  if (seen) throw replayError(seen.jobId);
  try {
    return await db.transaction(async (tx) => {
      const [enqueued] = await enqueueJobs(
        tx,
        organizationId,
        jobSettings(workflow.id, workflow.version, workflow.definition),
        [{ input, initiatorType: 'WEBHOOK' }],
      );
      const recorded = await createWebhookDelivery(tx, organizationId, workflowId, {
        signature: delivery.signature,
        signedAt: delivery.signedAt,
        jobId: enqueued!.id,
      });
      // Throwing rolls the job just enqueued back with the rest of the transaction.
      if (!recorded) throw new Replay('replay');
      await deleteWebhookDeliveries(tx, organizationId, workflowId, new Date(nowMs - PRUNE_AFTER_MS));
      return enqueued!;
    });
  } catch (err) {
    if (!(err instanceof Replay)) throw err;
  }
  throw replayError((await findWebhookDelivery(db, organizationId, workflowId, delivery.signature))?.jobId);
}
