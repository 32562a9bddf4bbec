/**
 * Compact codes of the stream table (mirrored by the stepwise.log_levels and
 * stepwise.stream_kinds reference tables; a test keeps them in sync).
 */
export const LOG_LEVELS = { TRACE: 1, DEBUG: 2, INFO: 3, WARN: 4, ERROR: 5, FATAL: 6 } as const;
export type LogLevel = keyof typeof LOG_LEVELS;

export const STREAM_KINDS = {
  LOG: 0,
  JOB_STARTED: 1,
  JOB_COMPLETED: 2,
  JOB_FAILED: 3,
  JOB_CANCELLED: 4,
  JOB_TIMED_OUT: 5,
  JOB_PARTIAL_SUCCESS: 6,
  JOB_HANDED_BACK: 7,
  STEP_STARTED: 10,
  STEP_COMPLETED: 11,
  STEP_FAILED: 12,
  RETRY_SCHEDULED: 20,
  WAITING: 21,
  SIGNAL_RECEIVED: 22,
  COMPENSATED: 23,
  BRANCH_TAKEN: 24,
  ITERATION_STARTED: 25,
  ITERATION_COMPLETED: 26,
  ITERATION_FAILED: 27,
  MAP_PROGRESS: 28,
  THROTTLED: 29,
  SCREENSHOT: 30,
  APPROVAL_REQUESTED: 31,
  APPROVAL_DECIDED: 32,
  CHILD_JOB_STARTED: 33,
  CHILD_JOB_COMPLETED: 34,
  RETRIEVED: 35,
  DOCUMENTS_USED: 36,
} as const;
export type StreamKind = keyof typeof STREAM_KINDS;

function invert<K extends string>(map: Record<K, number>): Map<number, K> {
  const out = new Map<number, K>();
  for (const [name, code] of Object.entries(map) as [K, number][]) out.set(code, name);
  return out;
}

const LEVEL_NAMES = invert(LOG_LEVELS);
const KIND_NAMES = invert(STREAM_KINDS);

export function levelName(code: number): LogLevel {
  const name = LEVEL_NAMES.get(code);
  if (!name) throw new RangeError(`unknown log level code ${code}`);
  return name;
}

export function kindName(code: number): StreamKind {
  const name = KIND_NAMES.get(code);
  if (!name) throw new RangeError(`unknown stream kind code ${code}`);
  return name;
}

export function isLogLevel(value: string): value is LogLevel {
  return Object.hasOwn(LOG_LEVELS, value);
}
