import { describe, expect, it } from 'vitest';
import type { ApprovalDecision, ApprovalRequest, ApprovalService, ApprovalState } from '../../src/engine/services.js';
import { approvalStep, type ApprovalStep } from '../../src/engine/steps/approval.js';
import { CompletedWithWarning, StepError, Suspend, type StepContext } from '../../src/engine/steps/types.js';
import { ValidationError } from '../../src/errors/index.js';

/** An in-memory approval service: one approval, decided by the test. */
class FakeApprovals implements ApprovalService {
  opened: ApprovalRequest[] = [];
  expired: string[] = [];
  state: ApprovalState = { id: 'a1', status: 'PENDING', decidedBy: [], values: null, expiresAt: null, decisions: [] };
  async open(request: ApprovalRequest) {
    this.opened.push(request);
    this.state = { ...this.state, expiresAt: request.expiresAt };
    return { id: 'a1', created: this.opened.length === 1 };
  }
  async find() {
    return this.state;
  }
  async expire(_org: string, _id: string, outcome: 'APPROVED' | 'REJECTED') {
    this.expired.push(outcome);
    if (this.state.status === 'PENDING') this.state = { ...this.state, status: 'EXPIRED' };
    return this.state;
  }
}

function decision(userId: string, kind: 'APPROVE' | 'REJECT', values: Record<string, unknown> | null = null): ApprovalDecision {
  return { userId, decision: kind, comment: null, values, decidedAt: new Date('2026-01-01T00:00:00Z') };
}

function context(approvals: ApprovalService | undefined, resumed?: Record<string, unknown>) {
  const events: { kind: string; message: string; data?: Record<string, unknown>; level?: string }[] = [];
  const ctx = {
    scope: { input: { amount: 42 }, steps: {} },
    resumed,
    path: 'inv[3].ok',
    job: { id: 'j1', organizationId: 'o1', workflowId: 'w1', runNumber: 7, depth: 0, initiatedBy: 'u-initiator' },
    services: { approvals },
    event: (kind: string, message: string, data?: Record<string, unknown>, level?: string) => events.push({ kind, message, ...(data ? { data } : {}), ...(level ? { level } : {}) }),
  } as unknown as StepContext;
  return { ctx, events };
}

const step: ApprovalStep = {
  id: 'ok',
  type: 'approval',
  title: 'Refund {{ input.amount }} USD',
  approvers: { roles: ['ADMIN', 'OWNER'], users: [], excludeInitiator: true },
  required: 2,
  timeoutMs: 60_000,
};

