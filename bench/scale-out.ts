/**
 * `npm run -s bench -- scale-out`: the same workload run by 1, 2 and 4 worker
 * PROCESSES against the PostgreSQL server, each configuration on a fresh
 * database, over several rounds: runs/s, steps/s, and heavyweight-lock waits
 * sampled from pg_locks every 20 ms (total, per flush, and the relations and
 * statements waited on). What must hold: adding workers never lowers
 * throughput (no convoy on rows every flush shares). JSON lines on stdout,
 * progress on stderr.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { ensureStreamPartitions, migrate, PostgresDb, type Db } from '../src/db/index.js';
import { defineWorkflow, startRuns } from '../src/engine/index.js';
import { STREAM_KINDS } from '../src/store/stream-codes.js';
import { createOrganization } from '../src/store/index.js';
import type { RecorderStats } from '../src/engine/recorder.js';
import { BenchUsageError, eachFlag, intFlag, unknownFlag } from './flags.js';
import { LockSampler, type LockWaitReport } from './lock-sampler.js';
import { check, emit, log, now, POLL_MS, round, settle, waitUntil, withScratchDatabase } from './lib.js';
import { describeJobs, queueEmpty } from './throughput.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));

export interface ScaleOutOptions {
  runs: number;
  steps: number;
  orgs: number;
  workers: number[];
  rounds: number;
}

const DEFAULTS: ScaleOutOptions = { runs: 10_000, steps: 5, orgs: 3, workers: [1, 2, 4], rounds: 3 };

export const SCALE_OUT_USAGE = `scale-out options: [--runs N] [--steps N] [--orgs N] [--workers 1,2,4] [--rounds N]
  defaults: ${DEFAULTS.runs} runs of a ${DEFAULTS.steps}-step workflow over ${DEFAULTS.orgs} organizations (60/30/10 %), workers ${DEFAULTS.workers.join(',')}, ${DEFAULTS.rounds} rounds`;

/** More worker processes than this would only measure the 2-core machine's scheduler (and each takes 11 connections). */
const MAX_WORKERS = 8;

export function parseScaleOutOptions(args: string[]): ScaleOutOptions {
  const opts: ScaleOutOptions = { ...DEFAULTS };
  eachFlag(args, (flag, value, arg) => {
    switch (flag) {
      case '--runs':
        opts.runs = intFlag(flag, value(), 1);
        break;
      case '--steps':
        // Step 2 is the http step; one step would leave the workload without side effects.
        opts.steps = intFlag(flag, value(), 2);
        break;
      case '--orgs':
        opts.orgs = intFlag(flag, value(), 1);
        break;
      case '--rounds':
        opts.rounds = intFlag(flag, value(), 1);
        break;
      case '--workers': {
        const raw = value();
        const list = (raw ?? '').split(',').map((s) => s.trim());
        if (raw === undefined || list.some((s) => !/^\d+$/.test(s) || Number(s) < 1 || Number(s) > MAX_WORKERS)) {
          throw new BenchUsageError(`--workers needs a comma-separated list of integers from 1 to ${MAX_WORKERS}, got "${raw ?? ''}"`);
        }
        opts.workers = [...new Set(list.map(Number))].sort((a, b) => a - b);
        break;
      }
      default:
        unknownFlag(arg);
    }
  });
  return opts;
}

/**
 * The workload: `steps` steps, the second an http POST to a counting server
 * in this process (so every run has one side effect counted outside the
 * database), the others alternately a JSONata transform and a log line.
 */
function definition(steps: number, serverUrl: string): unknown {
  return {
    steps: Array.from({ length: steps }, (_, i) =>
      i === 1
        ? { id: `call${i}`, type: 'http', method: 'POST', url: `${serverUrl}/hit/{{ input.member }}`, body: { step: i } }
        : i % 2 === 0
          ? { id: `t${i}`, type: 'transform', expression: `{ "member": input.member, "i": ${i}, "prev": $count($keys(steps)) }` }
          : { id: `l${i}`, type: 'log', message: `step ${i} checked member {{ input.member }}` },
    ),
  };
}

/** Runs per organization: 6 : 3 : 1 for the first three (the 60/30/10 % split of the many-workers test), 1 for each further one; exact total. */
export function splitRuns(runs: number, orgs: number): number[] {
  const weights = Array.from({ length: orgs }, (_, i) => [6, 3, 1][i] ?? 1);
  const sum = weights.reduce((a, b) => a + b, 0);
  const shares = weights.map((w) => Math.floor((runs * w) / sum));
  for (let i = 0, left = runs - shares.reduce((a, b) => a + b, 0); left > 0; i = (i + 1) % orgs, left--) shares[i]!++;
  return shares;
}

