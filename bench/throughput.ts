import { loadConfig, type WorkerConfig } from '../src/config/index.js';
import { ensureStreamPartitions, migrate, PgliteDb, PostgresDb, type Db } from '../src/db/index.js';
import { defineWorkflow, startRuns, Worker, type RunRequest } from '../src/engine/index.js';
import { createOrganization } from '../src/store/index.js';
import {
  check,
  emit,
  log,
  now,
  POLL_MS,
  resultLine,
  round,
  settle,
  speedRatio,
  stderrLogger,
  waitUntil,
  withScratchDatabase,
  type BenchOptions,
  type PeerResult,
} from './lib.js';
import { runGraphileWorker } from './peers/graphile-worker.js';
import { runPgBoss } from './peers/pg-boss.js';

/**
 * The workload: one `log` step whose message renders to 52 characters, so
 * each job writes five stream rows (JOB_STARTED, STEP_STARTED, LOG,
 * STEP_COMPLETED, JOB_COMPLETED) of realistic width.
 */
export const DEFINITION = {
  steps: [{ id: 'note', type: 'log', message: 'checked eligibility for member {{ input.member }}: plan active' }],
};
const ROWS_PER_JOB = 5;

export interface StepwiseSettings {
  /** Worker instances in this process (all share one Db). */
  workers: number;
  /** Overrides of loadConfig({}).worker. */
  worker: Partial<WorkerConfig>;
  /** Runs per startRuns call. */
  enqueueBatch: number;
  /** Pool size of the PostgresDb (postgres backend only). */
  poolSize: number;
}

/**
 * Chosen by sweeping on the 2-core machine this was written on (README has
 * the numbers). Server: two Workers of 1,000 concurrent jobs claiming 500 at
 * a time, flushing every 20 ms. Each claim and each flush is a few
 * statements whatever its size, so big batches amortise round trips; two
 * Workers let one claim or flush while the other's runs, which keeps both
 * cores busy (≈5% better than one Worker, within the run-to-run spread).
 * Smaller batches (300/100, 500/250) were 10–20% slower, larger (2,000/1,000)
 * no better. PGlite is one connection: a second Worker was no better there
 * (within a ±30% run-to-run spread), nor were other batch sizes.
 */
export const STEPWISE_SETTINGS: Record<'postgres' | 'pglite', StepwiseSettings> = {
  postgres: {
    workers: 2,
    worker: { concurrency: 1000, claimBatchSize: 500, flushIntervalMs: 20, pollIntervalMs: 100 },
    enqueueBatch: 2000,
    poolSize: 8,
  },
  pglite: {
    workers: 1,
    worker: { concurrency: 1000, claimBatchSize: 500, flushIntervalMs: 20, pollIntervalMs: 100 },
    enqueueBatch: 2000,
    poolSize: 1,
  },
};

function runsFor(count: number, offset: number): RunRequest[] {
  return Array.from({ length: count }, (_, i) => ({ input: { member: `M-${String(offset + i).padStart(6, '0')}` } }));
}

export async function enqueue(db: Db, orgId: string, workflowId: string, count: number, batch: number): Promise<void> {
  for (let done = 0; done < count; done += batch) {
    await startRuns(db, orgId, workflowId, runsFor(Math.min(batch, count - done), done));
  }
}

/**
 * A job leaves `job_queue` in the same transaction that records its outcome
 * (completeJobs deletes it), so an empty queue after the last enqueue
 * means every job has finished; the outcome is verified afterwards. EXISTS
 * stops at the first live row, where counting COMPLETED would scan all of
 * `jobs` (no status index, by design) on every poll.
 */
export async function queueEmpty(db: Db): Promise<boolean> {
  const { rows } = await db.query<{ busy: boolean }>(`SELECT EXISTS (SELECT 1 FROM stepwise.job_queue) AS busy`);
  return !rows[0]!.busy;
}

export async function describeJobs(db: Db): Promise<string> {
  const { rows } = await db.query<{ status: string; n: number }>(
    `SELECT status, count(*)::int AS n FROM stepwise.jobs GROUP BY status ORDER BY status`,
  );
  return rows.map((r) => `${r.status}=${r.n}`).join(' ');
}

interface StreamSize {
  rows: number;
  bytes: number;
  heapBytes: number;
  indexBytes: number;
  /** For the diagnostics line: the jobs table, all of it (heap, indexes, toast). */
  jobs: number;
  jobsBytes: number;
}

