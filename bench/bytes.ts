import { PostgresDb } from '../src/db/index.js';
import { startRuns, type Worker } from '../src/engine/index.js';
import { rollUpAggregates } from '../src/store/index.js';
import { check, emit, log, POLL_MS, round, sleep, waitUntil, withScratchDatabase, type BenchOptions } from './lib.js';
import { setUpTenSteps, STEPS } from './steps.js';

/**
 * `bytes`: bytes on disk per run of the 10-step workflow of `steps`, by
 * table, for Stepwise and for DBOS Transact running the same ten steps.
 *
 * Per system: a warm-up (so the first pages of every table, the sequences
 * and the migrations' seed rows are there already), `VACUUM`, a baseline of
 * every table's size, then `--jobs` runs (default 2,000), all finished,
 * `VACUUM` again and the sizes again. Per table: the growth over the
 * baseline divided by the runs, in bytes (`pg_total_relation_size` of every
 * leaf relation: heap with all forks, toast, indexes; a partitioned table is
 * the sum of its leaf partitions), also split into heap (+toast, free-space
 * and visibility maps) and indexes, and in live rows (`count(*)`). VACUUM,
 * not FULL: it is what autovacuum does in production (creates the
 * visibility and free-space maps, makes dead rows' space reusable without
 * shrinking the file), so the figure is what a database that keeps running
 * holds, not a freshly rewritten one.
 *
 * A table whose rows do not grow (the queue, whose rows are deleted when a
 * run finishes) can still grow in bytes: its high-water mark while the runs
 * were queued. That space is reused by later runs, so the summary gives the
 * total both with and without such tables.
 */

interface TableSize {
  total: number;
  heap: number;
  index: number;
  /** Free space VACUUM recorded in the heap's and toast's free-space maps (null: pg_freespacemap not available). */
  free: number | null;
  rows: number;
}

/**
 * pg_freespacemap, if the server has it (a contrib module): lets `used` bytes
 * leave out pages a table holds empty. PostgreSQL ≤ 15 extends a heap by up
 * to 512 pages at once when inserters wait for its extension lock, so with
 * many concurrent writers a table's file runs well ahead of its rows: here
 * DBOS's workflow_status grew to 82 pages for 500 runs (26 hold them) and
 * then did not grow at all for the next 500 (they fit in the spare pages).
 * Growth of the file alone is then a step function of when extension
 * happened to batch; growth of size minus recorded free space is not.
 */
async function freeSpaceMap(exec: (sql: string) => Promise<unknown>): Promise<boolean> {
  try {
    await exec('CREATE EXTENSION IF NOT EXISTS pg_freespacemap');
    return true;
  } catch (err) {
    log(`pg_freespacemap not available (${err instanceof Error ? err.message : String(err)}); used_bytes not reported`);
    return false;
  }
}

/** Sizes of every table of `schema` (partitioned tables summed over their leaves) and their live rows. */
async function tableSizes(
  query: <R>(sql: string, params?: unknown[]) => Promise<R[]>,
  schema: string,
  withFree: boolean,
): Promise<Map<string, TableSize>> {
  const free = withFree
    ? `sum((SELECT coalesce(sum(f.avail), 0) FROM pg_freespace(l.oid) f)
           + CASE WHEN c.reltoastrelid <> 0 THEN (SELECT coalesce(sum(f.avail), 0) FROM pg_freespace(c.reltoastrelid) f) ELSE 0 END)::bigint`
    : 'NULL::bigint';
  const rows = await query<{ table_name: string; total: string; heap: string; idx: string; free: string | null }>(
    `WITH leaves AS (
       SELECT c.oid, coalesce(pg_partition_root(c.oid), c.oid) AS root
         FROM pg_class c WHERE c.relkind IN ('r', 'm')
     )
     SELECT rc.relname AS table_name,
            sum(pg_total_relation_size(l.oid))::bigint AS total,
            sum(pg_table_size(l.oid))::bigint AS heap,
            sum(pg_indexes_size(l.oid))::bigint AS idx,
            ${free} AS free
       FROM leaves l
       JOIN pg_class c ON c.oid = l.oid
       JOIN pg_class rc ON rc.oid = l.root
       JOIN pg_namespace n ON n.oid = rc.relnamespace
      WHERE n.nspname = $1
      GROUP BY rc.relname
      ORDER BY rc.relname`,
    [schema],
  );
  const out = new Map<string, TableSize>();
  for (const r of rows) {
    // Table names come from the catalog; quote them as identifiers all the same.
    const ident = `"${schema}"."${r.table_name.replace(/"/g, '""')}"`;
    const [c] = await query<{ n: number }>(`SELECT count(*)::int AS n FROM ${ident}`);
    out.set(r.table_name, {
      total: Number(r.total),
      heap: Number(r.heap),
      index: Number(r.idx),
      free: r.free === null ? null : Number(r.free),
      rows: c!.n,
    });
  }
  return out;
}