/** A local HTTP server that counts the calls per path (the http step's side effect). */
interface CountingServer {
  url: string;
  calls: Map<string, number>;
  close(): Promise<void>;
}

async function startCountingServer(): Promise<CountingServer> {
  const calls = new Map<string, number>();
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      calls.set(req.url!, (calls.get(req.url!) ?? 0) + 1);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    calls,
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

/** A worker process (bench/scale-out-worker.ts) and the stats lines it prints. */
interface WorkerProcess {
  child: ChildProcess;
  /** Ask for its counters (SIGUSR2) … */
  stats(): Promise<WorkerStats>;
  /** … or stop it (SIGTERM): its final counters once it has drained and exited 0. */
  stop(): Promise<WorkerStats>;
}

interface WorkerStats {
  stats: RecorderStats;
  /** process.cpuUsage() user + system, ms. */
  cpuMs: number;
}

function spawnWorker(databaseUrl: string, id: string): Promise<WorkerProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/scale-out-worker.ts'], {
    cwd: ROOT,
    // The steps call this bench's own server on 127.0.0.1, which the egress policy refuses unless named.
    env: { ...process.env, DATABASE_URL: databaseUrl, WORKER_ID: id, STEPWISE_EGRESS_ALLOW: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const waiting: ((s: WorkerStats) => void)[] = [];
  let buffered = '';
  return new Promise((resolve, reject) => {
    child.once('exit', (code, signal) => reject(new Error(`worker ${id} exited before it was ready (${code ?? signal})`)));
    child.stdout!.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        if (line === 'ready') {
          child.removeAllListeners('exit');
          resolve({
            child,
            stats: () => new Promise((r) => (waiting.push(r), child.kill('SIGUSR2'))),
            stop: () =>
              new Promise((r, j) => {
                let last: WorkerStats | undefined;
                waiting.push((s) => (last = s));
                // 'close', not 'exit': its stdout (the final counters) is read to the end by then.
                child.once('close', (code) => (code === 0 && last ? r(last) : j(new Error(`worker ${id} exited ${code} without its final counters`))));
                child.kill('SIGTERM');
              }),
          });
        } else if (line.startsWith('{')) {
          waiting.shift()?.(JSON.parse(line) as WorkerStats);
        }
      }
    });
  });
}

function sumStats(list: WorkerStats[]): { flushes: number; failedFlushes: number; rowsWritten: number; fencedJobs: number; fencedRows: number; cpuMs: number } {
  const sum = { flushes: 0, failedFlushes: 0, rowsWritten: 0, fencedJobs: 0, fencedRows: 0, cpuMs: 0 };
  for (const s of list) {
    sum.flushes += s.stats.flushes;
    sum.failedFlushes += s.stats.failedFlushes;
    sum.rowsWritten += s.stats.rowsWritten;
    sum.fencedJobs += s.stats.fencedJobs;
    sum.fencedRows += s.stats.fencedRows;
    sum.cpuMs += s.cpuMs;
  }
  return sum;
}

interface Tenant {
  orgId: string;
  workflowId: string;
  /** Runs started so far (warm-up and timed): the next member number. */
  started: number;
}

const ENQUEUE_BATCH = 1_000;

/** Start `counts[i]` runs for tenant i, in batches of 1,000 taken from the tenants in turn (as concurrent tenants would). */
async function enqueue(db: Db, tenants: Tenant[], counts: number[]): Promise<void> {
  const left = [...counts];
  while (left.some((n) => n > 0)) {
    for (let i = 0; i < tenants.length; i++) {
      const n = Math.min(ENQUEUE_BATCH, left[i]!);
      if (n === 0) continue;
      const t = tenants[i]!;
      await startRuns(
        db,
        t.orgId,
        t.workflowId,
        Array.from({ length: n }, (_, k) => ({ input: { member: `o${i}-${t.started + k}` } })),
      );
      t.started += n;
      left[i]! -= n;
    }
  }
}

