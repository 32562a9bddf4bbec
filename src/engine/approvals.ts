import { randomBytes } from 'node:crypto';
import type { Db, Queryable } from '../db/index.js';
import {
  expireApproval,
  findApproval,
  findEligibleUserIds,
  insertApproval,
  insertApprovalLinks,
  listDecisions,
  type StoredApproval,
  type StoredDecision,
} from '../store/approvals.js';
import { uuidv7 } from '../util/ids.js';
import type { ApprovalRequest, ApprovalService, ApprovalState } from './services.js';

/** Random bytes each link's token is derived over, besides the approval and the user (see security/approval-links.ts). */
const LINK_NONCE_BYTES = 32;

/**
 * The approvals an approval step opens and reads, over the database. Opening
 * is idempotent per (job, step path); the first open also makes one link
 * row per eligible user, whose token an OWNER or ADMIN can later derive and
 * send on. Deciding is the API's side (engine/approval-decisions.ts).
 */
export function approvalService(db: Db): ApprovalService {
  return {
    open: (request) => openApproval(db, request),
    find: (organizationId, approvalId) => approvalState(db, organizationId, approvalId),
    async expire(organizationId, approvalId, outcome) {
      await expireApproval(db, organizationId, approvalId, outcome);
      const state = await approvalState(db, organizationId, approvalId);
      if (!state) throw new Error(`approval ${approvalId} vanished while it was being expired`);
      return state;
    },
  };
}

async function openApproval(db: Db, r: ApprovalRequest): Promise<{ id: string; created: boolean }> {
  return db.transaction(async (tx) => {
    const opened = await insertApproval(tx, {
      id: uuidv7(),
      organizationId: r.organizationId,
      jobId: r.jobId,
      stepPath: r.stepPath,
      title: r.title,
      approverRoles: r.approvers.roles,
      approverUsers: r.approvers.users,
      excludeInitiator: r.approvers.excludeInitiator,
      initiatedBy: r.initiatedBy,
      required: r.required,
      form: r.form,
      expiresAt: r.expiresAt,
    });
    if (opened.created) {
      const userIds = await findEligibleUserIds(tx, r.organizationId, {
        roles: r.approvers.roles,
        users: r.approvers.users,
        excludeUserId: r.approvers.excludeInitiator ? r.initiatedBy : null,
      });
      const links = userIds.map((userId) => ({ userId, nonce: randomBytes(LINK_NONCE_BYTES) }));
      await insertApprovalLinks(tx, r.organizationId, opened.id, r.expiresAt, links);
    }
    return opened;
  });
}

/** An approval as the step sees it, or null when the organization has none by this id. */
export async function approvalState(db: Queryable, organizationId: string, approvalId: string): Promise<ApprovalState | null> {
  const approval = await findApproval(db, organizationId, approvalId);
  if (!approval) return null;
  return toState(approval, await listDecisions(db, organizationId, approvalId));
}

/**
 * The step's view: who made the outcome (the approvers of an APPROVED one,
 * the rejecter of a REJECTED one, nobody for one the timeout decided) and
 * their form values merged in the order they decided.
 */
export function toState(approval: StoredApproval, decisions: readonly StoredDecision[]): ApprovalState {
  const deciding =
    approval.status === 'APPROVED' ? decisions.filter((d) => d.decision === 'APPROVE') : approval.status === 'REJECTED' ? decisions.filter((d) => d.decision === 'REJECT') : [];
  const withValues = deciding.filter((d) => d.values !== null);
  return {
    id: approval.id,
    status: approval.status,
    decidedBy: deciding.map((d) => d.userId),
    values: withValues.length === 0 ? null : Object.assign({}, ...withValues.map((d) => d.values)),
    expiresAt: approval.expiresAt,
    decisions: decisions.map((d) => ({ userId: d.userId, decision: d.decision, comment: d.comment, values: d.values, decidedAt: d.decidedAt })),
  };
}
