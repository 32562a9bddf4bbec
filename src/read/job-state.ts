/**
 * Event sourcing (the stream is the job's history, so it is enough to know
 * the job at any point of it): a job's state rebuilt from its stream
 * events alone. A pure reducer — no database — so "the state at sequence
 * number N" is `replayJobEvents(events.filter(e => e.seq <= N))`, and the
 * step-by-step timeline is the state after the last event. The rows of
 * steps inside blocks (those with a path) build a tree under their
 * top-level block: its branches, or its loop iterations by index, each
 * holding its steps, which may be blocks in turn.
 */

import { parseStepPath } from './step-path.js';
import { locateNested } from './nested-state.js';

/** One stream row as the reducer needs it (the store's StreamEntry fits). */
export interface JobEvent {
  seq: number;
  ts: Date;
  kind: string;
  level: string;
  stepIndex: number | null;
  message: string;
  data: unknown;
  /** The step's path inside its blocks (`inv[17].call`); null or absent for top-level rows. */
  path?: string | null;
}

export type ReplayedJobStatus = 'PENDING' | 'RUNNING' | 'WAITING' | 'COMPLETED' | 'PARTIAL_SUCCESS' | 'FAILED' | 'CANCELLED' | 'TIMED_OUT';
export type ReplayedStepStatus = 'RUNNING' | 'RETRYING' | 'WAITING' | 'COMPLETED' | 'FAILED';

export interface StepError {
  code: string;
  message: string;
  /** A block's failure: the path of the step inside it that failed. */
  path?: string;
}

/** What a step's own events say, the same for a top-level step and a step inside a block. */
export interface StepStateBase {
  status: ReplayedStepStatus;
  attempts: number;
  startedAt: Date | null;
  endedAt: Date | null;
  /** The last attempt's own duration as the worker measured it. */
  durationMs: number | null;
  error: StepError | null;
  /** The step's output when it was small enough to be kept in its STEP_COMPLETED event. */
  output?: unknown;
  /** Its compensation ran (true: it succeeded, false: it failed). */
  compensated?: boolean;
  /** if / switch: the branch taken (`then`, `else`, a case index, `default`). */
  branch?: string | number;
  /** if / switch / parallel: the lists that wrote rows, in the order they first did. */
  branches?: BranchState[];
  /** forEach: the iterations that wrote rows, by index (see IterationState for the ones that wrote none). */
  iterations?: IterationState[];
  /** forEach over more than 100 items: its last MAP_PROGRESS rollup, which counts every iteration. */
  progress?: MapProgress;
  /** workflow: the child job it started, and how it ended once it did. */
  childJob?: ChildJobRef;
}

/** A top-level step (a block holds its inner steps in branches or iterations). */
export interface StepState extends StepStateBase {
  index: number;
  /** The step id from the definition (the message of its STEP_STARTED event). */
  name: string | null;
}

/** A step inside a block. */
export interface NestedStepState extends StepStateBase {
  /** Its path (`inv[17].call`). */
  path: string;
  /** Its step id (the path's last part). */
  name: string;
}

/** A list of steps inside an if, switch or parallel block. */
export interface BranchState {
  /** `then`, `else`, a case index, `default`, or a parallel branch's name. */
  label: string;
  path: string;
  steps: NestedStepState[];
}

/**
 * One iteration of a forEach. The engine writes full rows for the first 100
 * iterations and for any that failed; the others that succeeded write none
 * and are counted only by the loop's MAP_PROGRESS rollups.
 */
export interface IterationState {
  index: number;
  /** `inv[17]`. */
  path: string;
  status: 'RUNNING' | 'COMPLETED' | 'FAILED';
  startedAt: Date | null;
  endedAt: Date | null;
  /** Why it failed (path: the step inside it that failed). */
  error: StepError | null;
  steps: NestedStepState[];
}

/** A MAP_PROGRESS rollup: the loop's items and how many ended each way so far. */
export interface MapProgress {
  total: number;
  succeeded: number;
  failed: number;
  running: number;
}

/** The child job a workflow step started (CHILD_JOB_STARTED / CHILD_JOB_COMPLETED). */
export interface ChildJobRef {
  jobId: string;
  runNumber: number | null;
  workflowId: string | null;
  /** The child's final status (null until CHILD_JOB_COMPLETED). */
  status: string | null;
}

export interface JobState {
  /** The last event applied (0 before any). */
  atSeq: number;
  status: ReplayedJobStatus;
  /** The top-level step running, waiting or retrying now (null when none); a block while a step inside it is. */
  currentStep: number | null;
  /** The path of the step inside a block that last started, waits or retries, while it does (null when none). */
  currentPath: string | null;
  startedAt: Date | null;
  endedAt: Date | null;
  /** Job-level retries scheduled so far. */
  retryCount: number;
  error: StepError | null;
  steps: StepState[];
}

