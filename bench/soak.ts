import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { ApiTraffic, DEFAULT_MIX, type RequestSample, type TrackedRun } from '../test/helpers/api-traffic.js';
import { crashRestart, restartFast, terminateStepwiseBackends, type Disruption, type DisruptionKind } from '../test/helpers/db-disruptions.js';
import { runCli } from '../test/helpers/run-cli.js';
import { setUpWorkload } from '../test/helpers/outage-workload.js';
import { createCluster, pgClustersUnavailable, type PgCluster } from '../test/helpers/pg-cluster.js';
import { stepwiseConnections, totalConnections } from '../test/helpers/pg-connections.js';
import { checkRuns, waitForRunsToEnd } from '../test/helpers/run-invariants.js';
import { startSideEffectServer, type SideEffectServer } from '../test/helpers/side-effect-server.js';
import { startApi, startWorkerProcess, type StepwiseProcess } from '../test/helpers/stepwise-process.js';
import { duringDisruption, isCheckoutTimeout, latencyByRoute, recoveries, statusCounts, unavailableWithoutRetryAfter } from '../test/helpers/traffic-report.js';
import { DbCpuSampler, type CpuSample } from './db-cpu.js';
import { BenchUsageError, eachFlag, intFlag, unknownFlag } from './flags.js';
import { BenchCheckError, emit, log, round, sleep } from './lib.js';

/**
 * `soak`: the database restarted under load, for minutes. The topology and
 * traffic of test/integration/db-restart.test.ts — `stepwise serve
 * --no-worker` and two `stepwise worker` processes (the CLI, default
 * settings) on a throwaway PostgreSQL cluster of its own, a steady mix of
 * API requests (test/helpers/api-traffic.ts) — for `--minutes` (10), and at
 * fixed points of it (30 %, 50 %, 70 %: 3, 5 and 7 minutes of ten) a fast
 * restart, pg_terminate_backend of every Stepwise connection, and a crash
 * (immediate stop, recovery at start). Nothing of Stepwise is restarted.
 *
 * Printed, one JSON object a line: the set-up; latency per route of the
 * requests answered outside the disruptions; answers by status during and
 * outside them; per disruption its length and the recovery (first request
 * answered 2xx, first run completed after the server was back); runs started
 * (answered 2xx) against completed and cancelled, and the invariants of the
 * test (each side effect once, streams whole, reconcile clean); per process
 * RSS and CPU at start (before traffic), warm (before the first disruption)
 * and end; the database connections at the same points; the machine's CPU
 * use over the traffic. A broken invariant fails the bench (exit 1) after
 * the figures are printed.
 */

export const SOAK_USAGE = `       npm run -s bench -- soak [--minutes N] [--rate R] [--no-disruptions]
         (needs the PostgreSQL server binaries; runs them as the postgres OS user when root)`;

interface SoakOptions {
  minutes: number;
  /** Requests per second. */
  rate: number;
  disruptions: boolean;
}

/**
 * Requests per second: measured on the 2-core machine (bench/README.md,
 * "soak"), where this rate used about half of its CPU with every process
 * and the server on it, so a restart's catch-up has room.
 */
export const DEFAULT_SOAK_RATE = 40;

/** When each disruption happens, as a share of the run. */
const SCHEDULE: readonly { at: number; kind: DisruptionKind }[] = [
  { at: 0.3, kind: 'restart' },
  { at: 0.5, kind: 'terminate-backends' },
  { at: 0.7, kind: 'crash-restart' },
];

/** 503s by the reason in their message ("the database is unavailable (restarting); …"). */
function unavailableReasons(samples: readonly RequestSample[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const x of samples) {
    if (x.status !== 503) continue;
    const reason = /\(([^)]+)\)/.exec(x.message ?? '')?.[1] ?? x.code ?? 'unknown';
    out[reason] = (out[reason] ?? 0) + 1;
  }
  return out;
}

/** Where the steady part of the run begins, as a share of it (it ends at the first disruption). */
const STEADY_FROM = 0.1;

