import type { StepBase } from '../model/definition.js';
import type { StepResult } from '../store/index.js';
import { jsonByteLength } from '../util/json.js';
import { BranchCancelledError, childAbort } from './aborts.js';
import { ExpressionError } from './definition/expressions.js';
import { sequencePath, type Frame } from './frame.js';
import { LIMITS } from './limits.js';
import { afterFailedStep, StepFailed, type JobError } from './rules.js';
import { runAttempts, type Resumption } from './step-attempts.js';
import { StepRunContext } from './step-context.js';
import { stepTypeOf } from './steps/registry.js';
import { StepError, Suspend, type BlockHost, type SequenceOutcome, type SequenceRun, type StepType } from './steps/types.js';

/** How one step of a list ended. */
export type StepEnd =
  | { kind: 'completed'; output: unknown }
  /** It failed under continueOnError: the list goes on without its output. */
  | { kind: 'continued'; error: JobError }
  | { kind: 'failed'; error: JobError }
  | { kind: 'suspended'; until: number | null };

/** Small outputs ride in the STEP_COMPLETED row for the timeline; large ones leave their size. */
function outputData(output: unknown): Record<string, unknown> {
  const bytes = output === null || output === undefined ? 0 : jsonByteLength(output);
  return bytes === 0 ? {} : bytes <= LIMITS.inlineOutputBytes ? { output } : { outputBytes: bytes };
}

/** Where a leaf step that suspended before stands: in the checkpoint at the top level, in its result row inside a block. */
function resumptionOf(frame: Frame, step: StepBase, prior: StepResult | undefined): Resumption | undefined {
  const state = frame.nested ? (prior?.status === 'SUSPENDED' ? prior.state : null) : frame.run.state.step === step.id ? frame.run.state : null;
  if (!state) return undefined;
  return { attempt: typeof state.attempt === 'number' ? state.attempt : 1, since: Number(state.since ?? Date.now()), state };
}

/**
 * Run one step of a list to its end: a leaf under its retry policy, a block
 * by its type. Writes its STEP_COMPLETED (or the failure verdict) and, for
 * a leaf that suspends, its resumable state; the caller keeps the output.
 */
export async function runStep(frame: Frame, step: StepBase, prior?: StepResult): Promise<StepEnd> {
  const type = stepTypeOf(step);
  if (!type) {
    throw new StepFailed({ code: 'DEFINITION_UNSUPPORTED', message: `this worker does not know step type "${step.type}"`, step: frame.path(step.id) });
  }
  if (type.block) return runBlock(frame, step, type, prior);
  const result = await runAttempts(frame, step, frame.abort, 'step', resumptionOf(frame, step, prior));
  if (result.kind === 'suspended') {
    const { suspend } = result;
    const state = { ...suspend.state, step: step.id, since: result.since, attempt: result.attempt };
    if (frame.nested) frame.run.recordResult(frame.path(step.id), 'SUSPENDED', null, state);
    else frame.run.state = state;
    if (suspend.waiting) frame.emit(step.id, 'WAITING', 'INFO', step.id, suspend.waiting);
    return { kind: 'suspended', until: suspend.until };
  }
  if (!frame.nested) frame.run.state = {};
  if (result.kind === 'completed') {
    frame.emit(step.id, 'STEP_COMPLETED', result.warning ? 'WARN' : 'INFO', step.id, {
      durationMs: result.durationMs,
      ...outputData(result.output),
      ...result.warning,
    });
    return { kind: 'completed', output: result.output };
  }
  // A step that had suspended (or kept its progress) and now failed must not resume from that state on a job-level retry.
  if (frame.nested && frame.run.results.get(frame.path(step.id))?.status === 'SUSPENDED') frame.run.recordResult(frame.path(step.id), 'RUNNING', null, null);
  return failureEnd(frame, step, { code: result.failure.code, message: result.failure.message, step: frame.path(step.id) });
}

function failureEnd(frame: Frame, step: StepBase, error: JobError): StepEnd {
  const verdict = afterFailedStep(step, error);
  if (verdict.kind === 'fail') return { kind: 'failed', error: { ...error, step: error.step ?? frame.path(step.id) } };
  frame.run.noteFailed(frame.path(step.id));
  return { kind: 'continued', error };
}

/**
 * A block: STEP_STARTED once (a RUNNING row marks it started, so a resumed
 * job does not start it twice), then its type runs the lists it holds
 * through the host. A failure inside fails the block with the inner step's
 * code and path; a suspension inside suspends it.
 */
async function runBlock(frame: Frame, step: StepBase, type: StepType<StepBase>, prior: StepResult | undefined): Promise<StepEnd> {
  const blockPath = frame.path(step.id);
  const started = prior?.status === 'RUNNING' ? prior.state ?? {} : undefined;
  const since = typeof started?.since === 'number' ? started.since : Date.now();
  if (!started) {
    frame.emit(step.id, 'STEP_STARTED', 'INFO', step.id);
    frame.run.recordResult(blockPath, 'RUNNING', null, { since });
  }
  const { host, dispose } = blockHost(frame, step, started, since);
  let value: unknown;
  try {
    value = await type.run(step, new StepRunContext(frame, step, frame.scope(), frame.abort, undefined, undefined, host));
  } catch (err) {
    if (frame.abort.aborted) throw frame.abort.reason;
    if (!(err instanceof StepError) && !(err instanceof ExpressionError)) throw err;
    const code = err instanceof StepError ? err.code : err.code;
    const innerPath = err instanceof StepError && typeof err.data?.path === 'string' ? err.data.path : blockPath;
    frame.emit(step.id, 'STEP_FAILED', 'ERROR', err.message, { durationMs: Date.now() - since, code, ...(innerPath !== blockPath ? { path: innerPath } : {}) });
    return failureEnd(frame, step, { code, message: err.message, step: innerPath });
  } finally {
    dispose();
  }
  if (value instanceof Suspend) return { kind: 'suspended', until: value.until };
  const output = value === undefined ? null : value;
  frame.emit(step.id, 'STEP_COMPLETED', 'INFO', step.id, { durationMs: Date.now() - since, ...outputData(output) });
  return { kind: 'completed', output };
}

