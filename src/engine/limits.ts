/** Bounds on what a job writes (seed 002 Phase 1: bounded text, not unbounded TEXT). */
export const LIMITS = {
  errorMessage: 2_000,
  logMessage: 10_000,
  /** A step output up to this size is kept in its STEP_COMPLETED row for the timeline. */
  inlineOutputBytes: 512,
  resultBytes: 1024 * 1024,
} as const;

