import type { StepBase } from '../../model/definition.js';
import type { LogLevel } from '../../store/stream-codes.js';
import type { Screenshot } from '../../store/screenshots.js';
import type { CaptureInput } from '../artifacts.js';

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
  /** Append a log line to the job's stream, attributed to this step. */
  log(level: LogLevel, message: string, data?: unknown): void;
  readonly limits: { readonly httpMaxResponseBytes: number };
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
  /** Run once (one attempt). Returns the output, a Suspend or a CompletedWithWarning; throws StepError on failure. */
  run(step: S, ctx: StepContext): Promise<unknown>;
}

/** For `validate` of types with no checks beyond their schema and sources. */
export function noExtraChecks(): void {}

/** For `credentials` of types that open none directly. */
export function noDirectCredentials(): readonly string[] {
  return [];
}
