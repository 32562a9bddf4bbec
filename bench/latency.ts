import pg from 'pg';
import { loadConfig } from '../src/config/index.js';
import { ensureStreamPartitions, migrate, PostgresDb } from '../src/db/index.js';
import { defineWorkflow, startRuns, Worker } from '../src/engine/index.js';
import { CHANGES_CHANNEL, createOrganization, parseChangePayload, TERMINAL_STATUSES } from '../src/store/index.js';
import { DbCpuSampler, type CpuDelta } from './db-cpu.js';
import { BenchUsageError, eachFlag, intFlag, unknownFlag } from './flags.js';
import {
  BenchCheckError,
  check,
  emit,
  log,
  nearestRank,
  now,
  round,
  settle,
  sleep,
  STATS_MODES,
  stderrLogger,
  withScratchDatabase,
  type StatsMode,
} from './lib.js';
import { DEFINITION } from './throughput.js';

/**
 * The queue and getResult polling interval of `dbos-queued` (ms; `--dbos-poll-ms`):
 * DBOS's low-latency setting, both knobs lowered (bench/peers/dbos.ts).
 */
export const DBOS_FAST_POLL_MS = 20;
/** DBOS's own defaults for both (wfqueue.js defaultMinPollingIntervalMs, system_database.js dbPollingIntervalResultMs). */
export const DBOS_DEFAULT_POLL_MS = 1000;

/**
 * `latency`: one-step runs started at a steady rate, one run per start call
 * (as an API request or a webhook starts them), and the time until someone
 * outside sees each run finished. Also the database server's CPU per run.
 *
 * Stepwise: `startRuns(db, org, wf, [{ input }])` per run, one `Worker` with
 * `loadConfig({}).worker` (concurrency 100, claims of 100, a flush every
 * 5 ms, woken by NOTIFY, 1 s fallback poll) on one PostgresDb of the default
 * pool size (10): what `stepwise serve` runs. The workflow is throughput's
 * one `log` step (a 52-character line; five stream rows per run).
 * Completion is observed the way an outside client can: a LISTEN connection
 * of its own on `stepwise_changes` (every flush announces the jobs it
 * touched; so do the enqueue and the claim), then one
 * `SELECT id, status … WHERE id = ANY($1)` for the announced ids still
 * pending: only a terminal status counts, so an announcement of RUNNING does
 * not end a run.
 *
 * DBOS Transact, same rates, its own database: the same one step (a
 * `DBOS.runStep` returning the same line), (a) direct: `DBOS.startWorkflow`
 * then `handle.getResult()`; (b) queued on a queue registered with both of
 * DBOS's polling intervals lowered (bench/peers/dbos.ts says why and how
 * DBOS waits), and optionally (c) the same with DBOS's defaults (1 s).
 *
 * Starts follow a schedule (run i at t0 + i/rate), not a sleep after each
 * call, so a slow call does not lower the rate; each latency runs from just
 * before its start call. Each system and rate: a warm-up at that rate,
 * `settle()`, then `--rounds` timed rounds, CPU sampled before and after
 * each (bench/db-cpu.ts).
 */

export const LATENCY_USAGE = `usage: npm run -s bench -- latency [--rates 50,500] [--seconds 10,4] [--rounds 3] [--warmup-seconds 2]
         [--systems stepwise,dbos-direct,dbos-queued[,stepwise-floor,dbos-queued-default]] [--dbos-poll-ms ${DBOS_FAST_POLL_MS}] [--stats ${STATS_MODES.join('|')}]`;

const SYSTEMS = ['stepwise', 'stepwise-floor', 'dbos-direct', 'dbos-queued', 'dbos-queued-default'] as const;
type System = (typeof SYSTEMS)[number];

interface LatencyOptions {
  rates: number[];
  /** Seconds per round, one per rate. */
  seconds: number[];
  rounds: number;
  warmupSeconds: number;
  systems: System[];
  dbosPollMs: number;
  stats: StatsMode;
}

