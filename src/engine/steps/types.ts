import type { StepBase } from '../../model/definition.js';
import type { LogLevel, StreamKind } from '../../store/stream-codes.js';
import type { StepServices } from '../services.js';
import type { Screenshot } from '../../store/screenshots.js';
import type { CaptureInput } from '../artifacts.js';
import type { Outbound } from '../../net/outbound.js';

/** The expression scope a step evaluates in: `{ input, steps }`, plus `credentials` for a step that references them. */
export interface StepScope {
  input: unknown;
  steps: Record<string, unknown>;
  credentials?: Record<string, Record<string, unknown>>;
}

/** A signal as a waiting step receives it. */
export interface ReceivedSignal {
  id: string;
  name: string;
  payload: unknown;
}

/** Signals sent to the running job: stored, so one sent before the job asks still counts. */
export interface SignalInbox {
  /** The oldest signal of this name the job has not consumed, or null. */
  find(name: string): Promise<ReceivedSignal | null>;
  /**
   * Consume it: a SIGNAL_RECEIVED row in the stream, and the signal marked
   * consumed in the same transaction as the step's checkpoint, under the
   * job's lease (a worker that lost the job leaves it for the new owner).
   */
  consume(signal: ReceivedSignal): void;
}

/** What a step sees while it runs. */
export interface StepContext {
  readonly scope: StepScope;
  /** Aborted on step timeout, cancellation, job deadline, lost lease or shutdown (only for abortable step types). */
  readonly signal: AbortSignal;
  /**
   * A credential the step's type opens directly (listed by its
   * `credentials(step)`): its provider and decrypted secret, for this attempt
   * only. Everything the step produces is redacted of the secret's values.
   */
  credential(name: string): { provider: string; secret: Readonly<Record<string, unknown>> };
  /** Append a log line to the job's stream, attributed to this step. */
  log(level: LogLevel, message: string, data?: unknown): void;
  readonly limits: { readonly httpMaxResponseBytes: number };
  /**
   * The step's one way to the network: HTTP requests and connections under
   * the egress policy (public addresses plus STEPWISE_EGRESS_ALLOW), the name
   * resolved once and connected to as the address that was checked. A
   * refusal throws EgressDeniedError, which fails the step EGRESS_DENIED.
   */
  readonly net: Outbound;
  /**
   * Attach a screenshot or other artifact to this step: stored once per content
   * hash in blob storage, listed by GET /v1/jobs/:id/screenshots, recorded in the
   * stream as a SCREENSHOT row. Throws BlobUnavailableError (nothing recorded) when
   * the blob store fails, UnavailableError when none is configured.
   */
  capture(input: CaptureInput): Promise<Screenshot>;
  /** For a step resumed after it suspended: the state it suspended with; undefined on its first run. */
  readonly resumed: Readonly<Record<string, unknown>> | undefined;
  readonly signals: SignalInbox;
  /** The running job, as a step may need to name it. */
  readonly job: StepJob;
  /** This step's path in its job: its id at the top level, `inv[17].call` inside blocks. */
  readonly path: string;
  /** Append a typed row (CHILD_JOB_STARTED, APPROVAL_REQUESTED, …) to the job's stream, attributed to this step. */
  event(kind: StreamKind, message: string, data?: Record<string, unknown>, level?: LogLevel): void;
  /** Stepwise's own records a step may use (approvals, sub-workflows, rate limits). */
  readonly services: StepServices;
  /** For block types: run the step lists they hold. */
  readonly block: BlockHost;
  /**
   * Keep where a long-running step stands (a browser step after each
   * action), so that a job resumed after a crash or a takeover gives it back
   * as `ctx.resumed` and the step goes on from there. Written with the job's
   * next flush; call `durable()` to wait for the commit.
   */
  progress(state: Record<string, unknown>): void;
  /**
   * On a retry of the step (its attempt 2 and on, in the same run): what the
   * failed attempt kept with `progress`, so a step made of many actions can
   * go on at the one that failed. Undefined on a first attempt and when
   * `resumed` is set.
   */
  readonly previousProgress: Readonly<Record<string, unknown>> | undefined;
  /**
   * Everything recorded so far, the progress included, is committed under
   * the job's lease (before an action that must not run twice). Throws when
   * this worker no longer holds the job: the action must not run.
   */
  durable(): Promise<void>;
  /**
   * Values the job carries from this step to later ones, by key, that are
   * not outputs (a browser session's sealed cookies and storage for the
   * next browser step naming the session): saved with the checkpoint, under
   * the job's lease, and gone when the job ends. A retry from the failed
   * step starts with them.
   */
  readonly carried: CarriedValues;
}

