import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { isDatabaseUnavailable, type Db, type Queryable } from '../db/index.js';
import { ContextDb, enterTenant } from '../db/tenant.js';
import { ConflictError, DatabaseError, isStepwiseError, NotFoundError, UnavailableError, ValidationError } from '../errors/index.js';
import {
  acquireBulkOperationLease,
  advanceBulkOperation,
  countJobsByIds,
  findRunnableBulkOperations,
  insertBulkOperation,
  JOB_STATUSES,
  lockBulkOperation,
  MAX_BULK_ERRORS,
  recordBulkChunkFailure,
  releaseBulkOperationLease,
  TERMINAL_STATUSES,
  transactionTime,
  type BulkAction,
  type BulkError,
  type BulkJobFilter,
  type BulkOperation,
  type BulkRetryFrom,
  type JobPagePosition,
  type JobStatus,
} from '../store/index.js';
import { uuidv7 } from '../util/ids.js';
import type { Logger } from '../util/logger.js';
import { cancelJob, retryJob, RETRYABLE_STATUSES } from './control.js';

/**
 * Bulk cancel and retry (POST /v1/jobs/bulk). The request creates an
 * operation (store/bulk-operations.ts) with its total counted then; the
 * BulkRunner below works through it in chunks, each chunk one transaction
 * that applies the action job by job through engine/control.ts and advances
 * the operation's counters and cursor, so a crash never applies a chunk twice
 * and never loses the progress made. A job the action refuses (already
 * finished, not retryable, another organization's) is counted failed and
 * noted; it never stops the operation.
 */

/** Ids per request. */
export const BULK_MAX_IDS = 1000;
/** Jobs a filter may select (and a dry run counts at most). */
export const BULK_MAX_MATCHES = 100_000;

const LIVE_STATUSES: readonly JobStatus[] = JOB_STATUSES.filter((s) => !TERMINAL_STATUSES.includes(s));

/** The statuses an action can touch: cancel the jobs not finished, retry the unsuccessful ones. */
export function bulkTargetStatuses(action: BulkAction): readonly JobStatus[] {
  return action === 'cancel' ? LIVE_STATUSES : RETRYABLE_STATUSES;
}

/**
 * Paging over an organization's jobs by the job list's filter, newest first
 * (the read side implements it: read/bulk-selection.ts; the engine does not
 * import read/).
 */
export interface BulkJobSelector {
  /** Ids of the jobs matching `filter` after `after`, at most `limit`; `next` is null on the last page. */
  page(
    db: Queryable,
    organizationId: string,
    filter: BulkJobFilter,
    after: JobPagePosition | null,
    limit: number,
  ): Promise<{ ids: string[]; next: JobPagePosition | null }>;
  /** How many jobs match `filter`, counting at most `cap`. */
  count(db: Queryable, organizationId: string, filter: BulkJobFilter, cap: number): Promise<number>;
}

/**
 * The selection an operation by filter actually works on: the filter's
 * statuses narrowed to those the action can touch, and only jobs created
 * before `bound` (the request's time), so runs started after the caller
 * confirmed, and the retries the operation itself starts, are never chosen.
 * Null when no job can match (the filter asks only for statuses the action
 * cannot touch).
 */
export function boundedSelection(action: BulkAction, filter: BulkJobFilter, bound: Date): BulkJobFilter | null {
  const targets = bulkTargetStatuses(action);
  const statuses = filter.statuses && filter.statuses.length > 0 ? targets.filter((s) => filter.statuses!.includes(s)) : [...targets];
  if (statuses.length === 0) return null;
  const createdTo = filter.createdTo && new Date(filter.createdTo) < bound ? filter.createdTo : bound.toISOString();
  return { ...filter, statuses, createdTo };
}

export interface BulkRequest {
  action: BulkAction;
  /** Retry only (default failed-step). */
  from?: BulkRetryFrom | undefined;
  ids?: string[] | undefined;
  filter?: BulkJobFilter | undefined;
}