function blockHost(frame: Frame, step: StepBase, saved: Record<string, unknown> | undefined, since: number): { host: BlockHost; dispose: () => void } {
  const blockPath = frame.path(step.id);
  const disposers: (() => void)[] = [];
  const host: BlockHost = {
    run: (sequence, abort, stop) => runList(frame.child(step.id, sequence.label, abort ?? frame.abort, { ...sequence, stop }), sequence),
    saved,
    save: (state) => frame.run.recordResult(blockPath, 'RUNNING', null, { ...state, since }),
    recorded: (label) => {
      const r = frame.run.results.get(sequencePath(blockPath, label));
      if (r?.status === 'COMPLETED') return { status: r.status, output: r.output };
      if (r?.status === 'FAILED' && r.state?.attempt === frame.run.job.attempts) return { status: r.status, output: r.output };
      return undefined;
    },
    // A failed list remembers the attempt it failed in: a job-level retry (a new attempt) runs it again.
    record: (label, status, output) =>
      frame.run.recordResult(sequencePath(blockPath, label), status, output, status === 'FAILED' ? { attempt: frame.run.job.attempts } : null),
    event: (label, kind, message, data, level = 'INFO') => frame.emit(step.id, kind, level, message, data, sequencePath(blockPath, label)),
    noteFailed: (label) => frame.run.noteFailed(sequencePath(blockPath, label)),
    childAbort: () => {
      const { abort, dispose } = childAbort(frame.abort);
      disposers.push(dispose);
      return abort;
    },
  };
  return { host, dispose: () => disposers.splice(0).forEach((d) => d()) };
}

/** A list inside a block: its held rows go to the stream if it fails, and a sibling's failure stops it without counting as its own. */
async function runList(frame: Frame, sequence: SequenceRun): Promise<SequenceOutcome> {
  try {
    const outcome = await runSequence(frame, sequence.steps);
    if (outcome.kind === 'failed') frame.release();
    else if (outcome.kind === 'completed') frame.discard();
    return outcome;
  } catch (err) {
    if (!(err instanceof BranchCancelledError)) throw err;
    return { kind: 'failed', code: 'BRANCH_CANCELLED', message: err.message, path: frame.prefix.slice(0, -1) };
  }
}

/**
 * Run a list of steps inside a block, in order, resuming from what the job
 * recorded: a completed step is not run again (its output is reused), a
 * step that failed under continueOnError stays failed, a suspended one
 * resumes. Stops at the first failure or suspension.
 */
export async function runSequence(frame: Frame, steps: readonly StepBase[]): Promise<SequenceOutcome> {
  let last: unknown = null;
  for (const step of steps) {
    if (frame.stop?.aborted) return { kind: 'failed', code: 'BRANCH_CANCELLED', message: 'stopped: a sibling failed', path: frame.prefix.slice(0, -1) };
    const path = frame.path(step.id);
    const prior = frame.run.results.get(path);
    if (prior?.status === 'COMPLETED' || prior?.status === 'FAILED') {
      const output = prior.status === 'COMPLETED' ? prior.output : null;
      frame.outputs[step.id] = output;
      last = output;
      continue;
    }
    let end: StepEnd;
    try {
      end = await runStep(frame, step, prior);
    } catch (err) {
      // A sibling's failure stopped this list mid-step: say so for the step, then stop.
      if (err instanceof BranchCancelledError && frame.abort.reason === err) {
        frame.emit(step.id, 'STEP_FAILED', 'WARN', err.message, { code: 'BRANCH_CANCELLED' });
      }
      throw err;
    }
    switch (end.kind) {
      case 'completed':
        frame.outputs[step.id] = end.output;
        last = end.output;
        frame.run.recordResult(path, 'COMPLETED', end.output, null);
        if (stepTypeOf(step)?.sideEffects) await frame.run.durable();
        break;
      case 'continued':
        frame.outputs[step.id] = null;
        last = null;
        frame.run.recordResult(path, 'FAILED', null, { code: end.error.code, message: end.error.message });
        break;
      case 'failed':
        return { kind: 'failed', code: end.error.code, message: end.error.message, path: end.error.step ?? path };
      case 'suspended':
        return { kind: 'suspended', until: end.until };
    }
  }
  return { kind: 'completed', output: last };
}

/** What a block returns for a list's outcome: the output, a Suspend, or a thrown StepError naming the failed step. */
export function sequenceValue(outcome: SequenceOutcome): unknown {
  if (outcome.kind === 'completed') return outcome.output;
  if (outcome.kind === 'suspended') return new Suspend(outcome.until, {});
  throw new StepError(outcome.code, outcome.message, { path: outcome.path });
}
