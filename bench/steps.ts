import { loadConfig } from '../src/config/index.js';
import { ensureStreamPartitions, migrate, PostgresDb, type Db } from '../src/db/index.js';
import { defineWorkflow, startRuns, Worker } from '../src/engine/index.js';
import { createOrganization } from '../src/store/index.js';
import { DbCpuSampler, type CpuDelta } from './db-cpu.js';
import { check, emit, log, now, POLL_MS, round, settle, sleep, stderrLogger, waitUntil, withScratchDatabase, type BenchOptions } from './lib.js';

/**
 * `steps`: runs of a 10-step workflow (alternating transform and log steps)
 * with the full record and checkpoints, on the PostgreSQL server. Reports
 * runs/s, steps/s and the per-step overhead: the time from one step's
 * STEP_COMPLETED to the next step's STEP_STARTED, read from the stream's
 * microsecond timestamps, i.e. what the engine adds between steps.
 *
 * Then, in the same run, DBOS Transact with the same ten steps (see
 * dbosSteps below), and the ratio of steps/s.
 */
export const STEPS = 10;
const DEFINITION = {
  steps: Array.from({ length: STEPS }, (_, i) =>
    i % 2 === 0
      ? { id: `t${i}`, type: 'transform', expression: `{ "member": input.member, "i": ${i}, "prev": $count($keys(steps)) }` }
      : { id: `l${i}`, type: 'log', message: `step ${i} checked member {{ input.member }} for eligibility` },
  ),
};

const WORKERS = 2;
const WORKER = { concurrency: 500, claimBatchSize: 250, flushIntervalMs: 20, pollIntervalMs: 100 };

/**
 * A migrated scratch database with one organization and the ten-step
 * workflow, and WORKERS Workers running it (`steps` and `bytes`), pushed onto `workers` as they
 * start (the caller stops them, also after a failure).
 */
export async function setUpTenSteps(db: Db, workers: Worker[]): Promise<{ org: { id: string }; wf: { id: string } }> {
  await migrate(db);
  await ensureStreamPartitions(db);
  const org = await createOrganization(db, { name: 'bench', plan: 'ENTERPRISE' });
  const wf = await defineWorkflow(db, org.id, { name: 'ten steps', definition: DEFINITION });
  for (let i = 0; i < WORKERS; i++) {
    const w = new Worker(db, { ...loadConfig({}).worker, ...WORKER }, stderrLogger(), `bench-${i}`);
    workers.push(w);
    await w.start();
  }
  return { org, wf };
}

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
  const stepwiseSeconds = await stepwiseSteps(runs, opts);
  log('dbos…');
  const dbos = await dbosSteps(runs, opts);
  // steps/s divided (the same runs of the same ten steps): > 1 means Stepwise is faster.
  const stepwiseRate = (runs * STEPS) / stepwiseSeconds;
  const best = Math.max(...dbos.map((d) => (runs * STEPS) / d.seconds));
  emit({
    scenario: 'steps',
    ratios: {
      stepwise_vs_dbos: round(stepwiseRate / best, 2),
      ...Object.fromEntries(dbos.map((d) => [`stepwise_vs_dbos_${d.mode}`, round(stepwiseRate / ((runs * STEPS) / d.seconds), 2)])),
    },
  });
}

/** CPU per run over a timed part (bench/db-cpu.ts), for the result lines; nulls when the server's processes are not visible. */
function cpuFields(d: CpuDelta | null, runs: number): Record<string, number | null> {
  return {
    db_cpu_ms_per_run: d ? round(d.serverMs / runs, 3) : null,
    process_cpu_ms_per_run: d ? round(d.processMs / runs, 3) : null,
  };
}

/** Stepwise's part, as it was before DBOS joined (plus CPU per run): emits its line, returns the seconds. */
async function stepwiseSteps(runs: number, opts: BenchOptions): Promise<number> {
  return withScratchDatabase('stepwise_steps', async (scratch) => {
    const db = new PostgresDb(scratch.url, { poolSize: 8, role: 'bench' });
    const workers: Worker[] = [];
    const sampler = await DbCpuSampler.open(scratch.url);
    try {
      const { org, wf } = await setUpTenSteps(db, workers);
      if (opts.warmup > 0) await runBatch(db, org.id, wf.id, Math.min(opts.warmup, 500), 'warm');
      await settle((sql) => db.query(sql), opts.stats);
      const cpu0 = await sampler?.sample();
      const seconds = await runBatch(db, org.id, wf.id, runs, 'M');
      const cpu1 = await sampler?.sample();

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
        ...cpuFields(sampler && cpu0 && cpu1 ? sampler.delta(cpu0, cpu1) : null, runs),
      });
      return seconds;
    } finally {
      await Promise.all(workers.map((w) => w.stop()));
      await sampler?.close();
      await db.close();
      // pg-pool's end() returns once it has asked its connections to close; dropping the database
      // at once terminates them first and every pooled client then logs a lost connection.
      await sleep(200);
    }
  });
}