/** How many jobs the request's action would touch now: a dry run. `capped`: BULK_MAX_MATCHES or more. */
export async function countBulkTargets(
  db: Queryable,
  selector: BulkJobSelector,
  organizationId: string,
  request: BulkRequest,
): Promise<{ count: number; capped: boolean }> {
  if (request.ids) {
    return { count: await countJobsByIds(db, organizationId, request.ids, bulkTargetStatuses(request.action)), capped: false };
  }
  const selection = boundedSelection(request.action, request.filter!, await transactionTime(db));
  if (!selection) return { count: 0, capped: false };
  const count = await selector.count(db, organizationId, selection, BULK_MAX_MATCHES);
  return { count, capped: count >= BULK_MAX_MATCHES };
}

/**
 * Create an operation (in the caller's transaction) with its total counted
 * now: the ids sent (each is done, or refused and counted failed), or the
 * jobs the filter selects. A filter selecting more than BULK_MAX_MATCHES is
 * refused. The runner does the work.
 */
export async function createBulkOperation(
  db: Queryable,
  selector: BulkJobSelector,
  organizationId: string,
  createdBy: string,
  request: BulkRequest,
): Promise<BulkOperation> {
  const retryFrom = request.action === 'retry' ? (request.from ?? 'failed-step') : null;
  if (request.ids) {
    return insertBulkOperation(db, organizationId, {
      id: uuidv7(),
      createdBy,
      action: request.action,
      retryFrom,
      jobIds: request.ids,
      filter: null,
      total: request.ids.length,
    });
  }
  const filter = request.filter!;
  // The operation's created_at is this transaction's time too: the bound the runner applies later.
  const selection = boundedSelection(request.action, filter, await transactionTime(db));
  const total = selection ? await selector.count(db, organizationId, selection, BULK_MAX_MATCHES + 1) : 0;
  if (total > BULK_MAX_MATCHES) {
    throw new ValidationError(`/body/filter selects more than ${BULK_MAX_MATCHES} jobs; narrow it`, { path: '/body/filter', limit: BULK_MAX_MATCHES });
  }
  return insertBulkOperation(db, organizationId, { id: uuidv7(), createdBy, action: request.action, retryFrom, jobIds: null, filter, total });
}

/** What the runner applies to one job (engine/control.ts; a test may wrap it). */
export interface BulkJobControl {
  cancelJob(db: Db, organizationId: string, jobId: string): Promise<unknown>;
  retryJob(db: Db, organizationId: string, jobId: string, from: BulkRetryFrom, checkpointTtlMs: number): Promise<unknown>;
}

export const DEFAULT_BULK_JOB_CONTROL: BulkJobControl = { cancelJob, retryJob };

export interface BulkRunnerOptions {
  /** Jobs per chunk (one transaction). */
  chunkSize: number;
  /** How long an operation stays this runner's without a chunk; another process takes over a crashed one's after it. */
  leaseMs: number;
  /** Look for operations (other processes' requests, crashed processes' leftovers) this often. */
  pollIntervalMs: number;
  /** After a chunk failed, wait this long before trying it again. */
  retryDelayMs: number;
  /** Chunks that fail in a row before the operation is FAILED. */
  maxChunkFailures: number;
  /** This process's name on the leases. */
  holder: string;
}

export const DEFAULT_BULK_RUNNER: Omit<BulkRunnerOptions, 'holder'> = Object.freeze({
  chunkSize: 100,
  leaseMs: 60_000,
  pollIntervalMs: 5_000,
  retryDelayMs: 2_000,
  maxChunkFailures: 5,
});

export interface BulkRunnerDeps {
  db: Db;
  logger: Logger;
  selector: BulkJobSelector;
  /** How long a retry's copied checkpoint lives (config.worker.checkpointTtlMs). */
  checkpointTtlMs: number;
  control?: BulkJobControl | undefined;
}

type StepResult = 'worked' | 'failed' | 'idle';