interface SystemBytes {
  bytesPerRun: number;
  /** Without tables whose live rows did not grow (transient space: the queue). */
  bytesPerRunKept: number;
  /** File growth minus free-space growth (null without pg_freespacemap). */
  usedBytesPerRun: number | null;
}

/** One line per table that grew (bytes or rows), then the system's summary. */
function report(system: string, runs: number, before: Map<string, TableSize>, after: Map<string, TableSize>): SystemBytes {
  let total = 0;
  let kept = 0;
  let used: number | null = 0;
  let rowsTotal = 0;
  const lines: Record<string, unknown>[] = [];
  for (const [table, a] of after) {
    const b = before.get(table) ?? { total: 0, heap: 0, index: 0, free: a.free === null ? null : 0, rows: 0 };
    const d = { total: a.total - b.total, heap: a.heap - b.heap, index: a.index - b.index, rows: a.rows - b.rows };
    const dUsed = a.free === null || b.free === null ? null : d.total - (a.free - b.free);
    // Tables that did not change (to within 0.05 B a run: a catalog row's free space moving) get no line.
    if (d.total === 0 && d.rows === 0 && Math.abs(dUsed ?? 0) < 0.05 * runs) continue;
    total += d.total;
    if (d.rows > 0) kept += d.total;
    used = used === null || dUsed === null ? null : used + dUsed;
    rowsTotal += d.rows;
    lines.push({
      scenario: 'bytes',
      system,
      table,
      bytes_per_run: round(d.total / runs, 1),
      heap_bytes_per_run: round(d.heap / runs, 1),
      index_bytes_per_run: round(d.index / runs, 1),
      used_bytes_per_run: dUsed === null ? null : round(dUsed / runs, 1),
      rows_per_run: round(d.rows / runs, 2),
      ...(d.rows > 0 ? { bytes_per_row: round(d.total / d.rows, 1) } : {}),
      ...(d.rows > 0 && dUsed !== null ? { used_bytes_per_row: round(dUsed / d.rows, 1) } : {}),
    });
  }
  lines.sort((x, y) => (y.bytes_per_run as number) - (x.bytes_per_run as number));
  for (const l of lines) emit(l);
  emit({
    scenario: 'bytes',
    system,
    runs,
    steps_per_run: STEPS,
    bytes_per_run: round(total / runs, 1),
    bytes_per_run_kept: round(kept / runs, 1),
    used_bytes_per_run: used === null ? null : round(used / runs, 1),
    bytes_per_step: round(total / runs / STEPS, 1),
    rows_per_run: round(rowsTotal / runs, 2),
    tables_grown: lines.length,
  });
  return { bytesPerRun: total / runs, bytesPerRunKept: kept / runs, usedBytesPerRun: used === null ? null : used / runs };
}

