import { isDatabaseUnavailable } from '../db/errors.js';
import type { StepBase } from '../model/definition.js';
import { ExpressionError } from './definition/expressions.js';
import { sleep } from './backoff.js';
import { attemptSignal, StepTimeoutError, type JobAbort } from './aborts.js';
import { stepTypeOf } from './steps/registry.js';
import { CompletedWithWarning, StepError, Suspend, type StepContext, type StepType } from './steps/types.js';
import { truncate } from '../util/json.js';
import { StepRunContext } from './step-context.js';
import { LIMITS } from './limits.js';
import type { ArtifactSink } from './artifacts.js';
import { credentialRefs, openStepCredentials, type OpenedCredentials, type StepCredentialOpener } from './credentials.js';
import { afterFailedAttempt, StepFailed } from './rules.js';
import type { Frame } from './frame.js';
import type { StepServices } from './services.js';
import { throttleWait } from './throttle.js';
import type { Outbound } from '../net/outbound.js';
import { EgressDeniedError } from '../net/errors.js';
import { metrics } from '../metrics/index.js';

export interface StepFailureInfo {
  code: string;
  message: string;
  data?: Record<string, unknown>;
}

export type AttemptsResult =
  | { kind: 'completed'; output: unknown; durationMs: number; warning?: Record<string, unknown> }
  /** The step suspended the job; `attempt` and `since` are kept with its state to resume it. */
  | { kind: 'suspended'; suspend: Suspend; attempt: number; since: number }
  | { kind: 'failed'; failure: StepFailureInfo };

/** A step that suspended before and runs again: its attempt, when that attempt began, and the state it suspended with. */
export interface Resumption {
  attempt: number;
  since: number;
  state: Record<string, unknown>;
}

export interface AttemptOptions {
  stepTimeoutMs: number;
  httpMaxResponseBytes: number;
  /** Every connection a step makes goes through it: the egress policy (STEPWISE_EGRESS_ALLOW) and its resolver. */
  outbound: Outbound;
  /** Where `ctx.capture` stores artifacts; absent when no blob store is configured. */
  artifacts?: ArtifactSink | undefined;
  /** Opens the credentials a step references (and audits it); absent: such steps fail CREDENTIALS_UNAVAILABLE. */
  credentials?: StepCredentialOpener | undefined;
  /** The oldest unconsumed signal of a name sent to a job, or null. */
  findSignal(organizationId: string, jobId: string, name: string, excluding: readonly string[]): Promise<{ id: string; payload: unknown } | null>;
  /** Approvals, sub-workflows and rate limits (absent ones fail the steps that need them). */
  services?: StepServices | undefined;
}

function describe(err: unknown, signal: AbortSignal | undefined): StepFailureInfo {
  if (signal?.aborted && signal.reason instanceof StepTimeoutError) return { code: 'STEP_TIMEOUT', message: 'step timed out' };
  if (err instanceof StepError) return { code: err.code, message: err.message, ...(err.data ? { data: err.data } : {}) };
  if (err instanceof ExpressionError) return { code: err.code, message: err.message };
  // Names the host asked for and why, never the addresses it resolved to (net/errors.ts).
  if (err instanceof EgressDeniedError) return { code: err.code, message: err.message, data: err.data };
  return { code: 'STEP_ERROR', message: err instanceof Error ? err.message : String(err) };
}

function elapsedMs(t0: number): number {
  return Math.round((performance.now() - t0) * 1000) / 1000;
}

/**
 * Run one step under its retry policy. Every attempt is in the stream:
 * STEP_STARTED, then STEP_COMPLETED (written by the caller), or STEP_FAILED
 * followed by RETRY_SCHEDULED when another attempt follows. A step of a
 * type with side effects waits for its rate-limit buckets (THROTTLED, the
 * job suspended meanwhile), then starts only after its STEP_STARTED is
 * committed under the job's lease. When `job` aborts (cancel, job timeout,
 * shutdown, lost lease, a failed sibling) its reason is thrown as is. A
 * resumed step (it suspended the job before) continues its attempt without
 * a second STEP_STARTED.
 */