/** A refusal of one job (counted failed, the operation goes on), as opposed to a failure of the chunk. */
function isJobRefusal(err: unknown): boolean {
  return isStepwiseError(err) && !(err instanceof DatabaseError) && !(err instanceof UnavailableError);
}

/** The code an operation's error list gives a refused job. */
function refusalCode(action: BulkAction, err: unknown): string {
  if (err instanceof NotFoundError) return 'NOT_FOUND';
  if (err instanceof ConflictError) {
    if (action === 'cancel') return 'ALREADY_FINISHED';
    return err.details.path === 'from' ? 'NO_CHECKPOINT' : 'NOT_RETRYABLE';
  }
  return isStepwiseError(err) ? err.code : 'INTERNAL';
}

/**
 * Works through RUNNING operations, one chunk at a time, in every API
 * process. A lease on the operation's row keeps other processes off it while
 * this one works; a process that crashed leaves its lease to expire and the
 * next runner resumes from the committed cursor. Each chunk also locks the
 * row and checks the lease is still its own, so even a runner that paused
 * past its lease cannot apply a chunk another runner has applied.
 */
export class BulkRunner {
  readonly options: BulkRunnerOptions;
  private readonly control: BulkJobControl;
  private readonly held = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> | undefined;
  private running = false;
  private woken = false;
  private lastServed: string | undefined;

  constructor(
    private readonly deps: BulkRunnerDeps,
    options: Partial<BulkRunnerOptions> = {},
  ) {
    this.options = {
      ...DEFAULT_BULK_RUNNER,
      // PGlite has one connection: a shorter chunk holds the API up for less.
      chunkSize: deps.db.backend === 'pglite' ? 25 : DEFAULT_BULK_RUNNER.chunkSize,
      holder: `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`,
      ...options,
    };
    this.control = deps.control ?? DEFAULT_BULK_JOB_CONTROL;
  }

  /** Start working; operations left RUNNING (by this process's last life, or another's) are resumed at once. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.schedule(0);
  }

  /** A new operation exists: work now instead of at the next poll. */
  wake(): void {
    if (!this.running) return;
    if (this.inFlight) this.woken = true;
    else this.schedule(0);
  }

  /** Stop after the chunk in flight, and give back the leases held so another process can go on at once. */
  async stop(): Promise<void> {
    this.running = false;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.inFlight;
    for (const id of this.held) {
      await releaseBulkOperationLease(this.deps.db, id, this.options.holder).catch((err: unknown) =>
        this.deps.logger.warn({ err, operationId: id }, 'bulk operation lease not released; it expires on its own'),
      );
    }
    this.held.clear();
  }

  /** Process one chunk of one operation; false when there was nothing to do. */
  async step(): Promise<boolean> {
    return (await this.runOne()) !== 'idle';
  }

  /** Process chunks until no operation has work left (tests; `stepwise` commands). */
  async drain(): Promise<void> {
    while (await this.step()) {
      // one chunk per turn
    }
  }

