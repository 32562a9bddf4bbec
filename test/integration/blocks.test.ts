import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defineWorkflow, startRuns, Worker } from '../../src/engine/index.js';
import { sendSignal } from '../../src/engine/control.js';
import { listStream, type Job, type StreamEntry } from '../../src/store/index.js';
import { createTestDb, type TestDb } from '../helpers/db.js';
import { seedOrg, startWorker, waitForJob, waitForStatus as waitForStatusOf } from '../helpers/fixtures.js';
import { startTestServer, type TestServer } from '../helpers/http-server.js';

let t: TestDb;
let orgId: string;
let worker: Worker;
let srv: TestServer;

beforeAll(async () => {
  t = await createTestDb();
  orgId = (await seedOrg(t.db)).organizationId;
  srv = await startTestServer((req, res) => {
    if (req.url!.startsWith('/fail/')) {
      res.writeHead(500).end('no');
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

async function run(definition: unknown, input?: unknown): Promise<{ job: Job; stream: StreamEntry[] }> {
  const wf = await defineWorkflow(t.db, orgId, { name: `blocks ${Math.random()}`, definition });
  const [r] = await startRuns(t.db, orgId, wf.id, [{ input }]);
  const job = await waitForJob(t.db, orgId, r!.id, 30_000);
  return { job, stream: await listStream(t.db, orgId, job, { limit: 10_000 }) };
}

function waitForStatus(jobId: string, status: string): Promise<Job> {
  return waitForStatusOf(t.db, orgId, jobId, status, 20_000);
}

function expectContiguous(stream: StreamEntry[]): void {
  expect(stream.map((r) => r.seq)).toEqual(stream.map((_, i) => i + 1));
}

describe('if and switch', () => {
  it('if takes then or else, sees outer steps, and gives { branch, output }', async () => {
    const definition = {
      steps: [
        { id: 'amount', type: 'transform', expression: 'input.amount' },
        {
          id: 'route',
          type: 'if',
          condition: 'steps.amount > 1000',
          then: [{ id: 'big', type: 'transform', expression: '"review " & $string(steps.amount)' }],
          else: [{ id: 'small', type: 'transform', expression: '"auto"' }],
        },
        { id: 'after', type: 'transform', expression: 'steps.route' },
      ],
    };
    const big = await run(definition, { amount: 5000 });
    expect(big.job.status).toBe('COMPLETED');
    expect(big.job.result).toEqual({ branch: 'then', output: 'review 5000' });
    const taken = big.stream.find((r) => r.kind === 'BRANCH_TAKEN')!;
    expect(taken).toMatchObject({ message: 'then', stepIndex: 1, path: null });
    const nested = big.stream.filter((r) => r.path === 'route.then.big').map((r) => r.kind);
    expect(nested).toEqual(['STEP_STARTED', 'STEP_COMPLETED']);
    expect(big.stream.filter((r) => r.path === 'route.then.big').every((r) => r.stepIndex === 1)).toBe(true);
    expectContiguous(big.stream);
    const small = await run(definition, { amount: 5 });
    expect(small.job.result).toEqual({ branch: 'else', output: 'auto' });
  });

  it('switch takes the first case that holds, else default', async () => {
    const definition = {
      steps: [
        {
          id: 'src',
          type: 'switch',
          cases: [
            { when: "input.source = 'stripe'", steps: [{ id: 's', type: 'transform', expression: '"stripe"' }] },
            { when: "input.source = 'paypal'", steps: [{ id: 'p', type: 'transform', expression: '"paypal"' }] },
          ],
          default: [{ id: 'd', type: 'transform', expression: '"other"' }],
        },
      ],
    };
    expect((await run(definition, { source: 'paypal' })).job.result).toEqual({ branch: 1, output: 'paypal' });
    expect((await run(definition, { source: 'x' })).job.result).toEqual({ branch: 'default', output: 'other' });
  });
});

describe('forEach', () => {
  it('runs every item with item and index in scope, concurrently, output ordered by index', async () => {
    const { job, stream } = await run(
      {
        steps: [
          { id: 'list', type: 'transform', expression: '[1..7]' },
          {
            id: 'inv',
            type: 'forEach',
            items: 'steps.list',
            concurrency: 3,
            steps: [
              { id: 'double', type: 'transform', expression: 'item * 2' },
              { id: 'label', type: 'transform', expression: '$string(index) & ":" & $string(steps.double)' },
            ],
          },
        ],
      },
      {},
    );
    expect(job.status).toBe('COMPLETED');
    expect(job.result).toEqual(['0:2', '1:4', '2:6', '3:8', '4:10', '5:12', '6:14']);
    expect(stream.filter((r) => r.kind === 'ITERATION_COMPLETED')).toHaveLength(7);
    expect(stream.filter((r) => r.path === 'inv[3].label').map((r) => r.kind)).toEqual(['STEP_STARTED', 'STEP_COMPLETED']);
    expectContiguous(stream);
  });

  it('more items than maxItems fail the step naming the count', async () => {
    const { job } = await run({ steps: [{ id: 'inv', type: 'forEach', items: '[1..20]', maxItems: 10, steps: [{ id: 'n', type: 'noop' }] }] });
    expect(job).toMatchObject({ status: 'FAILED', errorCode: 'FOREACH_TOO_MANY_ITEMS' });
    expect(job.errorMessage).toContain('20 items is more than maxItems 10');
  });

  it('tolerated failures leave null and end PARTIAL_SUCCESS; one too many fails the loop', async () => {
    const loop = (tolerated: number | string) => ({
      steps: [
        {
          id: 'inv',
          type: 'forEach',
          items: '[0..5]',
          concurrency: 2,
          toleratedFailures: tolerated,
          steps: [{ id: 'call', type: 'http', method: 'GET', url: `${srv.url}/{{ item % 3 = 0 ? 'fail' : 'ok' }}/{{ item }}` }],
        },
      ],
    });
    const ok = await run(loop(2));
    expect(ok.job.status).toBe('PARTIAL_SUCCESS');
    const out = ok.job.result as unknown[];
    expect(out[0]).toBeNull();
    expect(out[3]).toBeNull();
    expect(out[1]).toMatchObject({ status: 200 });
    expect(ok.stream.filter((r) => r.kind === 'ITERATION_FAILED').map((r) => (r.data as { index: number }).index).sort()).toEqual([0, 3]);
    const bad = await run(loop('10%'));
    expect(bad.job).toMatchObject({ status: 'FAILED', errorCode: 'HTTP_STATUS' });
    expect(bad.job.errorStep).toMatch(/^inv\[\d\]\.call$/);
  });

  it('a loop over more than 100 items writes rollups, not rows, for the rest', async () => {
    const { job, stream } = await run({
      steps: [{ id: 'inv', type: 'forEach', items: '[1..250]', concurrency: 10, maxItems: 1000, steps: [{ id: 't', type: 'transform', expression: 'item + 1' }] }],
    });
    expect(job.status).toBe('COMPLETED');
    expect((job.result as number[]).length).toBe(250);
    expect((job.result as number[])[249]).toBe(251);
    expect(stream.filter((r) => r.kind === 'ITERATION_COMPLETED')).toHaveLength(100);
    const rollups = stream.filter((r) => r.kind === 'MAP_PROGRESS');
    expect(rollups.length).toBeGreaterThanOrEqual(2);
    expect(rollups.at(-1)!.data).toEqual({ total: 250, succeeded: 250, failed: 0, running: 0 });
    expect(stream.length).toBeLessThan(700);
    expectContiguous(stream);
    // Every iteration counts into the step's metrics, the quiet ones that wrote no rows too.
    const { rows } = await t.db.query<{ n: number }>(
      `SELECT coalesce(sum(executions), 0)::int AS n FROM stepwise.step_metrics WHERE workflow_id = $1 AND step_path = 'inv[].t' AND period = 'DAY'`,
      [job.workflowId],
    );
    expect(rows[0]!.n).toBe(250);
  });
});

describe('parallel', () => {
  it('runs branches and gives { branch: output }', async () => {
    const { job, stream } = await run({
      steps: [
        {
          id: 'enrich',
          type: 'parallel',
          branches: {
            crm: [{ id: 'score', type: 'transform', expression: '42' }],
            billing: [
              { id: 'a', type: 'transform', expression: '1' },
              { id: 'b', type: 'transform', expression: 'steps.a + 1' },
            ],
          },
        },
      ],
    });
    expect(job.result).toEqual({ crm: 42, billing: 2 });
    expect(stream.some((r) => r.path === 'enrich.crm.score')).toBe(true);
  });

  it('failFast stops the other branches; the job fails with the failing step', async () => {
    const { job, stream } = await run({
      steps: [
        {
          id: 'enrich',
          type: 'parallel',
          branches: {
            slow: [{ id: 'w', type: 'wait', signal: 'never', timeoutMs: 60_000 }],
            bad: [{ id: 'x', type: 'transform', expression: '$error("boom")' }],
          },
        },
      ],
    });
    expect(job).toMatchObject({ status: 'FAILED', errorCode: 'EXPRESSION_ERROR', errorStep: 'enrich.bad.x' });
    expect(stream.at(-1)!.kind).toBe('JOB_FAILED');
  });
});

describe('nesting', () => {
  it('blocks inside blocks: paths name every level, and scopes nest', async () => {
    const { job, stream } = await run({
      steps: [
        {
          id: 'p',
          type: 'parallel',
          branches: {
            a: [
              {
                id: 'inv',
                type: 'forEach',
                items: '[1, 2]',
                steps: [
                  {
                    id: 'route',
                    type: 'if',
                    condition: 'item = 1',
                    then: [{ id: 'x', type: 'transform', expression: '"one@" & $string(index)' }],
                    else: [{ id: 'x', type: 'transform', expression: '"two@" & $string(index)' }],
                  },
                ],
              },
            ],
            b: [{ id: 'y', type: 'transform', expression: 'input.k' }],
          },
        },
      ],
    }, { k: 'kept' });
    expect(job.status).toBe('COMPLETED');
    expect(job.result).toEqual({
      a: [
        { branch: 'then', output: 'one@0' },
        { branch: 'else', output: 'two@1' },
      ],
      b: 'kept',
    });
    const paths = new Set(stream.map((r) => r.path).filter(Boolean));
    for (const p of ['p.a.inv', 'p.a.inv[0]', 'p.a.inv[0].route', 'p.a.inv[0].route.then.x', 'p.a.inv[1].route.else.x', 'p.b.y']) expect(paths).toContain(p);
    expectContiguous(stream);
  });
});

describe('suspensions inside blocks', () => {
  it('a wait inside a forEach iteration suspends the job; a signal resumes it without rerunning what completed', async () => {
    const tag = `s${Date.now()}`;
    const wf2 = await defineWorkflow(t.db, orgId, {
      name: 'wait in loop',
      definition: {
        steps: [
          {
            id: 'inv',
            type: 'forEach',
            items: '[1, 2]',
            concurrency: 2,
            steps: [
              { id: 'hit', type: 'http', method: 'GET', url: `${srv.url}/count/${tag}-{{ item }}` },
              { id: 'gate', type: 'wait', signal: 'go' },
            ],
          },
        ],
      },
    });
    const [r] = await startRuns(t.db, orgId, wf2.id, [{}]);
    await waitForStatus(r!.id, 'WAITING');
    expect(srv.calls.get(`/count/${tag}-1`)).toBe(1);
    expect(srv.calls.get(`/count/${tag}-2`)).toBe(1);
    await sendSignal(t.db, orgId, r!.id, 'go', { n: 1 });
    // One signal releases one iteration's wait; the other keeps the job waiting.
    await new Promise((res) => setTimeout(res, 300));
    await waitForStatus(r!.id, 'WAITING');
    await sendSignal(t.db, orgId, r!.id, 'go', { n: 2 });
    const job = await waitForJob(t.db, orgId, r!.id);
    expect(job.status).toBe('COMPLETED');
    expect(srv.calls.get(`/count/${tag}-1`)).toBe(1);
    expect(srv.calls.get(`/count/${tag}-2`)).toBe(1);
    const stream = await listStream(t.db, orgId, job, { limit: 1000 });
    expectContiguous(stream);
    expect(stream.filter((r) => r.kind === 'SIGNAL_RECEIVED')).toHaveLength(2);
  });
});

describe('validation', () => {
  it('refuses blocks nested 4 deep, and a worst case over 20,000 step runs, naming the path', async () => {
    const leaf = [{ id: 'n', type: 'noop' }];
    const nest = (steps: unknown[], depth: number): unknown[] =>
      depth === 0 ? steps : [{ id: `b${depth}`, type: 'if', condition: 'true', then: nest(steps, depth - 1) }];
    await expect(defineWorkflow(t.db, orgId, { name: 'deep', definition: { steps: nest(leaf, 4) } })).rejects.toThrow(/blocks nest at most 3 deep/);
    await expect(defineWorkflow(t.db, orgId, { name: 'ok', definition: { steps: nest(leaf, 3) } })).resolves.toBeDefined();
    const big = {
      steps: [
        { id: 'a', type: 'noop' },
        { id: 'inv', type: 'forEach', items: '[1]', maxItems: 10_000, steps: [{ id: 'x', type: 'noop' }, { id: 'y', type: 'noop' }, { id: 'z', type: 'noop' }] },
      ],
    };
    await expect(defineWorkflow(t.db, orgId, { name: 'big', definition: big })).rejects.toMatchObject({
      details: { path: '/definition/steps/1', limit: 20_000 },
    });
  });
});
