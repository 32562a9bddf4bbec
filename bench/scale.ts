/**
 * `npm run -s bench -- scale`: one year at a busy tenant's scale on the server
 * (issue 4 item 7), then p50/p95 of every dashboard and analytics query in
 * its Stepwise form and its naive form, and the bytes each job, stream row
 * and metadata row cost on disk. JSON lines on stdout, progress on stderr.
 */
import pg from 'pg';
import { migrate, PostgresDb, type Db } from '../src/db/index.js';
import { compactReadModelIndexes } from '../src/lifecycle/index.js';
import { databaseFlag, eachFlag, intFlag, unknownFlag, datasetFlag } from './flags.js';
import { check, createScratchDatabase, emit, log, nearestRank, now, round, serverUrl, urlForDatabase, type ScratchDatabase } from './lib.js';
import { checkScaleDataset, generateScaleDataset, SCALE_DEFAULTS } from './scale-data.js';
import { Rng, scaleQueries, type ScaleContext, type Variant } from './scale-queries.js';


export interface ScaleOptions {
  months: number;
  jobsPerMonth: number;
  rowsPerJob: number;
  /** Timed calls per query and variant (a naive form stops earlier when it exhausts its time budget). */
  runs: number;
  /** Seconds one query's naive form may take in total before it stops (after at least MIN_NAIVE_RUNS calls). */
  naiveBudgetS: number;
  /** Keep the generated database (its name is printed) for `--database`. */
  keep: boolean;
  /** Reuse this generated database: no generation, no drop. */
  database: string | null;
}

export const SCALE_USAGE = `scale options: [--months N] [--jobs-per-month N] [--rows-per-job N] [--runs N] [--naive-budget-s N] [--keep] [--database NAME]
  defaults: ${SCALE_DEFAULTS.months} months × ${SCALE_DEFAULTS.jobsPerMonth} jobs × ${SCALE_DEFAULTS.rowsPerJob} rows (a busy tenant's year), 100 runs, naive budget 60 s`;

/** Naive forms that take seconds a call still get this many timed calls, so p50/p95 mean something. */
const MIN_NAIVE_RUNS = 5;
const WARMUP_CALLS = 2;
/** Jobs sampled for the job-level queries and list cursors. */
const SAMPLE_JOBS = 500;
const PRNG_SEED = 20261123;


/** Parse the scale scenario's own flags (both `--runs 50` and `--runs=50`). */
export function parseScaleOptions(args: string[]): ScaleOptions {
  const opts: ScaleOptions = {
    months: SCALE_DEFAULTS.months,
    jobsPerMonth: SCALE_DEFAULTS.jobsPerMonth,
    rowsPerJob: SCALE_DEFAULTS.rowsPerJob,
    runs: 100,
    naiveBudgetS: 60,
    keep: false,
    database: null,
  };
  eachFlag(args, (flag, value, arg) => {
    if (datasetFlag(opts, flag, value, { months: 1, rowsPerJob: 1 })) return;
    switch (flag) {
      case '--runs':
        opts.runs = intFlag(flag, value(), 1);
        break;
      case '--naive-budget-s':
        opts.naiveBudgetS = intFlag(flag, value(), 0);
        break;
      case '--keep':
        opts.keep = true;
        break;
      case '--database':
        opts.database = databaseFlag(flag, value());
        break;
      default:
        unknownFlag(arg);
    }
  });
  return opts;
}

/** Read what the queries need from the dataset: organizations with their workflows and clients, sampled jobs, the time range. */
async function loadContext(db: Db): Promise<ScaleContext> {
  const { rows: orgs } = await db.query<{ id: string; workflow_ids: string[]; client_ids: string[] }>(
    `SELECT o.id,
            array(SELECT w.id FROM stepwise.workflows w WHERE w.organization_id = o.id ORDER BY w.id) AS workflow_ids,
            array(SELECT c.id FROM stepwise.clients c WHERE c.organization_id = o.id ORDER BY c.id) AS client_ids
       FROM stepwise.organizations o
      WHERE EXISTS (SELECT 1 FROM stepwise.workflows w WHERE w.organization_id = o.id)
      ORDER BY o.id`,
  );
  const { rows: jobs } = await db.query<{ id: string; organization_id: string; last_seq: number; created_us: string; run_number: string }>(
    `SELECT id, organization_id, last_seq, (extract(epoch FROM created_at) * 1000000)::bigint::text AS created_us, run_number
       FROM stepwise.jobs TABLESAMPLE BERNOULLI (1) REPEATABLE (7)
      WHERE last_seq > 0
      -- Shuffled before the limit: the sample comes in physical order, i.e. oldest months first.
      ORDER BY md5(id::text) LIMIT $1`,
    [SAMPLE_JOBS],
  );
  const { rows: span } = await db.query<{ from: Date; to: Date }>(
    `SELECT date_trunc('month', min(created_at), 'UTC') AS "from", max(completed_at) AS "to" FROM stepwise.execution_metadata`,
  );
  check(orgs.length > 0 && jobs.length > 0 && span[0]?.from != null, 'the database holds no scale dataset');
  return {
    organizations: orgs.map((o) => ({ id: o.id, workflowIds: o.workflow_ids, clientIds: o.client_ids })),
    sampleJobs: jobs.map((j) => ({ id: j.id, organizationId: j.organization_id, lastSeq: j.last_seq, createdUs: j.created_us, runNumber: Number(j.run_number) })),
    from: span[0]!.from,
    to: span[0]!.to,
  };
}


