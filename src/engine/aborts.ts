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
