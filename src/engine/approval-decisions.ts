import type { Db, Queryable } from '../db/index.js';
import { withTenant } from '../db/tenant.js';
import { ConflictError, ForbiddenError, GoneError, NotFoundError } from '../errors/index.js';
import { hashLinkToken, isLinkToken } from '../security/approval-links.js';
import {
  closeApproval,
  countApproves,
  findApproval,
  findLinkByTokenHash,
  insertDecision,
  lockApproval,
  markLinkUsed,
  type StoredApproval,
  type StoredLink,
} from '../store/approvals.js';
import type { Role } from '../store/api-keys.js';
import { findUser } from '../store/users.js';
import { TERMINAL_STATUSES } from '../store/jobs.js';
import { wakeJob } from '../store/signals.js';
import { uuidv7 } from '../util/ids.js';
import { checkFormValues } from './approval-form.js';

export type DecisionVerb = 'approve' | 'reject';

/** A decision as the API receives it. */
export interface DecisionInput {
  decision: DecisionVerb;
  comment?: string | undefined;
  /** Must match the approval's form. */
  values?: Record<string, unknown> | undefined;
}

/** Who decides, and how the decision arrived (audited with it). */
export interface Decider {
  userId: string;
  /** Their role now: an API key's effective role, or the link user's role. */
  role: Role;
  via: 'API' | 'LINK';
  apiKeyId: string | null;
}

/**
 * Refuse a user the approval does not address (403): neither their role nor
 * their id is listed, or they started the run and the approval excludes the
 * initiator.
 */
export function assertMayDecide(approval: StoredApproval, userId: string, role: Role): void {
  if (!approval.approverRoles.includes(role) && !approval.approverUsers.includes(userId)) {
    const roles = approval.approverRoles.length > 0 ? `roles ${approval.approverRoles.join(', ')}` : 'no role';
    throw new ForbiddenError(`this approval may be decided by ${roles} and by listed users; this caller acts as ${role} and is not listed`, {
      role,
      approverRoles: approval.approverRoles,
    });
  }
  if (approval.excludeInitiator && approval.initiatedBy === userId) {
    throw new ForbiddenError('the user who started the run may not decide this approval', { reason: 'INITIATOR_EXCLUDED' });
  }
}

/**
 * Decide an approval (inside a transaction, e.g. the request's). In order:
 * the approval must exist in the organization (404), address the decider
 * (403), still be open — not decided, not past its expiry, its job not ended
 * (409) — and the values must match its form (400 naming the field). The
 * decision is then recorded once per user (a second one is 409, so the same
 * person cannot count twice), a reject closes the approval REJECTED, the
 * `required`-th distinct approve closes it APPROVED, and the job is woken to
 * report the decision in its stream (and go on when it is closed).
 */
export async function decideApproval(tx: Queryable, organizationId: string, approvalId: string, decider: Decider, input: DecisionInput): Promise<StoredApproval> {
  const approval = await lockApproval(tx, organizationId, approvalId);
  if (!approval) throw new NotFoundError('approval', approvalId);
  assertMayDecide(approval, decider.userId, decider.role);
  if (approval.status !== 'PENDING') {
    throw new ConflictError(`approval ${approvalId} is already ${approval.status}`, { status: approval.status });
  }
  if (approval.expired) {
    throw new ConflictError(`approval ${approvalId} expired at ${approval.expiresAt!.toISOString()}; its timeout decides it`, { status: 'EXPIRED' });
  }
  if (TERMINAL_STATUSES.includes(approval.job.status)) {
    throw new ConflictError(`job ${approval.jobId} has ended (${approval.job.status}); its approval can no longer be decided`, { jobStatus: approval.job.status });
  }
  // Values are checked on approve (the form says what an approval needs), and on reject only when sent.
  if (input.decision === 'approve' || input.values !== undefined) checkFormValues(approval.form, input.values ?? {}, '/body/values');
  const recorded = await insertDecision(tx, {
    id: uuidv7(),
    organizationId,
    approvalId,
    userId: decider.userId,
    decision: input.decision === 'approve' ? 'APPROVE' : 'REJECT',
    comment: input.comment ?? null,
    values: input.values ?? null,
    via: decider.via,
    apiKeyId: decider.apiKeyId,
  });
  if (!recorded) throw new ConflictError(`user ${decider.userId} has already decided approval ${approvalId}`, { userId: decider.userId });
  if (input.decision === 'reject') await closeApproval(tx, organizationId, approvalId, 'REJECTED');
  else if ((await countApproves(tx, organizationId, approvalId)) >= approval.required) await closeApproval(tx, organizationId, approvalId, 'APPROVED');
  await wakeJob(tx, approval.jobId);
  return (await findApproval(tx, organizationId, approvalId))!;
}

/**
 * The usable link a token names: 404 for a token that names none (the
 * shape is checked before any lookup), 410 once it was used or expired.
 * Found across organizations (the token is the credential); `lock` holds
 * the row, so a link is spent once however many requests race.
 */
async function usableLink(db: Queryable, token: string, opts: { organizationId?: string; lock?: boolean } = {}): Promise<StoredLink> {
  const link = isLinkToken(token) ? await findLinkByTokenHash(db, hashLinkToken(token), opts) : null;
  if (!link) throw new NotFoundError('approval link', 'for this token');
  if (link.usedAt !== null) throw new GoneError('this approval link has been used', { usedAt: link.usedAt.toISOString() });
  if (link.expired) throw new GoneError('this approval link has expired', { expiresAt: link.expiresAt?.toISOString() ?? null });
  return link;
}

/** What a link shows its holder: the approval it asks about. 404/410 as usableLink. */
export async function describeLink(db: Db, token: string): Promise<StoredApproval> {
  const link = await usableLink(db, token);
  return withTenant(db, link.organizationId, async (tx) => {
    const approval = await findApproval(tx, link.organizationId, link.approvalId);
    if (!approval) throw new NotFoundError('approval link', 'for this token');
    return approval;
  });
}

/**
 * Decide through a link, as the user it was made for: the link is spent in
 * the same transaction as the decision, which runs as the link's tenant.
 * The user must still be active and still addressed by the approval (their
 * role may have changed since the link was made).
 */
export async function decideByLink(db: Db, token: string, input: DecisionInput): Promise<StoredApproval> {
  const found = await usableLink(db, token);
  const organizationId = found.organizationId;
  return withTenant(db, organizationId, async (tx) => {
    const link = await usableLink(tx, token, { organizationId, lock: true });
    const user = await findUser(tx, organizationId, link.userId);
    if (!user || user.disabledAt !== null) throw new ForbiddenError('the user this link was made for can no longer decide', { reason: 'USER_INACTIVE' });
    const approval = await decideApproval(tx, organizationId, link.approvalId, { userId: user.id, role: user.role, via: 'LINK', apiKeyId: null }, input);
    await markLinkUsed(tx, organizationId, link.approvalId, link.userId);
    return approval;
  });
}
