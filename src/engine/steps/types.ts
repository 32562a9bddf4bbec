import type { LogLevel } from '../../store/stream-codes.js';
import type { Screenshot } from '../../store/screenshots.js';
import type { CaptureInput } from '../artifacts.js';

/** What a step sees while it runs. */
export interface StepContext {
  /** JSONata/template context: `{ input, steps }`, plus `credentials` for a step that references them. */
  readonly scope: { input: unknown; steps: Record<string, unknown>; credentials?: Record<string, Record<string, unknown>> };
  /** Aborted on step timeout, cancellation or shutdown. */
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

export type StepHandler<S> = (step: S, ctx: StepContext) => Promise<unknown>;
