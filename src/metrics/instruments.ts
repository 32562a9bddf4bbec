import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { PoolSnapshot, QueueSnapshot, ReplicaSnapshot } from './types.js';

/**
 * Every instrument Stepwise exports, in this one file: names (all
 * `stepwise_*`), help text, label names and bucket bounds. README's
 * "Metrics and health probes" table and docs/grafana/stepwise.json name
 * these; a unit test fails when the dashboard queries a name not defined
 * here. Process metrics (CPU, memory, event loop, GC) are prom-client's
 * defaults under their standard names, added in metrics.ts.
 *
 * Units are Prometheus's: seconds and plain counts. Labels stay bounded:
 * statuses, step types, route templates (never a raw URL), a few fixed
 * kinds; organization ids only on the two per-run counters and only when
 * STEPWISE_METRICS_ORGANIZATION_LABELS=true.
 */

/**
 * Database round trips of the worker (a claim, a flush): a claim of 500 takes
 * 4–6 ms on the server and ~15 ms on PGlite here (store/queue.ts), a flush of
 * 500 finished jobs 20–50 ms; a bad plan made a claim 192 ms (bench/README.md).
 * 1 ms to 5 s keeps each of those in its own bucket.
 */
const DB_ROUND_TRIP_SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/**
 * Jobs per claim: 0 is its own bucket (an idle worker polls and finds
 * nothing), then up to STEPWISE_CLAIM_BATCH_SIZE's maximum of 5,000.
 */
const CLAIM_SIZES = [0, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000];

/** Jobs per flush: up to a worker's concurrency (at most 10,000). */
const FLUSH_JOBS = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];

/**
 * Stream rows per flush: ~5 per job (the throughput workload), a flush is
 * forced at 5,000 buffered rows, and rows appended while one flush runs go
 * into the next, so the top buckets reach past it.
 */
const FLUSH_ROWS = [1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000];

/**
 * Step durations: a transform or log step takes well under a millisecond, an
 * HTTP call tens to hundreds, the default step timeout is 30 s and browser
 * steps run for minutes; 1 ms to 15 min.
 */
const STEP_SECONDS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900];

/**
 * API requests: most answer in a few milliseconds; the runs list and count
 * have statement budgets of seconds (api/routes/jobs.ts); server-sent event
 * streams are recorded when they end and land in +Inf.
 */
const HTTP_SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/**
 * Time a PGlite statement waits behind others on the one connection: 0 when
 * idle, a flush's or a claim's length (milliseconds) when busy, seconds when
 * a maintenance transaction holds it.
 */
