import { collectDefaultMetrics, Registry } from 'prom-client';
import { CachedSource } from './cached-source.js';
import { defineInstruments, defineRunCounters, type Instruments, type RunCounters } from './instruments.js';
import type { MaintenanceResult, MaintenanceRowKind, PoolSnapshot, QueueSnapshot, ReplicaSnapshot } from './types.js';

/** How long a queue measurement is reused: a scrape storm costs the database one statement per 5 s. */
export const QUEUE_CACHE_MS = 5_000;

/** HTTP methods recorded by name; anything else (Fastify answers only known ones) as OTHER, so the label stays bounded. */
const HTTP_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

/** The `route` label of a request no route matched (a 404 of the not-found handler). */
export const UNMATCHED_ROUTE = 'unmatched';

export interface StepwiseMetricsOptions {
  /** Label the per-run counters with the organization id (STEPWISE_METRICS_ORGANIZATION_LABELS). Default false. */
  organizationLabels?: boolean;
  /** Add prom-client's process metrics (CPU, memory, event loop, GC) under their standard names. Default true. */
  processMetrics?: boolean;
  /** Clock of the queue measurement's cache (tests move it). Default Date.now. */
  now?: () => number;
}

/** A run a flush started, as the recorder keeps it: only the first start of a run counts. */
export interface RunStartLike {
  readonly firstRun?: boolean | undefined;
  readonly organizationId?: string | undefined;
}

/** An outcome a flush committed. */
export interface RunFinishLike {
  readonly jobId: string;
  readonly status: string;
}

type Observe = { observe(value: number): void };

/**
 * The metrics of one process, on a registry of its own (not prom-client's
 * global one, so a library that registers there cannot collide with these
 * names). Hot paths call the `record*`/`observe*` methods once per claim,
 * flush or step, with counts (`inc(n)`), never once per job; label sets used
 * per step are built once and reused.
 *
 * Scrape-time figures come from what the process registers: its database
 * pools (`watchPool`), the queue measurement (`watchQueue`) and the replica
 * router (`observeReplica`).
 */
export class StepwiseMetrics {
  readonly registry = new Registry();
  private readonly instruments: Instruments;
  private runs: RunCounters;
  private readonly pools = new Map<string, () => PoolSnapshot | undefined>();
  private queue: CachedSource<QueueSnapshot> | undefined;
  private replica: (() => ReplicaSnapshot) | undefined;
  private readonly now: () => number;
  /** Per step type: the completed and failed series of the step histogram. */
  private readonly stepSeries = new Map<string, [Observe, Observe]>();
  /** Reused per call of recordRunsFinished/recordRunsStarted (no allocation per flush beyond its entries). */
  private readonly tally = new Map<string, number>();

  constructor(options: StepwiseMetricsOptions = {}) {
    this.now = options.now ?? Date.now;
    this.instruments = defineInstruments(this.registry, {
      pools: () => this.poolSnapshots(),
      queue: () => this.queue?.get() ?? Promise.resolve(undefined),
      replica: () => this.replicaSnapshot(),
    });
    this.runs = defineRunCounters(this.registry, options.organizationLabels ?? false);
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }

  /** Content type of `render()`'s text (Prometheus text exposition format). */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** Every metric in the Prometheus text format (runs the scrape-time measurements). */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  get organizationLabels(): boolean {
    return this.runs.organizationLabels;
  }

  /**
   * Label the per-run counters with the organization id, or stop doing so.
   * Their label names change, so both counters start again from zero.
   */
  setOrganizationLabels(enabled: boolean): void {
    if (enabled === this.runs.organizationLabels) return;
    this.registry.removeSingleMetric('stepwise_runs_started_total');
    this.registry.removeSingleMetric('stepwise_runs_finished_total');
    this.runs = defineRunCounters(this.registry, enabled);
  }

  // ---- scrape-time sources -------------------------------------------------

  /** Report a connection pool under `name` (e.g. `primary`) at every scrape; returns the unregister function. */
  watchPool(name: string, stats: () => PoolSnapshot | undefined): () => void {
    this.pools.set(name, stats);
    return () => {
      if (this.pools.get(name) === stats) this.pools.delete(name);
    };
  }

  /**
   * Measure the queue with `measure` at scrapes, at most every QUEUE_CACHE_MS
   * (or `ttlMs`). One source per process; a later call replaces the earlier.
   */
  watchQueue(measure: () => Promise<QueueSnapshot>, ttlMs: number = QUEUE_CACHE_MS): () => void {
    const source = new CachedSource(measure, ttlMs, this.now, () => this.instruments.sourceErrors.inc({ source: 'queue' }));
    this.queue = source;
    return () => {
      if (this.queue === source) this.queue = undefined;
    };
  }

  /** Report the read-replica router's state at every scrape (see observeReplica in index.ts). */
  observeReplica(source: () => ReplicaSnapshot): () => void {
    this.replica = source;
    return () => {
      if (this.replica === source) this.replica = undefined;
    };
  }

  private *poolSnapshots(): Iterable<readonly [string, PoolSnapshot | undefined]> {
    for (const [name, stats] of this.pools) {
      let snapshot: PoolSnapshot | undefined;
      try {
        snapshot = stats();
      } catch {
        this.instruments.sourceErrors.inc({ source: 'pool' });
      }
      yield [name, snapshot];
    }
  }