  private schedule(delayMs: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.inFlight = this.tick().finally(() => {
        this.inFlight = undefined;
        if (!this.running) return;
        const again = this.woken;
        this.woken = false;
        if (again) this.schedule(0);
        else if (!this.timer) this.schedule(this.options.pollIntervalMs);
      });
    }, delayMs);
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    try {
      while (this.running) {
        const result = await this.runOne();
        if (result === 'idle') return;
        if (result === 'failed') {
          this.schedule(this.options.retryDelayMs);
          return;
        }
      }
    } catch (err) {
      this.deps.logger.error({ err }, 'bulk runner: looking for operations failed; trying again at the next poll');
    }
  }

  /** Pick an operation (taking turns between several), take its lease, run one chunk. */
  private async runOne(): Promise<StepResult> {
    const { db, logger } = this.deps;
    const { holder, leaseMs } = this.options;
    const candidates = await findRunnableBulkOperations(db, holder, 20);
    if (candidates.length === 0) return 'idle';
    const after = candidates.findIndex((c) => c.id === this.lastServed);
    const ordered = [...candidates.slice(after + 1), ...candidates.slice(0, after + 1)];
    for (const op of ordered) {
      if (!(await acquireBulkOperationLease(db, op.id, holder, leaseMs))) continue;
      this.held.add(op.id);
      this.lastServed = op.id;
      try {
        const finished = await this.runChunk(op.organizationId, op.id);
        if (finished) this.held.delete(op.id);
        return 'worked';
      } catch (err) {
        if (isDatabaseUnavailable(err)) {
          // A restart or a lost connection is not the chunk's failure: counted, five of them in a row
          // (five restarts, a flapping network) would FAIL an operation that has nothing wrong with it.
          logger.warn({ err, operationId: op.id, organizationId: op.organizationId }, 'bulk operation chunk interrupted: the database was unavailable; it is tried again');
          return 'failed';
        }
        const message = err instanceof Error ? err.message : String(err);
        const status = await recordBulkChunkFailure(db, op.id, holder, message, this.options.maxChunkFailures).catch(() => null);
        if (status === 'FAILED') this.held.delete(op.id);
        logger.error(
          { err, operationId: op.id, organizationId: op.organizationId, status },
          status === 'FAILED'
            ? 'bulk operation FAILED: its chunks kept failing; what earlier chunks did stays done'
            : 'bulk operation chunk failed and was rolled back; it is tried again',
        );
        return 'failed';
      }
    }
    return 'idle';
  }

  /**
   * One chunk in one tenant transaction: lock the operation, read the next
   * jobs from its cursor, apply the action to each (a refusal is counted
   * failed; any other error rolls the whole chunk back), advance counters and
   * cursor. Returns whether the operation is finished (or no longer this
   * runner's to work on).
   */
  private async runChunk(organizationId: string, id: string): Promise<boolean> {
    const { db, selector, checkpointTtlMs } = this.deps;
    const { holder, chunkSize } = this.options;
    // The control functions take a Db: inside the chunk they go to its transaction, their own transactions become savepoints.
    const scoped = new ContextDb(db);
    return db.transaction(async (tx) => {
      await enterTenant(tx, organizationId);
      const op = await lockBulkOperation(tx, organizationId, id, holder);
      if (!op) return true;
      let jobIds: string[];
      let cursor: BulkOperation['cursor'];
      let finished: boolean;
      if (op.jobIds) {
        const offset = op.cursor && 'offset' in op.cursor ? op.cursor.offset : 0;
        jobIds = op.jobIds.slice(offset, offset + chunkSize);
        cursor = { offset: offset + jobIds.length };
        finished = offset + jobIds.length >= op.jobIds.length;
      } else {
        const selection = boundedSelection(op.action, op.filter!, op.createdAt);
        const after = op.cursor && 'createdUs' in op.cursor ? op.cursor : null;
        const page = selection ? await selector.page(tx, organizationId, selection, after, chunkSize) : { ids: [], next: null };
        jobIds = page.ids;
        cursor = page.next ?? op.cursor;
        finished = page.next === null;
      }
      let succeeded = 0;
      const errors: BulkError[] = [];
      for (const jobId of jobIds) {
        try {
          await scoped.runIn(tx, () =>
            op.action === 'cancel'
              ? this.control.cancelJob(scoped, organizationId, jobId)
              : this.control.retryJob(scoped, organizationId, jobId, op.retryFrom ?? 'failed-step', checkpointTtlMs),
          );
          succeeded++;
        } catch (err) {
          if (!isJobRefusal(err)) throw err;
          errors.push({ jobId, code: refusalCode(op.action, err), message: (err as Error).message.slice(0, 500) });
        }
      }
      await advanceBulkOperation(tx, organizationId, id, {
        succeeded,
        failed: errors.length,
        errors: errors.slice(0, Math.max(0, MAX_BULK_ERRORS - op.errors.length)),
        cursor,
        finished,
        // A filter's total was counted at creation; jobs that stopped matching before their chunk were never reached.
        total: finished && op.filter ? op.done + succeeded + errors.length : undefined,
      });
      return finished;
    });
  }
}
