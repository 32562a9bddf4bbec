import { isPlainObject } from '../util/json.js';

/**
 * The masked form of a PHI workflow's job (`?phi=mask` on the job read
 * routes): what the dashboard shows until someone asks to reveal, and so
 * reads no PHI and writes no phi_audit_log row. Pure functions over the
 * views and stream rows; the routes decide when to apply them.
 *
 * The rule. A workflow that declares no PHI path is returned unchanged (its
 * reads are not audited either). For one that declares any:
 * - the job's input: the values at the declared `input…` paths are
 *   replaced, the rest is shown (the declaration is what says which input
 *   fields are PHI);
 * - the job's result, and every step output: replaced whole. A declared
 *   `result…` path is masked by this too; an undeclared part of the result
 *   is a step output, which may carry any input value (a transform's
 *   `input.memberId`), so it is not provably free of PHI either;
 * - error and log text (the job's error message, step and iteration
 *   failures, log lines, approval titles, screenshot names): replaced, since
 *   a message may interpolate anything the step saw;
 * - stream rows: a row's message is kept only for the kinds whose message
 *   the engine builds from the definition and counters (step ids, run
 *   numbers, branch labels); its data keeps, per kind, only the keys the
 *   engine writes with identifiers and counters (durationMs, code, path,
 *   attempt, …) and only when they hold scalars; every other value is
 *   replaced, a LOG row's data and any unknown kind's whole. The timeline
 *   and the state are rebuilt from masked rows, so they follow the same
 *   rule without a second list of what is safe.
 * A masked value becomes the string MASKED whether it was a scalar, an array
 * or an object (null stays null: it carries nothing). Keys of the engine's
 * own data objects stay, so the shape of a row is still visible.
 */

export const MASKED = '‹masked›';

/** The kinds whose message is built from definition ids, run numbers and counters (never from job data). */
const SAFE_MESSAGE_KINDS: ReadonlySet<string> = new Set([
  'JOB_STARTED',
  'JOB_COMPLETED',
  'JOB_PARTIAL_SUCCESS',
  'JOB_HANDED_BACK',
  'STEP_STARTED',
  'STEP_COMPLETED',
  'RETRY_SCHEDULED',
  'WAITING',
  'SIGNAL_RECEIVED',
  'COMPENSATED',
  'BRANCH_TAKEN',
  'ITERATION_STARTED',
  'ITERATION_COMPLETED',
  'MAP_PROGRESS',
  'THROTTLED',
  'CHILD_JOB_STARTED',
  'CHILD_JOB_COMPLETED',
  'APPROVAL_DECIDED',
  'RETRIEVED',
  'DOCUMENTS_USED',
]);

/** Per kind, the data keys the engine fills with identifiers and counters. A kind not listed has its data masked whole. */
const SAFE_DATA_KEYS: Readonly<Record<string, ReadonlySet<string>>> = {
  JOB_STARTED: new Set(['attempt', 'resumeAt', 'retry']),
  JOB_COMPLETED: new Set(),
  JOB_PARTIAL_SUCCESS: new Set(['failedSteps']),
  JOB_FAILED: new Set(['code']),
  JOB_CANCELLED: new Set(['code']),
  JOB_TIMED_OUT: new Set(['code']),
  JOB_HANDED_BACK: new Set(),
  STEP_STARTED: new Set(['compensation', 'attempt']),
  STEP_COMPLETED: new Set(['durationMs', 'outputBytes', 'timedOut', 'approvalId']),
  STEP_FAILED: new Set(['durationMs', 'code', 'attempt', 'compensation', 'path']),
  RETRY_SCHEDULED: new Set(['attempt', 'of', 'delayMs', 'code', 'retry']),
  WAITING: new Set(['signal', 'until', 'approvalId']),
  SIGNAL_RECEIVED: new Set(),
  COMPENSATED: new Set(['compensation', 'ok', 'code']),
  BRANCH_TAKEN: new Set(['branch']),
  ITERATION_STARTED: new Set(['index']),
  ITERATION_COMPLETED: new Set(['index']),
  ITERATION_FAILED: new Set(['index', 'code', 'path']),
  MAP_PROGRESS: new Set(['total', 'succeeded', 'failed', 'running']),
  THROTTLED: new Set(['waitMs']),
  SCREENSHOT: new Set(['screenshotId', 'type', 'contentType', 'bytes', 'sha256', 'width', 'height']),
  APPROVAL_REQUESTED: new Set(['approvalId', 'required', 'expiresAt']),
  APPROVAL_DECIDED: new Set(['approvalId', 'userId', 'decision', 'decidedAt', 'timedOut']),
  CHILD_JOB_STARTED: new Set(['jobId', 'runNumber', 'workflowId']),
  CHILD_JOB_COMPLETED: new Set(['jobId', 'status']),
  RETRIEVED: new Set(['retrievalId', 'collection', 'count', 'averageScore', 'tookMs', 'recorded']),
  DOCUMENTS_USED: new Set(['marked', 'unknown', 'retrieval']),
};

