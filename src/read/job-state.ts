/**
 * Event sourcing (the stream is the job's history, so it is enough to know
 * the job at any point of it): a job's state rebuilt from its stream
 * events alone. A pure reducer — no database — so "the state at sequence
 * number N" is `replayJobEvents(events.filter(e => e.seq <= N))`, and the
 * step-by-step timeline is the state after the last event.
 */

/** One stream row as the reducer needs it (the store's StreamEntry fits). */
export interface JobEvent {
  seq: number;
  ts: Date;
  kind: string;
  level: string;
  stepIndex: number | null;
  message: string;
  data: unknown;
}

export type ReplayedJobStatus = 'PENDING' | 'RUNNING' | 'WAITING' | 'COMPLETED' | 'PARTIAL_SUCCESS' | 'FAILED' | 'CANCELLED' | 'TIMED_OUT';
export type ReplayedStepStatus = 'RUNNING' | 'RETRYING' | 'WAITING' | 'COMPLETED' | 'FAILED';

export interface StepError {
  code: string;
  message: string;
}

export interface StepState {
  index: number;
  /** The step id from the definition (the message of its STEP_STARTED event). */
  name: string | null;
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
}

export interface JobState {
  /** The last event applied (0 before any). */
  atSeq: number;
  status: ReplayedJobStatus;
  /** The step running, waiting or retrying now (null when none). */
  currentStep: number | null;
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

export function initialJobState(): JobState {
  return { atSeq: 0, status: 'PENDING', currentStep: null, startedAt: null, endedAt: null, retryCount: 0, error: null, steps: [] };
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
  const state: JobState = { ...prev, steps: prev.steps.map((s) => ({ ...s })), atSeq: e.seq };
  const data = record(e.data);
  const compensation = data.compensation === true;
  const duration = typeof data.durationMs === 'number' ? data.durationMs : null;
  switch (e.kind) {
    case 'LOG':
      // Log lines are not state changes (and the readers leave them out).
      break;
    case 'JOB_STARTED':
    case 'SIGNAL_RECEIVED':
      state.status = 'RUNNING';
      state.startedAt ??= e.ts;
      break;
    case 'JOB_HANDED_BACK':
      state.status = 'PENDING';
      state.currentStep = null;
      break;
    case 'STEP_STARTED': {
      if (e.stepIndex === null || compensation) break;
      const step = stepAt(state, e.stepIndex);
      step.name = e.message;
      step.status = 'RUNNING';
      step.attempts++;
      step.startedAt ??= e.ts;
      step.endedAt = null;
      state.status = 'RUNNING';
      state.currentStep = e.stepIndex;
      break;
    }
    case 'STEP_COMPLETED': {
      if (e.stepIndex === null) break;
      const step = stepAt(state, e.stepIndex);
      step.status = 'COMPLETED';
      step.endedAt = e.ts;
      step.durationMs = duration;
      step.error = null;
      if ('output' in data) step.output = data.output;
      state.currentStep = null;
      break;
    }
    case 'STEP_FAILED': {
      if (e.stepIndex === null || compensation) break;
      const step = stepAt(state, e.stepIndex);
      step.status = 'FAILED';
      step.endedAt = e.ts;
      step.durationMs = duration;
      step.error = { code: typeof data.code === 'string' ? data.code : 'STEP_ERROR', message: e.message };
      state.currentStep = null;
      break;
    }
    case 'RETRY_SCHEDULED':
      if (e.stepIndex !== null) {
        stepAt(state, e.stepIndex).status = 'RETRYING';
        state.currentStep = e.stepIndex;
      } else {
        state.status = 'PENDING';
        state.retryCount++;
        state.currentStep = null;
      }
      break;
    case 'WAITING':
      state.status = 'WAITING';
      if (e.stepIndex !== null) {
        stepAt(state, e.stepIndex).status = 'WAITING';
        state.currentStep = e.stepIndex;
      }
      break;
    case 'COMPENSATED':
      if (e.stepIndex !== null) stepAt(state, e.stepIndex).compensated = data.ok === true;
      break;
    default: {
      const end = JOB_END[e.kind];
      if (end) {
        state.status = end;
        state.endedAt = e.ts;
        state.currentStep = null;
        if (end !== 'COMPLETED' && end !== 'PARTIAL_SUCCESS') {
          state.error = { code: typeof data.code === 'string' ? data.code : end, message: e.message };
        }
      }
    }
  }
  return state;
}

/** The state after the given events, applied in sequence order. */
export function replayJobEvents(events: readonly JobEvent[]): JobState {
  return [...events].sort((a, b) => a.seq - b.seq).reduce(applyJobEvent, initialJobState());
}
