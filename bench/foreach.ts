import { loadConfig } from '../src/config/index.js';
import { ensureStreamPartitions, migrate, PostgresDb, type Db } from '../src/db/index.js';
import { defineWorkflow, startRuns, Worker } from '../src/engine/index.js';
import { createOrganization } from '../src/store/index.js';
import { check, emit, log, now, POLL_MS, round, settle, stderrLogger, waitUntil, withScratchDatabase, type BenchOptions } from './lib.js';

/**
 * `foreach`: loops on the PostgreSQL server, with the full record.
 * 1. One run of a forEach over 10,000 items, 50 iterations at a time, each
 *    iteration one transform step: items/s and the stream rows the job
 *    wrote (full rows for the first 100 iterations, MAP_PROGRESS rollups
 *    for the rest).
 * 2. 1,000 runs of a workflow whose forEach has 10 items (concurrency 5):
 *    runs/s, items/s and stream rows per run.
 */
const BIG_ITEMS = 10_000;
const SMALL_RUNS = 1_000;
const SMALL_ITEMS = 10;

const WORKER = { concurrency: 500, claimBatchSize: 250, flushIntervalMs: 20, pollIntervalMs: 100 };

function loop(items: number, concurrency: number) {
  return {
    steps: [
      {
        id: 'inv',
        type: 'forEach',
        items: `[1..${items}]`,
        concurrency,
        maxItems: Math.max(items, 1),
        steps: [{ id: 'shape', type: 'transform', expression: '{ "n": item, "double": item * 2 }' }],
      },
    ],
  };
}

async function queueEmpty(db: Db): Promise<boolean> {
  const { rows } = await db.query<{ busy: boolean }>(`SELECT EXISTS (SELECT 1 FROM stepwise.job_queue) AS busy`);
  return !rows[0]!.busy;
}

async function streamRows(db: Db, workflowId: string): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM stepwise.execution_log l JOIN stepwise.jobs j ON j.id = l.job_id WHERE j.workflow_id = $1`,
    [workflowId],
  );
  return rows[0]!.n;
}

export async function foreach(opts: BenchOptions): Promise<void> {
  log(`foreach: one run of ${BIG_ITEMS} items (concurrency 50), then ${SMALL_RUNS} runs of ${SMALL_ITEMS} items`);
  await withScratchDatabase('stepwise_foreach', async (scratch) => {
    const db = new PostgresDb(scratch.url, { poolSize: 8, role: 'bench' });
    const workers: Worker[] = [];
    try {
      await migrate(db);
      await ensureStreamPartitions(db);
      const org = await createOrganization(db, { name: 'bench', plan: 'ENTERPRISE' });
      const big = await defineWorkflow(db, org.id, { name: 'big loop', definition: loop(BIG_ITEMS, 50) });
      const small = await defineWorkflow(db, org.id, { name: 'small loop', definition: loop(SMALL_ITEMS, 5) });
      const warm = await defineWorkflow(db, org.id, { name: 'warm-up', definition: loop(200, 10) });
      for (let i = 0; i < 2; i++) {
        const w = new Worker(db, { ...loadConfig({}).worker, ...WORKER }, stderrLogger(), `bench-${i}`);
        workers.push(w);
        await w.start();
      }
      if (opts.warmup > 0) {
        await startRuns(db, org.id, warm.id, Array.from({ length: 20 }, () => ({})));
        await waitUntil(() => queueEmpty(db), { intervalMs: POLL_MS, timeoutMs: 120_000, what: 'the warm-up runs' });
      }
      await settle((sql) => db.query(sql), opts.stats);

      // 1. One big loop.
      let t0 = now();
      const [run] = await startRuns(db, org.id, big.id, [{}]);
      await waitUntil(() => queueEmpty(db), { intervalMs: POLL_MS, timeoutMs: 600_000, what: 'the 10,000-item loop' });
      let seconds = (now() - t0) / 1000;
      const { rows: job } = await db.query<{ status: string; n: number; last: unknown }>(
        `SELECT status, jsonb_array_length(result) AS n, result -> -1 AS last FROM stepwise.jobs WHERE id = $1`,
        [run!.id],
      );
      check(job[0]!.status === 'COMPLETED', `the big loop ended ${job[0]!.status}`);
      check(job[0]!.n === BIG_ITEMS, `the big loop's output has ${job[0]!.n} items`);
      check(JSON.stringify(job[0]!.last) === JSON.stringify({ n: BIG_ITEMS, double: BIG_ITEMS * 2 }), 'the last iteration output is wrong');
      const bigRows = await streamRows(db, big.id);
      emit({
        scenario: 'foreach',
        case: 'one run, 10,000 items, concurrency 50',
        backend: 'postgres',
        items: BIG_ITEMS,
        seconds: round(seconds, 3),
        items_per_s: Math.round(BIG_ITEMS / seconds),
        stream_rows: bigRows,
      });

      // 2. Many small loops.
      t0 = now();
      for (let i = 0; i < SMALL_RUNS; i += 500) {
        await startRuns(db, org.id, small.id, Array.from({ length: Math.min(500, SMALL_RUNS - i) }, () => ({})));
      }
      await waitUntil(() => queueEmpty(db), { intervalMs: POLL_MS, timeoutMs: 600_000, what: `${SMALL_RUNS} small loops` });
      seconds = (now() - t0) / 1000;
      const { rows: outcome } = await db.query<{ completed: number; other: number }>(
        `SELECT count(*) FILTER (WHERE status = 'COMPLETED')::int AS completed, count(*) FILTER (WHERE status <> 'COMPLETED')::int AS other
           FROM stepwise.jobs WHERE workflow_id = $1`,
        [small.id],
      );
      check(outcome[0]!.other === 0 && outcome[0]!.completed === SMALL_RUNS, `${outcome[0]!.other} small loops did not complete`);
      const smallRows = await streamRows(db, small.id);
      const { rows: left } = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM stepwise.execution_step_results`);
      check(left[0]!.n === 0, `${left[0]!.n} step results left behind by completed jobs`);
      emit({
        scenario: 'foreach',
        case: '1,000 runs, 10 items each, concurrency 5',
        backend: 'postgres',
        runs: SMALL_RUNS,
        seconds: round(seconds, 3),
        runs_per_s: Math.round(SMALL_RUNS / seconds),
        items_per_s: Math.round((SMALL_RUNS * SMALL_ITEMS) / seconds),
        stream_rows: smallRows,
        stream_rows_per_run: round(smallRows / SMALL_RUNS, 1),
      });
    } finally {
      await Promise.all(workers.map((w) => w.stop()));
      await db.close();
    }
  });
}
