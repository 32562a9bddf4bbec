import type { Queryable } from '../db/index.js';
import { ConflictError } from '../errors/index.js';
import { releaseMaintenanceLease, tryAcquireMaintenanceLease } from '../store/index.js';

/**
 * A maintenance run lost its lease: another holder has it now (it expired and
 * was taken over, or was handed on), or renewing it failed so the run cannot
 * know it still holds it. The run stopped before its next batch.
 */
export class MaintenanceLeaseLostError extends ConflictError {
  constructor(
    readonly lease: string,
    readonly holder: string,
    /** True when another holder has the lease; false when the renewal itself failed (see `cause`). */
    readonly takenOver: boolean,
    cause?: unknown,
  ) {
    super(
      takenOver
        ? `maintenance lost its lease "${lease}" to another holder; stopped before its next batch`
        : `maintenance could not renew its lease "${lease}" (${cause instanceof Error ? cause.message : String(cause)}); stopped before its next batch`,
      { lease, holder, takenOver },
      { cause },
    );
  }
}

/**
 * A maintenance lease this run holds, renewed between batches. Deleting is
 * safe only while one run does it, and the lease is what says this run is
 * that one: a renewal that finds another holder, or that fails, makes every
 * later renewal throw MaintenanceLeaseLostError too, so no batch after it
 * runs on a lease the run does not hold.
 */
export class HeldMaintenanceLease {
  private lost: MaintenanceLeaseLostError | null = null;

  constructor(
    private readonly db: Queryable,
    readonly name: string,
    readonly holder: string,
    private readonly leaseMs: number,
  ) {}

  /** Renew for another leaseMs; throws MaintenanceLeaseLostError when lost (now or before). */
  async renew(): Promise<void> {
    if (this.lost) throw this.lost;
    let renewed: boolean;
    try {
      renewed = await tryAcquireMaintenanceLease(this.db, this.name, this.holder, this.leaseMs);
    } catch (err) {
      this.lost = new MaintenanceLeaseLostError(this.name, this.holder, false, err);
      throw this.lost;
    }
    if (!renewed) {
      this.lost = new MaintenanceLeaseLostError(this.name, this.holder, true);
      throw this.lost;
    }
  }

  /**
   * Give the lease back at the end of the run. Not when another holder took
   * it: the row is theirs. After a failed renewal the lease may still be
   * ours; the delete only matches our own holder name, so trying is safe.
   */
  async release(): Promise<void> {
    if (this.lost?.takenOver) return;
    await releaseMaintenanceLease(this.db, this.name, this.holder);
  }
}
