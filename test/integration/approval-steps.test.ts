import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Worker } from '../../src/engine/index.js';
import { generateKeyEntry, parseKeyRing } from '../../src/security/crypto.js';
import { findJob, listStream, type Job, type Role } from '../../src/store/index.js';
import { createTestDb, type TestDb } from '../helpers/db.js';
import { seedOrg, startWorker, waitForJob, waitForStatus as waitForStatusOf } from '../helpers/fixtures.js';
import { seedRoleKeys } from '../helpers/roles.js';
import { client, createTestApp, expectError, type ApiClient, type Json } from '../helpers/api.js';

/**
 * The approval step end to end: a running worker, runs started by a
 * MEMBER's key through the API, decisions through the API and links.
 */
let t: TestDb;
let app: FastifyInstance;
let worker: Worker;
let orgId: string;
let users: Record<Role, { userId: string; key: string }>;
let as: Record<Role, ApiClient>;
let n = 0;

beforeAll(async () => {
  t = await createTestDb();
  app = await createTestApp(t.db, undefined, { keyRing: parseKeyRing(generateKeyEntry()), rateLimit: { perSecond: 0, burst: 1 } });
  orgId = (await seedOrg(t.db, 'Refunds')).organizationId;
  users = await seedRoleKeys(t.db, orgId);
  as = { VIEWER: client(app, users.VIEWER.key), MEMBER: client(app, users.MEMBER.key), ADMIN: client(app, users.ADMIN.key), OWNER: client(app, users.OWNER.key) };
  worker = startWorker(t.db, { pollIntervalMs: 50 });
});

afterAll(async () => {
  await worker?.stop();
  await app?.close();
  await t?.close();
});

/** The approval step of the issue, with overrides. */
function approvalStep(overrides: Json = {}): Json {
  return {
    id: 'ok',
    type: 'approval',
    title: 'Refund {{ input.amount }} USD',
    approvers: { roles: ['ADMIN', 'OWNER'], users: [], excludeInitiator: true },
    required: 1,
    form: { type: 'object', properties: { note: { type: 'string' } } },
    timeoutMs: 259200000,
    onTimeout: 'reject',
    onReject: 'fail',
    ...overrides,
  };
}

/** Define a workflow and start a run of it with the MEMBER's key (the run's initiator). */
async function startRun(steps: Json[], input: Json = { amount: 42 }): Promise<string> {
  const wf = await as.ADMIN.post('/v1/workflows', { name: `refund-${++n}`, definition: { steps } });
  expect(wf.status, JSON.stringify(wf.body)).toBe(201);
  const run = await as.MEMBER.post(`/v1/workflows/${wf.body.id}/runs`, { input });
  expect(run.status, JSON.stringify(run.body)).toBe(202);
  return run.body.jobId;
}

function waitForStatus(jobId: string, status: string): Promise<Job> {
  return waitForStatusOf(t.db, orgId, jobId, status, 15_000);
}

/** The job's pending approvals as ADMIN lists them. */
async function pendingFor(jobId: string, api: ApiClient = as.ADMIN): Promise<Json[]> {
  const res = await api.get('/v1/approvals?status=pending');
  expect(res.status).toBe(200);
  return res.body.items.filter((a: Json) => a.job.id === jobId);
}

