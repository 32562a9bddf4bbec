import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defineWorkflow, startRuns, type Worker } from '../../src/engine/index.js';
import { cancelJob, retryJob, sendSignal } from '../../src/engine/control.js';
import { listStream, type Job } from '../../src/store/index.js';
import { createTestDb, type TestDb } from '../helpers/db.js';
import { seedOrg, startWorker, waitForJob, waitForStatus as waitForStatusOf } from '../helpers/fixtures.js';
import { startTestServer, type TestServer } from '../helpers/http-server.js';

let t: TestDb;
let orgId: string;
let worker: Worker;
let srv: TestServer;
const failuresLeft = new Map<string, number>();
let flakyOk = false;

beforeAll(async () => {
  t = await createTestDb();
  orgId = (await seedOrg(t.db)).organizationId;
  srv = await startTestServer((req, res) => {
    const url = req.url!;
    if (url.startsWith('/fail-times/')) {
      const key = url.split('/')[2]!;
      const left = failuresLeft.get(key) ?? 0;
      if (left > 0) {
        failuresLeft.set(key, left - 1);
        res.writeHead(500).end('not yet');
        return true;
      }
    }
    if (url.startsWith('/slow')) return true; // never answers; the client must abort
    if (url.startsWith('/flaky')) {
      res.writeHead(flakyOk ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify({ flaky: flakyOk }));
      return true;
    }
    return false;
  });
  worker = startWorker(t.db, { pollIntervalMs: 50 });
});

afterAll(async () => {
  await worker?.stop();
  await srv?.close();
  await t?.close();
});

async function run(definition: unknown, input?: unknown): Promise<{ job: Job; kinds: string[]; stream: Awaited<ReturnType<typeof listStream>> }> {
  const wf = await defineWorkflow(t.db, orgId, { name: 'durable', definition });
  const [r] = await startRuns(t.db, orgId, wf.id, [{ input }]);
  const job = await waitForJob(t.db, orgId, r!.id, 30_000);
  const stream = await listStream(t.db, orgId, job, { limit: 1000 });
  return { job, kinds: stream.map((s) => s.kind), stream };
}

function waitForStatus(jobId: string, status: string): Promise<Job> {
  return waitForStatusOf(t.db, orgId, jobId, status, 15_000);
}

