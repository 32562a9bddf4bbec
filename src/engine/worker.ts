import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { WorkerConfig } from '../config/index.js';
import type { Db } from '../db/index.js';
import type { WorkflowDefinition } from '../model/definition.js';
import {
  CANCEL_CHANNEL,
  findConcurrencyLimits,
  findDefinitions,
  findLastSeqs,
  findPendingSignal,
  findStepResults,
  JOBS_CHANNEL,
  LIMITS_CHANNEL,
  releaseClaims,
  renewLeases,
  sqlRecordStore,
  versionKey,
  type ClaimedJob,
  type ConcurrencyLimits,
} from '../store/index.js';
import type { Logger } from '../util/logger.js';
import { CancelledError, JobAbort, ShutdownError } from './aborts.js';
import { executeJob, type ExecutorOptions } from './executor.js';
import { Recorder, type RecorderStats } from './recorder.js';
import type { BlobStore } from '../blob/index.js';
import { policyRetainUntil, readArtifact, type RetainUntil } from './artifacts.js';
import { credentialOpener, type CredentialResolver } from './credentials.js';
import { rateLimitService } from './rate-limits.js';
import { aiUsageService } from './ai-usage.js';
import type { PriceTable } from '../ai/prices.js';
import { claimRound, newClaimState, type ClaimState } from './claim.js';
import { AggregateRoller } from './aggregate-roller.js';
import { stepTypeIndex, type StepTypeOf } from './step-type-index.js';
import { approvalService } from './approvals.js';
import { childJobService } from './children.js';
import { knowledgeService } from './knowledge.js';
import type { BrowserSessions, Sealer } from './services.js';
import { Outbound } from '../net/outbound.js';

/** What a worker needs besides the database, when configured. */
export interface WorkerOptions {
  /** Where screenshots/artifacts and large results go; without it steps cannot capture and results stay inline. */
  blobs?: BlobStore | undefined;
  /** retain_until of a new screenshot; default: the organization's screenshot retention policy. */
  retainUntil?: RetainUntil | undefined;
  /** Opens credentials for steps that reference them (security/credentials.ts); without it such steps fail. */
  credentials?: CredentialResolver | undefined;
  /** Seals what steps keep in checkpoints but must not keep readable (browser session state); without it browser steps fail. */
  sealer?: Sealer | undefined;
  /** The browser sessions of browser steps (src/browser/sessions.ts); without it browser steps fail BROWSER_UNAVAILABLE. */
  browser?: BrowserSessions | undefined;
  /** USD per 1M tokens by model for llm steps' cost (config STEPWISE_LLM_PRICES); default: the built-in table. */
  llmPrices?: PriceTable | undefined;
  /** Steps' way to the network; default: the policy of `config.egressAllow` with the system resolver. */
  outbound?: Outbound | undefined;
}

/** How long a worker trusts its copy of the concurrency limits (a NOTIFY on change clears it sooner). */
const LIMITS_TTL_MS = 5_000;

/** Definitions cached per worker; versions are immutable so entries never go stale. */
const DEFINITION_CACHE_LIMIT = 5_000;

/**
 * When the worker's loop counts as stuck (GET /health/ready): a healthy loop
 * goes round at least every poll interval when idle, and at most 10 s apart
 * while it backs off after failed claims; three poll intervals, and never
 * less than 30 s, leaves room for a slow claim or a long GC pause without
 * calling a live worker dead.
 */
export function loopStaleAfterMs(pollIntervalMs: number): number {
  return Math.max(30_000, 3 * pollIntervalMs);
}

/** Whether the worker's loop is going round (api/readiness.ts reads it). */
export interface LoopLiveness {
  /** Started and not stopping. */
  running: boolean;
  /** Epoch ms when the loop last went round (0 before it first did). */
  lastRoundAt: number;
  /** How old `lastRoundAt` may be before the loop counts as stuck (loopStaleAfterMs). */
  staleAfterMs: number;
}

interface InFlight {
  job: ClaimedJob;
  abort: JobAbort;
  done: Promise<void>;
}

/**
 * Claims jobs in batches and runs up to `concurrency` at once. Wakes on
 * NOTIFY (server) or the in-process notification (PGlite) and polls as a
 * fallback; after the LISTEN connection comes back from a drop it polls and
 * checks its jobs at once, so what was sent meanwhile is late, never lost.
 * Renews the leases of everything it holds; on stop, stops claiming, lets
 * in-flight jobs finish within the grace period, hands the rest back, and
 * flushes its record.
 */
