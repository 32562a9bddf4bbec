import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ensureStreamPartitions, migrate, PgliteDb, type Db } from '../../src/db/index.js';
import { defineWorkflow, startRuns } from '../../src/engine/index.js';
import { listStream } from '../../src/store/index.js';
import { backend, createTestDb, type TestDb } from '../helpers/db.js';
import { seedOrg, startWorker, waitForJob } from '../helpers/fixtures.js';
import { startTestServer, type TestServer } from '../helpers/http-server.js';
import { spawnWorkerProcess } from '../helpers/worker-process.js';

const LEASE_MS = 3_000;

/**
 * kill -9 of a worker process inside blocks: in the middle of a forEach
 * running five iterations at once, and while a parent job waits on the
 * sub-workflow it just started. After the lease expires another worker
 * resumes; the local server counts every completed call.
 */
describe('crash inside blocks', () => {
  let srv: TestServer;
  let holdSeen: (() => void) | undefined;
  let released: (() => void)[] = [];
  const holds = new Map<string, number>();
  let t: TestDb | undefined;
  let dataDir: string | undefined;

  beforeAll(async () => {
    srv = await startTestServer((req, res) => {
      // The first call of a /hold/… path is never answered: its worker is killed while waiting.
      if (req.url!.startsWith('/hold/')) {
        const n = holds.get(req.url!) ?? 0;
        holds.set(req.url!, n + 1);
        if (n === 0) {
          released.push(() => res.end());
          holdSeen?.();
          return true;
        }
      }
      return false;
    });
    if (backend === 'postgres') t = await createTestDb();
  });
  afterEach(async () => {
    for (const r of released.splice(0)) r();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
    dataDir = undefined;
  });
  afterAll(async () => {
    await srv?.close();
    await t?.close();
  });

  function spawnWorker(): Promise<ChildProcess> {
    return spawnWorkerProcess({ databaseUrl: t?.url, dataDir, leaseMs: LEASE_MS, workerId: 'doomed' });
  }


  async function openDb(): Promise<Db> {
    if (t) return t.db;
    dataDir ??= await mkdtemp(join(tmpdir(), 'stepwise-crash-blocks-'));
    const db = await PgliteDb.open({ dataDir });
    await migrate(db);
    await ensureStreamPartitions(db);
    return db;
  }

  async function until(what: string, probe: () => Promise<boolean>): Promise<void> {
    const deadline = Date.now() + 30_000;
    while (!(await probe())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Kill the worker process once `ready` holds (the embedded database is only readable by its owner, so PGlite waits on the server's counts alone). */
  async function killWhen(child: ChildProcess, ready: () => Promise<boolean>): Promise<void> {
    await until('the moment to kill', ready);
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
  }

  it('a forEach with concurrency 5: every iteration’s side effect exactly once', async () => {
    let db = await openDb();
    const { organizationId } = await seedOrg(db, 'crash-loop');
    const tag = `l${Date.now()}`;
    const wf = await defineWorkflow(db, organizationId, {
      name: 'crash loop',
      definition: {
        steps: [
          {
            id: 'inv',
            type: 'forEach',
            items: '[1..12]',
            concurrency: 5,
            steps: [
              // Item 12 is held: the worker dies with it in flight, after the others were recorded.
              { id: 'charge', type: 'http', method: 'POST', url: `${srv.url}/{{ item = 12 ? 'hold' : 'count' }}/${tag}-{{ item }}`, timeoutMs: 60_000 },
              { id: 'note', type: 'transform', expression: 'item * 10' },
            ],
          },
        ],
      },
    });
    const [run] = await startRuns(db, organizationId, wf.id, [{}]);
    if (!t) await db.close(); // the worker process owns the embedded database now
    const child = await spawnWorker();
    const others = Array.from({ length: 11 }, (_, i) => `/count/${tag}-${i + 1}`);
    await killWhen(child, async () => {
      if (holds.get(`/hold/${tag}-12`) !== 1 || !others.every((p) => srv.calls.get(p) === 1)) return false;
      if (!t) {
        // The embedded database belongs to the worker process, so its commits cannot be read from
        // here: give the last answered calls' flushes (2 ms apart) ample time to commit.
        await new Promise((r) => setTimeout(r, 500));
        return true;
      }
      // On the server, also wait until their outcomes are committed (the iterations' rows).
      const { rows } = await t.db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM stepwise.execution_step_results WHERE job_id = $1 AND path LIKE 'inv[%]' AND path NOT LIKE '%.%' AND status = 3`,
        [run!.id],
      );
      return rows[0]!.n === 11;
    });
    db = t ? t.db : await openDb();
    const rescuer = startWorker(db, { leaseMs: LEASE_MS, pollIntervalMs: 100 }, 'rescuer');
    try {
      const job = await waitForJob(db, organizationId, run!.id, 30_000);
      expect(job.status).toBe('COMPLETED');
      expect(job.result).toEqual(Array.from({ length: 12 }, (_, i) => (i + 1) * 10));
      for (const p of others) expect(srv.calls.get(p)).toBe(1);
      expect(srv.calls.get(`/hold/${tag}-12`)).toBe(1);
      const stream = await listStream(db, organizationId, job, { limit: 2000 });
      expect(stream.map((s) => s.seq)).toEqual(stream.map((_, i) => i + 1));
    } finally {
      await rescuer.stop();
      if (!t) await db.close();
    }
  });

  it('a parent killed while its sub-workflow runs is taken over, and there is one child', async () => {
    let db = await openDb();
    const { organizationId } = await seedOrg(db, 'crash-parent');
    const tag = `p${Date.now()}`;
    const childWf = await defineWorkflow(db, organizationId, {
      name: 'slow child',
      definition: { steps: [{ id: 'call', type: 'http', method: 'POST', url: `${srv.url}/hold/${tag}`, timeoutMs: 60_000 }, { id: 'r', type: 'transform', expression: '"done"' }] },
    });
    const parentWf = await defineWorkflow(db, organizationId, {
      name: 'parent',
      definition: { steps: [{ id: 'kid', type: 'workflow', workflowId: childWf.id }, { id: 'after', type: 'transform', expression: 'steps.kid' }] },
    });
    const [run] = await startRuns(db, organizationId, parentWf.id, [{}]);
    if (!t) await db.close();
    const child = await spawnWorker();
    // The child's first step is in flight: the parent has started it, and waits (or is about to).
    await killWhen(child, async () => holds.get(`/hold/${tag}`) === 1);
    db = t ? t.db : await openDb();
    const rescuer = startWorker(db, { leaseMs: LEASE_MS, pollIntervalMs: 100 }, 'rescuer');
    try {
      const job = await waitForJob(db, organizationId, run!.id, 30_000);
      expect(job).toMatchObject({ status: 'COMPLETED', result: 'done' });
      const { rows } = await db.query<{ id: string; status: string }>(`SELECT id, status FROM stepwise.jobs WHERE parent_job_id = $1`, [run!.id]);
      expect(rows).toEqual([{ id: expect.any(String), status: 'COMPLETED' }]);
      expect(srv.calls.get(`/hold/${tag}`)).toBe(1);
    } finally {
      await rescuer.stop();
      if (!t) await db.close();
    }
  });
});
