/**
 * The shape of a workflow definition as it is stored (workflow_versions.definition)
 * and read back. The store keeps definitions without knowing any step type;
 * the engine's step-type registry (src/engine/steps/registry.ts) gives each
 * step its full type and validates a definition before it is ever stored.
 * This module sits below both, so neither has to import the other for it.
 */

/** Per-step retry policy; `on` limits retries to these error codes (default: any). */
export interface RetryPolicy {
  maxAttempts: number;
  initialMs?: number;
  maxMs?: number;
  multiplier?: number;
  jitter?: boolean;
  on?: string[];
}

/** What every step has, whatever its type. */
export interface StepBase {
  /** Unique within the workflow; later steps read this step's output as `steps.<id>`. */
  id: string;
  type: string;
  name?: string;
  retry?: RetryPolicy;
  /** Per-attempt timeout; aborts a step that can be aborted mid-way. */
  timeoutMs?: number;
  /** A failure of this step does not fail the job; the job ends PARTIAL_SUCCESS. */
  continueOnError?: boolean;
  /** Undo action run (in reverse step order) when the job fails and the workflow says onFailure: compensate. */
  compensate?: { step: StepBase };
}

/** At most `limit` runs of the workflow with the same value of `key` (JSONata over `{ input }`) run at once. */
export interface ConcurrencyRule {
  key: string;
  limit: number;
}

/**
 * A rate-limit bucket of the organization, shared by every workflow that
 * names it: at most `limit` steps per `perMs` for each value of `key`
 * (JSONata over the step's scope; one bucket for all when absent).
 */
export interface RateLimitRule {
  bucket: string;
  key?: string;
  limit: number;
  perMs: number;
}

/** A run started while a run with the same key still waits to start replaces it and pushes its start back. */
export interface DebounceRule {
  key: string;
  delayMs: number;
  /** Never later than this after the first run of the burst was started. */
  maxDelayMs: number;
}

/** A second run with the same key within `ttlMs` returns the first job. */
export interface DedupeRule {
  key: string;
  ttlMs: number;
}

/** A workflow definition; `S` is the step type the reader knows (the engine narrows it to its registry). */
export interface WorkflowDefinition<S extends StepBase = StepBase> {
  steps: S[];
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
  /** Flow control, enforced when runs are started and claimed. */
  concurrency?: ConcurrencyRule[];
  rateLimits?: RateLimitRule[];
  debounce?: DebounceRule;
  dedupe?: DedupeRule;
  /** JSONata over `{ input }`: the run's priority, lower first. */
  priority?: string;
  /**
   * Input paths (`"input.memberId"`, `"input.claim.id"`) whose scalar values
   * are indexed when a run starts, so the runs list can find runs by them
   * (`GET /v1/jobs?search=input.memberId:M-123`).
   */
  searchKeys?: string[];
}

/** A search key: `input` then one or more `.segment`s of [A-Za-z0-9_-]. */
export const SEARCH_KEY_PATTERN = '^input(\\.[A-Za-z0-9_-]+)+$';
export const MAX_SEARCH_KEYS = 10;
/** Longest search key, in characters. */
export const MAX_SEARCH_KEY_LENGTH = 200;
/** Longest indexed value, as text; a longer string is not indexed (and a search for one is refused). */
export const MAX_SEARCH_VALUE_LENGTH = 200;