function listFlag(flag: string, raw: string | undefined, min: number): number[] {
  if (raw === undefined) throw new BenchUsageError(`${flag} needs a comma-separated list`);
  return raw.split(',').map((v) => intFlag(flag, v, min));
}

function parseLatencyOptions(args: string[]): LatencyOptions {
  const opts: LatencyOptions = {
    rates: [50, 500],
    seconds: [10, 4],
    rounds: 3,
    warmupSeconds: 2,
    systems: ['stepwise', 'dbos-direct', 'dbos-queued'],
    dbosPollMs: DBOS_FAST_POLL_MS,
    stats: 'vacuum-analyze',
  };
  let seconds: number[] | undefined;
  eachFlag(args, (flag, value, arg) => {
    switch (flag) {
      case '--rates':
        opts.rates = listFlag(flag, value(), 1);
        break;
      case '--seconds':
        seconds = listFlag(flag, value(), 1);
        break;
      case '--rounds':
        opts.rounds = intFlag(flag, value(), 1);
        break;
      case '--warmup-seconds':
        opts.warmupSeconds = intFlag(flag, value(), 0);
        break;
      case '--dbos-poll-ms':
        opts.dbosPollMs = intFlag(flag, value(), 1);
        break;
      case '--systems': {
        const raw = value() ?? '';
        const names = raw.split(',');
        const bad = names.filter((n) => !SYSTEMS.some((s) => s === n));
        if (bad.length > 0 || raw === '') throw new BenchUsageError(`--systems takes ${SYSTEMS.join(', ')}; got "${raw}"`);
        opts.systems = SYSTEMS.filter((s) => names.includes(s));
        break;
      }
      case '--stats': {
        const mode = value();
        const found = STATS_MODES.find((m) => m === mode);
        if (!found) throw new BenchUsageError(`--stats needs one of ${STATS_MODES.join(', ')}, got "${mode ?? ''}"`);
        opts.stats = found;
        break;
      }
      default:
        unknownFlag(arg);
    }
  });
  if (seconds) {
    if (seconds.length === 1) opts.seconds = opts.rates.map(() => seconds![0]!);
    else if (seconds.length === opts.rates.length) opts.seconds = seconds;
    else throw new BenchUsageError(`--seconds needs one value, or one per rate (${opts.rates.length})`);
  } else if (opts.rates.length !== 2 || opts.rates[0] !== 50 || opts.rates[1] !== 500) {
    // Other rates: 500 runs or 4 s, whichever is longer, per round.
    opts.seconds = opts.rates.map((r) => Math.max(4, Math.ceil(500 / r)));
  }
  return opts;
}

const member = (i: number) => `M-${String(i).padStart(6, '0')}`;
const expectedLine = (m: string) => `checked eligibility for member ${m}: plan active`;

/** Starts one run, calls `started()` when its start call has returned, and resolves once it is seen finished (rejects if it failed). */
type RunOne = (seq: number, started: () => void) => Promise<void>;

interface Paced {
  latencies: number[];
  /** How long each start call took (from before the call until it returned). */
  starts: number[];
  achievedRate: number;
}

/** How long the runs of a round may take to finish after the last start before the round fails. */
const DRAIN_TIMEOUT_MS = 60_000;

/**
 * Start `count` runs on the schedule t0 + i/rate, without waiting for one
 * to finish before starting the next; resolve when all are seen finished.
 * `seq0` numbers the runs across rounds (inputs stay unique).
 */