export interface CarriedValues {
  get(key: string): unknown;
  /** Kept with the job's next flush (`durable()` waits for it); undefined removes the key. */
  set(key: string, value: unknown): void;
}

export interface StepJob {
  id: string;
  organizationId: string;
  workflowId: string;
  runNumber: number;
  /** Parents above the job (sub-workflows). */
  depth: number;
  /** The user whose key started the run. */
  initiatedBy: string | null;
}

/** How a step list inside a block ended. */
export type SequenceOutcome =
  | { kind: 'completed'; output: unknown }
  | { kind: 'failed'; code: string; message: string; path: string; data?: Record<string, unknown> }
  | { kind: 'suspended'; until: number | null };

/** A step list a block runs: its label (a path segment), and what its expressions see besides `input` and `steps`. */
export interface SequenceRun {
  /** `then`, `else`, `0`, `default`, a branch name, or `[17]` for an iteration. */
  label: string;
  steps: readonly StepBase[];
  item?: unknown;
  index?: number;
  /** Write only a rollup of this sequence unless it fails (iterations past the first 100 of a loop). */
  quiet?: boolean;
}

/** What a block type runs its step lists with. */
export interface BlockHost {
  /**
   * Run one step list to its end (resuming what it recorded before), under
   * `abort` if given (pulled: the step running is aborted). `stop`, once
   * pulled, ends the list before its next step: the step running finishes
   * and is recorded, so a side effect it had already caused is not repeated.
   */
  run(sequence: SequenceRun, abort?: import('../aborts.js').JobAbort, stop?: import('../aborts.js').JobAbort): Promise<SequenceOutcome>;
  /** The block's own state saved by `save` on an earlier run of this job (the branch taken, the items), or undefined. */
  readonly saved: Readonly<Record<string, unknown>> | undefined;
  /** Keep the block's own state, so a resumed job takes the same branch, the same items. */
  save(state: Record<string, unknown>): void;
  /** A recorded outcome of one of its sequences (a finished iteration or branch), to skip it on resume. */
  recorded(label: string): { status: 'COMPLETED' | 'FAILED'; output: unknown } | undefined;
  /** Record a sequence's outcome (an iteration or branch ended). */
  record(label: string, status: 'COMPLETED' | 'FAILED', output: unknown): void;
  /** A row about one of its lists (ITERATION_STARTED of `[17]`), with that list's path. */
  event(label: string, kind: StreamKind, message: string, data?: Record<string, unknown>, level?: LogLevel): void;
  /** A list that failed and was tolerated (a loop's iteration): the job will end PARTIAL_SUCCESS. */
  noteFailed(label: string): void;
  /** An abort that follows the step's own and can also be pulled alone (a failed branch cancels its siblings). */
  childAbort(): import('../aborts.js').JobAbort;
}

/** A step failure with a stable code (HTTP_STATUS, HTTP_ERROR, EXPRESSION_ERROR, STEP_TIMEOUT, …). */
export class StepError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly data?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'StepError';
  }
}

/**
 * Returned by `run` to suspend the job (WAITING, no worker held) until
 * `until` (epoch ms; null: until woken, e.g. by a signal). The job comes
 * back to the same step with `ctx.resumed` set to `state`. `waiting` is the
 * data of the WAITING row written when the step starts waiting (omit it
 * when it suspends again after an early wake-up).
 */
export class Suspend {
  constructor(
    readonly until: number | null,
    readonly state: Record<string, unknown>,
    readonly waiting?: Record<string, unknown>,
  ) {}
}

/** Returned by `run` to complete with a warning: STEP_COMPLETED at WARN level carrying `data` (a wait that timed out and continues). */
export class CompletedWithWarning {
  constructor(
    readonly output: unknown,
    readonly data: Record<string, unknown>,
  ) {}
}