const JOB_END: Record<string, ReplayedJobStatus> = {
  JOB_COMPLETED: 'COMPLETED',
  JOB_PARTIAL_SUCCESS: 'PARTIAL_SUCCESS',
  JOB_FAILED: 'FAILED',
  JOB_CANCELLED: 'CANCELLED',
  JOB_TIMED_OUT: 'TIMED_OUT',
};

function record(data: unknown): Record<string, unknown> {
  return data !== null && typeof data === 'object' && !Array.isArray(data) ? (data as Record<string, unknown>) : {};
}

/** The state before any event. */
export function initialJobState(): JobState {
  return { atSeq: 0, status: 'PENDING', currentStep: null, currentPath: null, startedAt: null, endedAt: null, retryCount: 0, error: null, steps: [] };
}

function stepAt(state: JobState, index: number): StepState {
  let step = state.steps.find((s) => s.index === index);
  if (!step) {
    step = { index, name: null, status: 'RUNNING', attempts: 0, startedAt: null, endedAt: null, durationMs: null, error: null };
    state.steps.push(step);
    state.steps.sort((a, b) => a.index - b.index);
  }
  return step;
}

/** Apply one event to a state (returns a new state; the input is not changed). */
export function applyJobEvent(prev: JobState, e: JobEvent): JobState {
  const state = structuredClone(prev);
  applyInPlace(state, e, { waiting: countWaiting(state.steps) });
  return state;
}

/**
 * The state after the given events, applied in sequence order. One state is
 * changed in place: copying it per event, as applyJobEvent must, would make
 * a replay quadratic in the stream's length.
 */
export function replayJobEvents(events: readonly JobEvent[]): JobState {
  const state = initialJobState();
  const track: Tracking = { waiting: 0 };
  for (const e of [...events].sort((a, b) => a.seq - b.seq)) applyInPlace(state, e, track);
  return state;
}

/**
 * What the reducer keeps beside the state: the steps inside blocks that are
 * WAITING now. A job suspends without a row of its own, so while any of
 * them waits the job is WAITING (a parallel branch or a loop iteration may
 * still finish after another one's WAITING row), and once none does, a
 * nested row means it runs again.
 */
interface Tracking {
  waiting: number;
}

function countWaiting(steps: readonly StepStateBase[], nested = false): number {
  let n = 0;
  for (const s of steps) {
    if (nested && s.status === 'WAITING') n++;
    for (const b of s.branches ?? []) n += countWaiting(b.steps, true);
    for (const it of s.iterations ?? []) n += countWaiting(it.steps, true);
  }
  return n;
}

function applyInPlace(state: JobState, e: JobEvent, track: Tracking): void {
  state.atSeq = e.seq;
  const data = record(e.data);
  const path = e.path ?? null;
  switch (e.kind) {
    case 'LOG':
      // Log lines are not state changes (and the readers leave them out).
      return;
    case 'JOB_STARTED':
    case 'SIGNAL_RECEIVED':
      state.status = 'RUNNING';
      state.startedAt ??= e.ts;
      return;
    case 'JOB_HANDED_BACK':
      state.status = 'PENDING';
      state.currentStep = null;
      state.currentPath = null;
      return;
  }
  const end = JOB_END[e.kind];
  if (end) {
    state.status = end;
    state.endedAt = e.ts;
    state.currentStep = null;
    state.currentPath = null;
    if (end !== 'COMPLETED' && end !== 'PARTIAL_SUCCESS') {
      state.error = { code: typeof data.code === 'string' ? data.code : end, message: e.message };
    }
    return;
  }
  if (e.stepIndex === null) {
    if (e.kind === 'RETRY_SCHEDULED') {
      // A job-level retry: the job goes back to the queue.
      state.status = 'PENDING';
      state.retryCount++;
      state.currentStep = null;
      state.currentPath = null;
    }
    return;
  }
  const compensation = data.compensation === true;
  // A compensation's own start and failure are not its step's (its end is recorded as COMPENSATED).
  if (compensation && (e.kind === 'STEP_STARTED' || e.kind === 'STEP_FAILED')) return;
  if (path === null) {
    if (!STEP_KINDS.has(e.kind)) return;
    const step = stepAt(state, e.stepIndex);
    if (e.kind === 'STEP_STARTED') step.name = e.message;
    applyStepEvent(step, e, data);
  } else {
    if (!applyNestedEvent(state, e, path, data, track)) return;
    // A compensation runs after the failure, outside the waits it undoes.
    if (e.kind !== 'COMPENSATED' && (state.status === 'RUNNING' || state.status === 'WAITING' || state.status === 'PENDING')) {
      state.status = track.waiting > 0 ? 'WAITING' : 'RUNNING';
    }
  }
  // Where the job stands: a step inside a block keeps its top-level block current.
  switch (e.kind) {
    case 'STEP_STARTED':
    case 'RETRY_SCHEDULED':
      if (e.kind === 'STEP_STARTED' && path === null) state.status = 'RUNNING';
      state.currentStep = e.stepIndex;
      state.currentPath = path;
      break;
    case 'WAITING':
      if (path === null) state.status = 'WAITING';
      state.currentStep = e.stepIndex;
      state.currentPath = path;
      break;
    case 'STEP_COMPLETED':
    case 'STEP_FAILED':
      if (path === null) state.currentStep = null;
      if (path === null || state.currentPath === path) state.currentPath = null;
      break;
  }
}