const PGLITE_WAIT_SECONDS = [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/**
 * Leave a gauge without any sample this scrape. `reset()` gives an
 * unlabelled gauge the value 0, which for a lag or an age reads as "all
 * good"; a figure that is unknown (no source, a failed measurement) must
 * instead be absent, so alerts see `absent()` rather than a reassuring
 * zero. prom-client keeps a gauge's samples in its `hashMap` and offers no
 * public way to empty an unlabelled one; test/unit/metrics-registry.test.ts
 * pins that this still yields no sample.
 */
function clear(gauge: Gauge<string>): void {
  (gauge as unknown as { hashMap: Record<string, unknown> }).hashMap = {};
}

/** What the scrape-time instruments read (metrics.ts fills it from what the process registered). */
export interface ScrapeSources {
  /** Every registered pool by name; undefined where the pool has nothing to report (PGlite). */
  pools(): Iterable<readonly [string, PoolSnapshot | undefined]>;
  /** The queue, measured at most every few seconds (cached); undefined when not registered or the query failed. */
  queue(): Promise<QueueSnapshot | undefined>;
  /** The replica router's state; undefined until observeReplica is called. */
  replica(): ReplicaSnapshot | undefined;
}

/** The two per-run counters, rebuilt when organization labels are switched on or off. */
export interface RunCounters {
  runsStarted: Counter<string>;
  runsFinished: Counter<string>;
  organizationLabels: boolean;
}

export function defineRunCounters(registry: Registry, organizationLabels: boolean): RunCounters {
  const org = organizationLabels ? ['organization'] : [];
  return {
    organizationLabels,
    runsStarted: new Counter({
      name: 'stepwise_runs_started_total',
      help: 'Runs whose first attempt started: the worker committed its start (jobs.started_at set), counted once per run.',
      labelNames: org,
      registers: [registry],
    }),
    runsFinished: new Counter({
      name: 'stepwise_runs_finished_total',
      help: 'Runs that ended, by terminal status, as the worker committed the outcome (every outcome, cancellations included, is recorded by a worker).',
      labelNames: ['status', ...org],
      registers: [registry],
    }),
  };
}

export interface Instruments {
  claimSize: Histogram<string>;
  claimSeconds: Histogram<string>;
  leaseTakeovers: Counter<string>;
  stepSeconds: Histogram<string>;
  flushJobs: Histogram<string>;
  flushRows: Histogram<string>;
  flushSeconds: Histogram<string>;
  flushFailures: Counter<string>;
  fencedJobs: Counter<string>;
  fencedRows: Counter<string>;
  listenerReconnects: Counter<string>;
  maintenanceRuns: Counter<string>;
  maintenanceRows: Counter<string>;
  maintenanceLastSeconds: Gauge<string>;
  maintenanceLastSuccess: Gauge<string>;
  httpSeconds: Histogram<string>;
  rateLimited: Counter<string>;
  egressDenied: Counter<string>;
  pgliteQueueWait: Histogram<string>;
  sourceErrors: Counter<string>;
}

/** Define every instrument but the per-run counters (defineRunCounters) on `registry`. */
export function defineInstruments(registry: Registry, sources: ScrapeSources): Instruments {
  const registers = [registry];
  // Registered after the scrape-time gauges (below), so it is read after their measurements.
  const sourceErrors = new Counter({
    name: 'stepwise_metrics_source_errors_total',
    help: 'Scrape-time measurements that failed (the queue statement past its budget, a pool that threw); their gauges have no sample that scrape.',
    labelNames: ['source'],
    registers: [],
    async collect() {
      // Read once this scrape's measurements have run (the queue's is shared, not repeated), so a failure shows in the scrape it happened in.
      await sources.queue();
    },
  });

  // Scrape time: each registered pool read once per scrape. The first gauge of
  // the group fills all of them in its (synchronous) collect: the registry
  // collects in registration order, so the rest are filled before they are read.
  const poolGauge = (name: string, help: string) => new Gauge({ name, help, labelNames: ['pool'], registers });
  new Gauge({
    name: 'stepwise_db_pool_in_use_connections',
    help: 'Pooled database connections busy with a query or transaction.',
    labelNames: ['pool'],
    registers,
    collect() {
      for (const g of [this, idle, waiting, max]) g.reset();
      for (const [pool, p] of sources.pools()) {
        if (!p) continue;
        this.set({ pool }, p.total - p.idle);
        idle.set({ pool }, p.idle);
        waiting.set({ pool }, p.waiting);
        max.set({ pool }, p.max);
      }
    },
  });
  const idle = poolGauge('stepwise_db_pool_idle_connections', 'Pooled database connections open and unused.');
  const waiting = poolGauge('stepwise_db_pool_waiting_clients', 'Callers waiting for a pooled connection because every one is busy.');
  const max = poolGauge('stepwise_db_pool_max_connections', 'The most connections the pool opens (STEPWISE_DB_POOL_SIZE).');

  // Scrape time: the replica router's own figures (observeReplica), read once
  // per scrape by the group's first gauge, as for the pools.
  new Gauge({
    name: 'stepwise_replica_configured',
    help: '1 when a read replica is configured (STEPWISE_READ_DATABASE_URL), else 0.',
    registers,
    collect() {
      for (const g of [this, lag, inUseReplica]) clear(g);
      reads.reset();
      const r = sources.replica();
      if (!r) return;
      this.set(r.configured ? 1 : 0);
      if (r.lagSeconds !== null) lag.set(r.lagSeconds);
      inUseReplica.set(r.usingReplica ? 1 : 0);
      // The router counts; this mirrors its monotonic totals.
      reads.inc({ target: 'replica' }, r.readsOnReplica);
      reads.inc({ target: 'primary' }, r.readsOnPrimary);
    },
  });
  const lag = new Gauge({ name: 'stepwise_replica_lag_seconds', help: "The read replica's replay lag; no sample while unknown.", registers });
  const inUseReplica = new Gauge({
    name: 'stepwise_replica_in_use',
    help: '1 while reads go to the replica, 0 while they fall back to the primary.',
    registers,
  });
  const reads = new Counter({
    name: 'stepwise_replica_reads_total',
    help: 'Reads that may use the replica, by where they went (replica or primary).',
    labelNames: ['target'],
    registers,
  });

  // Scrape time: one cached statement (store/queue-depth.ts), shared by both gauges. After the
  // pools: the measurement takes a pooled connection, which the pool's figures must not show.
  new Gauge({
    name: 'stepwise_queue_depth',
    help: 'Rows of stepwise.job_queue by state: runnable (due, waiting for a worker), running (leased), delayed (not due yet). Measured at most every 5 s.',
    labelNames: ['state'],
    registers,
    async collect() {
      this.reset();
      const q = await sources.queue();
      if (!q) return;
      this.set({ state: 'runnable' }, q.runnable);
      this.set({ state: 'running' }, q.running);
      this.set({ state: 'delayed' }, q.delayed);
    },
  });
  new Gauge({
    name: 'stepwise_queue_oldest_runnable_age_seconds',
    help: 'How long the oldest runnable queue row has been due (0 when none is). Measured at most every 5 s.',
    registers,
    async collect() {
      clear(this);
      const q = await sources.queue();
      if (q) this.set(q.oldestRunnableAgeSeconds ?? 0);
    },
  });

  // No sample until this process completes a run (a 0 would read as "last ran in 1970").
  const maintenanceLastSeconds = new Gauge({
    name: 'stepwise_maintenance_last_duration_seconds',
    help: 'Wall time of the last maintenance run this process completed.',
    registers,
  });
  const maintenanceLastSuccess = new Gauge({
    name: 'stepwise_maintenance_last_success_timestamp_seconds',
    help: 'Unix time at which this process last completed a maintenance run.',
    registers,
  });
  clear(maintenanceLastSeconds);
  clear(maintenanceLastSuccess);
  registry.registerMetric(sourceErrors);

  return {
    sourceErrors,
    maintenanceLastSeconds,
    maintenanceLastSuccess,
    claimSize: new Histogram({
      name: 'stepwise_claim_jobs',
      help: 'Jobs one claim round of a worker took (0: it polled and found nothing).',
      buckets: CLAIM_SIZES,
      registers,
    }),
    claimSeconds: new Histogram({
      name: 'stepwise_claim_duration_seconds',
      help: 'Wall time of one claim round of a worker (one statement, more with concurrency limits or keys).',
      buckets: DB_ROUND_TRIP_SECONDS,
      registers,
    }),
    leaseTakeovers: new Counter({
      name: 'stepwise_lease_takeovers_total',
      help: 'Jobs claimed whose previous worker had recorded their start and then let the lease expire (the job was RUNNING when claimed).',
      registers,
    }),
    stepSeconds: new Histogram({
      name: 'stepwise_step_duration_seconds',
      help: 'Duration of each step run, by step type and outcome (completed or failed), counted as step_metrics counts them (compensations excluded).',
      labelNames: ['type', 'outcome'],
      buckets: STEP_SECONDS,
      registers,
    }),
    flushJobs: new Histogram({
      name: 'stepwise_flush_jobs',
      help: 'Jobs whose writes one committed flush transaction of the recorder carried.',
      buckets: FLUSH_JOBS,
      registers,
    }),
    flushRows: new Histogram({
      name: 'stepwise_flush_rows',
      help: 'Stream rows one committed flush transaction wrote (its sum is every row the workers wrote).',
      buckets: FLUSH_ROWS,
      registers,
    }),
    flushSeconds: new Histogram({
      name: 'stepwise_flush_duration_seconds',
      help: 'Wall time of one committed flush transaction of the recorder.',
      buckets: DB_ROUND_TRIP_SECONDS,
      registers,
    }),
    flushFailures: new Counter({
      name: 'stepwise_flush_failures_total',
      help: 'Flushes that failed and were kept to be retried (a lost connection, a database error).',
      registers,
    }),
    fencedJobs: new Counter({
      name: 'stepwise_fenced_jobs_total',
      help: 'Jobs whose writes a worker dropped because another worker had taken them over (its lease was gone).',
      registers,
    }),
    fencedRows: new Counter({
      name: 'stepwise_fenced_rows_total',
      help: 'Stream rows dropped with the fenced jobs.',
      registers,
    }),
    listenerReconnects: new Counter({
      name: 'stepwise_listener_reconnects_total',
      help: 'Times the LISTEN connection came back after a drop (db/listener.ts; PGlite never drops).',
      registers,
    }),
    maintenanceRuns: new Counter({
      name: 'stepwise_maintenance_runs_total',
      help: 'Maintenance runs (archival, expiry, cleanup) by result: completed, failed, skipped (another process held the lease). Dry runs are not counted.',
      labelNames: ['result'],
      registers,
    }),
    maintenanceRows: new Counter({
      name: 'stepwise_maintenance_rows_total',
      help: 'What completed maintenance runs archived, expired or deleted, by kind.',
      labelNames: ['kind'],
      registers,
    }),
    httpSeconds: new Histogram({
      name: 'stepwise_http_request_duration_seconds',
      help: 'API request durations by route template (unmatched for no route), method and status.',
      labelNames: ['route', 'method', 'status'],
      buckets: HTTP_SECONDS,
      registers,
    }),
    rateLimited: new Counter({
      name: 'stepwise_http_rate_limited_total',
      help: 'Requests refused with 429 by a rate limiter (per API key or session, approval links).',
      registers,
    }),
    egressDenied: new Counter({
      name: 'stepwise_egress_denied_total',
      help: 'Connections of steps the egress policy refused, by step type and reason (loopback, private, metadata, not-allowed, …).',
      labelNames: ['step_type', 'reason'],
      registers,
    }),
    pgliteQueueWait: new Histogram({
      name: 'stepwise_pglite_queue_wait_seconds',
      help: "Time a statement or transaction waited behind others for PGlite's one connection before it started.",
      buckets: PGLITE_WAIT_SECONDS,
      registers,
    }),
  };
}