/** Bounds that only catch a hang (no figure depends on them). */
const REQUEST_TIMEOUT_MS = 30_000;
const SETTLE_MS = 180_000;
const RUNS_END_MS = 180_000;
const LISTEN_BACK_MS = 60_000;

const DATABASE = 'postgres';

function parse(args: string[]): SoakOptions {
  const opts: SoakOptions = { minutes: 10, rate: DEFAULT_SOAK_RATE, disruptions: true };
  eachFlag(args, (flag, value, arg) => {
    switch (flag) {
      case '--minutes':
        opts.minutes = intFlag(flag, value(), 1);
        break;
      case '--rate':
        opts.rate = intFlag(flag, value(), 1);
        break;
      case '--no-disruptions':
        opts.disruptions = false;
        break;
      default:
        unknownFlag(arg);
    }
  });
  return opts;
}

/** Busy and total jiffies of the whole machine (/proc/stat), for its CPU use over an interval. */
async function machineCpu(): Promise<{ busy: number; total: number }> {
  const line = (await readFile('/proc/stat', 'utf8')).split('\n')[0]!;
  const [user, nice, system, idle, iowait, irq, softirq, steal] = line.split(/\s+/).slice(1, 9).map(Number) as number[];
  const busy = user! + nice! + system! + irq! + softirq! + steal!;
  return { busy, total: busy + idle! + iowait! };
}

interface ProcessSample {
  rssMb: number;
  cpuS: number;
}

async function sampleProcesses(processes: StepwiseProcess[]): Promise<Record<string, ProcessSample>> {
  const out: Record<string, ProcessSample> = {};
  for (const p of processes) out[p.name] = { rssMb: round((await p.rssBytes()) / 1024 / 1024, 1), cpuS: round(await p.cpuSeconds(), 2) };
  return out;
}

const DISRUPT: Record<DisruptionKind, (cluster: PgCluster) => Promise<Disruption>> = {
  restart: restartFast,
  'terminate-backends': terminateStepwiseBackends,
  'crash-restart': crashRestart,
};

/** Wait (bounded) until each process has its LISTEN connection again; the counts then. */
async function listenersBack(cluster: PgCluster): Promise<Record<string, number>> {
  const deadline = Date.now() + LISTEN_BACK_MS;
  for (;;) {
    const now = await stepwiseConnections(cluster);
    if ((now['stepwise-api-listen'] === 1 && now['stepwise-worker-listen'] === 2) || Date.now() > deadline) return now;
    await sleep(250);
  }
}

