import type { Cron } from 'croner';
import { isDatabaseUnavailable, type Db, type Queryable } from '../db/index.js';
import { isStepwiseError } from '../errors/index.js';
import {
  enqueueJobs,
  findDueSchedules,
  tryAcquireSchedulerLock,
  updateScheduleFiring,
  type DueSchedule,
} from '../store/index.js';
import type { Logger } from '../util/logger.js';
import { compileCron, firingKey, planFirings } from './schedule-timing.js';
import { jobSettings } from './service.js';

export interface SchedulerOptions {
  /** Time between ticks. Cron has minute precision, so 1 s keeps firings within about a second. */
  tickMs: number;
  /** A fire time older than this when its tick comes is a misfire (downtime), handled by the schedule's policy. */
  misfireGraceMs: number;
  /** Most due schedules handled in one tick (one transaction); more wait for the next tick. */
  batchSize: number;
}

export const DEFAULT_SCHEDULER_OPTIONS: SchedulerOptions = Object.freeze({ tickMs: 1_000, misfireGraceMs: 60_000, batchSize: 500 });

export interface TickResult {
  /** False when another process held the leader lock for this tick (nothing was done). */
  leader: boolean;
  /** Due schedules handled. */
  schedules: number;
  /** Runs newly enqueued (an idempotent repeat of an existing firing is not counted). */
  enqueued: number;
}

/**
 * Fires cron schedules. Every process runs one (serve and worker), and every
 * tick is one transaction that first tries a transaction-scoped advisory
 * lock: the process that gets it is the leader for that tick, the others do
 * nothing, and the lock goes with the commit, so a leader that dies is
 * replaced at the next tick with no lease to expire. Inside, due schedules
 * are locked FOR UPDATE SKIP LOCKED, their runs are enqueued with the
 * idempotency key schedule:<id>:<fire time>, and next_fire_at moves on, all
 * in that one transaction: a firing is enqueued and recorded together or not
 * at all, and never twice.
 */
export class Scheduler {
  private readonly options: SchedulerOptions;
  private readonly now: () => Date;
  private readonly crons = new Map<string, Cron>();
  private running = false;
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<unknown> | undefined;

  constructor(
    private readonly db: Db,
    options: Partial<SchedulerOptions>,
    private readonly logger: Logger,
    clock: { now?: () => Date } = {},
  ) {
    this.options = { ...DEFAULT_SCHEDULER_OPTIONS, ...options };
    this.now = clock.now ?? (() => new Date());
  }

  /** Start ticking (the first tick runs at once). */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.schedule(0);
  }

  /** Stop ticking; resolves once an in-flight tick has committed or rolled back. */
  async stop(): Promise<void> {
    this.running = false;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.inFlight?.catch(() => undefined);
  }

  private schedule(delayMs: number): void {
    this.timer = setTimeout(() => {
      this.inFlight = this.tick()
        .catch((err: unknown) => this.logger.error({ err }, 'scheduler tick failed'))
        .finally(() => {
          this.inFlight = undefined;
          if (this.running) this.schedule(this.options.tickMs);
        });
    }, delayMs);
    // The scheduler alone never keeps a process alive; the API or the worker does.
    this.timer.unref();
  }

  /** One tick: public so tests drive it with an injected clock. */
  async tick(): Promise<TickResult> {
    const now = this.now();
    return this.db.transaction(async (tx) => {
      if (!(await tryAcquireSchedulerLock(tx))) return { leader: false, schedules: 0, enqueued: 0 };
      const due = await findDueSchedules(tx, now, this.options.batchSize);
      let enqueued = 0;
      for (const schedule of due) enqueued += await this.fire(tx, schedule, now);
      return { leader: true, schedules: due.length, enqueued };
    });
  }

  private cronOf(s: DueSchedule): Cron {
    // Compiled expressions are cached per (expression, zone): a busy tick does not re-parse them.
    const key = `${s.timezone}\u0000${s.cron}`;
    let cron = this.crons.get(key);
    if (!cron) {
      cron = compileCron(s);
      if (this.crons.size > 10_000) this.crons.clear();
      this.crons.set(key, cron);
    }
    return cron;
  }

  /** Enqueue one schedule's due firings and advance it; returns the number of runs created. */
  private async fire(tx: Queryable, s: DueSchedule, now: Date): Promise<number> {
    const log = { scheduleId: s.id, organizationId: s.organizationId, workflowId: s.workflowId };
    let cron: Cron;
    try {
      cron = this.cronOf(s);
    } catch (err) {
      // Validated on write, so only a runtime without this zone gets here. Park it rather than retry every tick.
      this.logger.error({ ...log, err }, 'schedule has an unusable cron expression or time zone; not firing it');
      await updateScheduleFiring(tx, s.organizationId, s.id, { nextFireAt: null, lastFiredAt: null });
      return 0;
    }
    const plan = planFirings(cron, s.nextFireAt!, now, s.misfirePolicy, this.options.misfireGraceMs);
    if (plan.misfired) {
      this.logger.warn(
        { ...log, policy: s.misfirePolicy, missedFrom: s.nextFireAt, latestMissed: plan.latestMissed },
        s.misfirePolicy === 'SKIP' ? 'schedule misfired; skipping the missed firings' : 'schedule misfired; running once for the missed period',
      );
    }
    let created = 0;
    if (plan.fires.length > 0 && (s.workflowStatus !== 'ACTIVE' || s.workflowDeleted)) {
      // Same rule as a manual run: only ACTIVE workflows run. The firing is consumed, not queued up for later.
      this.logger.info({ ...log, status: s.workflowDeleted ? 'ARCHIVED' : s.workflowStatus, skipped: plan.fires.length }, 'schedule fired for a workflow that is not ACTIVE; no run');
    } else if (plan.fires.length > 0) {
      created = await this.enqueue(tx, s, plan.fires, log);
    }
    await updateScheduleFiring(tx, s.organizationId, s.id, {
      nextFireAt: plan.nextFireAt,
      lastFiredAt: plan.fires.length > 0 ? plan.fires[plan.fires.length - 1]! : null,
    });
    return created;
  }

  /**
   * Enqueue under a savepoint, so one schedule whose enqueue fails (say a
   * user already took its idempotency key for another workflow) is logged and
   * moved on instead of rolling back the whole tick and blocking every other
   * schedule behind it forever.
   */
  private async enqueue(tx: Queryable, s: DueSchedule, fires: Date[], log: Record<string, unknown>): Promise<number> {
    await tx.query('SAVEPOINT schedule_fire');
    try {
      const jobs = await enqueueJobs(
        tx,
        s.organizationId,
        jobSettings(s.workflowId, s.workflowVersion, s.definition),
        fires.map((fireAt) => ({
          input: s.input ?? undefined,
          idempotencyKey: firingKey(s.id, fireAt),
          initiatorType: 'SCHEDULE' as const,
        })),
      );
      await tx.query('RELEASE SAVEPOINT schedule_fire');
      return jobs.filter((j) => j.created).length;
    } catch (err) {
      await tx.query('ROLLBACK TO SAVEPOINT schedule_fire');
      // The database failing or going away fails the whole tick (rolled back, the next tick fires it);
      // only a refusal of this one schedule's enqueue skips the firing.
      if (!isStepwiseError(err) || err.code === 'DATABASE' || isDatabaseUnavailable(err)) throw err;
      this.logger.error({ ...log, err }, 'could not enqueue a scheduled run; the firing is skipped');
      return 0;
    }
  }
}