/** The fields of a stream row the mask reads (the store's StreamEntry and the reducer's JobEvent fit). */
export interface MaskableEntry {
  kind: string;
  message: string;
  data: unknown;
}

export type Masked<T> = T & { phiMasked?: true };

/** Whether a workflow's PHI paths call for masking at all. */
export function declaresPhi(phiPaths: readonly string[] | undefined): phiPaths is readonly string[] {
  return phiPaths !== undefined && phiPaths.length > 0;
}

function isScalar(value: unknown): boolean {
  return value === null || typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean';
}

/** A value kept under a safe key: a scalar, or an array of scalars (JOB_PARTIAL_SUCCESS's step ids). */
function isSafeValue(value: unknown): boolean {
  return isScalar(value) || (Array.isArray(value) && value.every(isScalar));
}

function maskWhole(value: unknown): { value: unknown; changed: boolean } {
  return value === null || value === undefined ? { value, changed: false } : { value: MASKED, changed: true };
}

function maskData(kind: string, data: unknown): { value: unknown; changed: boolean } {
  const safe = SAFE_DATA_KEYS[kind];
  if (!safe || !isPlainObject(data)) return maskWhole(data);
  let changed = false;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(data)) {
    if ((safe.has(key) && isSafeValue(value)) || value === null || value === undefined) {
      out[key] = value;
    } else {
      out[key] = MASKED;
      changed = true;
    }
  }
  return { value: changed ? out : data, changed };
}

/** One stream row in its masked form (`phiMasked: true` when something was replaced; the row itself is not changed). */
export function maskStreamEntry<E extends MaskableEntry>(entry: E): Masked<E> {
  const messageMasked = !SAFE_MESSAGE_KINDS.has(entry.kind) && entry.message !== '';
  const data = maskData(entry.kind, entry.data);
  if (!messageMasked && !data.changed) return entry;
  return { ...entry, message: messageMasked ? MASKED : entry.message, data: data.value, phiMasked: true };
}

/**
 * A page of a job's stream in its masked form, for a workflow with these
 * PHI paths: unchanged when it declares none. Used by GET /v1/jobs/:id/stream,
 * the timeline and state (before the replay), and the live stream.
 */
export function maskStreamEntries<E extends MaskableEntry>(entries: readonly E[], phiPaths: readonly string[] | undefined): Masked<E>[] {
  if (!declaresPhi(phiPaths)) return [...entries];
  return entries.map((e) => maskStreamEntry(e));
}

/** `root` with the value at `keys` (plain-object fields) replaced, copying only along the path. */
function maskAt(root: unknown, keys: readonly string[]): { value: unknown; changed: boolean } {
  if (keys.length === 0) return maskWhole(root);
  const [key, ...rest] = keys as [string, ...string[]];
  if (!isPlainObject(root) || !Object.hasOwn(root, key)) return { value: root, changed: false };
  const inner = maskAt(root[key], rest);
  return inner.changed ? { value: { ...root, [key]: inner.value }, changed: true } : { value: root, changed: false };
}

/** A job's input with the values at the declared `input…` paths replaced (other paths are ignored). */
export function maskInput(input: unknown, phiPaths: readonly string[]): unknown {
  let value = input;
  for (const path of phiPaths) {
    const [head, ...keys] = path.split('.');
    if (head === 'input') value = maskAt(value, keys).value;
  }
  return value;
}

/** The fields of a job view the mask changes (jobView and jobListItemView fit). */
export interface MaskableJobView {
  input: unknown;
  result: unknown;
  error: { code: string; message: string; step: string | null } | null;
}

/**
 * A job view in its masked form for a workflow with these PHI paths:
 * unchanged when it declares none, else the declared input paths, the whole
 * result and the error message replaced, with `phiMasked: true`.
 */
export function maskJobView<V extends MaskableJobView>(view: V, phiPaths: readonly string[] | undefined): Masked<V> {
  if (!declaresPhi(phiPaths)) return view;
  return {
    ...view,
    input: maskInput(view.input, phiPaths),
    result: maskWhole(view.result).value,
    error: view.error && { ...view.error, message: view.error.message === '' ? '' : MASKED },
    phiMasked: true,
  };
}
