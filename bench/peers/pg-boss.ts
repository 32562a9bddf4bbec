import PgBoss from 'pg-boss';
import pg from 'pg';
import { check, log, now, POLL_MS, round, waitUntil, settle, withScratchDatabase, type BenchOptions, type PeerResult } from '../lib.js';

/**
 * pg-boss 10 (API checked against node_modules/pg-boss/types.d.ts). Its
 * workers only poll (no LISTEN), at most every 0.5 s (its minimum
 * pollingIntervalSeconds), and a worker loop fetches one batch, runs the
 * handler, completes the batch without waiting, then sleeps out the rest of
 * the interval. So throughput is bounded by workers × batchSize / 0.5 s
 * unless the documented `notifyWorker(id)` is used to skip the sleep while
 * batches come back full, which is what a user tuning for throughput does.
 * Workers, batch size and that choice were swept on this machine (README).
 */
export const PG_BOSS_SETTINGS = {
  workers: 2,
  batchSize: 2000,
  pollingIntervalSeconds: 0.5,
  /** Skip the polling sleep after a full batch (boss.notifyWorker). */
  notifyOnFullBatch: true,
  /** Pool size of pg-boss's own pg.Pool. */
  max: 10,
  /** Jobs per boss.insert call. */
  insertBatch: 5000,
};

const QUEUE = 'bench-noop';

async function insertNoops(boss: PgBoss, count: number, batch: number): Promise<void> {
  for (let done = 0; done < count; done += batch) {
    const jobs: PgBoss.JobInsert[] = Array.from({ length: Math.min(batch, count - done) }, (_, i) => ({
      name: QUEUE,
      data: { n: done + i },
    }));
    await boss.insert(jobs);
  }
}

/** `jobs` no-op jobs, timed from the first insert until all are in state `completed`. */
export async function runPgBoss(opts: BenchOptions): Promise<PeerResult> {
  return withScratchDatabase('pgboss', async (scratch) => {
    const s = PG_BOSS_SETTINGS;
    // Maintenance, cron and state monitoring are background chores irrelevant to a few seconds of work; off.
    const boss = new PgBoss({ connectionString: scratch.url, max: s.max, supervise: false, schedule: false, migrate: true });
    let errors = 0;
    boss.on('error', (err) => {
      errors++;
      log(`pg-boss error: ${err.message}`);
    });
    await boss.start();
    await boss.createQueue(QUEUE);
    let executed = 0;
    for (let i = 0; i < s.workers; i++) {
      let workerId = '';
      workerId = await boss.work(
        QUEUE,
        { batchSize: s.batchSize, pollingIntervalSeconds: s.pollingIntervalSeconds },
        async (jobs) => {
          executed += jobs.length;
          if (s.notifyOnFullBatch && jobs.length === s.batchSize && workerId) boss.notifyWorker(workerId);
        },
      );
    }
    const counter = new pg.Client({ connectionString: scratch.url });
    await counter.connect();
    const states = async () =>
      (
        await counter.query<{ completed: number; total: number }>(
          `SELECT count(*) FILTER (WHERE state = 'completed')::int AS completed, count(*)::int AS total
             FROM pgboss.job WHERE name = $1`,
          [QUEUE],
        )
      ).rows[0]!;
    // job_state is an enum ordered created < retry < active < completed < cancelled < failed.
    const finished = async () =>
      !(
        await counter.query<{ busy: boolean }>(
          `SELECT EXISTS (SELECT 1 FROM pgboss.job WHERE name = $1 AND state < 'completed') AS busy`,
          [QUEUE],
        )
      ).rows[0]!.busy;
    const waitDone = (what: string) =>
      waitUntil(finished, {
        intervalMs: POLL_MS,
        timeoutMs: 240_000,
        what,
        describe: async () => JSON.stringify({ ...(await states()), executed, errors }),
      });
    try {
      if (opts.warmup > 0) {
        await insertNoops(boss, opts.warmup, s.insertBatch);
        await waitDone('pg-boss warm-up');
      }
      await settle((sql) => counter.query(sql), opts.stats);
      const t0 = now();
      await insertNoops(boss, opts.jobs, s.insertBatch);
      const inserted = now();
      await waitDone(`${opts.jobs} pg-boss jobs`);
      const seconds = (now() - t0) / 1000;
      log(`pg-boss: inserted in ${round((inserted - t0) / 1000, 3)} s, all done in ${round(seconds, 3)} s`);
      const final = await states();
      check(final.completed === opts.warmup + opts.jobs, `pg-boss: ${final.completed} of ${opts.warmup + opts.jobs} jobs completed`);
      check(final.total === opts.warmup + opts.jobs, `pg-boss: ${final.total} jobs exist, expected ${opts.warmup + opts.jobs}`);
      check(errors === 0, `pg-boss: ${errors} errors`);
      check(executed === opts.jobs + opts.warmup, `pg-boss: ${executed} executions, expected ${opts.jobs + opts.warmup}`);
      return { jobs: opts.jobs, seconds };
    } finally {
      await counter.end();
      await boss.stop({ graceful: false, wait: true, timeout: 1000 });
    }
  });
}
