import { loadConfig } from '../src/config/index.js';
import { ensureStreamPartitions, migrate, PostgresDb, type Db } from '../src/db/index.js';
import { defineWorkflow, startRuns, Worker } from '../src/engine/index.js';
import { createOrganization } from '../src/store/index.js';
import { check, emit, log, now, POLL_MS, round, settle, stderrLogger, waitUntil, withScratchDatabase, type BenchOptions } from './lib.js';

/**
 * `steps`: runs of a 10-step workflow (alternating transform and log steps)
 * with the full record and checkpoints, on the PostgreSQL server. Reports
 * runs/s, steps/s and the per-step overhead: the time from one step's
 * STEP_COMPLETED to the next step's STEP_STARTED, read from the stream's
 * microsecond timestamps, i.e. what the engine adds between steps.
 */
const STEPS = 10;
const DEFINITION = {
  steps: Array.from({ length: STEPS }, (_, i) =>
    i % 2 === 0
      ? { id: `t${i}`, type: 'transform', expression: `{ "member": input.member, "i": ${i}, "prev": $count($keys(steps)) }` }
      : { id: `l${i}`, type: 'log', message: `step ${i} checked member {{ input.member }} for eligibility` },
  ),
};

const WORKERS = 2;
const WORKER = { concurrency: 500, claimBatchSize: 250, flushIntervalMs: 20, pollIntervalMs: 100 };

async function runBatch(db: Db, orgId: string, workflowId: string, runs: number, tag: string): Promise<number> {
  const t0 = now();
  for (let i = 0; i < runs; i += 1000) {
    await startRuns(
      db,
      orgId,
      workflowId,
      Array.from({ length: Math.min(1000, runs - i) }, (_, k) => ({ input: { member: `${tag}-${i + k}` } })),
    );
  }
  await waitUntil(
    async () => (await db.query<{ busy: boolean }>(`SELECT EXISTS (SELECT 1 FROM stepwise.job_queue) AS busy`)).rows[0]!.busy === false,
    { intervalMs: POLL_MS, timeoutMs: 300_000, what: `${runs} runs to finish` },
  );
  return (now() - t0) / 1000;
}

export async function steps(opts: BenchOptions): Promise<void> {
  const runs = opts.jobs === 20_000 ? 2_000 : opts.jobs; // the default for this scenario is 2,000 runs
  log(`steps: ${runs} runs of a ${STEPS}-step workflow on postgres (+${Math.min(opts.warmup, 500)} warm-up)`);
  await withScratchDatabase('stepwise_steps', async (scratch) => {
    const db = new PostgresDb(scratch.url, { poolSize: 8, role: 'bench' });
    const workers: Worker[] = [];
    try {
      await migrate(db);
      await ensureStreamPartitions(db);
      const org = await createOrganization(db, { name: 'bench', plan: 'ENTERPRISE' });
      const wf = await defineWorkflow(db, org.id, { name: 'ten steps', definition: DEFINITION });
      for (let i = 0; i < WORKERS; i++) {
        const w = new Worker(db, { ...loadConfig({}).worker, ...WORKER }, stderrLogger(), `bench-${i}`);
        workers.push(w);
        await w.start();
      }
      if (opts.warmup > 0) await runBatch(db, org.id, wf.id, Math.min(opts.warmup, 500), 'warm');
      await settle((sql) => db.query(sql), opts.stats);
      const seconds = await runBatch(db, org.id, wf.id, runs, 'M');

      const { rows: outcome } = await db.query<{ completed: number; other: number; rows: number }>(
        `SELECT count(*) FILTER (WHERE status = 'COMPLETED')::int AS completed,
                count(*) FILTER (WHERE status <> 'COMPLETED')::int AS other,
                (SELECT count(*)::int FROM stepwise.execution_log) AS rows
           FROM stepwise.jobs`,
      );
      check(outcome[0]!.other === 0, `${outcome[0]!.other} jobs did not complete`);
      // Per job: JOB_STARTED + 10 × (STEP_STARTED, STEP_COMPLETED) + 5 log lines + JOB_COMPLETED.
      const expectedRows = outcome[0]!.completed * (2 + STEPS * 2 + STEPS / 2);
      check(outcome[0]!.rows === expectedRows, `stream has ${outcome[0]!.rows} rows, expected ${expectedRows}`);
      const { rows: checkpoints } = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM stepwise.execution_checkpoints`);
      check(checkpoints[0]!.n === 0, `${checkpoints[0]!.n} checkpoints left behind by completed jobs`);

      const { rows: gaps } = await db.query<{ p50: number; p95: number }>(
        `WITH ev AS (
           SELECT job_id, kind, step_index, ts,
                  lag(ts) OVER (PARTITION BY job_id ORDER BY seq) AS prev_ts,
                  lag(kind) OVER (PARTITION BY job_id ORDER BY seq) AS prev_kind
             FROM stepwise.execution_log
         )
         SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS p50,
                percentile_cont(0.95) WITHIN GROUP (ORDER BY ms) AS p95
           FROM (SELECT extract(epoch FROM ts - prev_ts) * 1000 AS ms FROM ev
                  WHERE kind = 10 AND prev_kind = 11) gaps`,
      );
      emit({
        scenario: 'steps',
        system: 'stepwise',
        backend: 'postgres',
        runs,
        steps_per_run: STEPS,
        seconds: round(seconds, 3),
        runs_per_s: Math.round(runs / seconds),
        steps_per_s: Math.round((runs * STEPS) / seconds),
        step_overhead_p50_ms: round(gaps[0]!.p50, 3),
        step_overhead_p95_ms: round(gaps[0]!.p95, 3),
      });
    } finally {
      await Promise.all(workers.map((w) => w.stop()));
      await db.close();
    }
  });
}