async function paced(rate: number, count: number, seq0: number, runOne: RunOne, describe: () => Promise<string>): Promise<Paced> {
  const latencies = new Array<number>(count).fill(Number.NaN);
  const starts = new Array<number>(count).fill(Number.NaN);
  const errors: unknown[] = [];
  const inFlight: Promise<void>[] = [];
  const intervalMs = 1000 / rate;
  const t0 = now();
  let first = 0;
  let last = 0;
  for (let i = 0; i < count; i++) {
    const wait = t0 + i * intervalMs - now();
    // A timer fires ≥1 ms late; the schedule is absolute, so a late start is followed by an early one, not a drift.
    if (wait >= 1) await sleep(wait);
    const start = now();
    if (i === 0) first = start;
    last = start;
    inFlight.push(
      runOne(seq0 + i, () => {
        starts[i] = now() - start;
      }).then(
        () => {
          latencies[i] = now() - start;
        },
        (err: unknown) => {
          errors.push(err);
        },
      ),
    );
  }
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), DRAIN_TIMEOUT_MS);
  });
  const outcome = await Promise.race([Promise.all(inFlight), timedOut]);
  clearTimeout(timer);
  if (outcome === 'timeout') {
    const open = latencies.filter((l) => Number.isNaN(l)).length - errors.length;
    throw new BenchCheckError(`${open} of ${count} runs not seen finished ${DRAIN_TIMEOUT_MS} ms after the last start: ${await describe()}`);
  }
  if (errors.length > 0) {
    throw new BenchCheckError(`${errors.length} of ${count} runs failed; first: ${errors[0] instanceof Error ? errors[0].message : String(errors[0])}`);
  }
  return { latencies, starts, achievedRate: count > 1 ? ((count - 1) * 1000) / (last - first) : rate };
}

interface RoundLine {
  p50: number;
  p95: number;
  p99: number;
  startP50: number;
  startP99: number;
  achievedRate: number;
  dbCpu: number | null;
  dbCpuOwn: number | null;
  processCpu: number;
  xacts: number | null;
  /** Stepwise: the part of dbCpu spent by the observer's two connections (its status queries, LISTEN). */
  observerCpu: number | null;
}

interface Target {
  system: System;
  /** Settings reported with every line of this system. */
  settings: Record<string, unknown>;
  runOne: RunOne;
  describe: () => Promise<string>;
  exec: (sql: string) => Promise<unknown>;
  /** Backends of an outside observer, whose CPU is reported apart. */
  observerPids?: number[];
  /** A stderr line on where the time of the runs numbered [from, to) went. */
  diagnose?: (from: number, to: number) => Promise<string>;
}

/** A round's or a summary's figures as result-line fields, in the lines' order (`maxMs`: a round's slowest run). */
function lineFields(l: RoundLine, maxMs?: number): Record<string, number | null> {
  return {
    achieved_rate: round(l.achievedRate, 1),
    p50_ms: round(l.p50, 2),
    p95_ms: round(l.p95, 2),
    p99_ms: round(l.p99, 2),
    ...(maxMs !== undefined ? { max_ms: maxMs } : {}),
    start_p50_ms: round(l.startP50, 2),
    start_p99_ms: round(l.startP99, 2),
    db_cpu_ms_per_run: l.dbCpu === null ? null : round(l.dbCpu, 3),
    db_cpu_own_ms_per_run: l.dbCpuOwn === null ? null : round(l.dbCpuOwn, 3),
    process_cpu_ms_per_run: round(l.processCpu, 3),
    db_xacts_per_run: l.xacts === null ? null : round(l.xacts, 2),
    ...(l.observerCpu !== null ? { observer_db_cpu_ms_per_run: round(l.observerCpu, 3) } : {}),
  };
}

