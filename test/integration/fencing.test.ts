import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defineWorkflow, startRuns, Worker } from '../../src/engine/index.js';
import { sendSignal } from '../../src/engine/control.js';
import { DatabaseError } from '../../src/errors/index.js';
import { findJob, listStream, type Job } from '../../src/store/index.js';
import { createTestDb, type TestDb } from '../helpers/db.js';
import { seedOrg, silentLogger, startWorker, waitForJob, workerConfig } from '../helpers/fixtures.js';
import { gatedDb } from '../helpers/gated-db.js';
import { startTestServer, type TestServer } from '../helpers/http-server.js';

let t: TestDb;
let orgId: string;
let srv: TestServer;

beforeAll(async () => {
  t = await createTestDb();
  orgId = (await seedOrg(t.db)).organizationId;
  srv = await startTestServer(() => false);
});

afterAll(async () => {
  await srv?.close();
  await t?.close();
});

async function until<T>(what: string, probe: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function status(jobId: string): Promise<Job> {
  return (await findJob(t.db, orgId, jobId))!;
}

async function checkpointRow(jobId: string) {
  const { rows } = await t.db.query<{ next_step: number; outputs: unknown; state: unknown; updated_at: Date }>(
    `SELECT next_step, outputs, state, updated_at FROM stepwise.execution_checkpoints WHERE job_id = $1`,
    [jobId],
  );
  return rows[0];
}

async function streamOf(jobId: string) {
  const job = await status(jobId);
  return listStream(t.db, orgId, job, { limit: 1000 });
}

function expectContiguous(stream: { seq: number }[]): void {
  expect(stream.map((r) => r.seq)).toEqual(stream.map((_, i) => i + 1));
}

describe('a worker that lost its lease writes nothing more', () => {
  it('drops the old owner’s rows, checkpoint and signal consumption; side effects run once', async () => {
    const tag = `f${Date.now()}`;
    const wf = await defineWorkflow(t.db, orgId, {
      name: 'fenced',
      definition: {
        steps: [
          { id: 'a', type: 'http', method: 'GET', url: `${srv.url}/count/${tag}-a` },
          { id: 'go', type: 'wait', signal: 'go' },
          { id: 'b', type: 'transform', expression: '{ "seen": steps.go.n }' },
          { id: 'c', type: 'http', method: 'GET', url: `${srv.url}/count/${tag}-c` },
          { id: 'finish', type: 'wait', signal: 'finish' },
          { id: 'd', type: 'transform', expression: '{ "b": steps.b.seen, "c": steps.c.status }' },
        ],
      },
    });
    let signalRead = false;
    // Worker A: its lease is long enough that no heartbeat renews it during the test.
    const gate = gatedDb(t.db, (text) => {
      if (text.includes('FROM stepwise.job_signals')) signalRead = true;
    });
    const a = new Worker(gate.db, workerConfig({ leaseMs: 60_000 }), silentLogger, 'worker-a');
    await a.start();
    let b: Worker | undefined;
    try {
      const [run] = await startRuns(t.db, orgId, wf.id, [{}]);
      const jobId = run!.id;
      // A runs step a (committed) and waits for "go".
      await until('the job to wait for go', async () => (await status(jobId)).status === 'WAITING');
      expect(srv.calls.get(`/count/${tag}-a`)).toBe(1);

      // A pauses before its next flush; meanwhile "go" arrives, and A reads it
      // and runs on in memory up to step c, whose STEP_STARTED must commit first.
      signalRead = false;
      gate.close();
      await sendSignal(t.db, orgId, jobId, 'go', { n: 7 });
      await until('A to read the signal', () => signalRead);
      await until('A to block at its flush', () => gate.waiting > 0);

      // The lease is taken away: it expires, and worker B claims the job.
      await t.db.query(`UPDATE stepwise.job_queue SET locked_until = now() - interval '1 second' WHERE job_id = $1`, [jobId]);
      b = startWorker(t.db, { pollIntervalMs: 20 }, 'worker-b');
      // B resumes at "go" (A's consumption never committed), runs b and c, and waits for "finish".
      await until('B to wait for finish', async () => (await checkpointRow(jobId))?.next_step === 4 && (await status(jobId)).status === 'WAITING');
      const before = await checkpointRow(jobId);
      const streamBefore = await streamOf(jobId);

      // A wakes up and flushes: everything of the job is dropped, and its run stops.
      gate.open();
      await until('A to drop the job', () => a.stats.fencedJobs === 1 && a.activeCount === 0);
      expect(a.stats.fencedRows).toBeGreaterThan(0);
      expect(await checkpointRow(jobId)).toEqual(before);
      expect(await streamOf(jobId)).toEqual(streamBefore);
      expect(srv.calls.get(`/count/${tag}-c`)).toBe(1);

      await sendSignal(t.db, orgId, jobId, 'finish', null);
      const job = await waitForJob(t.db, orgId, jobId);
      expect(job.status).toBe('COMPLETED');
      expect(job.result).toEqual({ b: 7, c: 200 });
      const stream = await streamOf(jobId);
      expectContiguous(stream);
      expect(stream.filter((r) => r.kind === 'SIGNAL_RECEIVED').map((r) => r.message)).toEqual(['go', 'finish']);
      // Each side-effecting step started once and ran once.
      expect(stream.filter((r) => r.kind === 'STEP_STARTED').map((r) => r.stepIndex)).toEqual([0, 1, 2, 3, 4, 5]);
      expect(srv.calls.get(`/count/${tag}-a`)).toBe(1);
      expect(srv.calls.get(`/count/${tag}-c`)).toBe(1);
      const { rows } = await t.db.query<{ name: string; consumed: boolean }>(
        `SELECT name, consumed_at IS NOT NULL AS consumed FROM stepwise.job_signals WHERE job_id = $1 ORDER BY created_at`,
        [jobId],
      );
      expect(rows).toEqual([
        { name: 'go', consumed: true },
        { name: 'finish', consumed: true },
      ]);
    } finally {
      gate.open();
      await b?.stop();
      await a.stop();
    }
  });

  it('hands a claimed batch back at once when its definitions cannot be read', async () => {
    const wf = await defineWorkflow(t.db, orgId, { name: 'handed back', definition: { steps: [{ id: 'n', type: 'noop' }] } });
    let failures = 1;
    const flaky = new Proxy(t.db, {
      get(target, prop, receiver) {
        if (prop === 'query') {
          return async (text: string, params?: readonly unknown[]) => {
            if (failures > 0 && text.includes('workflow_versions')) {
              failures--;
              throw new DatabaseError('connection lost while reading definitions');
            }
            return target.query(text, params);
          };
        }
        const value: unknown = Reflect.get(target, prop, receiver);
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    // One worker alone: it never reclaims its own expired lease, so without
    // the hand-back this job would wait for another worker for ever.
    const w = startWorker(flaky, { leaseMs: 60_000 }, 'worker-flaky');
    try {
      const [run] = await startRuns(t.db, orgId, wf.id, [{}]);
      const job = await waitForJob(t.db, orgId, run!.id);
      expect(failures).toBe(0);
      expect(job.status).toBe('COMPLETED');
    } finally {
      await w.stop();
    }
  });
});
