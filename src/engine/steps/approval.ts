import type { StepBase } from '../../model/definition.js';
import { ValidationError } from '../../errors/index.js';
import { ROLES } from '../../security/permissions.js';
import type { Role } from '../../store/api-keys.js';
import { jsonByteLength, truncate } from '../../util/json.js';
import { compileForm } from '../approval-form.js';
import { renderString } from '../definition/expressions.js';
import { LIMITS } from '../limits.js';
import type { ApprovalService, ApprovalState } from '../services.js';
import { durationSchema } from './durations.js';
import { CompletedWithWarning, noChildren, noDirectCredentials, StepError, Suspend, stepTimeout, type StepContext, type StepType } from './types.js';

/** Longest approval title (after its template is rendered); approvals.title is varchar(500). */
export const MAX_APPROVAL_TITLE = 500;
/** Most distinct approvers an approval can require. */
export const MAX_REQUIRED_APPROVERS = 10;

const UUID_PATTERN = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$';

/**
 * A person in the loop: the job waits (WAITING, no worker held) until
 * `required` distinct approvers approve (one reject rejects) through
 * `POST /v1/approvals/:id/decision` or their single-use link, or until
 * `timeoutMs` passes and `onTimeout` decides. Output:
 * `{ decision: "approved" | "rejected", decidedBy: [userIds], values }`.
 */
export interface ApprovalStep extends StepBase {
  type: 'approval';
  /** What is asked; may hold `{{ }}` templates. */
  title: string;
  approvers: {
    /** Users with one of these roles may decide. */
    roles?: Role[];
    /** These users may decide, whatever their role. */
    users?: string[];
    /** The user whose key started the run may not decide (default false). */
    excludeInitiator?: boolean;
  };
  /** Distinct approvals needed (default 1). */
  required?: number;
  /** JSON Schema of the values a decision carries (checked on every decision). */
  form?: Record<string, unknown>;
  /** How long the approval stays open; without it, until decided. */
  timeoutMs?: number;
  /** What a timeout decides (default reject). */
  onTimeout?: 'reject' | 'approve';
  /** What a rejection does: fail the step with APPROVAL_REJECTED (default) or complete it with decision "rejected". */
  onReject?: 'fail' | 'continue';
}

export const approvalStep: StepType<ApprovalStep> = {
  type: 'approval',
  properties: {
    title: { type: 'string', minLength: 1, maxLength: 2_000 },
    approvers: {
      type: 'object',
      additionalProperties: false,
      properties: {
        roles: { type: 'array', uniqueItems: true, maxItems: ROLES.length, items: { enum: [...ROLES] } },
        users: { type: 'array', uniqueItems: true, maxItems: 100, items: { type: 'string', pattern: UUID_PATTERN } },
        excludeInitiator: { type: 'boolean' },
      },
    },
    required: { type: 'integer', minimum: 1, maximum: MAX_REQUIRED_APPROVERS },
    form: { type: 'object' },
    timeoutMs: durationSchema,
    onTimeout: { enum: ['reject', 'approve'] },
    onReject: { enum: ['fail', 'continue'] },
  },
  required: ['title', 'approvers'],
  sources: (step) => ({ templates: { title: step.title } }),
  validate(step, path) {
    const roles = step.approvers.roles ?? [];
    const users = step.approvers.users ?? [];
    if (roles.length === 0 && users.length === 0) {
      throw new ValidationError(`${path}/approvers needs at least one role or user`, { path: `${path}/approvers` });
    }
    const required = step.required ?? 1;
    if (roles.length === 0 && required > users.length) {
      throw new ValidationError(`${path}/required is ${required} but only ${users.length} users may decide`, { path: `${path}/required` });
    }
    if (step.form !== undefined) compileForm(step.form, `${path}/form`);
  },
  credentials: noDirectCredentials,
  children: noChildren,
  block: false,
  attemptTimeoutMs: stepTimeout,
  // It writes only Stepwise's own records, idempotently per (job, step path).
  sideEffects: false,
  abortable: false,
  compensation: false,
  async run(step, ctx) {
    const approvals = ctx.services.approvals;
    if (!approvals) throw new StepError('SERVICE_UNAVAILABLE', 'this worker cannot open approvals (no approval service)');
    const { organizationId } = ctx.job;
    const saved = ctx.resumed?.approvalId;
    const first = typeof saved !== 'string';
    const approvalId = first ? await open(step, ctx, approvals) : saved;
    let reported = !first && typeof ctx.resumed?.reported === 'number' ? ctx.resumed.reported : 0;

    let state = await approvals.find(organizationId, approvalId);
    if (!state) throw new StepError('APPROVAL_MISSING', `approval ${approvalId} no longer exists`, { approvalId });
    reported = reportDecisions(ctx, state, reported);
    if (state.status === 'PENDING' && state.expiresAt !== null && Date.now() >= state.expiresAt.getTime()) {
      state = await approvals.expire(organizationId, approvalId, step.onTimeout === 'approve' ? 'APPROVED' : 'REJECTED');
      // A decision that arrived just before the expiry wins over it.
      reported = reportDecisions(ctx, state, reported);
    }
    if (state.status === 'PENDING') {
      // Until the expiry, or until a decision wakes the job (each decision does, so its row appears promptly).
      const until = state.expiresAt?.getTime() ?? null;
      const waiting = first ? { approvalId, ...(until !== null ? { until: new Date(until).toISOString() } : {}) } : undefined;
      return new Suspend(until, { approvalId, reported }, waiting);
    }
    return conclude(step, ctx, state);
  },
};