/** Every run COMPLETED once with all its steps, each step started and completed once, each http call made once. */
async function verify(db: Db, opts: ScaleOutOptions, expectedRuns: number, server: CountingServer): Promise<void> {
  const { rows } = await db.query<{ total: number; completed: number; wrong_steps: number; retried: number }>(
    `SELECT count(*)::int AS total, count(*) FILTER (WHERE status = 'COMPLETED')::int AS completed,
            count(*) FILTER (WHERE steps_completed <> $1)::int AS wrong_steps,
            count(*) FILTER (WHERE attempts <> 1)::int AS retried
       FROM stepwise.jobs`,
    [opts.steps],
  );
  const r = rows[0]!;
  check(r.total === expectedRuns, `${r.total} jobs exist, expected ${expectedRuns}`);
  check(r.completed === expectedRuns, `${r.completed} of ${expectedRuns} jobs COMPLETED (${await describeJobs(db)})`);
  check(r.wrong_steps === 0, `${r.wrong_steps} jobs completed a number of steps other than ${opts.steps}`);
  const { rows: kinds } = await db.query<{ started: number; completed: number }>(
    `SELECT count(*) FILTER (WHERE kind = $1)::int AS started, count(*) FILTER (WHERE kind = $2)::int AS completed
       FROM stepwise.execution_log`,
    [STREAM_KINDS.STEP_STARTED, STREAM_KINDS.STEP_COMPLETED],
  );
  const k = kinds[0]!;
  check(
    k.started === expectedRuns * opts.steps && k.completed === expectedRuns * opts.steps,
    `${k.started} STEP_STARTED and ${k.completed} STEP_COMPLETED rows, expected ${expectedRuns * opts.steps} each`,
  );
  const repeated = [...server.calls.values()].filter((n) => n !== 1).length;
  check(server.calls.size === expectedRuns && repeated === 0, `${server.calls.size} runs called the server (expected ${expectedRuns}), ${repeated} more than once`);
  if (r.retried > 0) log(`note: ${r.retried} jobs ran more than one attempt (a lease expired)`);
}

interface RoundResult {
  workers: number;
  round: number;
  seconds: number;
  runsPerS: number;
  stepsPerS: number;
  flushes: number;
  lockWaitMs: number;
  lockWaitPerFlushMs: number;
}

const WARMUP_RUNS_PER_ORG = 150;

async function runOne(opts: ScaleOutOptions, workers: number, roundNo: number): Promise<RoundResult> {
  return withScratchDatabase('stepwise_scaleout', async (scratch) => {
    const server = await startCountingServer();
    const db = new PostgresDb(scratch.url, { poolSize: 4, role: 'bench' });
    const procs: WorkerProcess[] = [];
    const sampler = await LockSampler.open(scratch.url);
    try {
      await migrate(db);
      await ensureStreamPartitions(db);
      const def = definition(opts.steps, server.url);
      const tenants: Tenant[] = [];
      for (let i = 0; i < opts.orgs; i++) {
        const org = await createOrganization(db, { name: `tenant ${i}`, plan: 'ENTERPRISE' });
        const wf = await defineWorkflow(db, org.id, { name: `scale-out ${opts.steps} steps`, definition: def });
        tenants.push({ orgId: org.id, workflowId: wf.id, started: 0 });
      }
      for (let i = 0; i < workers; i++) procs.push(await spawnWorker(scratch.url, `scale-out-${i}`));
      const waitDone = (what: string) =>
        waitUntil(() => queueEmpty(db), { intervalMs: POLL_MS, timeoutMs: 600_000, what, describe: () => describeJobs(db) });

      // Warm-up: every process's connections prepare their statements and the stream partition gets its first pages.
      await enqueue(db, tenants, tenants.map(() => WARMUP_RUNS_PER_ORG));
      await waitDone('the warm-up runs');
      await settle((sql) => db.exec(sql), 'vacuum-analyze');

      const before = sumStats(await Promise.all(procs.map((p) => p.stats())));
      const loadBefore = loadavg()[0]!;
      sampler.start();
      const t0 = now();
      await enqueue(db, tenants, splitRuns(opts.runs, opts.orgs));
      await waitDone(`${opts.runs} runs`);
      const seconds = (now() - t0) / 1000;
      const locks = await sampler.stop();
      const loadAfter = loadavg()[0]!;
      const after = sumStats(await Promise.all(procs.map((p) => p.stop())));

      await verify(db, opts, opts.runs + WARMUP_RUNS_PER_ORG * opts.orgs, server);
      const flushes = after.flushes - before.flushes;
      // Rows dropped by the fence would be a lost lease's writes. Jobs named with no rows are the heartbeat
      // judging a job its own flush had just completed (reported, not a failure).
      check(after.fencedRows === 0, `${after.fencedRows} stream rows of ${after.fencedJobs} jobs were dropped by the fence (a lease was lost)`);
      const result: RoundResult = {
        workers,
        round: roundNo,
        seconds,
        runsPerS: opts.runs / seconds,
        stepsPerS: (opts.runs * opts.steps) / seconds,
        flushes,
        lockWaitMs: locks.totalWaitMs,
        lockWaitPerFlushMs: flushes > 0 ? locks.totalWaitMs / flushes : 0,
      };
      emit(
        roundLine(opts, result, locks, {
          failed_flushes: after.failedFlushes - before.failedFlushes,
          fenced_jobs: after.fencedJobs - before.fencedJobs,
          worker_cpu_s: round((after.cpuMs - before.cpuMs) / 1000, 2),
          load_avg_1m: [loadBefore, loadAfter].map((l) => round(l, 2)),
        }),
      );
      return result;
    } finally {
      // Whatever failed: no worker process outlives its database.
      for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
      await sampler.close().catch(() => undefined);
      await db.close();
      await server.close();
    }
  });
}