const median = (values: number[]): number => {
  const s = [...values].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** Per rate: warm-up, settle, rounds; one line per round and a summary. Returns the summaries by rate. */
async function measure(target: Target, opts: LatencyOptions, sampler: DbCpuSampler | null, seq: { next: number }): Promise<Map<number, RoundLine>> {
  const summaries = new Map<number, RoundLine>();
  for (const [k, rate] of opts.rates.entries()) {
    const seconds = opts.seconds[k]!;
    const runs = Math.round(rate * seconds);
    if (opts.warmupSeconds > 0) {
      const n = Math.round(rate * opts.warmupSeconds);
      await paced(rate, n, seq.next, target.runOne, target.describe);
      seq.next += n;
    }
    await settle(target.exec, opts.stats);
    const rounds: RoundLine[] = [];
    const firstTimed = seq.next;
    for (let r = 1; r <= opts.rounds; r++) {
      const before = sampler ? await sampler.sample() : null;
      const cpu0 = process.cpuUsage();
      const res = await paced(rate, runs, seq.next, target.runOne, target.describe);
      seq.next += runs;
      const after = sampler ? await sampler.sample() : null;
      const d: CpuDelta | null = before && after && sampler ? sampler.delta(before, after) : null;
      const cpu = process.cpuUsage(cpu0);
      const sorted = [...res.latencies].sort((a, b) => a - b);
      const startSorted = [...res.starts].sort((a, b) => a - b);
      const line: RoundLine = {
        p50: nearestRank(sorted, 50),
        p95: nearestRank(sorted, 95),
        p99: nearestRank(sorted, 99),
        startP50: nearestRank(startSorted, 50),
        startP99: nearestRank(startSorted, 99),
        achievedRate: res.achievedRate,
        dbCpu: d ? d.serverMs / runs : null,
        dbCpuOwn: d ? d.ownMs / runs : null,
        processCpu: (d ? d.processMs : (cpu.user + cpu.system) / 1000) / runs,
        xacts: d ? d.xacts / runs : null,
        observerCpu: d && target.observerPids ? target.observerPids.reduce((sum, pid) => sum + (d.byPid.get(pid) ?? 0), 0) / runs : null,
      };
      rounds.push(line);
      emit({
        scenario: 'latency',
        system: target.system,
        rate,
        round: r,
        runs,
        ...lineFields(line, round(sorted[sorted.length - 1]!, 2)),
        ...target.settings,
      });
    }
    const med = (f: (l: RoundLine) => number | null): number | null => {
      const v = rounds.map(f);
      return v.some((x) => x === null) ? null : median(v as number[]);
    };
    const summary: RoundLine = {
      p50: med((l) => l.p50)!,
      p95: med((l) => l.p95)!,
      p99: med((l) => l.p99)!,
      startP50: med((l) => l.startP50)!,
      startP99: med((l) => l.startP99)!,
      achievedRate: med((l) => l.achievedRate)!,
      dbCpu: med((l) => l.dbCpu),
      dbCpuOwn: med((l) => l.dbCpuOwn),
      processCpu: med((l) => l.processCpu)!,
      xacts: med((l) => l.xacts),
      observerCpu: med((l) => l.observerCpu),
    };
    summaries.set(rate, summary);
    if (target.diagnose) log(`${target.system} ${rate}/s: ${await target.diagnose(firstTimed, seq.next)}`);
    emit({
      scenario: 'latency',
      system: target.system,
      rate,
      summary: `median of ${opts.rounds} rounds`,
      runs_per_round: runs,
      ...lineFields(summary),
      ...target.settings,
    });
  }
  return summaries;
}

/**
 * Sees Stepwise runs finish from outside: LISTEN on `stepwise_changes` on a
 * connection of its own, and for announced ids still pending one status
 * query at a time on a second connection (announcements arriving meanwhile
 * wait for the next query, so under load one query covers many).
 */
class CompletionObserver {
  private readonly waiting = new Map<string, { resolve: () => void; reject: (err: Error) => void }>();
  /** Announced before their start call returned (the claim and flush can beat the enqueue's reply). */
  private readonly early = new Set<string>();
  private readonly toCheck = new Set<string>();
  private checking = false;
  statusQueries = 0;
  /** Per run seen finished: ms from its completed_at (the worker's clock, this machine) to being seen here. */
  recordLags: number[] = [];
  /** Server pids of the two connections. */
  pids: number[] = [];

  private constructor(
    private readonly listen: pg.Client,
    private readonly query: pg.Client,
    private readonly organizationId: string,
  ) {}

  static async open(url: string, organizationId: string): Promise<CompletionObserver> {
    const listen = new pg.Client({ connectionString: url, application_name: 'bench-observer-listen' });
    const query = new pg.Client({ connectionString: url, application_name: 'bench-observer' });
    for (const c of [listen, query]) c.on('error', (err) => log(`observer connection: ${err.message}`));
    await listen.connect();
    await query.connect();
    const o = new CompletionObserver(listen, query, organizationId);
    listen.on('notification', (n) => {
      if (n.channel === CHANGES_CHANNEL && n.payload) o.announced(n.payload);
    });
    await listen.query(`LISTEN ${CHANGES_CHANNEL}`);
    for (const c of [listen, query]) o.pids.push((await c.query<{ pid: number }>(`SELECT pg_backend_pid() AS pid`)).rows[0]!.pid);
    return o;
  }

  private announced(payload: string): void {
    const parsed = parseChangePayload(payload);
    if (!parsed || parsed.organizationId !== this.organizationId) return;
    for (const id of parsed.jobIds) {
      if (this.waiting.has(id)) this.toCheck.add(id);
      else this.early.add(id);
    }
    this.kick();
  }

  /** Resolves when job `id` is seen in a terminal status after an announcement (rejects if not COMPLETED). */
  finished(id: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      if (this.early.delete(id)) {
        this.toCheck.add(id);
        this.kick();
      }
    });
  }

  private kick(): void {
    if (this.checking || this.toCheck.size === 0) return;
    this.checking = true;
    const ids = [...this.toCheck];
    this.toCheck.clear();
    this.statusQueries++;
    this.query
      .query<{ id: string; status: string; completed_ms: number | null }>(
        `SELECT id, status, extract(epoch FROM completed_at) * 1000 AS completed_ms FROM stepwise.jobs WHERE id = ANY($1::uuid[])`,
        [ids],
      )
      .then(
        ({ rows }) => {
          const seenAt = Date.now();
          for (const row of rows) {
            if (!TERMINAL_STATUSES.some((s) => s === row.status)) continue;
            const w = this.waiting.get(row.id);
            if (!w) continue;
            this.waiting.delete(row.id);
            if (row.completed_ms !== null) this.recordLags.push(seenAt - Number(row.completed_ms));
            if (row.status === 'COMPLETED') w.resolve();
            else w.reject(new BenchCheckError(`job ${row.id} ended ${row.status}`));
          }
        },
        (err: unknown) => {
          for (const id of ids) this.waiting.get(id)?.reject(err instanceof Error ? err : new Error(String(err)));
        },
      )
      .finally(() => {
        this.checking = false;
        this.kick();
      });
  }

  /** The jobs still waited for, with their status now (for a timed-out round). */
  async describe(): Promise<string> {
    const ids = [...this.waiting.keys()];
    const { rows } = await this.query.query<{ status: string; n: number }>(
      `SELECT status, count(*)::int AS n FROM stepwise.jobs WHERE id = ANY($1::uuid[]) GROUP BY status`,
      [ids],
    );
    return `${ids.length} waited for: ${rows.map((r) => `${r.status}=${r.n}`).join(' ') || 'none found'} (a finished job never announced would show as COMPLETED here)`;
  }

  async close(): Promise<void> {
    await this.listen.end().catch(() => undefined);
    await this.query.end().catch(() => undefined);
  }
}

