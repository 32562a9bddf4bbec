import { api, type QueryValue } from '../../api.js';
import type { ChildRun, StepEvent } from '../../view/timeline-layout.js';
import type { JobStateJson, StepJson } from '../../view/timeline-types.js';

/** The API shapes the inspector reads (src/api/schemas.ts, routes/screenshots.ts, routes/approvals.ts). */

export interface JobJson {
  id: string;
  runNumber: number;
  workflowId: string;
  workflowVersion: number;
  clientId: string | null;
  status: string;
  initiatorType?: string;
  retryOfJobId: string | null;
  input: unknown;
  result: unknown;
  error: { code: string; message: string; step: string | null } | null;
  stepsTotal?: number;
  stepsCompleted?: number;
  createdAt: string;
  startedAt: string | null;
  completedAt: string | null;
  durationMs: number | null;
  retryCount?: number;
  initiatedBy?: string | null;
  parentJobId?: string | null;
  parentStepPath?: string | null;
  cancelRequestedAt?: string | null;
  phiMasked?: boolean;
}

export interface JobListItemJson extends JobJson {
  workflowName: string | null;
  clientName: string | null;
}

export interface TimelineJson {
  jobId: string;
  status: string;
  steps: StepJson[];
  archived: boolean;
  phiMasked?: boolean;
}

export interface StreamEntryJson {
  seq: number;
  ts: string;
  kind: string;
  level: string;
  stepIndex: number | null;
  message: string;
  data: unknown;
  path?: string | null;
  phiMasked?: boolean;
}

export interface StreamPageJson {
  jobId: string;
  status: string;
  items: StreamEntryJson[];
  nextAfterSeq: number;
  /** The job's last seq so far: how long the whole stream is. */
  lastSeq: number;
  archived: boolean;
  phiMasked?: boolean;
}

export interface ScreenshotJson {
  id: string;
  jobId: string;
  stepIndex: number | null;
  streamSeq: number | null;
  type: string;
  name: string | null;
  contentType: string;
  width: number | null;
  height: number | null;
  capturedAt: string;
  contentUrl: string;
}

export interface ApprovalJson {
  id: string;
  status: string;
  title: string;
  stepPath?: string;
  required: number;
  approvals?: number;
  form: Record<string, unknown> | null;
  requestedAt: string;
  expiresAt: string | null;
  job: { id: string; runNumber: number; status: string };
}

export interface WorkflowJson {
  id: string;
  name: string;
  version: number;
  definition: unknown;
}

export const TERMINAL = new Set(['COMPLETED', 'PARTIAL_SUCCESS', 'FAILED', 'CANCELLED', 'TIMED_OUT']);
export const RETRYABLE = new Set(['FAILED', 'TIMED_OUT', 'CANCELLED']);
/** The highest seq the state route takes: "the state after every event". */
export const MAX_SEQ = 2147483647;
/** Iterations per loop on one timeline page. */
export const ITERATION_LIMIT = 50;

/** `phi=mask` while PHI is masked (the default): nothing protected is read, nothing audited. */
export function phiQuery(masked: boolean): Record<string, QueryValue> {
  return masked ? { phi: 'mask' } : {};
}

export interface LoopPaging {
  loop: string;
  offset: number;
}

export function loopQuery(paging: LoopPaging | null): Record<string, QueryValue> {
  return paging ? { loop: paging.loop, iterationOffset: paging.offset, iterationLimit: ITERATION_LIMIT } : { iterationLimit: ITERATION_LIMIT };
}

export const loadJob = (id: string, masked: boolean, signal: AbortSignal) => api<JobJson>(`/v1/jobs/${id}`, { query: phiQuery(masked), signal });

export const loadTimeline = (id: string, masked: boolean, paging: LoopPaging | null, signal: AbortSignal) =>
  api<TimelineJson>(`/v1/jobs/${id}/timeline`, { query: { ...phiQuery(masked), ...loopQuery(paging) }, signal });

export const loadState = (id: string, at: number, masked: boolean, paging: LoopPaging | null, signal: AbortSignal) =>
  api<JobStateJson>(`/v1/jobs/${id}/state`, { query: { at, ...phiQuery(masked), ...loopQuery(paging) }, signal });

export const loadStream = (id: string, q: { afterSeq: number; limit: number; level?: string }, masked: boolean, signal?: AbortSignal) =>
  api<StreamPageJson>(`/v1/jobs/${id}/stream`, { query: { ...q, ...phiQuery(masked) }, signal });

/** A job's list entry (workflow and client names): the list filtered to the instant it was created. */
export async function loadListItem(job: JobJson, signal: AbortSignal): Promise<JobListItemJson | null> {
  const t = Date.parse(job.createdAt);
  const page = await api<{ items: JobListItemJson[] }>('/v1/jobs', {
    query: { workflowId: job.workflowId, createdFrom: new Date(t).toISOString(), createdTo: new Date(t + 1).toISOString(), limit: 50, phi: 'mask' },
    signal,
  });
  return page.items.find((j) => j.id === job.id) ?? null;
}