async function stepwiseBytes(runs: number, warmup: number): Promise<SystemBytes> {
  return withScratchDatabase('stepwise_bytes', async (scratch) => {
    const db = new PostgresDb(scratch.url, { poolSize: 8, role: 'bench' });
    const workers: Worker[] = [];
    const query = async <R>(sql: string, params?: unknown[]) => (await db.query<R>(sql, params)).rows;
    try {
      const { org, wf } = await setUpTenSteps(db, workers);
      const runBatch = async (count: number, tag: string) => {
        for (let i = 0; i < count; i += 1000) {
          await startRuns(db, org.id, wf.id, Array.from({ length: Math.min(1000, count - i) }, (_, k) => ({ input: { member: `${tag}-${i + k}` } })));
        }
        await waitUntil(async () => !(await db.query<{ busy: boolean }>(`SELECT EXISTS (SELECT 1 FROM stepwise.job_queue) AS busy`)).rows[0]!.busy, {
          intervalMs: POLL_MS,
          timeoutMs: 300_000,
          what: `${count} runs to finish`,
        });
        // The finished runs' aggregate_outbox rows, rolled up as the workers do within 500 ms of a flush:
        // transient like the queue's, not part of what a run keeps.
        await rollUpAggregates(db, { wait: true });
      };
      await runBatch(warmup, 'warm');
      const withFree = await freeSpaceMap((sql) => db.exec(sql));
      await db.exec('VACUUM');
      const before = await tableSizes(query, 'stepwise', withFree);
      await runBatch(runs, 'M');
      const { rows: outcome } = await db.query<{ completed: number; total: number; stream: number }>(
        `SELECT count(*) FILTER (WHERE status = 'COMPLETED')::int AS completed, count(*)::int AS total,
                (SELECT count(*)::int FROM stepwise.execution_log) AS stream
           FROM stepwise.jobs`,
      );
      const o = outcome[0]!;
      check(o.total === warmup + runs && o.completed === o.total, `stepwise: ${o.completed} of ${o.total} jobs COMPLETED, ${warmup + runs} started`);
      // JOB_STARTED + 10 × (STEP_STARTED, STEP_COMPLETED) + 5 log lines + JOB_COMPLETED per run.
      check(o.stream === o.total * (2 + STEPS * 2 + STEPS / 2), `stepwise: ${o.stream} stream rows for ${o.total} runs`);
      await db.exec('VACUUM');
      const after = await tableSizes(query, 'stepwise', withFree);
      return report('stepwise', runs, before, after);
    } finally {
      await Promise.all(workers.map((w) => w.stop()));
      await db.close();
      // pg-pool's end() returns once it has asked its connections to close; dropping the database
      // at once terminates them first and every pooled client then logs a lost connection.
      await sleep(200);
    }
  });
}

/** DBOS starts runs directly, in batches awaited whole: how it starts them does not change what it stores. */
const DBOS_BATCH = 500;

async function dbosBytes(runs: number, warmup: number): Promise<SystemBytes> {
  const { DBOS } = await import('@dbos-inc/dbos-sdk');
  const { dbosStatusCounts, dbosWorkflows, withDbos } = await import('./peers/dbos.js');
  const wf = dbosWorkflows();
  return withDbos('dbos_bytes', async (run) => {
    const query = async <R>(sql: string, params?: unknown[]) => (await run.client.query(sql, params)).rows as R[];
    const runBatch = async (count: number, tag: string) => {
      for (let i = 0; i < count; i += DBOS_BATCH) {
        const n = Math.min(DBOS_BATCH, count - i);
        await Promise.all(
          Array.from({ length: n }, async (_, k) => (await DBOS.startWorkflow(wf.tenSteps)(`${tag}-${i + k}`)).getResult()),
        );
      }
    };
    await runBatch(warmup, 'warm');
    const withFree = await freeSpaceMap((sql) => run.client.query(sql));
    await run.client.query('VACUUM');
    const before = await tableSizes(query, 'dbos', withFree);
    await runBatch(runs, 'M');
    const counts = await dbosStatusCounts(run.client);
    check(counts.SUCCESS === warmup + runs && Object.keys(counts).length === 1, `dbos: statuses ${JSON.stringify(counts)}, ${warmup + runs} started`);
    const [steps] = await query<{ n: number }>(`SELECT count(*)::int AS n FROM dbos.operation_outputs`);
    check(steps!.n === (warmup + runs) * STEPS, `dbos: ${steps!.n} operation_outputs rows for ${warmup + runs} runs`);
    await run.client.query('VACUUM');
    const after = await tableSizes(query, 'dbos', withFree);
    return report('dbos', runs, before, after);
  });
}

export async function bytes(opts: BenchOptions): Promise<void> {
  const runs = opts.jobs === 20_000 ? 2_000 : opts.jobs; // this scenario's default is 2,000 runs
  const warmup = Math.min(opts.warmup, 200);
  log(`bytes: ${runs} runs of a ${STEPS}-step workflow per system (+${warmup} warm-up before the baseline)`);
  log('stepwise…');
  const sw = await stepwiseBytes(runs, warmup);
  log('dbos…');
  const dbos = await dbosBytes(runs, warmup);
  // Bytes per run divided: > 1 means Stepwise stores more per run.
  emit({
    scenario: 'bytes',
    ratios: {
      stepwise_vs_dbos: round(sw.bytesPerRun / dbos.bytesPerRun, 2),
      stepwise_vs_dbos_kept: round(sw.bytesPerRunKept / dbos.bytesPerRunKept, 2),
      stepwise_vs_dbos_used: sw.usedBytesPerRun === null || dbos.usedBytesPerRun === null ? null : round(sw.usedBytesPerRun / dbos.usedBytesPerRun, 2),
    },
  });
}
