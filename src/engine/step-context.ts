import type { StepBase } from '../model/definition.js';
import type { LogLevel, StreamKind } from '../store/index.js';
import { jsonByteLength, truncate } from '../util/json.js';
import type { JobAbort } from './aborts.js';
import { captureArtifact, captureUnavailable, type CaptureInput } from './artifacts.js';
import type { OpenedCredentials, Redactor } from './credentials.js';
import type { Frame } from './frame.js';
import { LIMITS } from './limits.js';
import type { StepServices } from './services.js';
import { StepError, type BlockHost, type CarriedValues, type ReceivedSignal, type SignalInbox, type StepContext, type StepJob } from './steps/types.js';
import type { Outbound } from '../net/outbound.js';

/** A capture's place: this job, this step, a SCREENSHOT row in its stream (never held back: the screenshot row points at its seq). */
export function captureTarget(frame: Frame, step: StepBase) {
  const path = frame.nested ? frame.path(step.id) : null;
  const stepIndex = frame.stepIndex(step.id);
  return {
    organizationId: frame.run.job.organizationId,
    jobId: frame.run.job.id,
    stepIndex,
    emit: (message: string, data: Record<string, unknown>) => frame.run.emit('SCREENSHOT', 'INFO', stepIndex, message, data, path),
  };
}

/** A log line's data over LIMITS.logDataBytes is replaced by a marker with its size (the line itself is kept). */
export function boundedLogData(data: unknown): unknown {
  if (data === undefined || data === null) return data;
  const bytes = jsonByteLength(data);
  return bytes <= LIMITS.logDataBytes ? data : { truncated: true, bytes, limit: LIMITS.logDataBytes };
}

/** Fails a block's use of its host when the step is not a block. */
const NO_BLOCK: BlockHost = {
  run: () => Promise.reject(new StepError('STEP_ERROR', 'only block steps hold steps')),
  saved: undefined,
  save: () => undefined,
  recorded: () => undefined,
  record: () => undefined,
  event: () => undefined,
  noteFailed: () => undefined,
  childAbort: () => {
    throw new StepError('STEP_ERROR', 'only block steps hold steps');
  },
};

/**
 * What one run of a step sees: its scope, the abort signal, stream rows
 * attributed to it, signals, services, and for blocks the host that runs
 * the lists they hold. A class, so the methods live on the prototype: a
 * step costs one small object, not a dozen closures (transform and log
 * steps run tens of thousands a second in the benchmarks).
 */
export class StepRunContext implements StepContext {
  readonly limits: { readonly httpMaxResponseBytes: number };

  constructor(
    private readonly frame: Frame,
    private readonly step: StepBase,
    readonly scope: StepContext['scope'],
    /** The attempt's own signal (an abortable step), or the abort whose signal is made only when asked for. */
    private readonly abort: AbortSignal | JobAbort,
    private readonly opened: OpenedCredentials | undefined,
    readonly resumed: Readonly<Record<string, unknown>> | undefined,
    readonly block: BlockHost = NO_BLOCK,
    /** The attempt running and when it began: kept with the progress, so a resumed job continues this attempt. */
    private readonly attempt: { attempt: number; since: number } = { attempt: 1, since: Date.now() },
  ) {
    this.limits = { httpMaxResponseBytes: frame.options.httpMaxResponseBytes };
  }

  private get redactor(): Redactor | undefined {
    return this.opened?.redactor;
  }

  credential(name: string): { provider: string; secret: Readonly<Record<string, unknown>> } {
    const secret = this.opened?.values[name];
    const provider = this.opened?.providers[name];
    // credentialRefs opens every name a type's `credentials(step)` lists before the step runs; reaching here means the type forgot to list it.
    if (!secret || provider === undefined) throw new StepError('CREDENTIAL_NOT_FOUND', `credential "${name}" was not opened for this step`, { credential: name });
    return { provider, secret };
  }

  get net(): Outbound {
    return this.frame.options.outbound;
  }

  get signal(): AbortSignal {
    return this.abort instanceof AbortSignal ? this.abort : this.abort.signal;
  }

  log(level: LogLevel, message: string, data?: unknown): void {
    const r = this.redactor;
    const text = truncate(r ? r.text(message) : message, LIMITS.logMessage);
    this.frame.emit(this.step.id, 'LOG', level, text, boundedLogData(r ? r.value(data) : data));
  }

  capture(input: CaptureInput) {
    const artifacts = this.frame.options.artifacts;
    return artifacts ? captureArtifact(artifacts, captureTarget(this.frame, this.step), input) : captureUnavailable();
  }

  get signals(): SignalInbox {
    const { frame, step } = this;
    const { run, options } = frame;
    return {
      // Found is taken: two waits of one job (parallel branches, loop iterations) looking at
      // once must not both get the same signal before either consumption is committed.
      find: async (name) => {
        for (;;) {
          const found = await options.findSignal(run.job.organizationId, run.job.id, name, run.takenSignals);
          if (!found) return null;
          if (run.takenSignals.includes(found.id)) continue;
          run.takenSignals.push(found.id);
          return { id: found.id, name, payload: found.payload };
        }
      },
      consume: (signal: ReceivedSignal) => {
        run.consumeSignal(signal.id);
        frame.emit(step.id, 'SIGNAL_RECEIVED', 'INFO', signal.name);
      },
    };
  }

  get job(): StepJob {
    const job = this.frame.run.job;
    return { id: job.id, organizationId: job.organizationId, workflowId: job.workflowId, runNumber: job.runNumber, depth: job.depth, initiatedBy: job.initiatedBy };
  }

  get path(): string {
    return this.frame.path(this.step.id);
  }

  event(kind: StreamKind, message: string, data?: Record<string, unknown>, level: LogLevel = 'INFO'): void {
    this.frame.emit(this.step.id, kind, level, message, data);
  }

  get services(): StepServices {
    return this.frame.options.services ?? {};
  }

  progress(state: Record<string, unknown>): void {
    const { frame, step } = this;
    // What a step keeps may quote what it read (an echoed secret): redacted like its output.
    const kept = this.redactor ? this.redactor.value(state) : state;
    const full = { ...kept, step: step.id, since: this.attempt.since, attempt: this.attempt.attempt };
    if (frame.nested) {
      frame.run.recordResult(frame.path(step.id), 'SUSPENDED', null, full);
    } else {
      frame.run.state = full;
      frame.run.saveCheckpoint();
    }
  }

  durable(): Promise<void> {
    return this.frame.run.durable();
  }

  get previousProgress(): Readonly<Record<string, unknown>> | undefined {
    if (this.attempt.attempt <= 1 || this.resumed) return undefined;
    const { frame, step } = this;
    if (!frame.nested) return frame.run.state.step === step.id ? frame.run.state : undefined;
    const kept = frame.run.results.get(frame.path(step.id));
    return kept?.status === 'SUSPENDED' && kept.state ? kept.state : undefined;
  }

  get carried(): CarriedValues {
    const run = this.frame.run;
    return {
      get: (key) => run.carried[key],
      set: (key, value) => run.carry(key, value),
    };
  }
}
