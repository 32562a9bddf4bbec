import { DEFAULT_REPLICA_MAX_LAG_MS } from '../config/index.js';
import { createStderrLogger, type Logger } from '../util/logger.js';
import { PostgresDb } from './postgres.js';
import { assessReplica, probePrimaryLsn, probeReplica, type ReplicaSample } from './replica-lag.js';
import type { Db, Queryable } from './types.js';

/** How often the lag is probed: one trivial statement on each server per round. */
export const DEFAULT_REPLICA_PROBE_INTERVAL_MS = 1_000;

/**
 * A probe (and a new replica connection) not answered within this long counts
 * as an unreachable replica: reads go to the primary instead of waiting on
 * a host that drops packets, which TCP alone would give ~2 min.
 */
const DEFAULT_PROBE_TIMEOUT_MS = 2_000;

/**
 * What the replica router reports, for /metrics and logs. This exact shape
 * is what gauges are registered from.
 */
export interface ReplicaStatus {
  /** STEPWISE_READ_DATABASE_URL is set. */
  configured: boolean;
  /** The last measured lag; null when unreachable, not a standby, unknown, or not configured. */
  lagSeconds: number | null;
  /** Replica-eligible reads go to the replica now (reachable and lag within the bound). */
  usingReplica: boolean;
  /** Replica-eligible requests answered from the replica since start. */
  readsOnReplica: number;
  /** Replica-eligible requests answered by the primary since start (replica unusable, fallback, or primary required). */
  readsOnPrimary: number;
}

/** The status of a process without a read replica. */
export const NO_REPLICA_STATUS: Readonly<ReplicaStatus> = Object.freeze({
  configured: false,
  lagSeconds: null,
  usingReplica: false,
  readsOnReplica: 0,
  readsOnPrimary: 0,
});

/** The status to report whether or not a replica is configured. */
export function replicaStatus(replica: ReadReplica | null | undefined): ReplicaStatus {
  return replica ? replica.status() : { ...NO_REPLICA_STATUS };
}

export interface ReadReplicaOptions {
  /** The replica's connection string (STEPWISE_READ_DATABASE_URL). */
  url: string;
  /** The primary, where each probe round reads how far its WAL is written. */
  primary: Queryable;
  /** Reads fall back to the primary above this lag (default DEFAULT_REPLICA_MAX_LAG_MS, 5 s). */
  maxLagMs?: number;
  /** Most connections to the replica (default 10). */
  poolSize?: number;
  probeIntervalMs?: number;
  probeTimeoutMs?: number;
  logger?: Logger;
}

/** Why the replica is not used, for the log line of the transition. */
function unusableReason(sample: ReplicaSample | null, lagMs: number | null): string {
  if (sample === null) return 'unreachable';
  if (!sample.inRecovery) return 'not in recovery (promoted, or not a standby)';
  if (lagMs === null) return 'lag unknown (no transaction replayed yet)';
  return 'lag above the bound';
}

/**
 * A streaming read replica: its own connection pool (application_name
 * `stepwise-api-read`, no LISTEN) and a lag monitor. Each round probes the
 * replica and then the primary (db/replica-lag.ts decides the lag from
 * them); the replica is usable while it answers, is a standby, and lags at
 * most `maxLagMs`. The API routes replica-eligible reads by `usable()`
 * (api/tenancy.ts) and counts where each went here.
 */
export class ReadReplica {
  /** The replica's pool: open tenant transactions on it like on the primary. */
  readonly db: Db;
  readonly maxLagMs: number;
  private readonly primary: Queryable;
  private readonly intervalMs: number;
  private readonly probeTimeoutMs: number;
  private readonly logger: Logger;
  private lagMs: number | null = null;
  private isUsable = false;
  /** The primary's WAL position at the round before, what the next round compares the replica with. */
  private primaryLsn: string | null = null;
  private round: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private started = false;
  private primaryFailing = false;
  private closed = false;
  private onReplica = 0;
  private onPrimary = 0;

