import type { Db } from '../db/index.js';
import { rollUpAggregates } from '../store/index.js';
import type { Logger } from '../util/logger.js';

/**
 * How soon after a flush that ended jobs they are rolled up into
 * aggregate_metrics. Analytics read the outbox's rows too
 * (aggregate_metrics_live), so this bounds the outbox's size, not what
 * anyone sees: at 50 runs/s a roll-up takes ~25 jobs, at 20,000 runs/s
 * ~10,000 (two batches).
 */
export const ROLLUP_DELAY_MS = 500;

/** A roll-up also runs this often while idle: jobs ended by the API (a cancel) are rolled up without a flush here. */
export const ROLLUP_IDLE_MS = 10_000;

/**
 * A worker process's share of the aggregate roll-up (store/aggregate-outbox.ts):
 * `soon()` after each flush that ended jobs, and every ROLLUP_IDLE_MS. Every
 * worker runs one; the roll-up's try-lock lets one at a time through and the
 * others skip, so they never wait on each other.
 */
export class AggregateRoller {
  private timer: NodeJS.Timeout | undefined;
  private idle: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = true;

  constructor(
    private readonly db: Db,
    private readonly logger: Logger,
  ) {}

  start(): void {
    this.stopped = false;
    this.idle = setInterval(() => this.soon(0), ROLLUP_IDLE_MS);
    this.idle.unref();
  }

  /** Roll up within `delayMs` (once, however often it is asked meanwhile). */
  soon(delayMs = ROLLUP_DELAY_MS): void {
    if (this.stopped || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.rollUp();
    }, delayMs);
    this.timer.unref();
  }

  /** Roll up now (one at a time in this process). */
  async rollUp(): Promise<void> {
    while (this.running) await this.running;
    this.running = rollUpAggregates(this.db, { wait: false })
      .then(
        () => undefined,
        (err: unknown) => {
          // The rows stay in the outbox (analytics still count them) and the next roll-up takes them.
          this.logger.warn({ err }, 'aggregate roll-up failed; will retry');
          this.soon();
        },
      )
      .finally(() => {
        this.running = undefined;
      });
    await this.running;
  }

  /** Stop the timers and roll up what this worker's last flushes left. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.idle);
    this.timer = undefined;
    await this.rollUp();
  }
}
