import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureStreamPartitions, migrate, PgliteDb, type Db } from '../../src/db/index.js';
import { defineWorkflow, startRuns } from '../../src/engine/index.js';
import { reconcileReadModel } from '../../src/lifecycle/index.js';
import { AGGREGATE_ALL_CLIENTS, AGGREGATE_ALL_INITIATORS, AGGREGATE_ALL_WORKFLOWS, pendingAggregateRows, rollUpAggregates } from '../../src/store/index.js';
import { backend, createTestDb, type TestDb } from '../helpers/db.js';
import { seedOrg, startWorker } from '../helpers/fixtures.js';
import { startTestServer, type TestServer } from '../helpers/http-server.js';
import { spawnWorkerProcess } from '../helpers/worker-process.js';

const LEASE_MS = 2_000;
const RUNS = 600;

/**
 * Finished jobs reach aggregate_metrics through an outbox (migration 0027):
 * the completing flush appends, a roll-up deletes and adds in one
 * transaction. Worker processes are killed with SIGKILL while they complete
 * jobs and roll them up; afterwards `reconcile` finds no drift (before and
 * after the last roll-up) and every job is counted exactly once. Each step
 * calls a local server that answers after 20 ms, and the killed workers run
 * 4 jobs at a time; each is killed once the server has answered a given
 * number of calls, with jobs in flight, flushes behind them and roll-ups
 * every 500 ms.
 */
describe('aggregate outbox under kill -9', () => {
  let srv: TestServer;
  let t: TestDb | undefined;
  let dataDir: string | undefined;

  beforeAll(async () => {
    srv = await startTestServer((_req, res) => {
      setTimeout(() => res.end('{}'), 20);
      return true;
    });
    if (backend === 'postgres') t = await createTestDb();
    else dataDir = await mkdtemp(join(tmpdir(), 'stepwise-outbox-crash-'));
  });
  afterAll(async () => {
    await srv?.close();
    await t?.close();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  async function openEmbedded(): Promise<Db> {
    const db = await PgliteDb.open({ dataDir: dataDir! });
    await migrate(db);
    await ensureStreamPartitions(db);
    return db;
  }

  const finished = async (db: Db, org: string) =>
    (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM stepwise.jobs WHERE organization_id = $1 AND status = 'COMPLETED'`, [org])).rows[0]!.n;

  it('counts every finished job exactly once after workers die mid-burst', async () => {
    let db: Db = t?.db ?? (await openEmbedded());
    const { organizationId } = await seedOrg(db);
    const wf = await defineWorkflow(db, organizationId, {
      name: 'burst',
      definition: { steps: [{ id: 'call', type: 'http', method: 'POST', url: `${srv.url}/work` }] },
    });
    await startRuns(db, organizationId, wf.id, Array.from({ length: RUNS }, (_, i) => ({ input: { i } })));

    const atKill: number[] = [];
    // Killed once the server has answered this many calls in all: mid-burst, whatever the machine's speed.
    for (const [i, calls] of [100, 250].entries()) {
      if (!t) await db.close(); // the worker process owns the embedded database now
      const child: ChildProcess = await spawnWorkerProcess({
        databaseUrl: t?.url,
        dataDir,
        leaseMs: LEASE_MS,
        workerId: `doomed-${i}`,
        env: { STEPWISE_WORKER_CONCURRENCY: '4' },
      });
      while ((srv.calls.get('/work') ?? 0) < calls) await sleep(10);
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      if (!t) db = await openEmbedded(); // takes over the dead process's stale lock
      atKill.push(await finished(db, organizationId));
      // Whatever the kill interrupted, the live view counts each finished job once.
      expect((await reconcileReadModel(db, { organizationId })).clean).toBe(true);
    }
    expect(atKill[0]).toBeGreaterThan(0);
    expect(atKill[1]).toBeGreaterThan(atKill[0]!);
    expect(atKill[1]).toBeLessThan(RUNS);

    const rescuer = startWorker(db, { leaseMs: LEASE_MS, pollIntervalMs: 100 }, 'rescuer');
    try {
      for (let waited = 0; (await finished(db, organizationId)) < RUNS; waited += 100) {
        if (waited > 60_000) throw new Error(`only ${await finished(db, organizationId)} of ${RUNS} runs finished`);
        await sleep(100);
      }
    } finally {
      await rescuer.stop();
    }
    expect((await reconcileReadModel(db, { organizationId })).clean).toBe(true);
    await rollUpAggregates(db, { wait: true });
    expect(await pendingAggregateRows(db)).toBe(0);
    // The table alone now: every run once, in its organization's "all" row of the month.
    const { rows } = await db.query<{ n: number }>(
      `SELECT sum(total_count)::int AS n FROM stepwise.aggregate_metrics
        WHERE organization_id = $1 AND period = 'MONTH' AND workflow_id = $2 AND client_id = $3 AND initiator_type = $4`,
      [organizationId, AGGREGATE_ALL_WORKFLOWS, AGGREGATE_ALL_CLIENTS, AGGREGATE_ALL_INITIATORS],
    );
    expect(rows[0]!.n).toBe(RUNS);
    expect((await reconcileReadModel(db, { organizationId })).clean).toBe(true);
    if (!t) await db.close();
  }, 120_000);
});