  private replicaSnapshot(): ReplicaSnapshot | undefined {
    if (!this.replica) return undefined;
    try {
      return this.replica();
    } catch {
      this.instruments.sourceErrors.inc({ source: 'replica' });
      return undefined;
    }
  }

  // ---- runs ------------------------------------------------------------------

  /** A flush committed these starts: the first start of each run counts. */
  recordRunsStarted(starts: Iterable<RunStartLike>): void {
    const counter = this.runs.runsStarted;
    if (!this.runs.organizationLabels) {
      let n = 0;
      for (const s of starts) if (s.firstRun) n++;
      if (n > 0) counter.inc(n);
      return;
    }
    const tally = this.tally;
    tally.clear();
    for (const s of starts) {
      if (!s.firstRun) continue;
      const org = s.organizationId ?? '';
      tally.set(org, (tally.get(org) ?? 0) + 1);
    }
    for (const [organization, n] of tally) counter.inc({ organization }, n);
  }

  /** A flush committed these outcomes. `organizationOf` is read only while organization labels are on. */
  recordRunsFinished(finishes: readonly RunFinishLike[], organizationOf: (jobId: string) => string | undefined): void {
    if (finishes.length === 0) return;
    const counter = this.runs.runsFinished;
    const labelled = this.runs.organizationLabels;
    const tally = this.tally;
    tally.clear();
    for (const f of finishes) {
      // Status and organization id contain no tab; the key splits back into both.
      const key = labelled ? `${f.status}\t${organizationOf(f.jobId) ?? ''}` : f.status;
      tally.set(key, (tally.get(key) ?? 0) + 1);
    }
    for (const [key, n] of tally) {
      if (!labelled) {
        counter.inc({ status: key }, n);
        continue;
      }
      const tab = key.indexOf('\t');
      counter.inc({ status: key.slice(0, tab), organization: key.slice(tab + 1) }, n);
    }
  }

  // ---- worker ----------------------------------------------------------------

  /** One claim round: its wall time, the jobs it took, and how many of them were taken over from an expired lease. */
  recordClaim(seconds: number, jobs: number, takeovers: number): void {
    this.instruments.claimSeconds.observe(seconds);
    this.instruments.claimSize.observe(jobs);
    if (takeovers > 0) this.instruments.leaseTakeovers.inc(takeovers);
  }

  /** One step run ended (its STEP_COMPLETED or STEP_FAILED row). */
  observeStep(type: string, failed: boolean, seconds: number): void {
    let series = this.stepSeries.get(type);
    if (!series) {
      series = [
        this.instruments.stepSeconds.labels({ type, outcome: 'completed' }),
        this.instruments.stepSeconds.labels({ type, outcome: 'failed' }),
      ];
      this.stepSeries.set(type, series);
    }
    series[failed ? 1 : 0].observe(seconds);
  }

  /** One committed flush transaction. */
  recordFlush(seconds: number, jobs: number, rows: number): void {
    this.instruments.flushSeconds.observe(seconds);
    this.instruments.flushJobs.observe(jobs);
    this.instruments.flushRows.observe(rows);
  }

  recordFlushFailure(): void {
    this.instruments.flushFailures.inc();
  }

  /** Writes dropped because the jobs were taken over. */
  recordFenced(jobs: number, rows: number): void {
    if (jobs > 0) this.instruments.fencedJobs.inc(jobs);
    if (rows > 0) this.instruments.fencedRows.inc(rows);
  }

  // ---- database ----------------------------------------------------------------

  recordListenerReconnect(): void {
    this.instruments.listenerReconnects.inc();
  }

  observePgliteQueueWait(seconds: number): void {
    this.instruments.pgliteQueueWait.observe(seconds);
  }

  // ---- maintenance ---------------------------------------------------------------

  /** A maintenance run ended; a completed run brings its duration and what it did. */
  recordMaintenance(result: MaintenanceResult, done?: { seconds: number; rows: Readonly<Record<MaintenanceRowKind, number>> }): void {
    this.instruments.maintenanceRuns.inc({ result });
    if (!done) return;
    this.instruments.maintenanceLastSeconds.set(done.seconds);
    this.instruments.maintenanceLastSuccess.set(this.now() / 1000);
    for (const [kind, n] of Object.entries(done.rows)) if (n > 0) this.instruments.maintenanceRows.inc({ kind }, n);
  }

  // ---- HTTP ------------------------------------------------------------------------

  /** One answered request: `route` is its template (`/v1/jobs/:id`), never the raw URL; undefined when no route matched. */
  observeHttp(route: string | undefined, method: string, status: number, seconds: number): void {
    this.instruments.httpSeconds.observe(
      { route: route ?? UNMATCHED_ROUTE, method: HTTP_METHODS.has(method) ? method : 'OTHER', status: String(status) },
      seconds,
    );
  }

  recordRateLimited(): void {
    this.instruments.rateLimited.inc();
  }

  // ---- egress ----------------------------------------------------------------------

  /** The egress policy refused a connection of a step (`reason`: loopback, private, metadata, not-allowed, …). */
  recordEgressDenied(stepType: string, reason: string): void {
    this.instruments.egressDenied.inc({ step_type: stepType, reason });
  }
}