export async function runAttempts(
  frame: Frame,
  step: StepBase,
  job: JobAbort,
  label: 'step' | 'compensation' = 'step',
  resumed?: Resumption,
): Promise<AttemptsResult> {
  const type = stepTypeOf(step);
  if (!type) throw new StepFailed({ code: 'DEFINITION_UNSUPPORTED', message: `this worker does not know step type "${step.type}"`, step: frame.path(step.id) });
  const { run, options } = frame;
  const maxAttempts = step.retry?.maxAttempts ?? 1;
  const credentialNames = credentialRefs(step);
  // A throttled step suspended before it started: it is not resumed, it starts.
  const throttled = resumed?.state.throttled === true;
  for (let attempt = resumed?.attempt ?? 1; ; attempt++) {
    const resuming = resumed !== undefined && !throttled && attempt === resumed.attempt;
    if (!resuming && label === 'step' && type.sideEffects) {
      const waitMs = await throttleWait(frame, step);
      if (waitMs > 0) {
        frame.emit(step.id, 'THROTTLED', 'INFO', step.id, { waitMs });
        return { kind: 'suspended', suspend: new Suspend(Date.now() + waitMs, { throttled: true }), attempt, since: Date.now() };
      }
    }
    if (!resuming) {
      const data = label === 'compensation' ? { compensation: true, ...(attempt > 1 ? { attempt } : {}) } : attempt > 1 ? { attempt } : null;
      frame.emit(step.id, 'STEP_STARTED', 'INFO', step.id, data);
    }
    // Commit under the lease before acting: a worker that lost the job learns
    // it here (durable throws), not after a second copy of the effect.
    if (type.sideEffects) await run.durable();
    if (label === 'step' && job.aborted) throw job.reason;
    const since = resuming ? resumed.since : Date.now();
    const t0 = performance.now();
    const timer = type.abortable ? attemptSignal(job, type.attemptTimeoutMs(step) ?? options.stepTimeoutMs) : undefined;
    // Only steps that reference credentials open any (decrypted for this attempt, redacted from all it produces).
    let opened: OpenedCredentials | undefined;
    try {
      let scope: StepContext['scope'] = frame.scope();
      if (credentialNames.length > 0) {
        opened = await openStepCredentials(options.credentials, { organizationId: run.job.organizationId, jobId: run.job.id, stepId: step.id }, credentialNames);
        scope = { ...scope, credentials: opened.values };
      }
      const redactor = opened?.redactor;
      // A step that never asks for the signal costs no AbortSignal (the job's is made lazily).
      const ctx = new StepRunContext(frame, step, scope, timer?.signal ?? job, opened, resuming ? resumed.state : undefined, undefined, { attempt, since });
      const value = await (type as StepType<StepBase>).run(step, ctx);
      if (value instanceof Suspend) {
        if (label === 'compensation') throw new StepError('STEP_ERROR', `a ${step.type} step cannot serve as a compensation`);
        return { kind: 'suspended', suspend: value, attempt, since };
      }
      const durationMs = resuming ? Date.now() - since : elapsedMs(t0);
      const completed = value instanceof CompletedWithWarning ? value.output : value;
      const output = completed === undefined ? null : redactor ? redactor.value(completed) : completed;
      return value instanceof CompletedWithWarning
        ? { kind: 'completed', output, durationMs, warning: value.data }
        : { kind: 'completed', output, durationMs };
    } catch (err) {
      if (job.aborted) throw job.reason;
      // Stepwise's own database unavailable under the step (a signal lookup, an approval, a rate-limit
      // token, a credential): not the step's failure and not one of its attempts. The job is handed
      // back whole (rules.ts afterInterruption) and the step runs again when the database is back.
      if (isDatabaseUnavailable(err)) throw err;
      const described = describe(err, timer?.signal);
      if (described.code === 'EGRESS_DENIED') metrics.recordEgressDenied(step.type, String(described.data?.reason ?? 'unknown'));
      const failure = opened ? opened.redactor.value(described) : described;
      const durationMs = resuming ? Date.now() - since : elapsedMs(t0);
      const verdict = afterFailedAttempt(step.retry, failure.code, attempt);
      frame.emit(step.id, 'STEP_FAILED', 'ERROR', truncate(failure.message, LIMITS.errorMessage), {
        durationMs,
        code: failure.code,
        ...(maxAttempts > 1 ? { attempt } : {}),
        ...(label === 'compensation' ? { compensation: true } : {}),
        ...failure.data,
      });
      if (!verdict.retry) return { kind: 'failed', failure };
      frame.emit(step.id, 'RETRY_SCHEDULED', 'WARN', step.id, { attempt: attempt + 1, of: maxAttempts, delayMs: verdict.delayMs, code: failure.code });
      await sleep(verdict.delayMs, job.signal);
    } finally {
      timer?.dispose();
    }
  }
}