/** A migrated scratch database with one organization and throughput's one-step workflow. */
async function prepareStepwise(db: PostgresDb): Promise<{ org: { id: string }; wf: { id: string } }> {
  await migrate(db);
  await ensureStreamPartitions(db);
  const org = await createOrganization(db, { name: 'bench', plan: 'ENTERPRISE' });
  const wf = await defineWorkflow(db, org.id, { name: 'eligibility-note', definition: DEFINITION });
  return { org, wf };
}

/** Every job started is there and COMPLETED. */
async function checkAllCompleted(db: PostgresDb, system: string, started: number): Promise<void> {
  const { rows } = await db.query<{ completed: number; total: number }>(
    `SELECT count(*) FILTER (WHERE status = 'COMPLETED')::int AS completed, count(*)::int AS total FROM stepwise.jobs`,
  );
  check(rows[0]!.total === started && rows[0]!.completed === started, `${system}: ${rows[0]!.completed} of ${rows[0]!.total} jobs COMPLETED, ${started} started`);
}

async function stepwiseLatency(opts: LatencyOptions): Promise<Map<number, RoundLine>> {
  return withScratchDatabase('stepwise_latency', async (scratch) => {
    const config = loadConfig({});
    const db = new PostgresDb(scratch.url, { poolSize: config.dbPoolSize, role: 'api' });
    let worker: Worker | undefined;
    let observer: CompletionObserver | undefined;
    let poolTimer: NodeJS.Timeout | undefined;
    const sampler = await DbCpuSampler.open(scratch.url);
    try {
      const { org, wf } = await prepareStepwise(db);
      worker = new Worker(db, config.worker, stderrLogger(), 'bench-latency');
      await worker.start();
      const obs = await CompletionObserver.open(scratch.url, org.id);
      observer = obs;
      // The API's start calls and the worker share this pool, as in `stepwise serve`: sample how often it runs dry.
      const pool = { samples: 0, waiting: 0, full: 0 };
      poolTimer = setInterval(() => {
        const st = db.poolStats();
        pool.samples++;
        pool.waiting += st.waiting;
        if (st.total - st.idle >= st.max) pool.full++;
      }, 20);
      log(`stepwise: 1 Worker ${JSON.stringify({ concurrency: config.worker.concurrency, claimBatchSize: config.worker.claimBatchSize, flushIntervalMs: config.worker.flushIntervalMs, pollIntervalMs: config.worker.pollIntervalMs })}, pool ${config.dbPoolSize}`);
      const seq = { next: 0 };
      const summaries = await measure(
        {
          system: 'stepwise',
          settings: { step: 'log', workers: 1, worker_config: 'loadConfig({}).worker' },
          runOne: async (i, started) => {
            const [job] = await startRuns(db, org.id, wf.id, [{ input: { member: member(i) } }]);
            started();
            await obs.finished(job!.id);
          },
          describe: () => obs.describe(),
          exec: (sql) => db.exec(sql),
          observerPids: obs.pids,
          // created_at is the enqueue transaction's start (server clock); started_at and completed_at the
          // worker's (same machine): queue wait (with the enqueue's own lock waits) and the run itself.
          diagnose: async (from, to) => {
            const { rows } = await db.query<Record<string, number>>(
              `SELECT ${[50, 99]
                .map((p) => `percentile_cont(${p / 100}) WITHIN GROUP (ORDER BY extract(epoch FROM started_at - created_at) * 1000) AS wait_p${p},
                             percentile_cont(${p / 100}) WITHIN GROUP (ORDER BY extract(epoch FROM completed_at - started_at) * 1000) AS run_p${p}`)
                .join(', ')}
                 FROM stepwise.jobs WHERE input->>'member' >= $1 AND input->>'member' < $2`,
              [member(from), member(to)],
            );
            const r = rows[0]!;
            const f = (v: number | undefined) => round(Number(v), 1);
            // Every run seen since the last call (warm-up included: it ran at the same rate).
            const lags = obs.recordLags.splice(0).sort((a, b) => a - b);
            const dry = `pool: all ${config.dbPoolSize} connections busy in ${round((100 * pool.full) / Math.max(1, pool.samples), 0)}% of samples, ${round(pool.waiting / Math.max(1, pool.samples), 1)} callers waiting on average`;
            Object.assign(pool, { samples: 0, waiting: 0, full: 0 });
            return (
              `created_at → started_at p50 ${f(r.wait_p50)} p99 ${f(r.wait_p99)} ms; started_at → completed_at p50 ${f(r.run_p50)} p99 ${f(r.run_p99)} ms; ` +
              `completed_at → seen by the observer p50 ${f(nearestRank(lags, 50))} p99 ${f(nearestRank(lags, 99))} ms; ${dry}`
            );
          },
        },
        opts,
        sampler,
        seq,
      );
      await checkAllCompleted(db, 'stepwise', seq.next);
      log(`stepwise: ${seq.next} runs, ${obs.statusQueries} status queries by the observer`);
      return summaries;
    } finally {
      clearInterval(poolTimer);
      await worker?.stop();
      await observer?.close();
      await sampler?.close();
      await db.close();
      // pg-pool's end() returns once it has asked its connections to close; dropping the database
      // at once terminates them first and every pooled client then logs a lost connection.
      await sleep(200);
    }
  });
}

