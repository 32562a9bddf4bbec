import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defineWorkflow, startRuns } from '../../src/engine/index.js';
import { STREAM_KINDS } from '../../src/store/stream-codes.js';
import { backend, createTestDb, type TestDb } from '../helpers/db.js';
import { seedOrg } from '../helpers/fixtures.js';
import { startTestServer, type TestServer } from '../helpers/http-server.js';
import { LOCAL_TEST_EGRESS } from '../helpers/local-egress.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Runs per organization, enqueued in this order: the biggest backlog first, so a FIFO queue would serve the smallest last. */
const TENANTS = [
  { name: 'big', runs: 6_000 },
  { name: 'medium', runs: 3_000 },
  { name: 'small', runs: 1_000 },
] as const;
const TOTAL_RUNS = TENANTS.reduce((n, t) => n + t.runs, 0);
const WORKERS = 4;
const STEPS = 5;
const ENQUEUE_BATCH = 1_000;

/**
 * The share of claims each organization must get while all of them have
 * runnable work. The fair claim splits every batch into equal shares
 * (store/claim-fairness.ts), so with three organizations each gets about a
 * third; a FIFO queue gives the organization enqueued last nothing until
 * the others' backlogs are gone (checked below on this run's own claims).
 */
const MIN_CONTENDED_SHARE = 0.25;

/** One `stepwise worker` process and what it logged (JSON lines on stdout at LOG_LEVEL=warn). */
interface WorkerProcess {
  child: ChildProcess;
  logs: Record<string, unknown>[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** The production command, `stepwise worker` (src/cli/main.ts through tsx); resolves once it says it runs. */
function spawnStepwiseWorker(databaseUrl: string, dataDir: string): Promise<WorkerProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'worker'], {
    cwd: ROOT,
    env: {
      ...process.env,
      DATABASE_URL: databaseUrl,
      STEPWISE_DATA_DIR: dataDir,
      LOG_LEVEL: 'warn',
      // As the other process tests: records land within milliseconds, not after the 5 ms default.
      STEPWISE_FLUSH_INTERVAL_MS: '2',
      // Four processes beside other test files on one server: 4 connections each (and their LISTEN) is plenty for one claim loop, flushes and heartbeats.
      STEPWISE_DB_POOL_SIZE: '4',
      // The http step calls this test's server on 127.0.0.1, which the egress policy refuses unless named.
      STEPWISE_EGRESS_ALLOW: LOCAL_TEST_EGRESS,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Record<string, unknown>[] = [];
  let out = '';
  let err = '';
  // 'close', not 'exit': by then its stdout has been read to the end, last log lines included.
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once('close', (code, signal) => r({ code, signal })));
  return new Promise((resolve, reject) => {
    child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      let nl: number;
      while ((nl = out.indexOf('\n')) >= 0) {
        const line = out.slice(0, nl);
        out = out.slice(nl + 1);
        if (line.startsWith('{')) logs.push(JSON.parse(line) as Record<string, unknown>);
        else if (/^Stepwise worker .* running/.test(line)) resolve({ child, logs, exited });
      }
    });
    void exited.then(({ code }) => reject(new Error(`stepwise worker exited ${code} before it ran: ${err}`)));
  });
}

interface ClaimedRun {
  org: string;
  /** When its enqueue had committed (the database clock after startRuns returned), ms. */
  visibleAt: number;
  /** When a worker claimed it (jobs.started_at: the claim statement's now()), ms. */
  claimedAt: number;
  /** Its place in the queue's FIFO order (enqueue order). */
  order: number;
}