/** The kinds that change a step's own state (and so create it when it is not there yet). */
const STEP_KINDS: ReadonlySet<string> = new Set([
  'STEP_STARTED',
  'STEP_COMPLETED',
  'STEP_FAILED',
  'RETRY_SCHEDULED',
  'WAITING',
  'COMPENSATED',
  'BRANCH_TAKEN',
  'MAP_PROGRESS',
  'CHILD_JOB_STARTED',
  'CHILD_JOB_COMPLETED',
]);

/** The kinds that change an iteration's state (rows carrying the iteration's path, `inv[17]`). */
const ITERATION_KINDS: ReadonlySet<string> = new Set(['ITERATION_STARTED', 'ITERATION_COMPLETED', 'ITERATION_FAILED']);

/** An event of a step inside a block: find (or add) its step or iteration under the top-level block and apply it. */
function applyNestedEvent(state: JobState, e: JobEvent, path: string, data: Record<string, unknown>, track: Tracking): boolean {
  const onStep = STEP_KINDS.has(e.kind);
  if (!onStep && !ITERATION_KINDS.has(e.kind)) return false;
  const parsed = parseStepPath(path);
  if (!parsed || (parsed.end === 'step') !== onStep) return false;
  const top = stepAt(state, e.stepIndex!);
  top.name ??= parsed.top;
  const target = locateNested(top, parsed, e.ts);
  if (!target) return false;
  if ('steps' in target) {
    applyIterationEvent(target, e, data);
  } else {
    const was = target.status === 'WAITING' ? 1 : 0;
    applyStepEvent(target, e, data);
    track.waiting += (target.status === 'WAITING' ? 1 : 0) - was;
  }
  return true;
}

function stepError(e: JobEvent, data: Record<string, unknown>): StepError {
  const error: StepError = { code: typeof data.code === 'string' ? data.code : 'STEP_ERROR', message: e.message };
  if (typeof data.path === 'string') error.path = data.path;
  return error;
}

function count(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : 0;
}

/** What an event says about its own step (top-level or nested alike). */
function applyStepEvent(step: StepStateBase, e: JobEvent, data: Record<string, unknown>): void {
  switch (e.kind) {
    case 'STEP_STARTED':
      step.status = 'RUNNING';
      step.attempts++;
      step.startedAt ??= e.ts;
      step.endedAt = null;
      break;
    case 'STEP_COMPLETED':
      step.status = 'COMPLETED';
      step.endedAt = e.ts;
      step.durationMs = typeof data.durationMs === 'number' ? data.durationMs : null;
      step.error = null;
      if ('output' in data) step.output = data.output;
      break;
    case 'STEP_FAILED':
      step.status = 'FAILED';
      step.endedAt = e.ts;
      step.durationMs = typeof data.durationMs === 'number' ? data.durationMs : null;
      step.error = stepError(e, data);
      break;
    case 'RETRY_SCHEDULED':
      step.status = 'RETRYING';
      break;
    case 'WAITING':
      step.status = 'WAITING';
      break;
    case 'COMPENSATED':
      step.compensated = data.ok === true;
      break;
    case 'BRANCH_TAKEN':
      if (typeof data.branch === 'string' || typeof data.branch === 'number') step.branch = data.branch;
      break;
    case 'MAP_PROGRESS':
      step.progress = { total: count(data.total), succeeded: count(data.succeeded), failed: count(data.failed), running: count(data.running) };
      break;
    case 'CHILD_JOB_STARTED':
      if (typeof data.jobId === 'string') {
        step.childJob = {
          jobId: data.jobId,
          runNumber: typeof data.runNumber === 'number' ? data.runNumber : null,
          workflowId: typeof data.workflowId === 'string' ? data.workflowId : null,
          status: null,
        };
      }
      break;
    case 'CHILD_JOB_COMPLETED':
      if (typeof data.jobId === 'string') {
        const known = step.childJob?.jobId === data.jobId ? step.childJob : { jobId: data.jobId, runNumber: null, workflowId: null, status: null };
        step.childJob = { ...known, status: typeof data.status === 'string' ? data.status : null };
      }
      break;
  }
}

function applyIterationEvent(it: IterationState, e: JobEvent, data: Record<string, unknown>): void {
  switch (e.kind) {
    case 'ITERATION_STARTED':
      it.status = 'RUNNING';
      it.startedAt ??= e.ts;
      it.endedAt = null;
      break;
    case 'ITERATION_COMPLETED':
      it.status = 'COMPLETED';
      it.endedAt = e.ts;
      it.error = null;
      break;
    case 'ITERATION_FAILED':
      it.status = 'FAILED';
      it.endedAt = e.ts;
      it.error = stepError(e, data);
      break;
  }
}