export async function soak(args: string[]): Promise<void> {
  const opts = parse(args);
  const unavailable = pgClustersUnavailable();
  if (unavailable) throw new BenchUsageError(`soak needs a PostgreSQL cluster of its own: ${unavailable}`);
  const durationMs = opts.minutes * 60_000;
  log(`soak: ${opts.minutes} min at ${opts.rate} requests/s${opts.disruptions ? ', disruptions at 30/50/70 %' : ', no disruptions'}`);

  const cluster = await createCluster({ name: 'soak' });
  const effects: SideEffectServer = await startSideEffectServer();
  const processes: StepwiseProcess[] = [];
  try {
    // Defaults everywhere (pool 10, lease 30 s, flush 5 ms): what an installation runs. Only the egress
    // allowlist names the side-effect server on loopback.
    const env = { STEPWISE_EGRESS_ALLOW: '127.0.0.1' };
    const api = await startApi({ name: 'api', databaseUrl: cluster.url(DATABASE), env });
    processes.push(api);
    const [workload, ...workers] = await Promise.all([
      setUpWorkload({ databaseUrl: cluster.url(DATABASE), apiUrl: api.url, sideEffectUrl: effects.url }),
      startWorkerProcess({ name: 'worker-1', databaseUrl: cluster.url(DATABASE), env }),
      startWorkerProcess({ name: 'worker-2', databaseUrl: cluster.url(DATABASE), env }),
    ]);
    processes.push(...(workers as StepwiseProcess[]));
    // A live view of the runs (/v1/events) holds the API's LISTEN connection, as a dashboard would.
    const live = new SseClient(`${api.url}/v1/events`, workload.apiKey);
    await live.opened;
    await sleep(1_000);
    const startProc = await sampleProcesses(processes);
    const startConn = await stepwiseConnections(cluster);
    emit({ scenario: 'soak', kind: 'setup', minutes: opts.minutes, rate_per_s: opts.rate, mix: DEFAULT_MIX, disruptions: opts.disruptions ? SCHEDULE : [], processes: processes.map((p) => p.name) });

    const traffic = new ApiTraffic({ apiUrl: api.url, workload, ratePerSecond: opts.rate, requestTimeoutMs: REQUEST_TIMEOUT_MS });
    const disruptions: Disruption[] = [];
    const cpu0 = await machineCpu();
    const began = Date.now();
    traffic.start();
    let warmProc: Record<string, ProcessSample> | undefined;
    let warmConn: Record<string, number> | undefined;
    // The steady part: from 10 % of the run (past the warm-up) to the first disruption (or the end).
    await sleep(Math.max(0, began + STEADY_FROM * durationMs - Date.now()));
    const steady = await SteadyWindow.begin(cluster, processes, traffic);
    let steadyFigures: Record<string, unknown> | undefined;
    for (const step of opts.disruptions ? SCHEDULE : []) {
      await sleep(Math.max(0, began + step.at * durationMs - Date.now()));
      if (!warmProc) {
        steadyFigures = await steady.end();
        warmProc = await sampleProcesses(processes);
        warmConn = await stepwiseConnections(cluster);
      }
      log(`soak: ${step.kind} at ${round((Date.now() - began) / 1000, 1)} s`);
      const d = await DISRUPT[step.kind](cluster);
      disruptions.push(d);
      log(`soak: ${step.kind} done, server unavailable ${d.backAt - d.startedAt} ms`);
    }
    await sleep(Math.max(0, began + durationMs - Date.now()));
    steadyFigures ??= await steady.end();
    warmProc ??= await sampleProcesses(processes);
    warmConn ??= await stepwiseConnections(cluster);
    await traffic.stop();
    const cpu1 = await machineCpu();
    const trafficSeconds = (Date.now() - began) / 1000;
    log(`soak: traffic stopped after ${round(trafficSeconds, 1)} s (${traffic.samples.length} requests); settling`);

    const owed = await traffic.settle(SETTLE_MS);
    const open = await waitForRunsToEnd(cluster, DATABASE, traffic.runs.values(), RUNS_END_MS);
    const runs = await checkRuns(cluster, DATABASE, traffic.runs.values(), effects);
    const reconcile = await runCli(['reconcile', '--database-url', cluster.url(DATABASE)], { LOG_LEVEL: 'silent' }, 120_000);
    const reconcileReport = reconcile.code === 0 || reconcile.code === 2 ? (JSON.parse(reconcile.stdout) as { clean: boolean }) : null;
    const endConn = await listenersBack(cluster);
    const endProc = await sampleProcesses(processes);

    emit({ scenario: 'soak', kind: 'steady', ...steadyFigures });
    const counts = statusCounts(traffic.samples, disruptions);
    for (const [route, p] of Object.entries(latencyByRoute(traffic.samples, disruptions))) emit({ scenario: 'soak', kind: 'route', route, ...p });
    const allRequests = latencyByRoute(traffic.samples, []);
    emit({
      scenario: 'soak',
      kind: 'requests',
      sent: traffic.samples.length,
      skipped_client_saturated: traffic.skipped,
      achieved_rate_per_s: round(traffic.samples.length / trafficSeconds, 1),
      errors_by_status_during_disruptions: counts.during,
      errors_by_status_outside_disruptions: counts.outside,
      unavailable_without_retry_after: unavailableWithoutRetryAfter(traffic.samples),
      unavailable_by_reason_during: unavailableReasons(traffic.samples.filter((x) => duringDisruption(x, disruptions))),
      unavailable_by_reason_outside: unavailableReasons(traffic.samples.filter((x) => !duringDisruption(x, disruptions))),
      answered_2xx_all: Object.values(allRequests).reduce((n, p) => n + p.count, 0),
    });
    for (const r of await recoveries(traffic.samples, disruptions, cluster, DATABASE)) {
      const d = disruptions.find((x) => x.kind === r.kind)!;
      emit({
        scenario: 'soak',
        kind: 'disruption',
        disruption: r.kind,
        at_s: round((d.startedAt - began) / 1000, 1),
        server_unavailable_ms: r.outageMs,
        first_2xx_after_back_ms: r.firstOkMs,
        first_completed_run_after_back_ms: r.firstCompletedRunMs,
        answered_503: r.unavailable,
        answered_other_5xx_or_none: r.otherErrors,
        ...(d.terminated !== undefined ? { backends_terminated: d.terminated } : {}),
      });
    }
    const tracked = [...traffic.runs.values()];
    const byWorkflow = (w: TrackedRun['workflow']) => tracked.filter((r) => r.workflow === w && r.jobId !== undefined).length;
    emit({
      scenario: 'soak',
      kind: 'runs',
      started: runs.accepted,
      started_effect: byWorkflow('effect'),
      started_gated: byWorkflow('gated'),
      completed: runs.completed,
      cancelled: runs.cancelled,
      not_ended: open,
      owed_after_settle: owed,
      duplicate_side_effects: runs.duplicateEffectCount,
      missing_side_effects: runs.missingEffects.length,
      side_effects_of_cancelled: runs.effectsOfCancelled.length,
      unknown_jobs: runs.unknownJobs,
      stream_faults: runs.streamFaultCount,
      reconcile_clean: reconcileReport?.clean ?? null,
      invariants_ok: runs.ok && reconcileReport?.clean === true,
    });
    for (const p of processes) {
      emit({
        scenario: 'soak',
        kind: 'process',
        process: p.name,
        rss_mb_start: startProc[p.name]!.rssMb,
        rss_mb_warm: warmProc[p.name]!.rssMb,
        rss_mb_end: endProc[p.name]!.rssMb,
        cpu_s_traffic: round(endProc[p.name]!.cpuS - startProc[p.name]!.cpuS, 1),
        exited: p.exit,
        logged: Object.fromEntries([...p.messages].sort((a, b) => b[1] - a[1])),
      });
    }
    emit({
      scenario: 'soak',
      kind: 'connections',
      start: startConn,
      warm: warmConn,
      end: endConn,
      total_start: totalConnections(startConn),
      total_warm: totalConnections(warmConn),
      total_end: totalConnections(endConn),
    });
    const cores = availableParallelism();
    emit({
      scenario: 'soak',
      kind: 'machine',
      cores,
      cores_busy_avg: round(((cpu1.busy - cpu0.busy) / (cpu1.total - cpu0.total)) * cores, 2),
      live_job_events: live.events,
      live_open_at_end: live.open,
    });

    const dead = processes.filter((p) => p.exit !== null);
    if (dead.length > 0) throw new BenchCheckError(`processes exited during the soak: ${dead.map((p) => `${p.name} ${JSON.stringify(p.exit)}\n${p.text()}`).join('\n')}`);
    if (!runs.ok) throw new BenchCheckError(`run invariants broken: ${JSON.stringify(runs)}`);
    if (reconcileReport?.clean !== true) throw new BenchCheckError(`reconcile: ${reconcile.stdout}${reconcile.stderr}`);
    const bad = Object.keys({ ...counts.during, ...counts.outside }).filter((s) => !(Number(s) < 500 || s === '503'));
    if (bad.length > 0) throw new BenchCheckError(`answers other than 2xx-4xx and 503: ${JSON.stringify(counts)}`);
    const stray = traffic.samples.filter((x) => x.status === 503 && !duringDisruption(x, disruptions) && !isCheckoutTimeout(x));
    if (stray.length > 0) throw new BenchCheckError(`503s outside the disruptions that were not load shedding: ${JSON.stringify(stray.slice(0, 5))}`);
    if (!live.open) throw new BenchCheckError('the live view (/v1/events) ended during the soak');
    live.close();
  } finally {
    await Promise.all(processes.map((p) => p.stop()));
    await effects.close();
    await cluster.destroy();
  }
}