/**
 * On-disk size of the whole stream: every leaf partition of execution_log,
 * heap (all forks) + indexes + toast.
 *
 * VACUUM ANALYZE first, not CHECKPOINT: relation sizes come from the files'
 * lengths, which grow when a page is added, not when it is written back, so
 * a checkpoint would change nothing. VACUUM does: on this insert-only table
 * it removes nothing but creates the visibility-map and free-space-map forks
 * that autovacuum creates in production anyway, so measuring after it gives
 * the steady-state cost per row rather than a flattering just-inserted one.
 */
async function streamSize(db: Db): Promise<StreamSize> {
  await db.exec('VACUUM ANALYZE stepwise.execution_log');
  const { rows } = await db.query<{ total: number; heap: number; idx: number }>(
    `SELECT coalesce(sum(pg_total_relation_size(relid)), 0)::bigint AS total,
            coalesce(sum(pg_table_size(relid)), 0)::bigint AS heap,
            coalesce(sum(pg_indexes_size(relid)), 0)::bigint AS idx
       FROM pg_partition_tree('stepwise.execution_log') WHERE isleaf`,
  );
  const { rows: count } = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM stepwise.execution_log`);
  const { rows: jobs } = await db.query<{ n: number; bytes: number }>(
    `SELECT count(*)::int AS n, pg_total_relation_size('stepwise.jobs')::bigint AS bytes FROM stepwise.jobs`,
  );
  return {
    rows: count[0]!.n,
    bytes: Number(rows[0]!.total),
    heapBytes: Number(rows[0]!.heap),
    indexBytes: Number(rows[0]!.idx),
    jobs: jobs[0]!.n,
    jobsBytes: Number(jobs[0]!.bytes),
  };
}

/**
 * Check that every one of the organization's `jobs` runs is COMPLETED with
 * its whole record: last_seq 5, one step completed, and exactly one stream
 * row of each of the five kinds. Returns the organization's stream rows.
 */
export async function verifyRecord(db: Db, organizationId: string, jobs: number): Promise<number> {
  const { rows: statuses } = await db.query<{ completed: number; total: number; wrong_steps: number }>(
    `SELECT count(*) FILTER (WHERE status = 'COMPLETED')::int AS completed, count(*)::int AS total,
            count(*) FILTER (WHERE last_seq <> $2 OR steps_completed <> 1)::int AS wrong_steps
       FROM stepwise.jobs WHERE organization_id = $1`,
    [organizationId, ROWS_PER_JOB],
  );
  const s = statuses[0]!;
  check(s.total === jobs, `${db.backend}: ${s.total} jobs exist, expected ${jobs}`);
  check(s.completed === jobs, `${db.backend}: ${s.completed} of ${jobs} jobs COMPLETED (${await describeJobs(db)})`);
  check(s.wrong_steps === 0, `${db.backend}: ${s.wrong_steps} jobs have a wrong last_seq or steps_completed`);
  const { rows: kinds } = await db.query<{ kind: number; n: number; distinct_jobs: number }>(
    `SELECT kind, count(*)::int AS n, count(DISTINCT job_id)::int AS distinct_jobs
       FROM stepwise.execution_log WHERE organization_id = $1 GROUP BY kind ORDER BY kind`,
    [organizationId],
  );
  const streamRows = kinds.reduce((sum, k) => sum + k.n, 0);
  check(
    streamRows === ROWS_PER_JOB * jobs,
    `${db.backend}: ${streamRows} stream rows, expected ${ROWS_PER_JOB * jobs} (${kinds.map((k) => `kind ${k.kind}=${k.n}`).join(' ')})`,
  );
  // LOG, JOB_STARTED, JOB_COMPLETED, STEP_STARTED, STEP_COMPLETED: once per job each.
  check(
    kinds.length === ROWS_PER_JOB && kinds.every((k) => k.n === jobs && k.distinct_jobs === jobs),
    `${db.backend}: stream rows are not one of each kind per job (${kinds.map((k) => `kind ${k.kind}=${k.n}/${k.distinct_jobs} jobs`).join(' ')})`,
  );
  return streamRows;
}

export interface StepwiseResult {
  jobs: number;
  seconds: number;
  streamRows: number;
  bytesPerStreamRow: number;
}

/** Migrate, warm up, then time `jobs` runs from the first enqueue to the last recorded completion, and verify them. */
export async function runStepwise(db: Db, opts: BenchOptions, settings: StepwiseSettings): Promise<StepwiseResult> {
  await migrate(db);
  await ensureStreamPartitions(db);
  // Warm-up runs belong to their own organization, so the timed organization's rows are exactly the timed jobs.
  // ENTERPRISE: no plan limits (STARTER would cap the run at 5 jobs at once and 10,000 a month).
  const warmOrg = await createOrganization(db, { name: 'bench warm-up', plan: 'ENTERPRISE' });
  const org = await createOrganization(db, { name: 'bench', plan: 'ENTERPRISE' });
  const warmWf = await defineWorkflow(db, warmOrg.id, { name: 'eligibility-note', definition: DEFINITION });
  const wf = await defineWorkflow(db, org.id, { name: 'eligibility-note', definition: DEFINITION });

  const config: WorkerConfig = { ...loadConfig({}).worker, ...settings.worker };
  const logger = stderrLogger();
  const workers = Array.from({ length: settings.workers }, (_, i) => new Worker(db, config, logger, `bench-${i}`));
  await Promise.all(workers.map((w) => w.start()));
  const waitDone = (what: string) =>
    waitUntil(() => queueEmpty(db), { intervalMs: POLL_MS, timeoutMs: 240_000, what, describe: () => describeJobs(db) });
  let seconds: number;
  try {
    if (opts.warmup > 0) {
      await enqueue(db, warmOrg.id, warmWf.id, opts.warmup, settings.enqueueBatch);
      await waitDone('the warm-up jobs');
    }
    await settle((sql) => db.exec(sql), opts.stats);
    const t0 = now();
    await enqueue(db, org.id, wf.id, opts.jobs, settings.enqueueBatch);
    const enqueued = now();
    await waitDone(`${opts.jobs} jobs`);
    seconds = (now() - t0) / 1000;
    log(`${db.backend}: enqueued in ${round((enqueued - t0) / 1000, 3)} s, all done in ${round(seconds, 3)} s`);
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
  }

  const streamRows = await verifyRecord(db, org.id, opts.jobs);

  const size = await streamSize(db);
  log(
    `${db.backend}: execution_log ${size.rows} rows (incl. warm-up), ${size.bytes} bytes ` +
      `(heap ${round(size.heapBytes / size.rows, 1)} B/row, indexes ${round(size.indexBytes / size.rows, 1)} B/row); ` +
      `jobs ${size.jobs} rows, ${round(size.jobsBytes / size.jobs, 0)} B/job`,
  );
  return { jobs: opts.jobs, seconds, streamRows, bytesPerStreamRow: round(size.bytes / size.rows, 1) };
}

async function stepwiseOnPostgres(opts: BenchOptions): Promise<StepwiseResult> {
  return withScratchDatabase('stepwise', async (scratch) => {
    const db = new PostgresDb(scratch.url, { poolSize: STEPWISE_SETTINGS.postgres.poolSize, role: 'bench' });
    try {
      return await runStepwise(db, opts, STEPWISE_SETTINGS.postgres);
    } finally {
      await db.close();
    }
  });
}

async function stepwiseOnPglite(opts: BenchOptions): Promise<StepwiseResult> {
  const db = await PgliteDb.open(); // in memory
  try {
    return await runStepwise(db, opts, STEPWISE_SETTINGS.pglite);
  } finally {
    await db.close();
  }
}

const line = (system: string, backend: string, r: PeerResult, extra?: Record<string, unknown>) =>
  resultLine('throughput', system, backend, r, extra);

/** `throughput`: Stepwise on the server and on PGlite, then graphile-worker and pg-boss, one after another. */
export async function throughput(opts: BenchOptions): Promise<void> {
  log(`throughput: ${opts.jobs} jobs per system (+${opts.warmup} warm-up)`);

  log('stepwise on postgres…');
  const pgRes = await stepwiseOnPostgres(opts);
  emit(line('stepwise', 'postgres', pgRes, { stream_rows: pgRes.streamRows, bytes_per_stream_row: pgRes.bytesPerStreamRow }));

  log('stepwise on pglite…');
  const liteRes = await stepwiseOnPglite(opts);
  emit(line('stepwise', 'pglite', liteRes, { stream_rows: liteRes.streamRows, bytes_per_stream_row: liteRes.bytesPerStreamRow }));

  log('graphile-worker…');
  const gw = await runGraphileWorker(opts);
  emit(line('graphile-worker', 'postgres', gw));

  log('pg-boss…');
  const boss = await runPgBoss(opts);
  emit(line('pg-boss', 'postgres', boss));

  // Ratios of jobs/s: > 1 means Stepwise is faster.
  emit({
    scenario: 'throughput',
    ratios: {
      stepwise_vs_pg_boss: speedRatio(pgRes, boss),
      stepwise_vs_graphile_worker: speedRatio(pgRes, gw),
      pglite_vs_postgres: speedRatio(liteRes, pgRes),
    },
  });
}
