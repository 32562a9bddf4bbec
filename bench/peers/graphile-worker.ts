import { Logger, makeWorkerUtils, run, type AddJobsJobSpec, type WorkerUtils } from 'graphile-worker';
import pg from 'pg';
import { check, log, now, round, waitUntil, withScratchDatabase, type BenchOptions, type PeerResult } from '../lib.js';

/**
 * graphile-worker 0.17 with the settings of its own performance page
 * (worker.graphile.org/docs/performance: concurrentJobs 24, maxPoolSize 25,
 * localQueue 500, completeJobBatchDelay 0, failJobBatchDelay 0), which were
 * also the fastest of the variants tried on this 2-core machine (README).
 * Option names checked against node_modules/graphile-worker/dist/index.d.ts
 * (GraphileConfig.WorkerOptions) and dist/interfaces.d.ts (RunnerOptions).
 */
export const GRAPHILE_SETTINGS = {
  concurrency: 24,
  maxPoolSize: 25,
  localQueueSize: 500,
  /** Batch completions/failures that arrive in the same tick (0 ms: no added latency). */
  completeJobBatchDelay: 0,
  failJobBatchDelay: 0,
  /** Only for jobs scheduled in the future; new jobs arrive by LISTEN/NOTIFY. */
  pollInterval: 1000,
  /** Jobs per add_jobs call. */
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
    const runner = await run({
      connectionString: scratch.url,
      concurrency: s.concurrency,
      maxPoolSize: s.maxPoolSize,
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
    const utils = await makeWorkerUtils({ connectionString: scratch.url, logger: quietLogger });
    const counter = new pg.Client({ connectionString: scratch.url });
    await counter.connect();
    const remaining = async () =>
      (await counter.query<{ n: number }>('SELECT count(*)::int AS n FROM graphile_worker._private_jobs')).rows[0]!.n;
    const waitDone = (what: string) =>
      waitUntil(async () => (await remaining()) === 0, {
        intervalMs: 10,
        timeoutMs: 240_000,
        what,
        describe: async () => `${await remaining()} jobs left, ${executed} executed, ${errors} errors`,
      });
    try {
      if (opts.warmup > 0) {
        await addNoops(utils, opts.warmup, s.addBatch);
        await waitDone('graphile-worker warm-up');
      }
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
    }
  });
}