  constructor(options: ReadReplicaOptions) {
    this.maxLagMs = options.maxLagMs ?? DEFAULT_REPLICA_MAX_LAG_MS;
    this.primary = options.primary;
    this.intervalMs = options.probeIntervalMs ?? DEFAULT_REPLICA_PROBE_INTERVAL_MS;
    this.probeTimeoutMs = options.probeTimeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS;
    this.logger = options.logger ?? createStderrLogger();
    this.db = new PostgresDb(options.url, {
      poolSize: options.poolSize,
      role: 'api-read',
      logger: this.logger,
      // Both bounds: a replica that cannot give a connection within a probe's time is treated as gone, and reads fall back.
      connectTimeoutMs: this.probeTimeoutMs,
      checkoutTimeoutMs: this.probeTimeoutMs,
    });
  }

  /**
   * Probe now and then every interval until close(). Until the first round
   * ends the replica counts as unusable, so the first reads of a starting
   * process go to the primary. The timer does not keep the process alive.
   */
  start(): void {
    if (this.started || this.closed) return;
    this.started = true;
    void this.tick();
  }

  private async tick(): Promise<void> {
    await this.check();
    if (this.closed) return;
    this.timer = setTimeout(() => void this.tick(), this.intervalMs);
    this.timer.unref();
  }

  /**
   * One probe round now (the monitor's own, or a caller's that wants a fresh
   * verdict); joins the round in progress instead of starting a second. Never
   * rejects: a failed probe is an unusable replica.
   */
  check(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.round ??= this.probe()
      .catch((err: unknown) => {
        this.isUsable = false;
        this.lagMs = null;
        this.logger.error({ err }, 'read replica monitor failed; reads go to the primary');
      })
      .finally(() => (this.round = undefined));
    return this.round;
  }

  private async probe(): Promise<void> {
    // The first round has no earlier primary position: take one just before probing the replica.
    if (this.primaryLsn === null) this.primaryLsn = await this.primaryPosition();
    let sample: ReplicaSample | null = null;
    let error: unknown;
    try {
      sample = await this.withinTimeout(probeReplica(this.db));
    } catch (err) {
      error = err;
    }
    const { lagMs, usable } = assessReplica(sample, this.primaryLsn, this.maxLagMs);
    // Unreadable primary: keep comparing with the last position known.
    this.primaryLsn = (await this.primaryPosition()) ?? this.primaryLsn;
    if (this.closed) return;
    this.lagMs = lagMs;
    if (usable !== this.isUsable) {
      if (usable) this.logger.info({ lagMs }, 'read replica usable: replica-eligible reads go to it');
      else this.logger.warn({ lagMs, maxLagMs: this.maxLagMs, reason: unusableReason(sample, lagMs), err: error }, 'read replica unusable: reads go to the primary');
    }
    this.isUsable = usable;
  }

  private async primaryPosition(): Promise<string | null> {
    try {
      const lsn = await this.withinTimeout(probePrimaryLsn(this.primary));
      this.primaryFailing = false;
      return lsn;
    } catch (err) {
      // Once per outage, not once a second: the primary's own callers report it too.
      if (!this.primaryFailing) this.logger.warn({ err }, 'read replica monitor: could not read the primary WAL position');
      this.primaryFailing = true;
      return null;
    }
  }

  private async withinTimeout<T>(work: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${this.probeTimeoutMs} ms`)), this.probeTimeoutMs);
    });
    try {
      return await Promise.race([work, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Reachable, a standby, and lag within the bound at the last round. */
  usable(): boolean {
    return this.isUsable && !this.closed;
  }

  /** Count one replica-eligible request by where it was answered. */
  countRead(where: 'replica' | 'primary'): void {
    if (where === 'replica') this.onReplica++;
    else this.onPrimary++;
  }

  status(): ReplicaStatus {
    return {
      configured: true,
      lagSeconds: this.lagMs === null ? null : this.lagMs / 1000,
      usingReplica: this.usable(),
      readsOnReplica: this.onReplica,
      readsOnPrimary: this.onPrimary,
    };
  }

  /** Stop the monitor and close the replica's pool. The primary is the caller's. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    await this.round?.catch(() => undefined);
    await this.db.close();
  }
}
