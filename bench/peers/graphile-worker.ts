import { Logger, makeWorkerUtils, run, type AddJobsJobSpec, type WorkerUtils } from 'graphile-worker';
import pg from 'pg';
import { check, log, now, POLL_MS, round, waitUntil, settle, withScratchDatabase, type BenchOptions, type PeerResult } from '../lib.js';

/**
 * graphile-worker 0.17 with the settings of its own performance page
 * (worker.graphile.org/docs/performance: concurrentJobs 24, maxPoolSize 25,
 * localQueue 500, completeJobBatchDelay 0, failJobBatchDelay 0), except a
 * local queue of 1,000, which was a little faster on this 2-core machine
 * (README). Option names checked against node_modules/graphile-worker:
 * dist/index.d.ts (GraphileConfig.WorkerOptions, the preset) and
 * dist/interfaces.d.ts (RunnerOptions).
 */
export const GRAPHILE_SETTINGS = {
  concurrency: 24,
  maxPoolSize: 25,
  localQueueSize: 1000,
  /** Batch completions/failures that arrive in the same tick (0 ms: no added latency). */
  completeJobBatchDelay: 0,
  failJobBatchDelay: 0,
  /** Only for jobs scheduled in the future; new jobs arrive by LISTEN/NOTIFY. */
  pollInterval: 1000,
  /** Jobs per add_jobs call (WorkerUtils.addJobs: one add_jobs statement each). */
  addBatch: 5000,
};

/** Warnings and errors to stderr; graphile's per-job info/debug lines are dropped. */
const quietLogger = new Logger((scope) => (level, message) => {
  if (level === 'error' || level === 'warning') log(`graphile-worker ${level} ${scope.label ?? ''}: ${message}`);
});

async function addNoops(utils: WorkerUtils, count: number, batch: number): Promise<void> {
  for (let done = 0; done < count; done += batch) {
    const specs: AddJobsJobSpec[] = Array.from({ length: Math.min(batch, count - done) }, (_, i) => ({
      identifier: 'noop',
      payload: { n: done + i },
    }));
    await utils.addJobs(specs);
  }
}

/** `jobs` no-op jobs, timed from the first add_jobs call until the last one is gone (finished jobs are deleted). */
export async function runGraphileWorker(opts: BenchOptions): Promise<PeerResult> {
  return withScratchDatabase('graphile', async (scratch) => {
    let executed = 0;
    let errors = 0;
    const s = GRAPHILE_SETTINGS;
    // Our own pool (the documented `pgPool` option), ended only after the
    // runner has stopped: graphile ends its own pool without waiting and
    // removes its error handlers, so dropping the database WITH (FORCE) right
    // after crashed the process once in 18 runs ("terminating connection due
    // to administrator command" on an unhandled pool 'error').
    const pool = new pg.Pool({ connectionString: scratch.url, max: s.maxPoolSize });
    pool.on('error', (err) => log(`graphile-worker pool: ${err.message}`));
    pool.on('connect', (client) => client.on('error', (err) => log(`graphile-worker client: ${err.message}`)));
    const runner = await run({
      pgPool: pool,
      concurrency: s.concurrency,
      pollInterval: s.pollInterval,
      noHandleSignals: true,
      logger: quietLogger,
      crontab: '',
      taskList: {
        noop: async () => {
          executed++;
        },
      },
      preset: {
        worker: {
          localQueue: { size: s.localQueueSize },
          completeJobBatchDelay: s.completeJobBatchDelay,
          failJobBatchDelay: s.failJobBatchDelay,
        },
      },
    });
    runner.events.on('job:error', () => {
      errors++;
    });
    const utils = await makeWorkerUtils({ pgPool: pool, logger: quietLogger });
    const counter = new pg.Client({ connectionString: scratch.url });
    await counter.connect();
    const remaining = async () =>
      (await counter.query<{ n: number }>('SELECT count(*)::int AS n FROM graphile_worker._private_jobs')).rows[0]!.n;
    const finished = async () =>
      !(await counter.query<{ busy: boolean }>('SELECT EXISTS (SELECT 1 FROM graphile_worker._private_jobs) AS busy')).rows[0]!.busy;
    const waitDone = (what: string) =>
      waitUntil(finished, {
        intervalMs: POLL_MS,
        timeoutMs: 240_000,
        what,
        describe: async () => `${await remaining()} jobs left, ${executed} executed, ${errors} errors`,
      });
    try {
      if (opts.warmup > 0) {
        await addNoops(utils, opts.warmup, s.addBatch);
        await waitDone('graphile-worker warm-up');
      }
      await settle((sql) => counter.query(sql), opts.stats);
      const t0 = now();
      await addNoops(utils, opts.jobs, s.addBatch);
      const added = now();
      await waitDone(`${opts.jobs} graphile-worker jobs`);
      const seconds = (now() - t0) / 1000;
      log(`graphile-worker: added in ${round((added - t0) / 1000, 3)} s, all done in ${round(seconds, 3)} s`);
      check(errors === 0, `graphile-worker: ${errors} job errors`);
      check(executed === opts.jobs + opts.warmup, `graphile-worker: ${executed} executions, expected ${opts.jobs + opts.warmup}`);
      return { jobs: opts.jobs, seconds };
    } finally {
      await counter.end();
      await utils.release();
      await runner.stop();
      await pool.end();
    }
  });
}
