import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defineWorkflow, startRuns, type Worker } from '../../src/engine/index.js';
import { listStream } from '../../src/store/index.js';
import { createTestDb, type TestDb } from '../helpers/db.js';
import { seedOrg, startWorker, waitForJob } from '../helpers/fixtures.js';

let t: TestDb;
let orgId: string;
let worker: Worker;
let server: Server;
let baseUrl: string;
const seen: { method: string; url: string; body: string; auth: string | undefined }[] = [];

beforeAll(async () => {
  t = await createTestDb();
  orgId = (await seedOrg(t.db)).organizationId;
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      seen.push({ method: req.method!, url: req.url!, body, auth: req.headers.authorization });
      if (req.url?.startsWith('/fail')) {
        res.writeHead(503, { 'content-type': 'application/json' }).end('{"error":"down"}');
      } else if (req.url?.startsWith('/big')) {
        res.writeHead(200, { 'content-type': 'text/plain' }).end('x'.repeat(10_000));
      } else {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: true, path: req.url, echo: body ? JSON.parse(body) : null }));
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  worker = startWorker(t.db, { httpMaxResponseBytes: 1_000 });
});

afterAll(async () => {
  await worker?.stop();
  server?.close();
  await t?.close();
});

async function runOnce(definition: unknown, input?: unknown) {
  const wf = await defineWorkflow(t.db, orgId, { name: 'wf', definition });
  const [run] = await startRuns(t.db, orgId, wf.id, [{ input }]);
  const job = await waitForJob(t.db, orgId, run!.id);
  const stream = await listStream(t.db, orgId, job, { limit: 1000 });
  return { job, stream };
}