/** Wait until the job has opened its approvals and sleeps. */
async function waitingApprovals(jobId: string, count = 1): Promise<Json[]> {
  await waitForStatus(jobId, 'WAITING');
  const deadline = Date.now() + 10_000;
  for (;;) {
    const found = await pendingFor(jobId);
    if (found.length >= count) return found;
    if (Date.now() > deadline) throw new Error(`job ${jobId} has ${found.length} pending approvals, expected ${count}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function streamOf(jobId: string) {
  const job = (await findJob(t.db, orgId, jobId))!;
  return listStream(t.db, orgId, job, { limit: 1000 });
}

describe('an approval step in a running workflow', () => {
  it('goes WAITING without holding a worker; a decision through the API wakes it and it completes with the decision', async () => {
    const jobId = await startRun([approvalStep(), { id: 'after', type: 'transform', expression: '{ "refund": steps.ok }' }]);
    const [approval] = await waitingApprovals(jobId);
    expect(worker.activeCount).toBe(0);
    expect(approval).toMatchObject({ title: 'Refund 42 USD', status: 'pending', stepPath: 'ok', workflow: { name: `refund-${n}` } });
    // The MEMBER started it: not theirs to decide (role not listed, and excluded as the initiator).
    expectError(await as.MEMBER.post(`/v1/approvals/${approval.id}/decision`, { decision: 'approve' }), 403, 'FORBIDDEN');
    const decided = await as.ADMIN.post(`/v1/approvals/${approval.id}/decision`, { decision: 'approve', comment: 'ok', values: { note: 'refund approved' } });
    expect(decided.status, JSON.stringify(decided.body)).toBe(200);
    const job = await waitForJob(t.db, orgId, jobId);
    expect(job.status).toBe('COMPLETED');
    const output = { decision: 'approved', decidedBy: [users.ADMIN.userId], values: { note: 'refund approved' } };
    expect(job.result).toEqual({ refund: output });
    const stream = await streamOf(jobId);
    const kinds = stream.map((s) => s.kind);
    expect(kinds.indexOf('APPROVAL_REQUESTED')).toBeLessThan(kinds.indexOf('WAITING'));
    expect(kinds.indexOf('WAITING')).toBeLessThan(kinds.indexOf('APPROVAL_DECIDED'));
    expect(kinds.filter((k) => k === 'APPROVAL_DECIDED')).toHaveLength(1);
    const requested = stream.find((s) => s.kind === 'APPROVAL_REQUESTED')!;
    expect(requested.data).toMatchObject({ approvalId: approval.id, title: 'Refund 42 USD', required: 1, approvers: { roles: ['ADMIN', 'OWNER'] } });
    const decidedRow = stream.find((s) => s.kind === 'APPROVAL_DECIDED')!;
    expect(decidedRow.data).toMatchObject({ approvalId: approval.id, userId: users.ADMIN.userId, decision: 'approve', comment: 'ok', values: { note: 'refund approved' } });
    expect(JSON.stringify(stream)).not.toContain('swl_');
    // 409 once decided.
    expectError(await as.OWNER.post(`/v1/approvals/${approval.id}/decision`, { decision: 'reject' }), 409, 'CONFLICT');
  });

  it('quorum: with required 2 the first approve is reported and the job waits on; the second distinct approver completes it', async () => {
    const jobId = await startRun([approvalStep({ required: 2, form: undefined })]);
    const [approval] = await waitingApprovals(jobId);
    expect((await as.ADMIN.post(`/v1/approvals/${approval.id}/decision`, { decision: 'approve' })).body.status).toBe('pending');
    // The decision woke the job: it reports it and sleeps again.
    const deadline = Date.now() + 10_000;
    while ((await streamOf(jobId)).filter((s) => s.kind === 'APPROVAL_DECIDED').length < 1) {
      if (Date.now() > deadline) throw new Error('the first decision was never reported');
      await new Promise((r) => setTimeout(r, 20));
    }
    await waitForStatus(jobId, 'WAITING');
    expectError(await as.ADMIN.post(`/v1/approvals/${approval.id}/decision`, { decision: 'approve' }), 409, 'CONFLICT');
    expect((await as.OWNER.post(`/v1/approvals/${approval.id}/decision`, { decision: 'approve' })).body.status).toBe('approved');
    const job = await waitForJob(t.db, orgId, jobId);
    expect(job).toMatchObject({ status: 'COMPLETED', result: { decision: 'approved', decidedBy: [users.ADMIN.userId, users.OWNER.userId], values: null } });
    const stream = await streamOf(jobId);
    expect(stream.filter((s) => s.kind === 'APPROVAL_DECIDED').map((s) => (s.data as Json).userId)).toEqual([users.ADMIN.userId, users.OWNER.userId]);
    expect(stream.filter((s) => s.kind === 'APPROVAL_REQUESTED')).toHaveLength(1);
    expect(stream.filter((s) => s.kind === 'WAITING')).toHaveLength(1);
  });

  it('onReject fail: a reject fails the job with APPROVAL_REJECTED', async () => {
    const jobId = await startRun([approvalStep(), { id: 'after', type: 'noop' }]);
    const [approval] = await waitingApprovals(jobId);
    expect((await as.OWNER.post(`/v1/approvals/${approval.id}/decision`, { decision: 'reject', comment: 'not this time' })).body.status).toBe('rejected');
    const job = await waitForJob(t.db, orgId, jobId);
    expect(job).toMatchObject({ status: 'FAILED', errorCode: 'APPROVAL_REJECTED' });
    const decidedRow = (await streamOf(jobId)).find((s) => s.kind === 'APPROVAL_DECIDED')!;
    expect(decidedRow.data).toMatchObject({ userId: users.OWNER.userId, decision: 'reject', comment: 'not this time' });
  });

  it('onReject continue: a reject completes the step with decision "rejected"', async () => {
    const jobId = await startRun([approvalStep({ onReject: 'continue' }), { id: 'after', type: 'transform', expression: 'steps.ok.decision = "rejected" ? "skipped refund" : "refunded"' }]);
    const [approval] = await waitingApprovals(jobId);
    await as.ADMIN.post(`/v1/approvals/${approval.id}/decision`, { decision: 'reject', values: { note: 'no' } });
    const job = await waitForJob(t.db, orgId, jobId);
    expect(job).toMatchObject({ status: 'COMPLETED', result: 'skipped refund' });
    const completed = (await streamOf(jobId)).find((s) => s.kind === 'STEP_COMPLETED')!;
    expect(completed.message).toBe('ok');
  });

  it('a decision through a single-use link wakes the job too', async () => {
    const jobId = await startRun([approvalStep()]);
    const [approval] = await waitingApprovals(jobId);
    const detail = await as.OWNER.get(`/v1/approvals/${approval.id}`);
    const link = detail.body.links.find((l: Json) => l.userId === users.ADMIN.userId);
    const anonymous = client(app, undefined);
    expect((await anonymous.get(link.path)).body).toMatchObject({ title: 'Refund 42 USD', status: 'pending' });
    expect((await anonymous.post(link.path, { decision: 'approve', values: { note: 'by link' } })).status).toBe(200);
    expectError(await anonymous.post(link.path, { decision: 'approve' }), 410, 'GONE');
    const job = await waitForJob(t.db, orgId, jobId);
    expect(job).toMatchObject({ status: 'COMPLETED', result: { decision: 'approved', decidedBy: [users.ADMIN.userId], values: { note: 'by link' } } });
  });
});

describe('timeouts', () => {
  it('onTimeout approve: the job goes on as approved (a warning, nobody decided)', async () => {
    const jobId = await startRun([approvalStep({ timeoutMs: 300, onTimeout: 'approve' }), { id: 'after', type: 'transform', expression: 'steps.ok' }]);
    const [approval] = await waitingApprovals(jobId);
    const job = await waitForJob(t.db, orgId, jobId);
    expect(job).toMatchObject({ status: 'COMPLETED', result: { decision: 'approved', decidedBy: [], values: null } });
    const stream = await streamOf(jobId);
    const decided = stream.find((s) => s.kind === 'APPROVAL_DECIDED')!;
    expect(decided).toMatchObject({ level: 'WARN', data: { approvalId: approval.id, decision: 'approve', timedOut: true, userId: null } });
    const detail = await as.ADMIN.get(`/v1/approvals/${approval.id}`);
    expect(detail.body).toMatchObject({ status: 'expired', timeoutOutcome: 'approve', decisions: [] });
    expectError(await as.ADMIN.post(`/v1/approvals/${approval.id}/decision`, { decision: 'approve' }), 409, 'CONFLICT');
  });

  it('onTimeout reject: the job fails with APPROVAL_REJECTED (onReject fail) or goes on rejected (continue)', async () => {
    const failing = await startRun([approvalStep({ timeoutMs: 300 })]);
    const continuing = await startRun([approvalStep({ timeoutMs: 300, onReject: 'continue' }), { id: 'after', type: 'transform', expression: 'steps.ok' }]);
    const failed = await waitForJob(t.db, orgId, failing);
    expect(failed).toMatchObject({ status: 'FAILED', errorCode: 'APPROVAL_REJECTED' });
    expect(failed.errorMessage).toContain('no decision within 300 ms');
    const went = await waitForJob(t.db, orgId, continuing);
    expect(went).toMatchObject({ status: 'COMPLETED', result: { decision: 'rejected', decidedBy: [], values: null } });
  });

  it('an approval in a loop is one per iteration, by step path', async () => {
    const jobId = await startRun([
      { id: 'inv', type: 'forEach', items: 'input.invoices', concurrency: 2, steps: [approvalStep({ title: 'Pay invoice {{ item }}', timeoutMs: 60_000, form: undefined })] },
    ], { invoices: ['A-1', 'A-2'] });
    const approvals = await waitingApprovals(jobId, 2);
    expect(approvals.map((a) => [a.stepPath, a.title]).sort()).toEqual([
      ['inv[0].ok', 'Pay invoice A-1'],
      ['inv[1].ok', 'Pay invoice A-2'],
    ]);
    for (const a of approvals) await as.ADMIN.post(`/v1/approvals/${a.id}/decision`, { decision: 'approve' });
    const job = await waitForJob(t.db, orgId, jobId);
    expect(job.status).toBe('COMPLETED');
    expect(job.result).toEqual([
      { decision: 'approved', decidedBy: [users.ADMIN.userId], values: null },
      { decision: 'approved', decidedBy: [users.ADMIN.userId], values: null },
    ]);
  });
});

describe('saving a workflow with an approval step', () => {
  const save = (step: Json) => as.ADMIN.post('/v1/workflows', { name: `bad-${++n}`, definition: { steps: [{ id: 'first', type: 'noop' }, step] } });

  it('validates the step: a bad form, no approvers, an unknown role, required out of range', async () => {
    let err = expectError(await save(approvalStep({ form: { type: 'object', properties: { note: { type: 'strin' } } } })), 400, 'VALIDATION');
    expect(err.details.path).toBe('/definition/steps/1/form');
    err = expectError(await save(approvalStep({ form: { type: 'string' } })), 400, 'VALIDATION');
    expect(err.details.path).toBe('/definition/steps/1/form/type');
    err = expectError(await save(approvalStep({ form: { type: 'object', properties: { a: { $ref: 'https://example.com/x' } } } })), 400, 'VALIDATION');
    expect(err.details.path).toBe('/definition/steps/1/form');
    err = expectError(await save(approvalStep({ approvers: { roles: [], users: [] } })), 400, 'VALIDATION');
    expect(err.details.path).toBe('/definition/steps/1/approvers');
    err = expectError(await save(approvalStep({ approvers: { roles: ['BOSS'] } })), 400, 'VALIDATION');
    expect(err.details.path).toMatch(/^\/definition\/steps\/1\/approvers\/roles/);
    err = expectError(await save(approvalStep({ required: 11 })), 400, 'VALIDATION');
    expect(err.details.path).toBe('/definition/steps/1/required');
    err = expectError(await save(approvalStep({ approvers: { users: [users.ADMIN.userId] }, required: 2 })), 400, 'VALIDATION');
    expect(err.details.path).toBe('/definition/steps/1/required');
    err = expectError(await save(approvalStep({ timeoutMs: 31 * 24 * 3600 * 1000 })), 400, 'VALIDATION');
    expect(err.details.path).toBe('/definition/steps/1/timeoutMs');
    err = expectError(await save(approvalStep({ title: 'Refund {{ input.amount + }}' })), 400, 'VALIDATION');
    expect(err.details.path).toMatch(/^\/definition\/steps\/1\/title/);
    expect((await save(approvalStep())).status).toBe(201);
  });
});