/** Count of sorted `values` that are <= x (or < x when `strict`). */
function countUpTo(values: number[], x: number, strict: boolean): number {
  let lo = 0;
  let hi = values.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (strict ? values[mid]! < x : values[mid]! <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * The claims made while EVERY organization had runnable work, and each
 * organization's share of them. An organization has runnable work at the
 * instant of a claim when more of its runs were visible by then than had
 * been claimed before it (the claimed run itself counts for its own
 * organization). Read from the runs alone, so the result does not depend on
 * how fast enqueueing was next to the workers.
 */
function contendedShares(runs: ClaimedRun[], orgs: string[]): { claims: number; share: Map<string, number>; smallServed: number } {
  const visible = new Map(orgs.map((o) => [o, runs.filter((r) => r.org === o).map((r) => r.visibleAt).sort((a, b) => a - b)]));
  const claimed = new Map(orgs.map((o) => [o, runs.filter((r) => r.org === o).map((r) => r.claimedAt).sort((a, b) => a - b)]));
  const runnableAt = (o: string, t: number) => countUpTo(visible.get(o)!, t, false) > countUpTo(claimed.get(o)!, t, true);
  const counts = new Map(orgs.map((o) => [o, 0]));
  let claims = 0;
  for (const r of runs) {
    if (!orgs.every((o) => runnableAt(o, r.claimedAt))) continue;
    claims++;
    counts.set(r.org, counts.get(r.org)! + 1);
  }
  const smallest = orgs[orgs.length - 1]!;
  return { claims, share: new Map(orgs.map((o) => [o, claims === 0 ? 0 : counts.get(o)! / claims])), smallServed: counts.get(smallest)! };
}

/**
 * What a FIFO queue would have done at the same claim instants: the k-th
 * claim takes the k-th run in enqueue order, whatever its organization
 * (runs became visible in enqueue order, so that run was there to take).
 */
function fifoReplay(runs: ClaimedRun[]): ClaimedRun[] {
  const instants = runs.map((r) => r.claimedAt).sort((a, b) => a - b);
  return [...runs].sort((a, b) => a.order - b.order).map((r, k) => ({ ...r, claimedAt: instants[k]! }));
}

/**
 * Four `stepwise worker` processes on one server and 10,000 runs of a 5-step
 * workflow from three organizations (6,000 / 3,000 / 1,000): every run
 * completes, every step runs exactly once, no lease is lost, and while all
 * three organizations have work each gets a fair share of the claims.
 */
describe.skipIf(backend !== 'postgres')('many worker processes (server only: PGlite is one process by design, and its data directory belongs to one process)', () => {
  let t: TestDb;
  let srv: TestServer;
  let dataDir: string;
  const workers: WorkerProcess[] = [];

  beforeAll(async () => {
    t = await createTestDb();
    srv = await startTestServer(() => false);
    dataDir = await mkdtemp(join(tmpdir(), 'stepwise-many-workers-'));
  });

  afterAll(async () => {
    for (const w of workers) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
    await srv?.close();
    await t?.close();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('runs every step of 10,000 runs exactly once, loses none, and keeps the organizations fair', { timeout: 300_000 }, async () => {
    const db = t.db;
    const tenants = [];
    for (const spec of TENANTS) {
      const { organizationId } = await seedOrg(db, spec.name);
      const wf = await defineWorkflow(db, organizationId, {
        name: `${spec.name} five steps`,
        definition: {
          steps: [
            { id: 'shape', type: 'transform', expression: '{ "key": input.key, "double": input.n * 2 }' },
            { id: 'call', type: 'http', method: 'POST', url: `${srv.url}/hit/{{ steps.shape.key }}`, body: { n: '{{ input.n }}' } },
            { id: 'note', type: 'log', message: 'called for {{ steps.shape.key }}: {{ steps.call.status }}' },
            { id: 'check', type: 'transform', expression: '{ "path": steps.call.body.path, "double": steps.shape.double }' },
            { id: 'result', type: 'transform', expression: '{ "key": steps.shape.key, "ok": steps.check.path = "/hit/" & steps.shape.key and steps.check.double = input.n * 2 }' },
          ],
        },
      });
      tenants.push({ ...spec, organizationId, workflowId: wf.id });
    }

    // The workers run before anything is enqueued, as in production.
    for (let i = 0; i < WORKERS; i++) workers.push(await spawnStepwiseWorker(t.url!, dataDir));

    const visibleAt = new Map<string, number>();
    const order = new Map<string, number>();
    for (const tenant of tenants) {
      for (let done = 0; done < tenant.runs; done += ENQUEUE_BATCH) {
        const n = Math.min(ENQUEUE_BATCH, tenant.runs - done);
        const jobs = await startRuns(
          db,
          tenant.organizationId,
          tenant.workflowId,
          Array.from({ length: n }, (_, k) => ({ input: { key: `${tenant.name}-${done + k}`, n: done + k } })),
        );
        const { rows } = await db.query<{ ms: number }>('SELECT (extract(epoch FROM clock_timestamp()) * 1000)::float8 AS ms');
        for (const j of jobs) {
          visibleAt.set(j.id, rows[0]!.ms);
          order.set(j.id, order.size);
        }
      }
    }
    expect(order.size).toBe(TOTAL_RUNS);

    // Done when the queue is empty: a job's queue row goes in the transaction that records its outcome.
    // The bound only stops a hung run from hanging the suite; nothing here is timed.
    const deadline = Date.now() + 240_000;
    for (;;) {
      const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM stepwise.job_queue');
      if (rows[0]!.n === 0) break;
      if (Date.now() > deadline) throw new Error(`${rows[0]!.n} runs still queued`);
      await new Promise((r) => setTimeout(r, 100));
    }

    // SIGTERM: each worker stops claiming, drains its record and exits 0.
    for (const w of workers) w.child.kill('SIGTERM');
    const exits = await Promise.all(workers.map((w) => w.exited));
    expect(exits).toEqual(workers.map(() => ({ code: 0, signal: null })));

    // No run lost: every enqueued run exists, COMPLETED, with all five steps, per organization.
    const { rows: perOrg } = await db.query<{ organization_id: string; total: number; completed: number; five_steps: number; one_attempt: number; ok: number }>(
      `SELECT organization_id, count(*)::int AS total,
              count(*) FILTER (WHERE status = 'COMPLETED')::int AS completed,
              count(*) FILTER (WHERE steps_completed = $2)::int AS five_steps,
              count(*) FILTER (WHERE attempts = 1)::int AS one_attempt,
              count(*) FILTER (WHERE result->>'ok' = 'true')::int AS ok
         FROM stepwise.jobs WHERE id = ANY($1::uuid[]) GROUP BY organization_id`,
      [[...order.keys()], STEPS],
    );
    const byOrg = new Map(perOrg.map((r) => [r.organization_id, r]));
    for (const tenant of tenants) {
      const n = tenant.runs;
      expect(byOrg.get(tenant.organizationId), tenant.name).toEqual({
        organization_id: tenant.organizationId,
        total: n,
        completed: n,
        five_steps: n,
        // No lease was actually lost: a run taken over after its lease expired would have a second attempt.
        // With the 30 s lease renewed every 10 s, none may expire while every process is alive.
        one_attempt: n,
        ok: n,
      });
    }

    // Every step exactly once, and the stream whole: per job one JOB_STARTED, one
    // STEP_STARTED and one STEP_COMPLETED for each of the five steps, one
    // JOB_COMPLETED, and seq 1..last_seq without a gap or a duplicate.
    const { rows: stream } = await db.query<{ jobs: number; bad: number; examples: string[] | null }>(
      `WITH per_job AS (
         SELECT l.job_id,
                count(*) = max(l.seq) AND min(l.seq) = 1 AND count(DISTINCT l.seq) = count(*) AND max(l.seq) = max(j.last_seq) AS whole,
                count(*) FILTER (WHERE l.kind = $2) = 1 AND count(*) FILTER (WHERE l.kind = $3) = 1 AS job_once,
                count(*) FILTER (WHERE l.kind = $4) = $6 AND count(DISTINCT l.step_index) FILTER (WHERE l.kind = $4) = $6 AS started_once,
                count(*) FILTER (WHERE l.kind = $5) = $6 AND count(DISTINCT l.step_index) FILTER (WHERE l.kind = $5) = $6 AS completed_once
           FROM stepwise.execution_log l JOIN stepwise.jobs j ON j.id = l.job_id
          WHERE l.job_id = ANY($1::uuid[])
          GROUP BY l.job_id
       )
       SELECT count(*)::int AS jobs,
              count(*) FILTER (WHERE NOT (whole AND job_once AND started_once AND completed_once))::int AS bad,
              (array_agg(job_id::text) FILTER (WHERE NOT (whole AND job_once AND started_once AND completed_once)))[1:5] AS examples
         FROM per_job`,
      [[...order.keys()], STREAM_KINDS.JOB_STARTED, STREAM_KINDS.JOB_COMPLETED, STREAM_KINDS.STEP_STARTED, STREAM_KINDS.STEP_COMPLETED, STEPS],
    );
    expect(stream[0]).toEqual({ jobs: TOTAL_RUNS, bad: 0, examples: null });

    // The side effect, counted outside the database: each run's call arrived exactly once, and none was cut off.
    const expectedCalls = new Map<string, number>(tenants.flatMap((tn) => Array.from({ length: tn.runs }, (_, n) => [`/hit/${tn.name}-${n}`, 1] as const)));
    expect(srv.calls.size).toBe(TOTAL_RUNS);
    expect([...srv.calls].filter(([path, n]) => expectedCalls.get(path) !== n)).toEqual([]);
    expect(srv.aborted).toEqual([]);

    // Fenced writes: since no lease was lost (one attempt each, above), the fence may not have dropped
    // a single write. (A heartbeat that waited for its own worker's flush to delete a job's queue row
    // used to call the job lost and log it with droppedRows 0; store/queue.ts renewLeases now checks
    // such rows again with a fresh snapshot. What matters here is that no write was dropped.)
    const fenced = workers.flatMap((w) => w.logs.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('lease lost: dropped')));
    expect(fenced.map((l) => l.droppedRows ?? 0).filter((n) => n !== 0)).toEqual([]);

    // Fairness, on the claims (jobs.started_at is the claim statement's time).
    const { rows: claimedRows } = await db.query<{ id: string; organization_id: string; claimed_ms: number }>(
      `SELECT id, organization_id, (extract(epoch FROM started_at) * 1000)::float8 AS claimed_ms FROM stepwise.jobs WHERE id = ANY($1::uuid[])`,
      [[...order.keys()]],
    );
    const claims: ClaimedRun[] = claimedRows.map((r) => ({ org: r.organization_id, visibleAt: visibleAt.get(r.id)!, claimedAt: r.claimed_ms, order: order.get(r.id)! }));
    const orgs = tenants.map((tn) => tn.organizationId);
    const fair = contendedShares(claims, orgs);
    // Not vacuous: nearly all of the smallest organization's runs were claimed while the others still had work.
    expect(fair.smallServed).toBeGreaterThanOrEqual(0.9 * TENANTS[2].runs);
    for (const [org, share] of fair.share) expect(share, `share of ${tenants.find((tn) => tn.organizationId === org)!.name}`).toBeGreaterThanOrEqual(MIN_CONTENDED_SHARE);

    // The same measure of a FIFO queue at the same instants fails: the smallest organization would get
    // nothing while the bigger ones had work.
    const fifo = contendedShares(fifoReplay(claims), orgs);
    expect(fifo.claims).toBeGreaterThan(0);
    expect(Math.min(...fifo.share.values())).toBeLessThan(MIN_CONTENDED_SHARE);
  });
});