/** Open the step's approval (or find the one an earlier run of it opened) and say so in the stream. */
async function open(step: ApprovalStep, ctx: StepContext, approvals: ApprovalService): Promise<string> {
  const title = truncate(await renderString(step.title, ctx.scope, `steps.${step.id}.title`), MAX_APPROVAL_TITLE);
  const roles = step.approvers.roles ?? [];
  const users = step.approvers.users ?? [];
  const required = step.required ?? 1;
  const expiresAt = step.timeoutMs !== undefined ? new Date(Date.now() + step.timeoutMs) : null;
  const { id } = await approvals.open({
    organizationId: ctx.job.organizationId,
    jobId: ctx.job.id,
    stepPath: ctx.path,
    title,
    approvers: { roles, users, excludeInitiator: step.approvers.excludeInitiator === true },
    required,
    form: step.form ?? null,
    expiresAt,
    initiatedBy: ctx.job.initiatedBy,
  });
  ctx.event('APPROVAL_REQUESTED', title, {
    approvalId: id,
    title,
    required,
    approvers: { roles, users, excludeInitiator: step.approvers.excludeInitiator === true },
    expiresAt: expiresAt?.toISOString() ?? null,
  });
  return id;
}

/** One APPROVAL_DECIDED row per decision not reported yet; returns the new count reported. */
function reportDecisions(ctx: StepContext, state: ApprovalState, reported: number): number {
  for (const d of state.decisions.slice(reported)) {
    const decision = d.decision === 'APPROVE' ? 'approve' : 'reject';
    ctx.event('APPROVAL_DECIDED', `${decision === 'approve' ? 'approved' : 'rejected'} by ${d.userId}`, {
      approvalId: state.id,
      userId: d.userId,
      decision,
      comment: d.comment,
      values: bounded(d.values),
      decidedAt: d.decidedAt.toISOString(),
    });
  }
  return Math.max(reported, state.decisions.length);
}

/** Form values in the stream are kept to the size of a log line's data (the decision row keeps them whole). */
function bounded(values: Record<string, unknown> | null): unknown {
  if (values === null) return null;
  const bytes = jsonByteLength(values);
  return bytes <= LIMITS.logDataBytes ? values : { truncated: true, bytes, limit: LIMITS.logDataBytes };
}

/** The step's end once the approval is decided (by its approvers or by its timeout). */
function conclude(step: ApprovalStep, ctx: StepContext, state: ApprovalState): unknown {
  const timedOut = state.status === 'EXPIRED';
  const approved = timedOut ? step.onTimeout === 'approve' : state.status === 'APPROVED';
  const decision = approved ? 'approved' : 'rejected';
  if (timedOut) {
    ctx.event('APPROVAL_DECIDED', `${decision} by timeout`, { approvalId: state.id, userId: null, decision: approved ? 'approve' : 'reject', timedOut: true }, 'WARN');
  }
  const output = { decision, decidedBy: state.decidedBy, values: state.values };
  if (!approved && step.onReject !== 'continue') {
    const reason = timedOut ? `no decision within ${step.timeoutMs} ms (onTimeout: reject)` : `rejected by ${state.decidedBy.join(', ')}`;
    const comment = timedOut ? null : (state.decisions.find((d) => d.decision === 'REJECT')?.comment ?? null);
    throw new StepError('APPROVAL_REJECTED', `approval ${state.id}: ${reason}`, {
      approvalId: state.id,
      decidedBy: state.decidedBy,
      timedOut,
      ...(comment !== null ? { comment } : {}),
    });
  }
  return timedOut ? new CompletedWithWarning(output, { timedOut: true, approvalId: state.id }) : output;
}