/**
 * `stepwise-floor`: the least time this schema's statements allow from a
 * start call to a recorded outcome, with no engine, NOTIFY or observer in
 * between. Each run: the engine's own enqueue (`startRuns`), then the claim
 * and the one-transaction record of bench/record-floor.ts (the queue row
 * deleted, the five stream rows built by the server, the engine's
 * completeJobs, the step metrics), back to back on the caller's
 * connection. A run whose job a concurrent run's claim took waits for that
 * run's record. Whatever an engine adds (waking, running the step,
 * shipping rows, the observer's query) comes on top of these figures.
 */
async function stepwiseFloorLatency(opts: LatencyOptions): Promise<Map<number, RoundLine>> {
  const { claimFloorBatch, recordFloorBatch } = await import('./record-floor.js');
  return withScratchDatabase('stepwise_latency_floor', async (scratch) => {
    const config = loadConfig({});
    const db = new PostgresDb(scratch.url, { poolSize: config.dbPoolSize, role: 'api' });
    const sampler = await DbCpuSampler.open(scratch.url);
    try {
      const { org, wf } = await prepareStepwise(db);
      const recorded = new Map<string, () => void>();
      const seq = { next: 0 };
      const summaries = await measure(
        {
          system: 'stepwise-floor',
          settings: { step: 'log (record built by the server)', claim_and_record: 'bench/record-floor.ts' },
          runOne: async (i, started) => {
            const [job] = await startRuns(db, org.id, wf.id, [{ input: { member: member(i) } }]);
            started();
            const done = new Promise<void>((resolve) => recorded.set(job!.id, resolve));
            const batch = await claimFloorBatch(db, 'floor');
            if (batch.ids.length > 0) await recordFloorBatch(db, 'floor', batch);
            for (const id of batch.ids) {
              recorded.get(id)?.();
              recorded.delete(id);
            }
            await done;
          },
          describe: async () => `${recorded.size} runs not recorded`,
          exec: (sql) => db.exec(sql),
        },
        opts,
        sampler,
        seq,
      );
      await checkAllCompleted(db, 'stepwise-floor', seq.next);
      return summaries;
    } finally {
      await sampler?.close();
      await db.close();
      await sleep(200);
    }
  });
}