export class Worker {
  readonly id: string;
  private readonly inFlight = new Map<string, InFlight>();
  private readonly definitions = new Map<string, WorkflowDefinition>();
  /** The step types of each cached definition (for the step duration metric), built once per version. */
  private readonly stepTypes = new Map<string, StepTypeOf>();
  private lastRoundAt = 0;
  private readonly recorder: Recorder;
  /** Rolls the jobs this worker ended into aggregate_metrics, off the flush (engine/aggregate-roller.ts). */
  private readonly roller: AggregateRoller;
  private running = false;
  private loopDone: Promise<void> | undefined;
  private wakePending = false;
  /**
   * The loop waits for a free slot or for the record to catch up, not for
   * work. Only then (or while concurrency limits may hold runs back) does a
   * run ending or a flush wake it: a loop whose last claim found the queue
   * drained waits for a NOTIFY (or the poll), so a run ending costs no claim
   * that finds nothing. Waking on every end and every flush made 2.5 claims
   * per run at 50 runs/s, most of them empty.
   */
  private waitingForRoom = false;
  private wakeUp: (() => void) | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private unlisten: (() => Promise<void>)[] = [];
  private readonly executorOptions: ExecutorOptions;
  private unsubscribe: (() => void)[] = [];
  private limits: { value: ConcurrencyLimits; at: number } | undefined;
  private readonly claimState: ClaimState = newClaimState();

