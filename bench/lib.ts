import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { pino, type Logger } from 'pino';

/** The server every postgres-backed system uses (each in its own fresh database). */
export const DEFAULT_SERVER_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

export function serverUrl(): string {
  return process.env.BENCH_DATABASE_URL || DEFAULT_SERVER_URL;
}

/** Progress and diagnostics: stderr only, so stdout stays one JSON object per line. */
export function log(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

/** One result line on stdout. */
export function emit(result: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

/** Engine warnings and errors (a failed flush, a lost lease) go to stderr; nothing else is logged. */
export function stderrLogger(): Logger {
  return pino({ level: 'warn', base: { bench: true } }, pino.destination(2));
}

export function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function now(): number {
  return performance.now();
}

/** Thrown when a run's result is wrong (lost or failed jobs, missing stream rows): the bench exits non-zero. */
export class BenchCheckError extends Error {
  override readonly name = 'BenchCheckError';
}

export function check(condition: boolean, message: string): asserts condition {
  if (!condition) throw new BenchCheckError(message);
}

/**
 * How often a run polls for "all jobs done". Each system's poll is one
 * `SELECT EXISTS (…)` that stops at the first unfinished job (≈1 ms);
 * a `count(*)` over a table full of just-dead rows cost 12 ms a poll here,
 * which at a 10 ms interval took a third of a core from the 2-core machine
 * under test. 20 ms bounds the timing error to ≈1% of a 2 s run.
 */
export const POLL_MS = 20;

/**
 * Poll `done` every `intervalMs` until it returns true. Fails after
 * `timeoutMs` with `describe()`'s state, so a stuck system shows where it
 * stopped instead of hanging the bench.
 */
export async function waitUntil(
  done: () => Promise<boolean>,
  opts: { intervalMs: number; timeoutMs: number; what: string; describe?: () => Promise<string> },
): Promise<void> {
  const deadline = Date.now() + opts.timeoutMs;
  for (;;) {
    if (await done()) return;
    if (Date.now() > deadline) {
      const state = opts.describe ? `: ${await opts.describe()}` : '';
      throw new BenchCheckError(`timed out after ${opts.timeoutMs} ms waiting for ${opts.what}${state}`);
    }
    await sleep(opts.intervalMs);
  }
}

export function urlForDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

/** A database created for one system's run on the server; `drop()` removes it even with open connections. */
export interface ScratchDatabase {
  name: string;
  url: string;
  drop(): Promise<void>;
}

async function adminQuery(sql: string): Promise<void> {
  const admin = new pg.Client({ connectionString: serverUrl() });
  await admin.connect();
  try {
    await admin.query(sql);
  } finally {
    await admin.end();
  }
}

/** Databases not dropped yet, dropped on Ctrl-C so an interrupted run leaves nothing behind. */
const live = new Set<ScratchDatabase>();
let signalsHooked = false;

function hookSignals(): void {
  if (signalsHooked) return;
  signalsHooked = true;
  const onSignal = (signal: NodeJS.Signals) => {
    log(`${signal}: dropping ${[...live].map((d) => d.name).join(', ') || 'nothing'}`);
    void Promise.allSettled([...live].map((d) => d.drop())).finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
}

/** Create `<prefix>_bench_<pid>` (fresh: dropped first if a previous run with this pid left it). */
export async function createScratchDatabase(prefix: string): Promise<ScratchDatabase> {
  hookSignals();
  // The name is built from a fixed prefix and the pid, never from input.
  const name = `${prefix}_bench_${process.pid}`;
  await adminQuery(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await adminQuery(`CREATE DATABASE ${name}`);
  const db: ScratchDatabase = {
    name,
    url: urlForDatabase(serverUrl(), name),
    drop: async () => {
      live.delete(db);
      await adminQuery(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    },
  };
  live.add(db);
  return db;
}

/** Run `fn` against a fresh database and drop it afterwards, whatever happens. */
export async function withScratchDatabase<T>(prefix: string, fn: (db: ScratchDatabase) => Promise<T>): Promise<T> {
  const db = await createScratchDatabase(prefix);
  try {
    return await fn(db);
  } finally {
    await db.drop().catch((err: unknown) => log(`could not drop ${db.name}: ${String(err)}`));
  }
}

/**
 * What each system's database gets after its warm-up, before the timed part
 * (`--stats`, default `vacuum-analyze`).
 *
 * Every run starts on a fresh database whose tables were never analysed,
 * which no production database is: autovacuum vacuums and analyses within
 * a minute of traffic. On never-analysed tables a planner can pick plans
 * nobody runs in practice. Measured here: pg-boss's batch completion
 * (`UPDATE … WHERE id IN (SELECT unnest($2))`) on its never-analysed queue
 * partition chose a nested loop over every active row (171 ms for 1,000
 * ids; 8.9 ms after ANALYZE), and 2 workers × 1,000 jobs took 5.9 s
 * instead of 0.9 s. So by default every system's database gets what
 * autovacuum would do, `VACUUM ANALYZE`, applied the same way to all.
 *
 * `analyze` (ANALYZE without VACUUM, as an analyze-only autovacuum pass or
 * a DBA would do) and `none` (fresh-database statistics) exist to reproduce
 * plan problems; see bench/README.md for what they show.
 */
export const STATS_MODES = ['vacuum-analyze', 'analyze', 'none'] as const;
export type StatsMode = (typeof STATS_MODES)[number];

/**
 * Prepare a database for the timed part, the same way for every system:
 * the `--stats` statement, then a CHECKPOINT so that no checkpoint started
 * by an earlier run (or by the 5-minute timer) lands inside the timed part
 * and every system pays the same full-page-write cost after it. Without it,
 * repeated runs of one configuration here spread by ±25%.
 */
export async function settle(exec: (sql: string) => Promise<unknown>, mode: StatsMode): Promise<void> {
  if (mode === 'vacuum-analyze') await exec('VACUUM ANALYZE');
  if (mode === 'analyze') await exec('ANALYZE');
  try {
    await exec('CHECKPOINT');
  } catch (err) {
    // Needs superuser or pg_checkpoint; without it the runs are just noisier.
    log(`CHECKPOINT not allowed (${err instanceof Error ? err.message : String(err)}); continuing without`);
  }
}

/** Options every scenario receives from the command line. */
export interface BenchOptions {
  /** Timed jobs per system. */
  jobs: number;
  /** browser: timed runs per backend (default 200). */
  runs?: number;
  /** Untimed jobs run first on each system (JIT, connections, plan caches). */
  warmup: number;
  /** What each database gets after the warm-up (see StatsMode). */
  stats: StatsMode;
  /** storage: months of data, jobs per month, stream rows per job (default a busy tenant's year: 12 × 50,000 × 60). */
  months?: number;
  jobsPerMonth?: number;
  rowsPerJob?: number;
  /** storage: archive this kept scale dataset (`bench scale --keep`) instead of generating one. */
  database?: string;
}

export interface PeerResult {
  jobs: number;
  seconds: number;
}

export function jobsPerSecond(jobs: number, seconds: number): number {
  return Math.round(jobs / seconds);
}

/** One system's result line: jobs, jobs/s and seconds, plus any scenario-specific fields. */
export function resultLine(
  scenario: string,
  system: string,
  backend: string,
  r: PeerResult,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return { scenario, system, backend, jobs: r.jobs, jobs_per_s: jobsPerSecond(r.jobs, r.seconds), ...extra, seconds: round(r.seconds, 3) };
}

/** a's jobs/s over b's, to two decimals (> 1: a is faster). */
export function speedRatio(a: PeerResult, b: PeerResult): number {
  return round(a.jobs / a.seconds / (b.jobs / b.seconds), 2);
}

/** The nearest-rank percentile `p` (0–100) of values sorted ascending. */
export function nearestRank(sorted: readonly number[], p: number): number {
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)]!;
}