function roundLine(opts: ScaleOutOptions, r: RoundResult, locks: LockWaitReport, extra: Record<string, unknown>): Record<string, unknown> {
  return {
    scenario: 'scale-out',
    workers: r.workers,
    round: r.round,
    runs: opts.runs,
    steps: opts.steps,
    orgs: opts.orgs,
    seconds: round(r.seconds, 3),
    runs_per_s: Math.round(r.runsPerS),
    steps_per_s: Math.round(r.stepsPerS),
    flushes: r.flushes,
    lock_wait_ms: round(r.lockWaitMs, 1),
    lock_wait_per_flush_ms: round(r.lockWaitPerFlushMs, 3),
    lock_wait_longest_ms: locks.longestMs,
    lock_samples: locks.samples,
    lock_samples_with_waits: locks.samplesWithWaits,
    lock_top_relations: locks.byRelation.slice(0, 5).map((x) => ({
      locktype: x.locktype,
      relation: x.relation,
      mode: x.mode,
      wait_ms: x.waitMs,
      seen: x.seen,
    })),
    lock_top_statements: locks.byStatement.slice(0, 3).map((x) => ({ statement: x.statement, wait_ms: x.waitMs, seen: x.seen })),
    ...extra,
  };
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export async function scaleOut(args: string[]): Promise<void> {
  const opts = parseScaleOutOptions(args);
  log(
    `scale-out: ${opts.runs} runs of ${opts.steps} steps over ${opts.orgs} organizations (${splitRuns(opts.runs, opts.orgs).join('/')}), ` +
      `worker processes ${opts.workers.join(',')}, ${opts.rounds} rounds; load average ${loadavg().map((l) => round(l, 2)).join(' ')}`,
  );
  const results: RoundResult[] = [];
  for (let r = 1; r <= opts.rounds; r++) {
    // Each round starts at a different worker count, so a drift in the machine's load does not always favour the same one.
    const order = opts.workers.map((_, i) => opts.workers[(i + r - 1) % opts.workers.length]!);
    for (const w of order) {
      log(`round ${r}: ${w} worker process${w === 1 ? '' : 'es'}…`);
      results.push(await runOne(opts, w, r));
    }
  }
  const summary: Record<string, Record<string, number>> = {};
  for (const w of opts.workers) {
    const mine = results.filter((x) => x.workers === w);
    summary[String(w)] = {
      runs_per_s: Math.round(median(mine.map((x) => x.runsPerS))),
      steps_per_s: Math.round(median(mine.map((x) => x.stepsPerS))),
      lock_wait_ms: round(median(mine.map((x) => x.lockWaitMs)), 1),
      lock_wait_per_flush_ms: round(median(mine.map((x) => x.lockWaitPerFlushMs)), 3),
      flushes: Math.round(median(mine.map((x) => x.flushes))),
    };
  }
  const fewest = opts.workers[0]!;
  const base = summary[String(fewest)]!.runs_per_s!;
  // Medians against the fewest workers' median: below 1 means adding workers lowered throughput.
  const vsFewest = Object.fromEntries(opts.workers.map((w) => [String(w), round(summary[String(w)]!.runs_per_s! / base, 2)]));
  emit({
    scenario: 'scale-out',
    summary,
    runs_per_s_vs_fewest: vsFewest,
    never_lower: opts.workers.every((w) => summary[String(w)]!.runs_per_s! >= base),
    rounds: opts.rounds,
    load_avg_1m: round(loadavg()[0]!, 2),
  });
}