  constructor(
    private readonly db: Db,
    private readonly config: WorkerConfig,
    private readonly logger: Logger,
    id?: string,
    private readonly options: WorkerOptions = {},
  ) {
    this.id = id ?? `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
    this.executorOptions = {
      stepTimeoutMs: config.stepTimeoutMs,
      httpMaxResponseBytes: config.httpMaxResponseBytes,
      outbound: options.outbound ?? new Outbound(config.egressAllow),
      checkpointTtlMs: config.checkpointTtlMs,
      resultInlineBytes: config.resultInlineBytes,
      artifacts: options.blobs ? { db, blobs: options.blobs, retainUntil: options.retainUntil ?? policyRetainUntil(db) } : undefined,
      credentials: options.credentials ? credentialOpener(options.credentials, this.id) : undefined,
      findSignal: (org, jobId, name, excluding) => findPendingSignal(db, org, jobId, name, excluding),
      findStepResults: (org, jobId) => findStepResults(db, org, jobId),
      services: {
        children: childJobService(db),
        approvals: approvalService(db),
        rateLimits: rateLimitService(db),
        knowledge: knowledgeService(db),
        aiUsage: aiUsageService(db, options.llmPrices),
        sealer: options.sealer,
        browser: options.browser,
        artifacts: options.blobs ? { read: (org, id) => readArtifact({ db, blobs: options.blobs!, retainUntil: policyRetainUntil(db) }, org, id) } : undefined,
      },
    };
    this.roller = new AggregateRoller(db, logger);
    this.recorder = new Recorder(
      sqlRecordStore(db),
      this.id,
      { flushIntervalMs: config.flushIntervalMs, maxBufferedRows: 5_000, leaseMs: config.leaseMs },
      logger,
    );
  }

  /** Jobs currently executing here. */
  get activeCount(): number {
    return this.inFlight.size;
  }

  /** Whether the claim loop is going round, for readiness probes. */
  liveness(): LoopLiveness {
    return { running: this.running, lastRoundAt: this.lastRoundAt, staleAfterMs: loopStaleAfterMs(this.config.pollIntervalMs) };
  }

  /** What this worker's recorder has written and dropped so far. */
  get stats(): Readonly<RecorderStats> {
    return this.recorder.stats;
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    this.unsubscribe.push(
      // A flush that handed jobs back to the queue may have made work; one that
      // recorded outcomes matters only to a loop held back for room (below).
      this.recorder.onFlushed(({ suspensions, completions }) => {
        if (suspensions > 0 || this.waitingForRoom || this.holdsBackRuns()) this.wake();
        if (completions > 0) this.roller.soon();
      }),
      // A flush found jobs taken over by another worker: their runs here stop.
      this.recorder.onLost((jobIds) => {
        for (const id of jobIds) this.inFlight.get(id)?.abort.markLost();
      }),
    );
    const onReconnect = () => {
      this.logger.info('listener reconnected; polling for work and checking held jobs now');
      this.wake();
      void this.renew();
    };
    try {
      this.unlisten.push(await this.db.listen(JOBS_CHANNEL, () => this.wake(), { onReconnect }));
      // A limit changed: re-read them. 'keys': runs with concurrency keys were queued (the keyed claim has work).
      this.unlisten.push(
        await this.db.listen(LIMITS_CHANNEL, (payload) => {
          if (payload === 'keys' && this.limits) this.limits.value.keyed = true;
          else this.limits = undefined;
        }),
      );
      // A cancel request names the job; whoever runs it aborts it at once (heartbeats catch a missed one).
      this.unlisten.push(await this.db.listen(CANCEL_CHANNEL, (jobId) => this.inFlight.get(jobId)?.abort.abort(new CancelledError())));
    } catch (err) {
      this.logger.warn({ err }, 'LISTEN failed; relying on polling and heartbeats');
    }
    this.roller.start();
    const beatMs = Math.max(250, Math.floor(this.config.leaseMs / 3));
    this.heartbeat = setInterval(() => void this.renew(), beatMs);
    this.loopDone = this.loop();
  }

  /** Graceful stop (SIGTERM): no new claims; finish or hand back in-flight work; flush the record. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.wake();
    await this.loopDone;
    await Promise.all(this.unlisten.splice(0).map((u) => u().catch(() => undefined)));
    const graceOver = new Promise<void>((r) => setTimeout(r, this.config.shutdownGraceMs).unref());
    await Promise.race([Promise.all([...this.inFlight.values()].map((f) => f.done)), graceOver]);
    for (const f of this.inFlight.values()) f.abort.abort(new ShutdownError());
    await Promise.race([
      Promise.all([...this.inFlight.values()].map((f) => f.done)),
      new Promise((r) => setTimeout(r, 5_000).unref()),
    ]);
    const flushed = await this.recorder.drain(10_000);
    if (!flushed) this.logger.error('could not record every outcome before stopping; leases will expire and the jobs rerun');
    await this.roller.stop();
    clearInterval(this.heartbeat);
    for (const u of this.unsubscribe.splice(0)) u();
    // Its idle keep-alive connections; one passed in is its owner's to close.
    if (!this.options.outbound) this.executorOptions.outbound.close();
  }

  /** Ask the loop to look for work now. */
  wake(): void {
    this.wakePending = true;
    const w = this.wakeUp;
    this.wakeUp = undefined;
    w?.();
  }

  private waitForWake(timeoutMs: number): Promise<void> {
    if (this.wakePending || !this.running) {
      this.wakePending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.wakeUp = undefined;
        resolve();
      }, timeoutMs);
      this.wakeUp = () => {
        clearTimeout(t);
        this.wakePending = false;
        resolve();
      };
    });
  }

  private async loop(): Promise<void> {
    let failures = 0;
    while (this.running) {
      this.lastRoundAt = Date.now();
      const free = this.config.concurrency - this.inFlight.size;
      // Back-pressure: do not run further ahead of the record than one concurrency's worth.
      if (free <= 0 || this.recorder.pendingCompletions() >= this.config.concurrency) {
        this.waitingForRoom = true;
        await this.waitForWake(this.config.pollIntervalMs);
        this.waitingForRoom = false;
        continue;
      }
      const want = Math.min(free, this.config.claimBatchSize);
      this.wakePending = false;
      let jobs: ClaimedJob[];
      try {
        jobs = await this.claim(want);
        if (jobs.length > 0) await this.launch(jobs);
        failures = 0;
      } catch (err) {
        failures++;
        this.logger.error({ err, attempt: failures }, 'claim failed');
        await this.waitForWake(Math.min(10_000, 100 * 2 ** failures));
        continue;
      }
      if (jobs.length < want) await this.waitForWake(this.config.pollIntervalMs);
    }
  }

  /**
   * One claim round (engine/claim.ts): the plain fair claim, the counting
   * claim while concurrency limits exist, the keyed claim while runs with
   * concurrency keys are queued (the limits are re-read every LIMITS_TTL_MS
   * and at once on a NOTIFY, which keyed enqueues send).
   */
  private async claim(want: number): Promise<ClaimedJob[]> {
    if (!this.limits || Date.now() - this.limits.at > LIMITS_TTL_MS) {
      this.limits = { value: await findConcurrencyLimits(this.db), at: Date.now() };
    }
    return claimRound(this.db, this.id, want, this.config.leaseMs, this.limits.value, this.claimState);
  }

  /**
   * What a claimed batch needs before it can run: the definitions it pins
   * (cached) and, for jobs run before, the last stream seq. When that cannot
   * be read, the batch is handed back at once instead of being held until
   * its leases expire.
   */
  private async prepare(jobs: ClaimedJob[]): Promise<Map<string, number>> {
    try {
      const missing = jobs.filter((j) => !this.definitions.has(versionKey(j.workflowId, j.workflowVersion)));
      if (missing.length > 0) {
        const found = await findDefinitions(
          this.db,
          missing.map((j) => ({ organizationId: j.organizationId, workflowId: j.workflowId, version: j.workflowVersion })),
        );
        if (this.definitions.size + found.size > DEFINITION_CACHE_LIMIT) {
          this.definitions.clear();
          this.stepTypes.clear();
        }
        for (const [k, v] of found) {
          this.definitions.set(k, v);
          this.stepTypes.set(k, stepTypeIndex(v));
        }
      }
      // A job run before (its worker died) continues its stream after the last row written.
      return await findLastSeqs(this.db, jobs.filter((j) => j.attempts > 1).map((j) => j.id));
    } catch (err) {
      const released = await releaseClaims(this.db, this.id, jobs.map((j) => j.id)).catch((releaseErr: unknown) => {
        this.logger.error({ err: releaseErr }, 'could not hand the batch back; its leases will expire');
        return 0;
      });
      this.logger.error({ err, jobs: jobs.length, handedBack: released }, 'could not prepare a claimed batch; handed it back');
      throw err;
    }
  }

  private async launch(jobs: ClaimedJob[]): Promise<void> {
    const lastSeqs = await this.prepare(jobs);
    for (const job of jobs) {
      // The foreign key from jobs to workflow_versions makes a missing definition impossible.
      const key = versionKey(job.workflowId, job.workflowVersion);
      const definition = this.definitions.get(key)!;
      const claimed = { ...job, lastSeq: Math.max(job.lastSeq, lastSeqs.get(job.id) ?? 0) };
      // An earlier run of this job here lost its lease and the job came back: that run stops now.
      this.inFlight.get(job.id)?.abort.markLost();
      this.recorder.start({
        jobId: job.id,
        attempts: job.attempts,
        startedAt: job.startedAt,
        deadlineAt: job.deadlineAt,
        lease: job.lease,
        organizationId: job.organizationId,
        // Its first attempt, never started: a job that waited or failed an attempt before is past it (attempts > 1 or WAITING).
        firstRun: job.priorStatus === 'PENDING' && job.attempts === 1,
        stepType: this.stepTypes.get(key),
      });
      const abort = new JobAbort();
      const done = executeJob(claimed, definition, this.recorder, abort, this.executorOptions).then(
        () => this.finished(job.id, abort),
        (err: unknown) => {
          // executeJob records every failure itself; reaching here is a bug. Hand
          // the job back rather than leave it leased to a worker that dropped it.
          this.logger.error({ err, jobId: job.id }, 'executor crashed; handing the job back');
          if (!abort.lost) this.recorder.suspend({ jobId: job.id, status: 'PENDING', runAt: new Date(Date.now() + 5_000), lastSeq: claimed.lastSeq });
          this.finished(job.id, abort);
        },
      );
      this.inFlight.set(job.id, { job: claimed, abort, done });
    }
  }

  /** A run ended: close its browser sessions, free its slot (unless a newer run of the same job has taken it), and look for work if the loop waits for room. */
  private finished(jobId: string, abort: JobAbort): void {
    if (this.inFlight.get(jobId)?.abort === abort) {
      this.inFlight.delete(jobId);
      // A job suspended or ended here keeps nothing open: a resumed run restores its sessions from the checkpoint.
      this.executorOptions.services?.browser?.release(jobId).catch((err: unknown) => this.logger.warn({ err, jobId }, 'closing browser sessions failed'));
    }
    if (this.waitingForRoom || this.holdsBackRuns()) this.wake();
  }

  /**
   * Concurrency limits or keys exist: a claim may have left runs queued that
   * a run ending here lets through, and nothing else announces that.
   */
  private holdsBackRuns(): boolean {
    const limits = this.limits?.value;
    return limits !== undefined && (limits.keyed || limits.organizations.size > 0 || limits.workflows.size > 0);
  }

  private async renew(): Promise<void> {
    const held = [...this.inFlight.keys(), ...this.recorder.pendingJobIds()];
    if (held.length === 0) return;
    // The claim each job was held under when the heartbeat asked. While it asks, a flush can hand a job
    // back (a suspension) and a claim take it again under a new token, here: the answer then says "not
    // yours" of the old claim, and must not abort the new run or drop its writes.
    const asked = new Map(held.map((id) => [id, this.recorder.leaseOf(id)]));
    try {
      const { held: kept, cancelled, gone } = await renewLeases(this.db, this.id, held, this.config.leaseMs);
      const keptSet = new Set(kept);
      // A job whose queue row is gone has ended. Usually this worker's own flush completed it while the
      // heartbeat ran (its run is over): nothing is lost. One still running here was ended elsewhere
      // (deleted, or taken over and finished): stop it like a lost lease.
      const goneSet = new Set(gone);
      const lost = held.filter(
        (id) => !keptSet.has(id) && (!goneSet.has(id) || this.inFlight.has(id)) && this.recorder.leaseOf(id) === asked.get(id),
      );
      if (lost.length > 0) {
        this.logger.warn({ jobs: lost }, 'lease lost; abandoning jobs');
        for (const id of lost) this.inFlight.get(id)?.abort.markLost();
        this.recorder.abandon(lost);
      }
      for (const id of cancelled) this.inFlight.get(id)?.abort.abort(new CancelledError());
    } catch (err) {
      this.logger.error({ err }, 'heartbeat failed');
    }
  }
}
