/**
 * The JSON shapes of GET /v1/jobs/:id/timeline and /state as the inspector
 * reads them (src/api/schemas.ts: StepState, NestedStepState, JobState).
 * Dates arrive as ISO strings. DOM-free, so the view logic that uses them
 * is unit-tested by vitest.
 */

export interface StepErrorJson {
  code: string;
  message: string;
  /** A block's failure: the inner step that failed. */
  path?: string;
}

export interface IterationPageJson {
  offset: number;
  limit: number;
  recorded: number;
  total: number | null;
  hasMore: boolean;
  nextOffset: number | null;
  succeededWithoutRows: number;
}

export interface BranchJson {
  label: string;
  path: string;
  steps: StepJson[];
}

export interface IterationJson {
  index: number;
  path: string;
  status: string;
  startedAt?: string | null;
  endedAt?: string | null;
  error?: StepErrorJson | null;
  steps: StepJson[];
}

export interface ChildJobJson {
  jobId: string;
  runNumber?: number | null;
  workflowId?: string | null;
  status?: string | null;
}

/** A top-level step (index, name) or a step inside a block (path, name). */
export interface StepJson {
  index?: number;
  path?: string;
  name?: string | null;
  status: string;
  attempts: number;
  startedAt?: string | null;
  endedAt?: string | null;
  durationMs?: number | null;
  error?: StepErrorJson | null;
  output?: unknown;
  compensated?: boolean;
  branch?: string | number;
  branches?: BranchJson[];
  iterations?: IterationJson[];
  iterationPage?: IterationPageJson;
  progress?: { total: number; succeeded: number; failed: number; running: number };
  childJob?: ChildJobJson;
}

export interface JobStateJson {
  atSeq: number;
  status: string;
  currentStep?: number | null;
  currentPath?: string | null;
  startedAt?: string | null;
  endedAt?: string | null;
  retryCount?: number;
  error?: StepErrorJson | null;
  steps: StepJson[];
  phiMasked?: boolean;
}

/** The address of a step in links (?step=) and selection: a nested step's path, a top-level step's id. */
export function stepPathOf(step: StepJson): string {
  if (step.path) return step.path;
  if (step.name) return step.name;
  return `#${step.index ?? 0}`;
}
