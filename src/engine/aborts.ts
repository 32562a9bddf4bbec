/**
 * Reasons a job's AbortSignal fires. The executor tells them apart to decide
 * the outcome: hand back, abandon, CANCELLED or TIMED_OUT.
 */
export class ShutdownError extends Error {
  constructor() {
    super('worker is shutting down');
    this.name = 'ShutdownError';
  }
}

/** This worker no longer holds the job's lease: another worker owns it now. */
export class LeaseLostError extends Error {
  constructor() {
    super('lease lost');
    this.name = 'LeaseLostError';
  }
}

export class CancelledError extends Error {
  constructor() {
    super('cancelled by request');
    this.name = 'CancelledError';
  }
}

export class JobTimeoutError extends Error {
  constructor() {
    super('job deadline passed');
    this.name = 'JobTimeoutError';
  }
}

/** A branch or iteration was stopped because a sibling failed (parallel failFast, a loop past its tolerated failures). */
export class BranchCancelledError extends Error {
  constructor() {
    super('stopped: a sibling branch or iteration failed');
    this.name = 'BranchCancelledError';
  }
}

/** One attempt of a step ran past its timeout. */
export class StepTimeoutError extends Error {
  constructor() {
    super('step timed out');
    this.name = 'StepTimeoutError';
  }
}

/**
 * A running job's abort switch: cancel, lease loss, shutdown and its
 * deadline all pull it, and the first reason wins. The AbortSignal behind
 * it is only made when something asks for one (an http step, a retry's
 * sleep): a controller per job (an EventTarget) was ~4% of the worker's CPU
 * and a steady source of garbage for jobs whose steps never await anything
 * abortable.
 */
export class JobAbort {
  private controller: AbortController | undefined;
  private why: unknown;
  private pulled = false;
  private listeners: Set<(reason: unknown) => void> | undefined;
  private leaseLost = false;

  get aborted(): boolean {
    return this.pulled;
  }

  get reason(): unknown {
    return this.why;
  }

  /** This worker no longer holds the job: nothing more may be recorded or done for it, whatever else aborted it first. */
  get lost(): boolean {
    return this.leaseLost;
  }

  /** The job's lease went to another worker (a flush or a heartbeat found out). */
  markLost(): void {
    this.leaseLost = true;
    this.abort(new LeaseLostError());
  }

  abort(reason: unknown): void {
    if (this.pulled) return;
    this.pulled = true;
    this.why = reason;
    this.controller?.abort(reason);
    if (this.listeners) for (const listener of this.listeners) listener(reason);
    this.listeners = undefined;
  }

  /** Call `listener` when the switch is pulled (at once if it was). Returns the unsubscribe. */
  onAbort(listener: (reason: unknown) => void): () => void {
    if (this.pulled) {
      listener(this.why);
      return () => undefined;
    }
    (this.listeners ??= new Set()).add(listener);
    return () => this.listeners?.delete(listener);
  }

  /** The signal for APIs that take one; aborted already if the switch was pulled. */
  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.pulled) this.controller.abort(this.why);
    }
    return this.controller.signal;
  }
}

/**
 * The signal of one attempt of an abortable step: aborted by the job's
 * switch or by the attempt's timeout, whichever comes first. Built on the
 * job's listener list and a plain timer rather than AbortSignal.any and
 * AbortSignal.timeout, so it holds no weak links (a composite signal is
 * only weakly referenced by its sources) and its timer goes with `dispose`.
 */
export function attemptSignal(job: JobAbort, timeoutMs: number): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  const unsubscribe = job.onAbort((reason) => controller.abort(reason));
  const timer = setTimeout(() => controller.abort(new StepTimeoutError()), timeoutMs);
  return {
    signal: controller.signal,
    dispose: () => {
      clearTimeout(timer);
      unsubscribe();
    },
  };
}

/**
 * An abort that is pulled with `parent` (whatever the reason) and can also
 * be pulled on its own. `dispose` unhooks it from the parent once its work
 * is done, so a long job does not collect one listener per block it ran.
 */
export function childAbort(parent: JobAbort): { abort: JobAbort; dispose: () => void } {
  const abort = new JobAbort();
  const dispose = parent.onAbort((reason) => abort.abort(reason));
  return { abort, dispose };
}
