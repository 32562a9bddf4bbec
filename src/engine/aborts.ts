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

  get aborted(): boolean {
    return this.pulled;
  }

  get reason(): unknown {
    return this.why;
  }

  abort(reason: unknown): void {
    if (this.pulled) return;
    this.pulled = true;
    this.why = reason;
    this.controller?.abort(reason);
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
