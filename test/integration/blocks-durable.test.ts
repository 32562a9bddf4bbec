import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defineWorkflow, startRuns, Worker } from '../../src/engine/index.js';
import { cancelJob, retryJob, sendSignal } from '../../src/engine/control.js';
import { findJob, listStream, type Job, type StreamEntry } from '../../src/store/index.js';
import { createTestDb, type TestDb } from '../helpers/db.js';
import { seedOrg, startWorker, waitForJob, waitForStatus as waitForStatusOf } from '../helpers/fixtures.js';
import { startTestServer, type TestServer } from '../helpers/http-server.js';

let t: TestDb;
let orgId: string;
let worker: Worker;
let srv: TestServer;
/** Paths that answer 500 until taken off the list. */
const failing = new Set<string>();

beforeAll(async () => {
  t = await createTestDb();
  orgId = (await seedOrg(t.db)).organizationId;
  srv = await startTestServer((req, res) => {
    if (failing.has(req.url!)) {
      res.writeHead(500).end('not now');
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

async function start(definition: unknown, input?: unknown): Promise<string> {
  const wf = await defineWorkflow(t.db, orgId, { name: `durable blocks ${Math.random()}`, definition });
  const [r] = await startRuns(t.db, orgId, wf.id, [{ input }]);
  return r!.id;
}

async function finished(jobId: string): Promise<{ job: Job; stream: StreamEntry[] }> {
  const job = await waitForJob(t.db, orgId, jobId, 30_000);
  return { job, stream: await listStream(t.db, orgId, job, { limit: 10_000 }) };
}

function waitForStatus(jobId: string, status: string): Promise<Job> {
  return waitForStatusOf(t.db, orgId, jobId, status, 20_000);
}

const calls = (path: string) => srv.calls.get(path) ?? 0;

describe('compensation across blocks', () => {
  it('runs the compensations of completed iterations and branches in reverse completion order', async () => {
    const tag = `c${Date.now()}`;
    const { job, stream } = await finished(
      await start({
        onFailure: 'compensate',
        steps: [
          {
            id: 'reserve',
            type: 'http',
            method: 'POST',
            url: `${srv.url}/${tag}/reserve`,
            compensate: { step: { id: 'release', type: 'http', method: 'POST', url: `${srv.url}/${tag}/release` } },
          },
          {
            id: 'inv',
            type: 'forEach',
            items: '[1, 2, 3]',
            steps: [
              {
                id: 'charge',
                type: 'http',
                method: 'POST',
                url: `${srv.url}/${tag}/charge/{{ item }}`,
                compensate: { step: { id: 'refund', type: 'http', method: 'POST', url: `${srv.url}/${tag}/refund/{{ item }}` } },
              },
            ],
          },
          { id: 'boom', type: 'transform', expression: '$error("ledger closed")' },
        ],
      }),
    );
    expect(job).toMatchObject({ status: 'FAILED', errorCode: 'EXPRESSION_ERROR', errorStep: 'boom' });
    for (const item of [1, 2, 3]) expect(calls(`/${tag}/refund/${item}`)).toBe(1);
    expect(calls(`/${tag}/release`)).toBe(1);
    const compensated = stream.filter((r) => r.kind === 'COMPENSATED');
    expect(compensated.map((r) => r.path ?? r.message)).toEqual(['inv[2].charge', 'inv[1].charge', 'inv[0].charge', 'reserve']);
    expect(compensated.every((r) => (r.data as { ok: boolean }).ok)).toBe(true);
  });
});

describe('retries inside blocks', () => {
  it('retry from the failed step reruns only the failed iteration, reusing the others', async () => {
    const tag = `r${Date.now()}`;
    failing.add(`/${tag}/item/3`);
    const first = await finished(
      await start({
        steps: [
          { id: 'inv', type: 'forEach', items: '[1..5]', steps: [{ id: 'call', type: 'http', method: 'POST', url: `${srv.url}/${tag}/item/{{ item }}` }] },
        ],
      }),
    );
    expect(first.job).toMatchObject({ status: 'FAILED', errorCode: 'HTTP_STATUS', errorStep: 'inv[2].call' });
    expect([1, 2, 3, 4, 5].map((i) => calls(`/${tag}/item/${i}`))).toEqual([1, 1, 1, 0, 0]);
    failing.delete(`/${tag}/item/3`);
    const again = await retryJob(t.db, orgId, first.job.id, 'failed-step', 3_600_000);
    const second = await finished(again.id);
    expect(second.job.status).toBe('COMPLETED');
    expect((second.job.result as { status: number }[]).map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
    // Items 1 and 2 were not called again; 3 once more; 4 and 5 for the first time.
    expect([1, 2, 3, 4, 5].map((i) => calls(`/${tag}/item/${i}`))).toEqual([1, 1, 2, 1, 1]);
    expect(second.stream.filter((r) => r.kind === 'ITERATION_STARTED').map((r) => r.path)).toEqual(['inv[2]', 'inv[3]', 'inv[4]']);
  });

  it('a job-level retry reruns the failed iterations of a loop that ran in parallel, not the completed ones', async () => {
    const tag = `j${Date.now()}`;
    failing.add(`/${tag}/item/2`);
    const jobId = await start({
      maxRetries: 1,
      steps: [
        {
          id: 'inv',
          type: 'forEach',
          items: '[1..4]',
          concurrency: 4,
          toleratedFailures: 0,
          steps: [{ id: 'call', type: 'http', method: 'POST', url: `${srv.url}/${tag}/item/{{ item }}` }],
        },
      ],
    });
    // The job-level retry waits a second: take the failure away meanwhile.
    const deadline = Date.now() + 20_000;
    while ((await findJob(t.db, orgId, jobId))!.retryCount < 1) {
      if (Date.now() > deadline) throw new Error('the job was never scheduled for a retry');
      await new Promise((r) => setTimeout(r, 20));
    }
    failing.delete(`/${tag}/item/2`);
    const { job } = await finished(jobId);
    expect(job).toMatchObject({ status: 'COMPLETED', retryCount: 1 });
    expect(calls(`/${tag}/item/2`)).toBe(2);
    // The others completed (or were stopped before their request) in the first attempt; none ran twice.
    for (const i of [1, 3, 4]) expect(calls(`/${tag}/item/${i}`)).toBe(1);
  });
});

describe('sub-workflows', () => {
  let childId: string;
  beforeAll(async () => {
    const child = await defineWorkflow(t.db, orgId, {
      name: 'kyc',
      definition: { steps: [{ id: 'check', type: 'transform', expression: '{ "member": input.memberId, "ok": true }' }] },
    });
    childId = child.id;
  });

  it('runs the child as its own job and gives its result; the parent waits without a worker', async () => {
    const { job, stream } = await finished(
      await start(
        { steps: [{ id: 'kyc', type: 'workflow', workflowId: childId, input: { memberId: '{{ input.memberId }}' } }, { id: 'r', type: 'transform', expression: 'steps.kyc' }] },
        { memberId: 'M-7' },
      ),
    );
    expect(job.status).toBe('COMPLETED');
    expect(job.result).toEqual({ member: 'M-7', ok: true });
    const started = stream.find((r) => r.kind === 'CHILD_JOB_STARTED')!;
    const child = await findJob(t.db, orgId, (started.data as { jobId: string }).jobId);
    expect(child).toMatchObject({ initiatorType: 'PARENT', parentJobId: job.id, parentStepPath: 'kyc', depth: 1, status: 'COMPLETED' });
    expect(stream.filter((r) => r.kind === 'CHILD_JOB_COMPLETED')).toHaveLength(1);
    expect(stream.some((r) => r.kind === 'WAITING')).toBe(true);
  });

  it('wait: false gives { jobId } at once; a failed child fails the step; a missing workflow fails it clearly', async () => {
    const noWait = await finished(await start({ steps: [{ id: 'kyc', type: 'workflow', workflowId: childId, wait: false }] }));
    expect(noWait.job.status).toBe('COMPLETED');
    expect(Object.keys(noWait.job.result as object)).toEqual(['jobId']);
    const bad = await defineWorkflow(t.db, orgId, { name: 'bad child', definition: { steps: [{ id: 'x', type: 'transform', expression: '$error("nope")' }] } });
    const failed = await finished(await start({ steps: [{ id: 'kid', type: 'workflow', workflowId: bad.id }] }));
    expect(failed.job).toMatchObject({ status: 'FAILED', errorCode: 'CHILD_JOB_FAILED', errorStep: 'kid' });
    const missing = await finished(await start({ steps: [{ id: 'kid', type: 'workflow', workflowId: '00000000-0000-7000-8000-000000000000' }] }));
    expect(missing.job).toMatchObject({ status: 'FAILED', errorCode: 'CHILD_WORKFLOW_NOT_FOUND' });
  });

  it('a workflow calling itself stops at depth 3', async () => {
    const wf = await defineWorkflow(t.db, orgId, { name: 'recursive', definition: { steps: [{ id: 'n', type: 'noop' }] } });
    const { reviseWorkflow } = await import('../../src/engine/index.js');
    await reviseWorkflow(t.db, orgId, wf.id, { definition: { steps: [{ id: 'again', type: 'workflow', workflowId: wf.id }] } });
    const [r] = await startRuns(t.db, orgId, wf.id, [{}]);
    const top = await waitForJob(t.db, orgId, r!.id, 30_000);
    expect(top).toMatchObject({ status: 'FAILED', errorCode: 'CHILD_JOB_FAILED' });
    const { rows } = await t.db.query<{ depth: number; error_code: string | null }>(
      `WITH RECURSIVE chain AS (SELECT id, depth, error_code FROM stepwise.jobs WHERE id = $1
         UNION ALL SELECT j.id, j.depth, j.error_code FROM stepwise.jobs j JOIN chain c ON j.parent_job_id = c.id)
       SELECT depth, error_code FROM chain ORDER BY depth`,
      [r!.id],
    );
    expect(rows.map((x) => x.depth)).toEqual([0, 1, 2, 3]);
    expect(rows.at(-1)!.error_code).toBe('WORKFLOW_DEPTH_EXCEEDED');
  });

  it('cancelling the parent cancels its child', async () => {
    const waiter = await defineWorkflow(t.db, orgId, { name: 'slow child', definition: { steps: [{ id: 'w', type: 'wait', signal: 'never' }] } });
    const parentId = await start({ steps: [{ id: 'kid', type: 'workflow', workflowId: waiter.id }] });
    await waitForStatus(parentId, 'WAITING');
    const { rows } = await t.db.query<{ id: string }>(`SELECT id FROM stepwise.jobs WHERE parent_job_id = $1`, [parentId]);
    await waitForStatus(rows[0]!.id, 'WAITING');
    await cancelJob(t.db, orgId, parentId);
    expect((await waitForJob(t.db, orgId, rows[0]!.id)).status).toBe('CANCELLED');
    expect((await waitForJob(t.db, orgId, parentId)).status).toBe('CANCELLED');
  });

  it('a signal to a child reaches it while the parent waits', async () => {
    const waiter = await defineWorkflow(t.db, orgId, { name: 'approving child', definition: { steps: [{ id: 'w', type: 'wait', signal: 'ok' }] } });
    const parentId = await start({ steps: [{ id: 'kid', type: 'workflow', workflowId: waiter.id }] });
    await waitForStatus(parentId, 'WAITING');
    const { rows } = await t.db.query<{ id: string }>(`SELECT id FROM stepwise.jobs WHERE parent_job_id = $1`, [parentId]);
    await waitForStatus(rows[0]!.id, 'WAITING');
    await sendSignal(t.db, orgId, rows[0]!.id, 'ok', { by: 'ada' });
    const { job } = await finished(parentId);
    expect(job).toMatchObject({ status: 'COMPLETED', result: { by: 'ada' } });
  });
});
