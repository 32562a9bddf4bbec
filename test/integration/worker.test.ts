import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresDb, type Db } from '../../src/db/index.js';
import { defineWorkflow, startRuns, type Worker } from '../../src/engine/index.js';
import { claimJobs, findJob, listStream, markJobsRunning, renewLeases } from '../../src/store/index.js';
import { backend, createTestDb, type TestDb } from '../helpers/db.js';
import { seedOrg, startWorker, waitForJob } from '../helpers/fixtures.js';

let t: TestDb;
let orgId: string;
let server: Server;
let baseUrl: string;
const hits = new Map<string, number>();
let holdRequests = false;
const held: (() => void)[] = [];

beforeAll(async () => {
  t = await createTestDb();
  orgId = (await seedOrg(t.db)).organizationId;
  server = createServer((req, res) => {
    const answer = () => {
      hits.set(req.url!, (hits.get(req.url!) ?? 0) + 1);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    };
    if (holdRequests) held.push(answer);
    else answer();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server?.closeAllConnections();
  server?.close();
  await t?.close();
});

async function waitAll(ids: string[]): Promise<void> {
  for (const id of ids) await waitForJob(t.db, orgId, id, 60_000);
}

describe('workers', () => {
  it('two workers (separate pools on the server) never run the same job twice', async () => {
    hits.clear();
    const wf = await defineWorkflow(t.db, orgId, {
      name: 'hit',
      definition: { steps: [{ id: 'hit', type: 'http', method: 'POST', url: `${baseUrl}/hit/{{ input.n }}` }] },
    });
    const runs = await startRuns(t.db, orgId, wf.id, Array.from({ length: 300 }, (_, n) => ({ input: { n } })));
    // On the server each worker gets its own pool, as separate processes would.
    const dbs: Db[] = t.url ? [new PostgresDb(t.url, 4), new PostgresDb(t.url, 4)] : [t.db, t.db];
    // A lease far longer than the run: this test is about two claimers sharing one queue, not
    // takeover, and on a machine loaded far past its cores a 5 s lease could lapse legitimately.
    const workers = dbs.map((db, i) => startWorker(db, { concurrency: 16, claimBatchSize: 8, leaseMs: 60_000 }, `w${i}`));
    try {
      await waitAll(runs.map((r) => r.id));
    } finally {
      await Promise.all(workers.map((w) => w.stop()));
      if (t.url) await Promise.all(dbs.map((db) => db.close()));
    }
    expect(hits.size).toBe(300);
    expect([...hits.values()].every((n) => n === 1)).toBe(true);
    const { rows } = await t.db.query<{ status: string; attempts: number; n: number }>(
      `SELECT status, attempts, count(*)::int AS n FROM stepwise.jobs WHERE workflow_id = $1 GROUP BY 1, 2`,
      [wf.id],
    );
    expect(rows).toEqual([{ status: 'COMPLETED', attempts: 1, n: 300 }]);
    const queue = await t.db.query<{ n: number }>('SELECT count(*)::int AS n FROM stepwise.job_queue');
    expect(queue.rows[0]!.n).toBe(0);
  });

  it('graceful stop hands an in-flight job back, and another worker finishes it', async () => {
    const wf = await defineWorkflow(t.db, orgId, {
      name: 'slow',
      definition: {
        steps: [
          { id: 'before', type: 'log', message: 'starting' },
          { id: 'slow', type: 'http', method: 'GET', url: `${baseUrl}/slow` },
        ],
      },
    });
    holdRequests = true;
    const first = startWorker(t.db, { shutdownGraceMs: 100 }, 'first');
    const [run] = await startRuns(t.db, orgId, wf.id, [{}]);
    const deadline = Date.now() + 10_000;
    while (held.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(held.length).toBe(1);
    await first.stop();
    const { rows } = await t.db.query<{ status: string; locked_by: string | null }>(
      `SELECT j.status, q.locked_by FROM stepwise.jobs j JOIN stepwise.job_queue q ON q.job_id = j.id WHERE j.id = $1`,
      [run!.id],
    );
    expect(rows).toEqual([{ status: 'PENDING', locked_by: null }]);
    holdRequests = false;
    held.splice(0).forEach((answer) => answer());
    const second = startWorker(t.db, {}, 'second');
    try {
      const job = await waitForJob(t.db, orgId, run!.id);
      expect(job).toMatchObject({ status: 'COMPLETED', attempts: 2 });
      const stream = await listStream(t.db, orgId, job, { limit: 100 });
      expect(stream.map((r) => r.seq)).toEqual(stream.map((_, i) => i + 1));
      expect(stream.map((r) => r.kind)).toContain('JOB_HANDED_BACK');
      expect(stream.filter((r) => r.kind === 'JOB_STARTED')).toHaveLength(2);
    } finally {
      await second.stop();
    }
  });

  it("takes over a job whose worker died once its lease expires, continuing the stream's sequence", async () => {
    const wf = await defineWorkflow(t.db, orgId, { name: 'orphan', definition: { steps: [{ id: 'n', type: 'noop' }] } });
    const [run] = await startRuns(t.db, orgId, wf.id, [{}]);
    // A "worker" claims with a 1 s lease and dies: it never heartbeats or completes.
    const claimed = await claimJobs(t.db, 'dead-worker', 10, 1_000);
    expect(claimed.map((c) => c.id)).toContain(run!.id);
    // What its first flush would have written: the start and a stream row.
    const mine = claimed.find((c) => c.id === run!.id)!;
    await t.db.transaction(async (tx) => {
      await markJobsRunning(tx, [{ jobId: mine.id, attempts: mine.attempts, startedAt: mine.startedAt, deadlineAt: null }]);
      await tx.query(
        `INSERT INTO stepwise.execution_log (organization_id, job_id, ts, seq, kind, level, message)
         VALUES ($1, $2, now(), 1, 1, 3, 'run started (dead worker)')`,
        [orgId, run!.id],
      );
    });
    expect((await findJob(t.db, orgId, run!.id))!.status).toBe('RUNNING');
    const rescuer: Worker = startWorker(t.db, { pollIntervalMs: 100 }, 'rescuer');
    try {
      const job = await waitForJob(t.db, orgId, run!.id, 20_000);
      expect(job).toMatchObject({ status: 'COMPLETED', attempts: 2 });
      const stream = await listStream(t.db, orgId, job, { limit: 100 });
      expect(stream[0]!.message).toBe('run started (dead worker)');
      expect(stream.map((r) => r.seq)).toEqual(stream.map((_, i) => i + 1));
    } finally {
      await rescuer.stop();
    }
  });

  it('a heartbeat tells a lease held by another worker from a job that has ended (its queue row gone)', async () => {
    const wf = await defineWorkflow(t.db, orgId, { name: 'heartbeat', definition: { steps: [{ id: 'n', type: 'noop' }] } });
    const runs = await startRuns(t.db, orgId, wf.id, [{}, {}]);
    const ids = runs.map((r) => r.id);
    const claimed = (await claimJobs(t.db, 'hb-a', 50, 60_000)).map((c) => c.id);
    expect(claimed).toEqual(expect.arrayContaining(ids));
    // Another worker holds neither: not held, and not gone either (the rows are there, hb-a's).
    expect(await renewLeases(t.db, 'hb-b', ids, 60_000)).toEqual({ held: [], cancelled: [], gone: [] });
    // The second job ends (as hb-a's own flush of its completion would): its row goes.
    await t.db.query(`DELETE FROM stepwise.job_queue WHERE job_id = $1`, [ids[1]]);
    expect(await renewLeases(t.db, 'hb-a', ids, 60_000)).toEqual({ held: [ids[0]], cancelled: [], gone: [ids[1]] });
    await t.db.query(`DELETE FROM stepwise.job_queue WHERE job_id = ANY($1::uuid[])`, [claimed]);
  });

  // Server only: on PGlite's one connection the heartbeat cannot run while a flush holds a row.
  it.skipIf(backend !== 'postgres')('a heartbeat that waited for its own flush to delete a job\'s row calls the job gone, not lost (server)', async () => {
    const wf = await defineWorkflow(t.db, orgId, { name: 'heartbeat-race', definition: { steps: [{ id: 'n', type: 'noop' }] } });
    const [run] = await startRuns(t.db, orgId, wf.id, [{}]);
    const claimed = (await claimJobs(t.db, 'hb-race', 50, 60_000)).map((c) => c.id);
    expect(claimed).toContain(run!.id);
    let heartbeat!: ReturnType<typeof renewLeases>;
    // The flush that completes the job: its DELETE of the queue row holds the row's lock until COMMIT.
    await t.db.transaction(async (flush) => {
      await flush.query('DELETE FROM stepwise.job_queue WHERE job_id = $1', [run!.id]);
      heartbeat = renewLeases(t.db, 'hb-race', [run!.id], 60_000);
      // Commit only once the heartbeat's statement waits for that lock: its snapshot then predates the delete.
      for (let i = 0; ; i++) {
        const { rows } = await t.db.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM pg_stat_activity
            WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%WITH mine AS%'`,
        );
        if (rows[0]!.n > 0) break;
        if (i > 2_000) throw new Error('the heartbeat never waited for the row lock');
        await new Promise((r) => setTimeout(r, 5));
      }
    });
    expect(await heartbeat).toEqual({ held: [], cancelled: [], gone: [run!.id] });
  });
});