/** The target for every Stepwise query at one year of data. */
const TARGET_P95_MS = 20;

interface Statement {
  text: string;
  params: readonly unknown[] | undefined;
}

/** The same Db, noting every statement a call sends (to EXPLAIN the slowest call afterwards). */
function recordingDb(db: Db, sink: Statement[]): Db {
  return new Proxy(db, {
    get(target, prop) {
      if (prop === 'query') {
        return (text: string, params?: readonly unknown[]) => {
          sink.push({ text, params });
          return target.query(text, params);
        };
      }
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

interface Timing {
  /** Sorted, ms. */
  times: number[];
  slowest: { ms: number; statements: Statement[] };
}

/** Time one form of one query: warm-up calls, then up to `runs` timed calls with parameters from a fresh PRNG. */
async function timeQuery(db: Db, call: (db: Db, rnd: Rng) => Promise<unknown>, runs: number, budgetMs: number): Promise<Timing> {
  const warm = new Rng(PRNG_SEED ^ 0x5bd1e995);
  for (let i = 0; i < WARMUP_CALLS; i++) await call(db, warm);
  const rnd = new Rng(PRNG_SEED);
  const times: number[] = [];
  let slowest: Timing['slowest'] = { ms: -1, statements: [] };
  const started = now();
  for (let i = 0; i < runs; i++) {
    const statements: Statement[] = [];
    const t0 = now();
    await call(recordingDb(db, statements), rnd);
    const ms = now() - t0;
    times.push(ms);
    if (ms > slowest.ms) slowest = { ms, statements };
    if (times.length >= MIN_NAIVE_RUNS && now() - started > budgetMs) break;
  }
  return { times: times.sort((a, b) => a - b), slowest };
}

/** EXPLAIN (ANALYZE, BUFFERS) of the statements of a call, to stderr: plan or contention? */
async function explainSlowest(db: Db, what: string, slowest: Timing['slowest']): Promise<void> {
  for (const st of slowest.statements) {
    const { rows } = await db.query<{ 'QUERY PLAN': string }>(`EXPLAIN (ANALYZE, BUFFERS) ${st.text}`, st.params);
    log(`EXPLAIN ${what} (slowest call ${round(slowest.ms, 1)} ms), params ${JSON.stringify(st.params)}:\n${st.text}\n${rows.map((r) => r['QUERY PLAN']).join('\n')}`);
  }
}

interface Sizes {
  jobs: number;
  jobsBytes: number;
  streamRows: number;
  streamBytes: number;
  streamHeap: number;
  streamIndex: number;
  metadataRows: number;
  metadataBytes: number;
  aggregateBytes: number;
  stepMetricsBytes: number;
}

/** Table + index + toast bytes (after the generator's VACUUM ANALYZE, as autovacuum leaves tables). */
async function measureSizes(db: Db): Promise<Sizes> {
  const { rows } = await db.query<Record<keyof Sizes, string>>(
    `SELECT (SELECT count(*) FROM stepwise.jobs) AS "jobs",
            pg_total_relation_size('stepwise.jobs') AS "jobsBytes",
            (SELECT count(*) FROM stepwise.execution_log) AS "streamRows",
            (SELECT sum(pg_total_relation_size(relid)) FROM pg_partition_tree('stepwise.execution_log') WHERE isleaf) AS "streamBytes",
            (SELECT sum(pg_table_size(relid)) FROM pg_partition_tree('stepwise.execution_log') WHERE isleaf) AS "streamHeap",
            (SELECT sum(pg_indexes_size(relid)) FROM pg_partition_tree('stepwise.execution_log') WHERE isleaf) AS "streamIndex",
            (SELECT count(*) FROM stepwise.execution_metadata) AS "metadataRows",
            pg_total_relation_size('stepwise.execution_metadata') AS "metadataBytes",
            pg_total_relation_size('stepwise.aggregate_metrics') AS "aggregateBytes",
            pg_total_relation_size('stepwise.step_metrics') AS "stepMetricsBytes"`,
  );
  const r = rows[0]!;
  return Object.fromEntries(Object.entries(r).map(([k, v]) => [k, Number(v)])) as unknown as Sizes;
}

async function databaseComment(name: string, value?: string): Promise<string | null> {
  const admin = new pg.Client({ connectionString: serverUrl() });
  await admin.connect();
  try {
    if (value !== undefined) {
      // The name was generated or validated as a plain identifier; the value is a literal.
      await admin.query(`COMMENT ON DATABASE ${name} IS ${admin.escapeLiteral(value)}`);
      return value;
    }
    const { rows } = await admin.query<{ c: string | null }>(`SELECT shobj_description(oid, 'pg_database') AS c FROM pg_database WHERE datname = $1`, [name]);
    return rows[0]?.c ?? null;
  } finally {
    await admin.end();
  }
}

/** The scenario: generate (or reuse) the dataset, check it, measure sizes, time every query in both forms. */
export async function scale(args: string[]): Promise<void> {
  const opts = parseScaleOptions(args);
  let scratch: ScratchDatabase | null = null;
  let name: string;
  if (opts.database) {
    name = opts.database;
  } else {
    scratch = await createScratchDatabase('scale');
    name = scratch.name;
  }
  const db = new PostgresDb(urlForDatabase(serverUrl(), name), { poolSize: 4, role: 'bench' });
  try {
    if (!opts.database) await migrate(db);
    else {
      // A kept dataset outlives edits of src/: use it as it is rather than fail on a changed migration's checksum.
      await migrate(db).catch((err: unknown) => log(`migrate skipped on ${name}: ${err instanceof Error ? err.message : String(err)}`));
    }
    let generationS: number | null = null;
    if (!opts.database) {
      log(`generating ${opts.months} months × ${opts.jobsPerMonth} jobs × ~${opts.rowsPerJob} stream rows into ${name}`);
      const ds = await generateScaleDataset(db, { months: opts.months, jobsPerMonth: opts.jobsPerMonth, rowsPerJob: opts.rowsPerJob, onProgress: log });
      generationS = round(ds.generationSeconds, 1);
      log(`generated ${ds.jobs} jobs and ${ds.streamRows} stream rows in ${generationS} s`);
      await databaseComment(name, JSON.stringify({ generation_s: generationS, jobs: ds.jobs, stream_rows: ds.streamRows }));
    } else {
      const comment = await databaseComment(name);
      generationS = comment ? ((JSON.parse(comment) as { generation_s?: number }).generation_s ?? null) : null;
      log(`reusing ${name} (generated in ${generationS ?? '?'} s)`);
    }
    const consistency = await checkScaleDataset(db);
    log(`consistency: ${JSON.stringify(consistency.counts)}`);
    check(consistency.ok, `derived tables disagree with jobs: ${JSON.stringify(consistency.counts)}`);

    // What the weekly maintenance does to the read model's indexes
    // (src/lifecycle/index-compaction.ts): sizes before and after, both reported.
    const uncompacted = await measureSizes(db);
    const compaction = await compactReadModelIndexes(db, { holder: 'bench-scale', force: true });
    log(`index compaction: ${compaction.ms} ms, ${JSON.stringify(compaction.indexes.map((i) => [i.name, i.bytesBefore, i.bytesAfter]))}`);
    const s = await measureSizes(db);
    log(
      `sizes: jobs ${round(s.jobsBytes / 2 ** 20, 1)} MiB, stream ${round(s.streamBytes / 2 ** 20, 1)} MiB ` +
        `(heap ${round(s.streamHeap / s.streamRows, 1)} + indexes ${round(s.streamIndex / s.streamRows, 1)} B/row), ` +
        `metadata ${round(s.metadataBytes / 2 ** 20, 1)} MiB, aggregate_metrics ${round(s.aggregateBytes / 2 ** 20, 1)} MiB, ` +
        `step_metrics ${round(s.stepMetricsBytes / 2 ** 20, 1)} MiB`,
    );
    const ctx = await loadContext(db);
    for (const q of scaleQueries(ctx)) {
      for (const variant of ['stepwise', 'naive'] as Variant[]) {
        const budget = variant === 'naive' ? opts.naiveBudgetS * 1000 : Number.POSITIVE_INFINITY;
        const { times, slowest } = await timeQuery(db, q.run[variant], opts.runs, budget);
        log(`${q.name} ${variant}: ${times.length} runs, min ${round(times[0]!, 2)} max ${round(times[times.length - 1]!, 2)} ms`);
        const p95 = nearestRank(times, 95);
        emit({ scenario: 'scale', query: q.name, variant, p50_ms: round(nearestRank(times, 50), 2), p95_ms: round(p95, 2) });
        if (variant === 'stepwise' && p95 > TARGET_P95_MS) await explainSlowest(db, `${q.name} ${variant}`, slowest);
      }
    }
    emit({
      scenario: 'scale',
      jobs: s.jobs,
      stream_rows: s.streamRows,
      bytes_per_job: round(s.jobsBytes / s.jobs, 1),
      bytes_per_stream_row: round(s.streamBytes / s.streamRows, 1),
      bytes_per_metadata_row: round(s.metadataBytes / s.metadataRows, 1),
      bytes_per_metadata_row_before_index_compaction: round(uncompacted.metadataBytes / uncompacted.metadataRows, 1),
      generation_s: generationS,
    });
  } finally {
    await db.close();
    if (scratch) {
      if (opts.keep) log(`kept database ${name}: rerun with --database ${name}`);
      else await scratch.drop().catch((err: unknown) => log(`could not drop ${name}: ${String(err)}`));
    }
  }
}
