import type { BlobStore } from '../blob/index.js';
import { isDatabaseUnavailable, type Db } from '../db/index.js';
import { ConflictError } from '../errors/index.js';
import type { Logger } from '../util/logger.js';
import { MaintenanceStoppedError, runMaintenance } from './maintain.js';
import { MaintenanceLeaseLostError } from './maintenance-lease.js';

export interface MaintenanceLoopOptions {
  /** Time between runs: daily. */
  intervalMs: number;
  /** First run this long after start, so a restart does not archive during its warm-up. */
  initialDelayMs: number;
  /**
   * The next run after one the database's unavailability stopped (a restart,
   * a lost connection; its lease renewal included): soon, not a day later,
   * since nothing was wrong with the run itself.
   */
  retryAfterUnavailableMs: number;
}

export const DEFAULT_MAINTENANCE_LOOP = Object.freeze({ intervalMs: 24 * 3600 * 1000, initialDelayMs: 5 * 60 * 1000, retryAfterUnavailableMs: 5 * 60 * 1000 });

/** Whether a run stopped only because the database was unavailable (directly, or under its lease renewal). */
function stoppedByOutage(err: unknown): boolean {
  if (isDatabaseUnavailable(err)) return true;
  return err instanceof MaintenanceLeaseLostError && !err.takenOver && isDatabaseUnavailable(err.cause);
}

/**
 * The daily maintenance run inside every serve and worker process. Every
 * process runs a loop; the lease in runMaintenance makes one of them do the
 * work and the others skip that day's turn (a ConflictError, logged at debug).
 * A run that loses its lease midway stops before its next batch and says why.
 */
export class MaintenanceLoop {
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<unknown> | undefined;
  private running = false;
  /** Aborted by stop(): the run in flight stops before its next batch. */
  private stopping = new AbortController();
  private readonly options: MaintenanceLoopOptions;

  constructor(
    private readonly db: Db,
    private readonly blobs: BlobStore,
    private readonly logger: Logger,
    options: Partial<MaintenanceLoopOptions> = {},
  ) {
    this.options = { ...DEFAULT_MAINTENANCE_LOOP, ...options };
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.stopping = new AbortController();
    this.schedule(this.options.initialDelayMs);
  }

  /** Stop; resolves once a run in flight has finished its current batch and returned. */
  async stop(): Promise<void> {
    this.running = false;
    clearTimeout(this.timer);
    this.stopping.abort();
    await this.inFlight?.catch(() => undefined);
  }

  private schedule(delayMs: number): void {
    this.timer = setTimeout(() => {
      let next = this.options.intervalMs;
      this.inFlight = runMaintenance(this.db, this.blobs, { signal: this.stopping.signal })
        .then((report) => this.logger.info({ report }, 'maintenance run finished'))
        .catch((err: unknown) => {
          if (stoppedByOutage(err)) {
            next = this.options.retryAfterUnavailableMs;
            this.logger.warn({ err, retryInMs: next }, 'maintenance run stopped: the database was unavailable; nothing unarchived was deleted, it runs again soon');
            return;
          }
          if (err instanceof MaintenanceStoppedError) {
            this.logger.info({}, 'maintenance run stopped for shutdown; the next run continues');
            return;
          }
          // Checked before ConflictError, which it is: this run did work, then stopped.
          if (err instanceof MaintenanceLeaseLostError) {
            this.logger.warn(
              { err, lease: err.lease, holder: err.holder, takenOver: err.takenOver },
              err.takenOver
                ? 'maintenance run stopped: another process took its lease; it deletes nothing more, the lease holder continues'
                : 'maintenance run stopped: renewing its lease failed; it deletes nothing more, the next run continues',
            );
          } else if (err instanceof ConflictError) this.logger.debug({}, 'maintenance run skipped: another process holds the lease');
          else this.logger.error({ err }, 'maintenance run failed; nothing unarchived was deleted, the next run continues');
        })
        .finally(() => {
          this.inFlight = undefined;
          if (this.running) this.schedule(next);
        });
    }, delayMs);
    this.timer.unref();
  }
}