/**
 * CPU over the steady part of the run, before any disruption: each Stepwise
 * process, the database server (the whole throwaway cluster, postmaster and
 * children, bench/db-cpu.ts) and this process (the traffic), as cores
 * used on average, and from them the request rate at which they alone would
 * fill every core of the machine: the headroom of the chosen rate.
 */
class SteadyWindow {
  private constructor(
    private readonly processes: StepwiseProcess[],
    private readonly traffic: ApiTraffic,
    private readonly db: DbCpuSampler | null,
    private readonly at: number,
    private readonly requests: number,
    private readonly proc: Record<string, ProcessSample>,
    private readonly dbSample: CpuSample | null,
  ) {}

  static async begin(cluster: PgCluster, processes: StepwiseProcess[], traffic: ApiTraffic): Promise<SteadyWindow> {
    const db = await DbCpuSampler.open(cluster.url(DATABASE));
    return new SteadyWindow(processes, traffic, db, Date.now(), traffic.samples.length, await sampleProcesses(processes), (await db?.sample()) ?? null);
  }

  async end(): Promise<Record<string, unknown>> {
    const seconds = (Date.now() - this.at) / 1000;
    const requests = this.traffic.samples.length - this.requests;
    const proc = await sampleProcesses(this.processes);
    const db = this.db && this.dbSample ? this.db.delta(this.dbSample, await this.db.sample()) : null;
    await this.db?.close();
    const cores: Record<string, number> = {};
    for (const p of this.processes) cores[p.name] = round((proc[p.name]!.cpuS - this.proc[p.name]!.cpuS) / seconds, 3);
    if (db) {
      // The whole cluster: it is this run's own, nothing else uses it.
      cores.database = round(db.serverMs / 1000 / seconds, 3);
      cores.traffic_client = round(db.processMs / 1000 / seconds, 3);
    }
    const used = Object.values(cores).reduce((n, c) => n + c, 0);
    const rate = requests / seconds;
    return {
      seconds: round(seconds, 1),
      requests,
      rate_per_s: round(rate, 1),
      cores_used: cores,
      cores_used_total: round(used, 2),
      // Stepwise, its database and the client alone, scaled up until they would use every core.
      rate_filling_every_core: used > 0 ? Math.round((rate * availableParallelism()) / used) : null,
    };
  }
}

/** A dashboard's /v1/events connection, counting the job events it receives. */
class SseClient {
  events = 0;
  open = false;
  readonly opened: Promise<void>;
  private readonly abort = new AbortController();

  constructor(url: string, apiKey: string) {
    this.opened = fetch(url, { headers: { authorization: `Bearer ${apiKey}`, accept: 'text/event-stream' }, signal: this.abort.signal }).then((res) => {
      if (res.status !== 200 || !res.body) throw new BenchCheckError(`GET /v1/events answered ${res.status}`);
      this.open = true;
      void this.read(res.body);
    });
  }

  private async read(body: ReadableStream<Uint8Array>): Promise<void> {
    let text = '';
    try {
      for await (const chunk of body.pipeThrough(new TextDecoderStream())) {
        text += chunk;
        let cut: number;
        while ((cut = text.indexOf('\n\n')) >= 0) {
          if (/^event: job$/m.test(text.slice(0, cut))) this.events++;
          text = text.slice(cut + 2);
        }
      }
    } catch {
      // aborted by close(), or cut
    }
    this.open = false;
  }

  close(): void {
    this.abort.abort();
  }
}