describe('engine: enqueue → run → stream', () => {
  it('runs transform, log, noop and http steps in order, passing outputs forward', async () => {
    const { job, stream } = await runOnce(
      {
        steps: [
          { id: 'shape', type: 'transform', expression: '{ "id": input.patient, "n": input.n * 2 }' },
          { id: 'note', type: 'log', level: 'WARN', message: 'checked {{ steps.shape.id }} ({{ steps.shape.n }})' },
          { id: 'nothing', type: 'noop', name: 'Placeholder' },
          {
            id: 'call',
            type: 'http',
            method: 'POST',
            url: `${baseUrl}/patients/{{ steps.shape.id }}`,
            headers: { Authorization: 'Bearer {{ input.token }}' },
            body: { n: '{{ steps.shape.n }}', label: 'n={{ steps.shape.n }}' },
          },
          { id: 'final', type: 'transform', expression: '{ "status": steps.call.status, "echo": steps.call.body.echo }' },
        ],
      },
      { patient: 'p-17', n: 21, token: 'tok' },
    );
    expect(job.status).toBe('COMPLETED');
    expect(job.result).toEqual({ status: 200, echo: { n: 42, label: 'n=42' } });
    expect(job.stepsCompleted).toBe(5);
    expect(job.durationMs).toBeGreaterThanOrEqual(0);
    const call = seen.find((s) => s.url === '/patients/p-17');
    expect(call).toMatchObject({ method: 'POST', auth: 'Bearer tok' });
    expect(stream.map((r) => [r.kind, r.stepIndex])).toEqual([
      ['JOB_STARTED', null],
      ['STEP_STARTED', 0],
      ['STEP_COMPLETED', 0],
      ['STEP_STARTED', 1],
      ['LOG', 1],
      ['STEP_COMPLETED', 1],
      ['STEP_STARTED', 2],
      ['STEP_COMPLETED', 2],
      ['STEP_STARTED', 3],
      ['STEP_COMPLETED', 3],
      ['STEP_STARTED', 4],
      ['STEP_COMPLETED', 4],
      ['JOB_COMPLETED', null],
    ]);
    expect(stream.map((r) => r.seq)).toEqual(stream.map((_, i) => i + 1));
    const log = stream.find((r) => r.kind === 'LOG')!;
    expect(log).toMatchObject({ level: 'WARN', message: 'checked p-17 (42)' });
    expect(stream[2]!.data).toMatchObject({ output: { id: 'p-17', n: 42 } });
  });

  it('fails the job at a failing http step with a bounded, coded error and stops there', async () => {
    const { job, stream } = await runOnce({
      steps: [
        { id: 'first', type: 'noop' },
        { id: 'call', type: 'http', method: 'GET', url: `${baseUrl}/fail` },
        { id: 'never', type: 'log', message: 'must not run' },
      ],
    });
    expect(job.status).toBe('FAILED');
    expect(job.errorCode).toBe('HTTP_STATUS');
    expect(job.errorStep).toBe('call');
    expect(job.errorMessage).toContain('503');
    expect(job.stepsCompleted).toBe(1);
    const kinds = stream.map((r) => r.kind);
    expect(kinds).toEqual(['JOB_STARTED', 'STEP_STARTED', 'STEP_COMPLETED', 'STEP_STARTED', 'STEP_FAILED', 'JOB_FAILED']);
    const failed = stream.find((r) => r.kind === 'STEP_FAILED')!;
    expect(failed.level).toBe('ERROR');
    expect(failed.data).toMatchObject({ code: 'HTTP_STATUS', status: 503 });
  });

  it('accepts an expected non-2xx status and caps the captured body', async () => {
    const { job } = await runOnce({
      steps: [
        { id: 'a', type: 'http', method: 'GET', url: `${baseUrl}/fail`, expectStatus: [503] },
        { id: 'b', type: 'http', method: 'GET', url: `${baseUrl}/big` },
      ],
    });
    expect(job.status).toBe('COMPLETED');
    expect(job.result).toMatchObject({ status: 200, truncated: true });
    expect((job.result as { body: string }).body.length).toBe(1_000);
  });

  it('fails on a network error and on an expression error at run time', async () => {
    const net = await runOnce({ steps: [{ id: 'call', type: 'http', method: 'GET', url: 'http://127.0.0.1:1/x' }] });
    expect(net.job).toMatchObject({ status: 'FAILED', errorCode: 'HTTP_ERROR', errorStep: 'call' });
    const expr = await runOnce({ steps: [{ id: 't', type: 'transform', expression: '$error("boom")' }] });
    expect(expr.job).toMatchObject({ status: 'FAILED', errorCode: 'EXPRESSION_ERROR' });
    expect(expr.job.errorMessage).toContain('boom');
  });

  it('aborts a step that exceeds the step timeout', async () => {
    const slow = createServer(() => undefined); // never answers
    await new Promise<void>((r) => slow.listen(0, '127.0.0.1', r));
    const w = startWorker(t.db, { stepTimeoutMs: 200 });
    await worker.stop(); // only the short-timeout worker may take this job
    try {
      const { job } = await runOnce({
        steps: [{ id: 'hang', type: 'http', method: 'GET', url: `http://127.0.0.1:${(slow.address() as AddressInfo).port}/` }],
      });
      expect(job).toMatchObject({ status: 'FAILED', errorCode: 'STEP_TIMEOUT', errorStep: 'hang' });
    } finally {
      await w.stop();
      slow.closeAllConnections();
      slow.close();
      worker = startWorker(t.db, { httpMaxResponseBytes: 1_000 });
    }
  });
});

describe('enqueue', () => {
  it('concurrent runs with one new idempotency key create one job', async () => {
    const wf = await defineWorkflow(t.db, orgId, { name: 'idem', definition: { steps: [{ id: 'n', type: 'noop' }] } });
    const results = await Promise.all(
      Array.from({ length: 6 }, () => startRuns(t.db, orgId, wf.id, [{ idempotencyKey: 'order-77' }])),
    );
    const ids = new Set(results.map((r) => r[0]!.id));
    expect(ids.size).toBe(1);
    expect(results.filter((r) => r[0]!.created)).toHaveLength(1);
    const { rows } = await t.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM stepwise.jobs WHERE workflow_id = $1`, [wf.id]);
    expect(rows[0]!.n).toBe(1);
  });

  it('a key repeated inside one batch runs once; run numbers are consecutive per organization', async () => {
    const wf = await defineWorkflow(t.db, orgId, { name: 'batch', definition: { steps: [{ id: 'n', type: 'noop' }] } });
    const runs = await startRuns(t.db, orgId, wf.id, [{ idempotencyKey: 'k1' }, { idempotencyKey: 'k1' }, {}, {}]);
    expect(runs[0]!.id).toBe(runs[1]!.id);
    expect(runs.map((r) => r.created)).toEqual([true, false, true, true]);
    const numbers = [runs[0]!.runNumber, runs[2]!.runNumber, runs[3]!.runNumber];
    expect(numbers).toEqual([numbers[0], numbers[0]! + 1, numbers[0]! + 2]);
  });
});
