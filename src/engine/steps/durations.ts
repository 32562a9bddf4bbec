/** Longest a step attempt, a delay, a wait or a job may be set to last: 30 days. */
export const MAX_DURATION_MS = 30 * 24 * 3600 * 1000;

/** JSON Schema of a duration in milliseconds (1 ms to MAX_DURATION_MS). */
export const durationSchema = { type: 'integer', minimum: 1, maximum: MAX_DURATION_MS } as const;