async function dbosLatency(opts: LatencyOptions, systems: System[]): Promise<Map<System, Map<number, RoundLine>>> {
  // Loaded here, so that run.ts can import this file without loading the DBOS SDK into every scenario.
  const { DBOS } = await import('@dbos-inc/dbos-sdk');
  const { dbosStatusCounts, dbosWorkflows, withDbos } = await import('./peers/dbos.js');
  const wf = dbosWorkflows();
  return withDbos('dbos_latency', async (run) => {
    const sampler = await DbCpuSampler.open(run.scratch.url);
    const out = new Map<System, Map<number, RoundLine>>();
    const seq = { next: 0 };
    const describe = async () => JSON.stringify(await dbosStatusCounts(run.client));
    const exec = (sql: string) => run.client.query(sql);
    const checkResult = (result: string, i: number) => {
      if (result !== expectedLine(member(i))) throw new BenchCheckError(`dbos: run ${i} returned ${JSON.stringify(result)}`);
    };
    try {
      for (const system of systems) {
        if (system === 'dbos-direct') {
          out.set(
            system,
            await measure(
              {
                system,
                settings: { step: 'runStep', start: 'DBOS.startWorkflow, handle.getResult (in-process promise)' },
                runOne: async (i, started) => {
                  const handle = await DBOS.startWorkflow(wf.oneStep)(member(i));
                  started();
                  checkResult(await handle.getResult(), i);
                },
                describe,
                exec,
              },
              opts,
              sampler,
              seq,
            ),
          );
          continue;
        }
        const pollMs = system === 'dbos-queued' ? opts.dbosPollMs : DBOS_DEFAULT_POLL_MS;
        const name = `bench-latency-${pollMs}ms`;
        await run.queue(name, pollMs);
        // The dispatch loop finds a new queue at its next reconcile (every 1 s); the warm-up absorbs that.
        out.set(
          system,
          await measure(
            {
              system,
              settings: { step: 'runStep', queue_poll_ms: pollMs, result_poll_ms: pollMs },
              runOne: async (i, started) => {
                const handle = await DBOS.startWorkflow(wf.oneStep, { queueName: name })(member(i));
                started();
                checkResult(await handle.getResult({ pollingIntervalMs: pollMs }), i);
              },
              describe,
              exec,
            },
            { ...opts, warmupSeconds: Math.max(opts.warmupSeconds, 2) },
            sampler,
            seq,
          ),
        );
        // Stop its polling before the next system's rounds (the dispatch loop drops a deleted queue within 1 s).
        await run.dropQueue(name);
        await sleep(1_500);
      }
      const counts = await dbosStatusCounts(run.client);
      check(counts.SUCCESS === seq.next && Object.keys(counts).length === 1, `dbos: statuses ${JSON.stringify(counts)}, ${seq.next} started`);
      return out;
    } finally {
      await sampler?.close();
    }
  });
}