/** Runs that retried this one (created after it, same workflow, retryOfJobId = it). */
export async function loadRetriedAs(job: JobJson, signal: AbortSignal): Promise<JobListItemJson[]> {
  const page = await api<{ items: JobListItemJson[] }>('/v1/jobs', {
    query: { workflowId: job.workflowId, createdFrom: job.createdAt, limit: 200, phi: 'mask' },
    signal,
  });
  return page.items.filter((j) => j.retryOfJobId === job.id);
}

export async function loadChildren(id: string, signal: AbortSignal): Promise<ChildRun[]> {
  const page = await api<{ items: JobListItemJson[] }>('/v1/jobs', { query: { parentJobId: id, limit: 200, phi: 'mask' }, signal });
  return page.items.map((c) => ({
    id: c.id,
    runNumber: c.runNumber,
    status: c.status,
    createdAt: c.createdAt,
    startedAt: c.startedAt,
    completedAt: c.completedAt,
    parentStepPath: c.parentStepPath ?? null,
    workflowName: c.workflowName,
  }));
}

export const loadScreenshots = (id: string, signal: AbortSignal) => api<{ items: ScreenshotJson[] }>(`/v1/jobs/${id}/screenshots`, { signal }).then((r) => r.items);

/** Pending approvals addressed to the caller, for this job. */
export async function loadApprovals(jobId: string, signal: AbortSignal): Promise<ApprovalJson[]> {
  const page = await api<{ items: ApprovalJson[] }>('/v1/approvals', { query: { status: 'pending', limit: 500 }, signal });
  return page.items.filter((a) => a.job.id === jobId);
}

export const loadWorkflow = (id: string, signal: AbortSignal) => api<WorkflowJson>(`/v1/workflows/${id}`, { signal });

/** The definition the run was started with (its version, which later edits of the workflow do not change). */
export const loadRunDefinition = (workflowId: string, version: number, signal: AbortSignal) =>
  api<{ definition: unknown }>(`/v1/workflows/${workflowId}/versions/${version}`, { signal }).then((v) => v.definition);

/** Stream rows that place attempts, back-offs and waits on the Gantt. */
const STEP_EVENT_KINDS = new Set(['STEP_FAILED', 'RETRY_SCHEDULED', 'WAITING', 'SIGNAL_RECEIVED']);

function num(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

export function stepEventsOf(rows: readonly StreamEntryJson[]): StepEvent[] {
  const out: StepEvent[] = [];
  for (const r of rows) {
    if (!STEP_EVENT_KINDS.has(r.kind)) continue;
    const d = (r.data && typeof r.data === 'object' ? r.data : {}) as Record<string, unknown>;
    if (d.compensation === true) continue;
    out.push({
      path: r.path ?? null,
      stepIndex: r.stepIndex,
      kind: r.kind,
      ts: r.ts,
      durationMs: num(d.durationMs),
      delayMs: num(d.delayMs),
      attempt: num(d.attempt),
      code: typeof d.code === 'string' ? d.code : null,
      message: r.message,
    });
  }
  return out;
}

/** Failures and retries: the stream's WARN and ERROR rows, one bounded request. */
export const loadFailureRows = (id: string, masked: boolean, signal: AbortSignal) =>
  loadStream(id, { afterSeq: 0, limit: 5000, level: 'WARN' }, masked, signal).then((p) => p.items);

/** Step types that wait for something outside the run: their bars are drawn as waits. */
const WAIT_TYPES = new Set(['wait', 'approval', 'delay', 'sleep', 'waitForSignal']);

/** Every step object of a definition (any depth), by id. */
export function definitionSteps(definition: unknown): Map<string, Record<string, unknown>> {
  const out = new Map<string, Record<string, unknown>>();
  const walk = (v: unknown, depth: number) => {
    if (depth > 20 || v === null || typeof v !== 'object') return;
    if (Array.isArray(v)) {
      for (const x of v) walk(x, depth + 1);
      return;
    }
    const o = v as Record<string, unknown>;
    if (typeof o.id === 'string' && typeof o.type === 'string' && !out.has(o.id)) out.set(o.id, o);
    for (const x of Object.values(o)) walk(x, depth + 1);
  };
  walk(definition, 0);
  return out;
}

export function waitStepIds(steps: Map<string, Record<string, unknown>>): Set<string> {
  const out = new Set<string>();
  for (const [id, s] of steps) if (WAIT_TYPES.has(String(s.type))) out.add(id);
  return out;
}

/** Find a step (top-level by id, nested by path) in a timeline tree. */
export function findStep(steps: readonly StepJson[], path: string): StepJson | null {
  for (const s of steps) {
    if ((s.path ?? s.name ?? `#${s.index ?? 0}`) === path) return s;
    for (const b of s.branches ?? []) {
      const hit = findStep(b.steps, path);
      if (hit) return hit;
    }
    for (const it of s.iterations ?? []) {
      const hit = findStep(it.steps, path);
      if (hit) return hit;
    }
  }
  return null;
}

/** The top-level step of the run's failure: the one job.error.step is in, else the first failed step. */
export function failingPathOf(job: JobJson | undefined, steps: readonly StepJson[]): string | null {
  if (!job || !RETRYABLE.has(job.status)) return null;
  if (job.error?.step) return job.error.step;
  const failed = steps.find((s) => s.status === 'FAILED');
  return failed ? failed.path ?? failed.name ?? null : null;
}
