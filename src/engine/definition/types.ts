/** The workflow definition format clients write (JSON). Validated by schema.ts + validate.ts. */
export const LOG_LEVEL_NAMES = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'FATAL'] as const;
export type LogLevelName = (typeof LOG_LEVEL_NAMES)[number];

export const HTTP_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'] as const;
export type HttpMethod = (typeof HTTP_METHODS)[number];

/** Per-step retry policy; `on` limits retries to these error codes (default: any). */
export interface RetryPolicy {
  maxAttempts: number;
  initialMs?: number;
  maxMs?: number;
  multiplier?: number;
  jitter?: boolean;
  on?: string[];
}

interface StepBase {
  /** Unique within the workflow; later steps read this step's output as `steps.<id>`. */
  id: string;
  name?: string;
  retry?: RetryPolicy;
  /** Per-attempt timeout; aborts the step (its AbortSignal reaches the http request). */
  timeoutMs?: number;
  /** A failure of this step does not fail the job; the job ends PARTIAL_SUCCESS. */
  continueOnError?: boolean;
  /** Undo action run (in reverse step order) when the job fails and the workflow says onFailure: compensate. */
  compensate?: { step: ActionStep };
}

export interface TransformStep extends StepBase {
  type: 'transform';
  /** JSONata over `{ input, steps }`; the step's output is its value. */
  expression: string;
}

export interface HttpStep extends StepBase {
  type: 'http';
  method: HttpMethod;
  url: string;
  headers?: Record<string, string>;
  body?: unknown;
  /** Statuses that count as success; default any 2xx. */
  expectStatus?: number[];
}

export interface LogStep extends StepBase {
  type: 'log';
  level?: LogLevelName;
  message: string;
}

export interface NoopStep extends StepBase {
  type: 'noop';
}

/** A durable timer: the job waits (WAITING, no worker held) for a duration or until a time. */
export interface DelayStep extends StepBase {
  type: 'delay';
  durationMs?: number;
  until?: string;
}

/** Wait for a named signal (POST /v1/jobs/:id/signals/:name); output is the signal's payload. */
export interface WaitStep extends StepBase {
  type: 'wait';
  signal: string;
  timeoutMs?: number;
  onTimeout?: 'fail' | 'continue';
}

/** Steps that do something in one go (usable as compensations). */
export type ActionStep = TransformStep | HttpStep | LogStep | NoopStep;
export type StepDefinition = ActionStep | DelayStep | WaitStep;
export type StepType = StepDefinition['type'];

export interface WorkflowDefinition {
  steps: StepDefinition[];
  /** Whole-job deadline from its first start; past it the job ends TIMED_OUT. */
  timeoutMs?: number;
  /** Times a FAILED job is run again (from its failed step) before it stays FAILED. */
  maxRetries?: number;
  /** `compensate`: on failure, run the compensations of completed steps in reverse order. */
  onFailure?: 'fail' | 'compensate';
  /**
   * PHI paths (`"input.patientName"`, `"input.memberId"`, `"result"`): an API
   * read that returns any of them writes phi_audit_log in the same request.
   */
  phi?: string[];
}