/**
 * DBOS Transact's part: the same runs of the same ten steps
 * (bench/peers/dbos.ts `tenSteps`: ten `DBOS.runStep`s, each checkpointed
 * in operation_outputs), in its own scratch database, started two ways, one
 * after the other, each after its own warm-up and `settle()`:
 *
 * - direct: `DBOS.startWorkflow(tenSteps)(…)` without a queue runs the
 *   workflow in this process at once; DBOS_STEPS.directBatch runs are
 *   started together and awaited (`handle.getResult()`, no polling) before
 *   the next batch;
 * - queued: every run enqueued on one queue (no concurrency limit unless
 *   DBOS_STEPS.workerConcurrency), DBOS_STEPS.enqueueConcurrency start calls
 *   in flight at a time; the queue's dispatch loop polls every
 *   DBOS_STEPS.queuePollMs and starts everything enqueued; finished when no
 *   workflow_status row is ENQUEUED or PENDING (one `EXISTS` every POLL_MS,
 *   as the other peers are timed).
 *
 * Each is timed from the first start call to the last run finished, and
 * checked: every run SUCCESS, ten operation_outputs rows each.
 */
export const DBOS_STEPS: { poolSize: number; directBatch: number; enqueueConcurrency: number; queuePollMs: number; workerConcurrency: number | undefined } = {
  poolSize: 10,
  directBatch: 2000,
  enqueueConcurrency: 1000,
  queuePollMs: 20,
  workerConcurrency: undefined,
};

interface DbosStepsResult {
  mode: 'direct' | 'queued';
  seconds: number;
}

async function dbosSteps(runs: number, opts: BenchOptions): Promise<DbosStepsResult[]> {
  // Loaded here: the DBOS SDK stays out of the other scenarios' process.
  const { DBOS } = await import('@dbos-inc/dbos-sdk');
  const { dbosStatusCounts, dbosWorkflows, withDbos } = await import('./peers/dbos.js');
  const wf = dbosWorkflows();
  const s = DBOS_STEPS;
  return withDbos('dbos_steps', async (run) => {
    const sampler = await DbCpuSampler.open(run.scratch.url);
    const queueName = 'bench-steps';
    const direct = async (count: number, tag: string) => {
      for (let i = 0; i < count; i += s.directBatch) {
        const n = Math.min(s.directBatch, count - i);
        await Promise.all(Array.from({ length: n }, async (_, k) => (await DBOS.startWorkflow(wf.tenSteps)(`${tag}-${i + k}`)).getResult()));
      }
    };
    const queued = async (count: number, tag: string) => {
      for (let i = 0; i < count; i += s.enqueueConcurrency) {
        const n = Math.min(s.enqueueConcurrency, count - i);
        await Promise.all(Array.from({ length: n }, (_, k) => DBOS.startWorkflow(wf.tenSteps, { queueName })(`${tag}-${i + k}`)));
      }
      await waitUntil(
        async () =>
          !(
            await run.client.query<{ busy: boolean }>(
              `SELECT EXISTS (SELECT 1 FROM dbos.workflow_status WHERE status IN ('ENQUEUED', 'PENDING')) AS busy`,
            )
          ).rows[0]!.busy,
        { intervalMs: POLL_MS, timeoutMs: 300_000, what: `${count} queued DBOS runs`, describe: async () => JSON.stringify(await dbosStatusCounts(run.client)) },
      );
    };
    try {
      const warm = Math.min(opts.warmup, 500);
      const results: DbosStepsResult[] = [];
      let started = 0;
      for (const mode of ['direct', 'queued'] as const) {
        // Registered only now, so that no queue is being polled while the direct runs are timed.
        if (mode === 'queued') await run.queue(queueName, s.queuePollMs, s.workerConcurrency);
        const go = mode === 'direct' ? direct : queued;
        if (warm > 0) await go(warm, `warm-${mode}`);
        await settle((sql) => run.client.query(sql), opts.stats);
        const cpu0 = await sampler?.sample();
        const t0 = now();
        await go(runs, mode);
        const seconds = (now() - t0) / 1000;
        const cpu1 = await sampler?.sample();
        started += warm + runs;
        const counts = await dbosStatusCounts(run.client);
        check(counts.SUCCESS === started && Object.keys(counts).length === 1, `dbos ${mode}: statuses ${JSON.stringify(counts)}, ${started} started`);
        const { rows } = await run.client.query<{ n: number }>(`SELECT count(*)::int AS n FROM dbos.operation_outputs`);
        check(rows[0]!.n === started * STEPS, `dbos ${mode}: ${rows[0]!.n} operation_outputs rows for ${started} runs`);
        emit({
          scenario: 'steps',
          system: 'dbos',
          mode,
          backend: 'postgres',
          runs,
          steps_per_run: STEPS,
          seconds: round(seconds, 3),
          runs_per_s: Math.round(runs / seconds),
          steps_per_s: Math.round((runs * STEPS) / seconds),
          ...cpuFields(sampler && cpu0 && cpu1 ? sampler.delta(cpu0, cpu1) : null, runs),
          pool: s.poolSize,
          ...(mode === 'direct'
            ? { started_together: Math.min(s.directBatch, runs) }
            : { queue_poll_ms: s.queuePollMs, worker_concurrency: s.workerConcurrency ?? null, enqueue_concurrency: s.enqueueConcurrency }),
        });
        results.push({ mode, seconds });
      }
      return results;
    } finally {
      await sampler?.close();
    }
  }, { poolSize: s.poolSize });
}