const ratio = (a: number | null | undefined, b: number | null | undefined): number | null =>
  a === null || a === undefined || b === null || b === undefined || b === 0 ? null : round(a / b, 2);

export async function latency(args: string[]): Promise<void> {
  const opts = parseLatencyOptions(args);
  log(
    `latency: rates ${opts.rates.join(', ')}/s, ${opts.rounds} rounds of ${opts.seconds.join(', ')} s after ${opts.warmupSeconds} s warm-up; ` +
      `systems ${opts.systems.join(', ')}; dbos poll ${opts.dbosPollMs} ms`,
  );
  const results = new Map<System, Map<number, RoundLine>>();
  if (opts.systems.includes('stepwise')) {
    log('stepwise…');
    results.set('stepwise', await stepwiseLatency(opts));
  }
  if (opts.systems.includes('stepwise-floor')) {
    log('stepwise-floor…');
    results.set('stepwise-floor', await stepwiseFloorLatency(opts));
  }
  const dbosSystems = opts.systems.filter((s) => s !== 'stepwise' && s !== 'stepwise-floor');
  if (dbosSystems.length > 0) {
    log(`${dbosSystems.join(', ')}…`);
    for (const [s, r] of await dbosLatency(opts, dbosSystems)) results.set(s, r);
  }
  // Stepwise over each DBOS variant, per rate: < 1 means Stepwise is lower (faster, or cheaper for the database).
  const sw = results.get('stepwise');
  if (!sw) return;
  const ratios: Record<string, Record<string, number | null>> = {};
  for (const rate of opts.rates) {
    const mine = sw.get(rate);
    const r: Record<string, number | null> = {};
    for (const peer of dbosSystems) {
      const theirs = results.get(peer)?.get(rate);
      const key = peer.replace(/-/g, '_');
      r[`p50_vs_${key}`] = ratio(mine?.p50, theirs?.p50);
      r[`p99_vs_${key}`] = ratio(mine?.p99, theirs?.p99);
      r[`db_cpu_vs_${key}`] = ratio(mine?.dbCpu, theirs?.dbCpu);
      r[`db_cpu_own_vs_${key}`] = ratio(mine?.dbCpuOwn, theirs?.dbCpuOwn);
    }
    ratios[String(rate)] = r;
  }
  emit({ scenario: 'latency', ratios });
}