describe('retries and timeouts', () => {
  it('retries a failing step with backoff and records every attempt', async () => {
    failuresLeft.set('a', 2);
    const { job, kinds, stream } = await run({
      steps: [{ id: 'call', type: 'http', method: 'GET', url: `${srv.url}/fail-times/a`, retry: { maxAttempts: 3, initialMs: 10, maxMs: 50 } }],
    });
    expect(job.status).toBe('COMPLETED');
    expect(kinds).toEqual([
      'JOB_STARTED',
      'STEP_STARTED', 'STEP_FAILED', 'RETRY_SCHEDULED',
      'STEP_STARTED', 'STEP_FAILED', 'RETRY_SCHEDULED',
      'STEP_STARTED', 'STEP_COMPLETED',
      'JOB_COMPLETED',
    ]);
    expect(stream.filter((s) => s.kind === 'RETRY_SCHEDULED').map((s) => (s.data as { attempt: number }).attempt)).toEqual([2, 3]);
  });

  it('does not retry error codes outside `on`, and gives up after maxAttempts', async () => {
    const notListed = await run({
      steps: [{ id: 't', type: 'transform', expression: '$error("bad")', retry: { maxAttempts: 5, initialMs: 1, on: ['HTTP_STATUS'] } }],
    });
    expect(notListed.job).toMatchObject({ status: 'FAILED', errorCode: 'EXPRESSION_ERROR' });
    expect(notListed.kinds.filter((k) => k === 'STEP_STARTED')).toHaveLength(1);
    failuresLeft.set('b', 10);
    const exhausted = await run({
      steps: [{ id: 'call', type: 'http', method: 'GET', url: `${srv.url}/fail-times/b`, retry: { maxAttempts: 2, initialMs: 1 } }],
    });
    expect(exhausted.job).toMatchObject({ status: 'FAILED', errorCode: 'HTTP_STATUS', errorStep: 'call' });
    expect(exhausted.kinds.filter((k) => k === 'STEP_STARTED')).toHaveLength(2);
  });

  it('a step timeout aborts the request; a job timeout ends the job TIMED_OUT', async () => {
    const step = await run({ steps: [{ id: 'hang', type: 'http', method: 'GET', url: `${srv.url}/slow/1`, timeoutMs: 150 }] });
    expect(step.job).toMatchObject({ status: 'FAILED', errorCode: 'STEP_TIMEOUT' });
    const whole = await run({ timeoutMs: 300, steps: [{ id: 'hang', type: 'http', method: 'GET', url: `${srv.url}/slow/2`, timeoutMs: 60_000 }] });
    expect(whole.job).toMatchObject({ status: 'TIMED_OUT', errorCode: 'JOB_TIMEOUT' });
    expect(whole.kinds[whole.kinds.length - 1]).toBe('JOB_TIMED_OUT');
    // The server sees the closed connection a moment after the job is recorded.
    const deadline = Date.now() + 5_000;
    while (!srv.aborted.includes('/slow/2') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(srv.aborted).toContain('/slow/2');
  });

  it('job-level maxRetries re-runs from the failed step, then records max_retries_reached', async () => {
    failuresLeft.set('c', 100);
    const { job, stream } = await run({
      maxRetries: 1,
      steps: [
        { id: 'once', type: 'http', method: 'GET', url: `${srv.url}/count/once-${Date.now()}` },
        { id: 'call', type: 'http', method: 'GET', url: `${srv.url}/fail-times/c` },
      ],
    });
    expect(job).toMatchObject({ status: 'FAILED', retryCount: 1, maxRetries: 1, maxRetriesReached: true });
    expect(stream.filter((s) => s.kind === 'RETRY_SCHEDULED' && s.stepIndex === null)).toHaveLength(1);
    // The first step succeeded before the retry and was not run again.
    expect(stream.filter((s) => s.kind === 'STEP_STARTED' && s.stepIndex === 0)).toHaveLength(1);
    expect(stream.map((s) => s.seq)).toEqual(stream.map((_, i) => i + 1));
  });
});

describe('outcomes', () => {
  it('continueOnError steps make the job PARTIAL_SUCCESS', async () => {
    const { job, kinds } = await run({
      steps: [
        { id: 'bad', type: 'transform', expression: '$error("nope")', continueOnError: true },
        { id: 'good', type: 'transform', expression: '{ "bad": steps.bad, "ok": true }' },
      ],
    });
    expect(job.status).toBe('PARTIAL_SUCCESS');
    expect(job.result).toEqual({ bad: null, ok: true });
    expect(kinds[kinds.length - 1]).toBe('JOB_PARTIAL_SUCCESS');
  });

  it('onFailure compensate runs the completed steps’ compensations in reverse order', async () => {
    const tag = `saga-${Date.now()}`;
    const { job, stream } = await run({
      onFailure: 'compensate',
      steps: [
        { id: 'reserve', type: 'http', method: 'POST', url: `${srv.url}/${tag}/reserve`, compensate: { step: { id: 'unreserve', type: 'http', method: 'POST', url: `${srv.url}/${tag}/unreserve` } } },
        { id: 'charge', type: 'http', method: 'POST', url: `${srv.url}/${tag}/charge`, compensate: { step: { id: 'refund', type: 'http', method: 'POST', url: `${srv.url}/${tag}/refund` } } },
        { id: 'ship', type: 'transform', expression: '$error("no stock")' },
      ],
    });
    expect(job).toMatchObject({ status: 'FAILED', errorStep: 'ship' });
    const compensated = stream.filter((s) => s.kind === 'COMPENSATED').map((s) => (s.data as { compensation: string }).compensation);
    expect(compensated).toEqual(['refund', 'unreserve']);
    expect(srv.calls.get(`/${tag}/refund`)).toBe(1);
    expect(srv.calls.get(`/${tag}/unreserve`)).toBe(1);
  });
});

describe('waiting', () => {
  it('a delay puts the job in WAITING without holding the worker, then continues', async () => {
    const wf = await defineWorkflow(t.db, orgId, {
      name: 'delay',
      definition: { steps: [{ id: 'nap', type: 'delay', durationMs: 400 }, { id: 'after', type: 'transform', expression: '"woke"' }] },
    });
    const [r] = await startRuns(t.db, orgId, wf.id, [{}]);
    await waitForStatus(r!.id, 'WAITING');
    expect(worker.activeCount).toBe(0);
    const job = await waitForJob(t.db, orgId, r!.id);
    expect(job.status).toBe('COMPLETED');
    expect(job.result).toBe('woke');
    expect(job.completedAt!.getTime() - job.startedAt!.getTime()).toBeGreaterThanOrEqual(350);
  });

  it('a signal sent before the wait step and one sent while waiting are both received', async () => {
    const wf = await defineWorkflow(t.db, orgId, {
      name: 'approval',
      definition: {
        steps: [
          { id: 'first', type: 'wait', signal: 'approved', timeoutMs: 20_000 },
          { id: 'second', type: 'wait', signal: 'shipped', timeoutMs: 20_000 },
          { id: 'out', type: 'transform', expression: '{ "by": steps.first.by, "carrier": steps.second.carrier }' },
        ],
      },
    });
    const [r] = await startRuns(t.db, orgId, wf.id, [{}]);
    await sendSignal(t.db, orgId, r!.id, 'approved', { by: 'ada' }); // before the job even starts
    await waitForStatus(r!.id, 'WAITING');
    await sendSignal(t.db, orgId, r!.id, 'shipped', { carrier: 'ups' });
    const job = await waitForJob(t.db, orgId, r!.id);
    expect(job).toMatchObject({ status: 'COMPLETED', result: { by: 'ada', carrier: 'ups' } });
    const kinds = (await listStream(t.db, orgId, job, { limit: 100 })).map((s) => s.kind);
    expect(kinds.filter((k) => k === 'SIGNAL_RECEIVED')).toHaveLength(2);
  });

  it('a wait times out: onTimeout continue yields null, fail fails the job', async () => {
    const cont = await run({ steps: [{ id: 'w', type: 'wait', signal: 'never', timeoutMs: 200, onTimeout: 'continue' }, { id: 'o', type: 'transform', expression: '{ "w": steps.w }' }] });
    expect(cont.job).toMatchObject({ status: 'COMPLETED', result: { w: null } });
    const fail = await run({ steps: [{ id: 'w', type: 'wait', signal: 'never', timeoutMs: 200, onTimeout: 'fail' }] });
    expect(fail.job).toMatchObject({ status: 'FAILED', errorCode: 'WAIT_TIMEOUT' });
  });
});

describe('control', () => {
  it('cancels a job during a slow http step, aborting the request and compensating', async () => {
    const tag = `cancel-${Date.now()}`;
    const wf = await defineWorkflow(t.db, orgId, {
      name: 'cancel',
      definition: {
        onFailure: 'compensate',
        steps: [
          { id: 'book', type: 'http', method: 'POST', url: `${srv.url}/${tag}/book`, compensate: { step: { id: 'unbook', type: 'http', method: 'POST', url: `${srv.url}/${tag}/unbook` } } },
          { id: 'hang', type: 'http', method: 'GET', url: `${srv.url}/slow/${tag}`, timeoutMs: 60_000 },
        ],
      },
    });
    const [r] = await startRuns(t.db, orgId, wf.id, [{}]);
    const deadline = Date.now() + 10_000;
    while (!srv.calls.get(`/${tag}/book`) && Date.now() < deadline) await new Promise((res) => setTimeout(res, 10));
    await new Promise((res) => setTimeout(res, 100));
    await cancelJob(t.db, orgId, r!.id);
    const job = await waitForJob(t.db, orgId, r!.id);
    expect(job.status).toBe('CANCELLED');
    const deadline2 = Date.now() + 5_000;
    while (!srv.aborted.includes(`/slow/${tag}`) && Date.now() < deadline2) await new Promise((r) => setTimeout(r, 10));
    expect(srv.aborted).toContain(`/slow/${tag}`);
    expect(srv.calls.get(`/${tag}/unbook`)).toBe(1);
    await expect(cancelJob(t.db, orgId, r!.id)).rejects.toThrow(/already ended/);
  });

  it('retry from the failed step reuses the outputs of the steps that succeeded', async () => {
    flakyOk = false;
    const tag = `retry-${Date.now()}`;
    const wf = await defineWorkflow(t.db, orgId, {
      name: 'retry',
      definition: {
        steps: [
          { id: 'fetch', type: 'http', method: 'GET', url: `${srv.url}/${tag}/fetch` },
          { id: 'flaky', type: 'http', method: 'GET', url: `${srv.url}/flaky` },
          { id: 'out', type: 'transform', expression: '{ "fetched": steps.fetch.body.path, "flaky": steps.flaky.body.flaky }' },
        ],
      },
    });
    const [r] = await startRuns(t.db, orgId, wf.id, [{ input: { n: 1 } }]);
    const failed = await waitForJob(t.db, orgId, r!.id);
    expect(failed).toMatchObject({ status: 'FAILED', errorStep: 'flaky' });
    flakyOk = true;
    const again = await retryJob(t.db, orgId, failed.id, 'failed-step', 3_600_000);
    const job = await waitForJob(t.db, orgId, again.id);
    expect(job).toMatchObject({ status: 'COMPLETED', initiatorType: 'RETRY', retryOfJobId: failed.id, input: { n: 1 } });
    expect(job.result).toEqual({ fetched: `/${tag}/fetch`, flaky: true });
    expect(srv.calls.get(`/${tag}/fetch`)).toBe(1); // not called again
    const fromStart = await retryJob(t.db, orgId, failed.id, 'start', 3_600_000);
    await waitForJob(t.db, orgId, fromStart.id);
    expect(srv.calls.get(`/${tag}/fetch`)).toBe(2);
    await expect(retryJob(t.db, orgId, job.id, 'start', 3_600_000)).rejects.toThrow(/only FAILED/);
  });
});
