/** Bounds on what a job writes: one runaway step must not write megabytes into a row or a log line. */
export const LIMITS = {
  errorMessage: 2_000,
  /** jobs.error_code varchar(100). */
  errorCode: 100,
  logMessage: 10_000,
  /** A step output up to this size is kept in its STEP_COMPLETED row for the timeline. */
  inlineOutputBytes: 512,
  resultBytes: 1024 * 1024,
  /** A log line's data object over this many bytes of JSON is replaced by its size (a marker, not the data). */
  logDataBytes: 16 * 1024,
  /** One captured screenshot/artifact; a full-page PNG of a long page is a few MB. */
  artifactBytes: 20 * 1024 * 1024,
  /** Rows a job writes to its stream before per-step rows stop (outcomes, waits and rollups go on). */
  streamRowsPerJob: 10_000,
} as const;