describe('the approval step', () => {
  it('opens one approval for its job and path, says so, and suspends until the expiry', async () => {
    const fake = new FakeApprovals();
    const { ctx, events } = context(fake);
    const before = Date.now();
    const out = await approvalStep.run(step, ctx);
    expect(out).toBeInstanceOf(Suspend);
    const suspend = out as Suspend;
    expect(fake.opened).toEqual([
      {
        organizationId: 'o1',
        jobId: 'j1',
        stepPath: 'inv[3].ok',
        title: 'Refund 42 USD',
        approvers: { roles: ['ADMIN', 'OWNER'], users: [], excludeInitiator: true },
        required: 2,
        form: null,
        expiresAt: expect.any(Date),
        initiatedBy: 'u-initiator',
      },
    ]);
    expect(suspend.until).toBeGreaterThanOrEqual(before + 60_000);
    expect(suspend.state).toEqual({ approvalId: 'a1', reported: 0 });
    expect(suspend.waiting).toMatchObject({ approvalId: 'a1', until: expect.any(String) });
    expect(events.map((e) => e.kind)).toEqual(['APPROVAL_REQUESTED']);
  });

  it('reports each decision once, and waits on without a second WAITING row until the quorum', async () => {
    const fake = new FakeApprovals();
    fake.state = { ...fake.state, decisions: [decision('u1', 'APPROVE')] };
    const first = context(fake, { approvalId: 'a1', reported: 0 });
    const out = (await approvalStep.run(step, first.ctx)) as Suspend;
    expect(out.state).toEqual({ approvalId: 'a1', reported: 1 });
    expect(out.waiting).toBeUndefined();
    expect(out.until).toBeNull();
    expect(first.events).toEqual([{ kind: 'APPROVAL_DECIDED', message: 'approved by u1', data: expect.objectContaining({ userId: 'u1', decision: 'approve' }) }]);

    fake.state = { ...fake.state, status: 'APPROVED', decidedBy: ['u1', 'u2'], values: { note: 'ok' }, decisions: [decision('u1', 'APPROVE'), decision('u2', 'APPROVE', { note: 'ok' })] };
    const second = context(fake, { approvalId: 'a1', reported: 1 });
    expect(await approvalStep.run(step, second.ctx)).toEqual({ decision: 'approved', decidedBy: ['u1', 'u2'], values: { note: 'ok' } });
    expect(second.events.map((e) => e.data?.userId)).toEqual(['u2']);
    expect(fake.opened).toEqual([]);
  });

  it('a reject fails with APPROVAL_REJECTED, or completes rejected with onReject continue', async () => {
    const fake = new FakeApprovals();
    fake.state = { ...fake.state, status: 'REJECTED', decidedBy: ['u3'], decisions: [{ ...decision('u3', 'REJECT'), comment: 'no' }] };
    const failed = await approvalStep.run(step, context(fake, { approvalId: 'a1', reported: 1 }).ctx).catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(StepError);
    expect(failed).toMatchObject({ code: 'APPROVAL_REJECTED', data: { approvalId: 'a1', decidedBy: ['u3'], timedOut: false, comment: 'no' } });
    expect(await approvalStep.run({ ...step, onReject: 'continue' }, context(fake, { approvalId: 'a1', reported: 1 }).ctx)).toEqual({
      decision: 'rejected',
      decidedBy: ['u3'],
      values: null,
    });
  });

  it('past its expiry it asks the service to close it with onTimeout, and completes with a warning', async () => {
    const fake = new FakeApprovals();
    fake.state = { ...fake.state, expiresAt: new Date(Date.now() - 1) };
    const { ctx, events } = context(fake, { approvalId: 'a1', reported: 0 });
    const out = await approvalStep.run({ ...step, onTimeout: 'approve' }, ctx);
    expect(fake.expired).toEqual(['APPROVED']);
    expect(out).toBeInstanceOf(CompletedWithWarning);
    expect((out as CompletedWithWarning).output).toEqual({ decision: 'approved', decidedBy: [], values: null });
    expect(events).toEqual([expect.objectContaining({ kind: 'APPROVAL_DECIDED', level: 'WARN', data: expect.objectContaining({ timedOut: true }) })]);

    const rejecting = new FakeApprovals();
    rejecting.state = { ...rejecting.state, expiresAt: new Date(Date.now() - 1) };
    const err = await approvalStep.run(step, context(rejecting, { approvalId: 'a1', reported: 0 }).ctx).catch((e: unknown) => e);
    expect(rejecting.expired).toEqual(['REJECTED']);
    expect(err).toMatchObject({ code: 'APPROVAL_REJECTED', data: { timedOut: true } });
  });

  it('fails SERVICE_UNAVAILABLE on a worker without the approval service', async () => {
    await expect(approvalStep.run(step, context(undefined).ctx)).rejects.toMatchObject({ code: 'SERVICE_UNAVAILABLE' });
  });

  it('validates what its schema cannot: someone may decide, the quorum is reachable, the form compiles', () => {
    const check = (s: Partial<ApprovalStep>) => () => approvalStep.validate({ ...step, ...s }, '/definition/steps/0');
    expect(check({ approvers: { roles: [], users: [] } })).toThrow(ValidationError);
    expect(check({ approvers: { users: ['0190a1b2-0000-7000-8000-000000000001'] }, required: 2 })).toThrow(/required is 2 but only 1 users/);
    expect(check({ form: { type: 'object', properties: { a: { type: 'nope' } } } })).toThrow(/\/definition\/steps\/0\/form/);
    expect(check({ form: { type: 'object', properties: { a: { type: 'string', unknownKeyword: 1 } } } })).toThrow(/\/definition\/steps\/0\/form/);
    expect(check({ form: { type: 'object', required: ['note'], properties: { note: { type: 'string', format: 'email' } } } })).not.toThrow();
  });
});
