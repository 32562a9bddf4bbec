import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureStreamPartitions, migrate, PgliteDb, type Db } from '../../src/db/index.js';
import { defineWorkflow, startRuns } from '../../src/engine/index.js';
import { findJob, listStream } from '../../src/store/index.js';
import { backend, createTestDb, type TestDb } from '../helpers/db.js';
import { seedOrg, startWorker, waitForJob } from '../helpers/fixtures.js';
import { startTestServer, type TestServer } from '../helpers/http-server.js';
import { spawnWorkerProcess } from '../helpers/worker-process.js';

const LEASE_MS = 3_000;

/**
 * kill -9 of a worker process in the middle of a multi-step workflow whose
 * steps call a local server that counts completed calls: after the lease
 * expires another worker resumes the job from its checkpoint, and every step
 * has completed exactly once. On PGlite the killed process owned the data
 * directory, so this also shows that committed work survives the kill.
 */
describe('crash and takeover', () => {
  let srv: TestServer;
  let held: (() => void) | undefined;
  let firstHold: Promise<void>;
  let holdSeen: () => void;
  let t: TestDb | undefined;
  let dataDir: string | undefined;

  beforeAll(async () => {
    firstHold = new Promise((r) => (holdSeen = r));
    let holds = 0;
    srv = await startTestServer((req, res) => {
      if (req.url === '/hold' && holds++ === 0) {
        held = () => res.end();
        holdSeen();
        return true; // never answered: its worker is killed while waiting
      }
      return false;
    });
    if (backend === 'postgres') t = await createTestDb();
    else dataDir = await mkdtemp(join(tmpdir(), 'stepwise-crash-'));
  });
  afterAll(async () => {
    held?.();
    await srv?.close();
    await t?.close();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  function spawnWorker(): Promise<ChildProcess> {
    return spawnWorkerProcess({ databaseUrl: t?.url, dataDir, leaseMs: LEASE_MS, workerId: 'doomed' });
  }


  async function openEmbedded(): Promise<Db> {
    const db = await PgliteDb.open({ dataDir: dataDir! });
    await migrate(db);
    await ensureStreamPartitions(db);
    return db;
  }

  it('a SIGKILLed worker’s job resumes elsewhere and every step completes exactly once', async () => {
    let db: Db = t?.db ?? (await openEmbedded());
    const { organizationId } = await seedOrg(db);
    const wf = await defineWorkflow(db, organizationId, {
      name: 'crash',
      definition: {
        steps: [
          { id: 'a', type: 'http', method: 'POST', url: `${srv.url}/a` },
          { id: 'b', type: 'http', method: 'POST', url: `${srv.url}/b` },
          { id: 'note', type: 'log', message: 'between' },
          { id: 'c', type: 'http', method: 'POST', url: `${srv.url}/hold`, timeoutMs: 60_000 },
          { id: 'd', type: 'http', method: 'POST', url: `${srv.url}/d` },
        ],
      },
    });
    const [run] = await startRuns(db, organizationId, wf.id, [{}]);
    if (!t) await db.close(); // the worker process owns the embedded database now

    const child = await spawnWorker();
    await firstHold;
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));

    if (!t) db = await openEmbedded(); // takes over the dead process's stale lock
    const rescuer = startWorker(db, { leaseMs: LEASE_MS, pollIntervalMs: 100 }, 'rescuer');
    try {
      const job = await waitForJob(db, organizationId, run!.id, 30_000);
      expect(job).toMatchObject({ status: 'COMPLETED', attempts: 2, stepsCompleted: 5 });
      expect(Object.fromEntries(srv.calls)).toEqual({ '/a': 1, '/b': 1, '/hold': 1, '/d': 1 });
      const stream = await listStream(db, organizationId, job, { limit: 200 });
      expect(stream.map((s) => s.seq)).toEqual(stream.map((_, i) => i + 1));
      // Resumed at c, or at the log step before it if that step's checkpoint
      // had not been flushed yet (only side-effect steps wait for theirs).
      const resumed = stream.filter((s) => s.kind === 'JOB_STARTED');
      expect(resumed).toHaveLength(2);
      expect((resumed[1]!.data as { resumeAt: number }).resumeAt).toBeGreaterThanOrEqual(2);
      expect(await findJob(db, organizationId, run!.id)).toMatchObject({ status: 'COMPLETED' });
    } finally {
      await rescuer.stop();
      if (!t) await db.close();
    }
  });
});