/**
 * The `{{ }}` templates and JSONata expressions a step evaluates, keyed by
 * their path under the step (`url`, `headers`, `expression`). Every one is
 * compiled when a definition is saved, and scanned for `credentials.<name>`.
 */
export interface StepSources {
  templates?: Record<string, unknown>;
  expressions?: Record<string, string>;
}

/** A JSON Schema fragment (the subset Ajv 2020 understands). */
export type JsonSchema = Readonly<Record<string, unknown>>;

/**
 * Everything Stepwise knows about one step type, in the type's own file
 * (src/engine/steps/<type>.ts) and listed once in steps/registry.ts.
 * Validation, the definition's JSON Schema, credential resolution, the
 * executor and the attempt loop read these fields; nothing else switches on
 * a step's type. Every field is required, so forgetting one (above all
 * `sideEffects`, which exactly-once depends on) does not compile.
 */
export interface StepType<S extends StepBase> {
  readonly type: S['type'];
  /** JSON Schema of the properties this type adds to the common ones (id, name, retry, timeoutMs, continueOnError, compensate). */
  readonly properties: Readonly<Record<string, JsonSchema>>;
  readonly required: readonly string[];
  /** What the step evaluates (see StepSources). */
  sources(step: S): StepSources;
  /** Checks the schema cannot express (one field or another, …); throws ValidationError naming `${path}/<field>`. */
  validate(step: S, path: string): void;
  /** Credential names the step opens directly, besides `credentials.<name>` in its sources (most types: none). */
  credentials(step: S): readonly string[];
  /**
   * The step lists a block holds (none for a leaf). Validation checks them
   * like the top-level list, credential references are found in them, and
   * the worst case of step runs per job is counted from them.
   */
  children(step: S): readonly ChildList[];
  /** The type holds steps (if, switch, forEach, parallel): it has no retries, timeout or compensation of its own. */
  readonly block: boolean;
  /**
   * The step reaches outside Stepwise (a request, a message, a payment). Its
   * STEP_STARTED is committed under the job's lease before it runs (a worker
   * that lost the job finds out before it acts), and its outcome is committed
   * before the job moves on, so a finished step is never run again after a crash.
   */
  readonly sideEffects: boolean;
  /**
   * The step awaits something an AbortSignal can stop (a request): it gets a
   * per-attempt timer and the job's abort. Steps that run to the end at once
   * skip both: a timer and a composite signal per step halved the steps/s of
   * a transform-and-log workflow here (8.9k → 4.7k).
   */
  readonly abortable: boolean;
  /** May serve as a compensation: runs to an end, never suspends. */
  readonly compensation: boolean;
  /**
   * The timer of one attempt: most types use the step's `timeoutMs` (the
   * worker's default when absent); a type whose `timeoutMs` means something
   * else (a browser step's per-action timeout) names its own bound.
   */
  attemptTimeoutMs(step: S): number | undefined;
  /** Run once (one attempt). Returns the output, a Suspend or a CompletedWithWarning; throws StepError on failure. */
  run(step: S, ctx: StepContext): Promise<unknown>;
}

/** A step list a block holds. */
export interface ChildList {
  /** Its path segment: `then`, `else`, a case index, `default`, a branch name; `[]` for a loop's iterations. */
  label: string;
  steps: readonly StepBase[];
  /** Where the list is in the step's JSON (`/then`, `/cases/0/steps`, `/branches/crm`), for error paths. */
  pointer: string;
  /** Most runs of this list per run of the block (a loop's item cap; 1 otherwise). */
  repeat: number;
  /** Only one of a block's exclusive lists runs (the branches of if and switch). */
  exclusive: boolean;
}

/** For `attemptTimeoutMs` of types whose `timeoutMs` is the attempt's timeout. */
export function stepTimeout(step: StepBase): number | undefined {
  return step.timeoutMs;
}

/** For `children` of leaf types. */
export function noChildren(): readonly ChildList[] {
  return [];
}

/** For `validate` of types with no checks beyond their schema and sources. */
export function noExtraChecks(): void {}

/** For `credentials` of types that open none directly. */
export function noDirectCredentials(): readonly string[] {
  return [];
}
