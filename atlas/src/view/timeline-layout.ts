import { stepPathOf, type IterationPageJson, type StepErrorJson, type StepJson } from './timeline-types.js';

/**
 * The Gantt of a run, as data: timeline steps (blocks nested: branches,
 * a page of loop iterations, child runs) and the job's start and end →
 * rows with a depth, a label and bars placed in percent of the time axis.
 * Pure, so the awkward cases (retries, waits, zero-length and running
 * steps, nested blocks) are unit-tested without a browser.
 *
 * The timeline gives each step its first start, last end, attempt count and
 * the last attempt's duration. The exact span of every earlier attempt, its
 * retry back-off and the waits come from stream events (STEP_FAILED carries
 * the attempt's durationMs, RETRY_SCHEDULED its delayMs, WAITING and
 * SIGNAL_RECEIVED the wait) when the caller has them; without them a step
 * still gets an honest bar: its last attempt, and the rest marked as
 * earlier attempts.
 */

export type SegmentKind = 'attempt' | 'wait' | 'retry-gap' | 'child';
export type RowKind = 'step' | 'attempt' | 'branch' | 'iteration' | 'child' | 'page';

/** One piece of a bar. */
export interface Segment {
  kind: SegmentKind;
  startPct: number;
  widthPct: number;
  status: string;
  /** What a tooltip says about it. */
  label: string;
}

export interface GanttRow {
  /** Unique among the rows (rendering key, collapse key). */
  key: string;
  /** The step it belongs to (?step=), or '' for rows of no step (a page row). */
  path: string;
  depth: number;
  label: string;
  kind: RowKind;
  status: string;
  /** The whole bar's extent (0 width when the row never started). */
  startPct: number;
  widthPct: number;
  segments: Segment[];
  durationMs: number | null;
  attempts: number;
  error: StepErrorJson | null;
  /** Rows nested under this one exist (it can be opened and closed). */
  hasChildren: boolean;
  /** Its nested rows are hidden. */
  collapsed: boolean;
  /** The step the run failed at. */
  failing: boolean;
  /** kind 'child': the child run to link to. */
  childJobId?: string;
  /** kind 'page': the loop and where its page of iterations lies. */
  loop?: { path: string; page: IterationPageJson; shown: number };
}

/** A stream row that says something about one step's attempts or waits. */
export interface StepEvent {
  /** A nested step's path; null for a top-level step (then stepIndex says which). */
  path: string | null;
  stepIndex: number | null;
  kind: string;
  ts: string;
  durationMs?: number | null;
  delayMs?: number | null;
  attempt?: number | null;
  code?: string | null;
  message?: string;
}

/** A child run from GET /v1/jobs?parentJobId=. */
export interface ChildRun {
  id: string;
  runNumber: number;
  status: string;
  createdAt: string;
  startedAt?: string | null;
  completedAt?: string | null;
  parentStepPath?: string | null;
  workflowName?: string | null;
}

export interface LayoutInput {
  steps: readonly StepJson[];
  jobStart: string | null;
  jobEnd: string | null;
  /** Epoch ms: where running steps end. */
  now: number;
  events?: readonly StepEvent[];
  /** Step ids whose type waits (wait, approval, delay): their bars are waits. */
  waitSteps?: ReadonlySet<string>;
  children?: readonly ChildRun[];
  /**
   * Row keys whose open/closed state the user flipped. By default a loop's
   * iterations are closed (their steps hidden) unless they failed, still run,
   * or hold `focusPath`; every other row is open.
   */
  toggled?: ReadonlySet<string>;
  /** A step path to keep visible (the selected step): the iterations on its way are opened. */
  focusPath?: string | null;
  /** The path of the step the run failed at (job.error.step). */
  failingPath?: string | null;
  /** The narrowest bar, in percent, so a zero-length step stays visible. Default 0.5. */
  minWidthPct?: number;
}

export interface TimelineLayout {
  rows: GanttRow[];
  startMs: number;
  endMs: number;
  spanMs: number;
}

const RUNNING = new Set(['RUNNING', 'RETRYING', 'WAITING', 'PENDING']);

function ms(value: string | null | undefined): number | null {
  if (!value) return null;
  const t = Date.parse(value);
  return Number.isFinite(t) ? t : null;
}

/** The event key of a step: its path, or `@index` at the top. */
function eventKey(path: string | null, stepIndex: number | null): string {
  return path ?? `@${stepIndex ?? -1}`;
}

function stepEventKey(step: StepJson): string {
  return step.path ? step.path : `@${step.index ?? -1}`;
}

interface Span {
  kind: SegmentKind;
  start: number;
  end: number;
  status: string;
  label: string;
}

/** The pieces of one step's bar in time (before they become percentages). */
export function stepSpans(step: StepJson, events: readonly StepEvent[], now: number, isWaitStep: boolean): Span[] {
  const start = ms(step.startedAt);
  if (start === null) return [];
  const running = RUNNING.has(step.status);
  // UNKNOWN: the run ended without the step's end row (a cancelled run, or a stream past its row cap): it lasted until the run ended.
  const end = running ? Math.max(now, start) : ms(step.endedAt) ?? (step.status === 'UNKNOWN' ? Math.max(now, start) : start);
  const by = (kind: string) => events.filter((e) => e.kind === kind).sort((a, b) => (ms(a.ts) ?? 0) - (ms(b.ts) ?? 0));
  const fails = by('STEP_FAILED');
  const retries = by('RETRY_SCHEDULED');
  const spans: Span[] = [];
  let cursor = start;
  fails.forEach((f, i) => {
    const fEnd = Math.min(ms(f.ts) ?? cursor, end);
    const fStart = Math.min(fEnd, Math.max(cursor, fEnd - (f.durationMs ?? 0)));
    const n = f.attempt ?? i + 1;
    spans.push({ kind: 'attempt', start: fStart, end: fEnd, status: 'FAILED', label: `attempt ${n} failed${f.code ? `: ${f.code}` : ''}` });
    cursor = fEnd;
    const nextFail = fails[i + 1];
    const retry = retries.find((r) => (ms(r.ts) ?? 0) >= fEnd - 1 && (!nextFail || (ms(r.ts) ?? 0) <= (ms(nextFail.ts) ?? Infinity)));
    if (retry) {
      const nextStart = nextFail ? (ms(nextFail.ts) ?? end) - (nextFail.durationMs ?? 0) : null;
      const gapEnd = Math.min(end, fEnd + (retry.delayMs ?? 0), nextStart ?? Infinity);
      if (gapEnd > fEnd) spans.push({ kind: 'retry-gap', start: fEnd, end: gapEnd, status: 'RETRYING', label: `back-off before attempt ${n + 1}` });
      cursor = Math.max(cursor, gapEnd);
    }
  });
  const lastAttemptFailed = step.status === 'FAILED' && fails.length > 0 && fails.length >= step.attempts;
  if (!lastAttemptFailed) {
    let lastStart = cursor;
    if (!running && step.durationMs !== null && step.durationMs !== undefined) lastStart = Math.max(cursor, end - step.durationMs);
    if (fails.length === 0 && step.attempts > 1 && lastStart > start) {
      // Retried, but the failed attempts' rows are not known here: one honest block for all of them.
      spans.push({ kind: 'retry-gap', start, end: lastStart, status: 'RETRYING', label: `attempts 1–${step.attempts - 1} and their back-off` });
    } else {
      lastStart = fails.length === 0 ? start : lastStart;
    }
    const n = step.attempts > 0 ? step.attempts : 1;
    spans.push({ kind: isWaitStep ? 'wait' : 'attempt', start: lastStart, end, status: step.status, label: step.attempts > 1 ? `attempt ${n}` : step.status.toLowerCase() });
  }
  // Waits drawn over the attempt they interrupt.
  const signals = by('SIGNAL_RECEIVED');
  const waits = by('WAITING');
  for (const w of waits) {
    const ws = ms(w.ts) ?? start;
    const resumed = signals.find((s) => (ms(s.ts) ?? 0) >= ws);
    const we = resumed ? ms(resumed.ts)! : step.status === 'WAITING' ? end : Math.max(ws, end);
    spans.push({ kind: 'wait', start: ws, end: Math.min(we, end), status: 'WAITING', label: `waiting${w.message ? ` for ${w.message}` : ''}` });
  }
  if (waits.length === 0 && step.status === 'WAITING' && !isWaitStep) {
    spans.push({ kind: 'wait', start, end, status: 'WAITING', label: 'waiting' });
  }
  return spans;
}

/** Lay out the Gantt. */
export function layoutTimeline(input: LayoutInput): TimelineLayout {
  const minWidth = input.minWidthPct ?? 0.5;
  const toggled = input.toggled ?? new Set<string>();
  const focus = input.focusPath ?? null;
  const within = (path: string, p: string | null | undefined) => !!p && (p === path || p.startsWith(`${path}.`) || p.startsWith(`${path}[`));
  const closedByDefault = (key: string, it?: { path: string; status: string }) =>
    !!it && !RUNNING.has(it.status) && it.status !== 'FAILED' && !within(it.path, focus) && !within(it.path, input.failingPath);
  const isClosed = (key: string, it?: { path: string; status: string }) => closedByDefault(key, it) !== toggled.has(key);
  const waitSteps = input.waitSteps ?? new Set<string>();
  const eventsByStep = new Map<string, StepEvent[]>();
  for (const e of input.events ?? []) {
    const key = eventKey(e.path, e.stepIndex);
    let list = eventsByStep.get(key);
    if (!list) eventsByStep.set(key, (list = []));
    list.push(e);
  }
  const childById = new Map((input.children ?? []).map((c) => [c.id, c]));

  // The axis: the job's start to its end (now while it runs), widened to whatever a step or child reports.
  const times: number[] = [];
  const collect = (steps: readonly StepJson[]) => {
    for (const s of steps) {
      const a = ms(s.startedAt);
      const b = ms(s.endedAt);
      if (a !== null) times.push(a);
      if (b !== null) times.push(b);
      if (RUNNING.has(s.status) && a !== null && ms(input.jobEnd) === null) times.push(input.now);
      for (const br of s.branches ?? []) collect(br.steps);
      for (const it of s.iterations ?? []) collect(it.steps);
    }
  };
  collect(input.steps);
  for (const c of input.children ?? []) {
    const a = ms(c.startedAt ?? c.createdAt);
    const b = ms(c.completedAt);
    if (a !== null) times.push(a);
    if (b !== null) times.push(b);
  }
  const jobStart = ms(input.jobStart);
  const jobEnd = ms(input.jobEnd);
  const startMs = jobStart ?? (times.length ? Math.min(...times) : input.now);
  let endMs = jobEnd ?? (times.length ? Math.max(...times, startMs) : startMs);
  if (jobEnd === null && jobStart !== null) endMs = Math.max(endMs, input.now);
  for (const t of times) if (t > endMs) endMs = t;
  const spanMs = Math.max(endMs - startMs, 1);

  const pct = (t: number) => Math.min(100, Math.max(0, ((t - startMs) / spanMs) * 100));
  const place = (a: number, b: number) => {
    let startPct = pct(a);
    const widthPct = Math.max(pct(Math.max(a, b)) - startPct, minWidth);
    if (startPct + widthPct > 100) startPct = Math.max(0, 100 - widthPct);
    return { startPct, widthPct };
  };
  const toSegment = (s: Span): Segment => ({ kind: s.kind, ...place(s.start, s.end), status: s.status, label: s.label });
  const extent = (spans: readonly { start: number; end: number }[]) => {
    if (spans.length === 0) return { startPct: 0, widthPct: 0 };
    return place(Math.min(...spans.map((s) => s.start)), Math.max(...spans.map((s) => s.end)));
  };

  // Once the run has ended nothing in it runs on: a step still "running" in the stream has no end row.
  const runEnd = jobEnd;
  const now = runEnd ?? input.now;
  const unended = (step: StepJson): StepJson => (runEnd !== null && RUNNING.has(step.status) ? { ...step, status: 'UNKNOWN' } : step);

  const rows: GanttRow[] = [];
  const usedChildren = new Set<string>();

  const childRow = (jobId: string, depth: number, fallback: { start: number; end: number } | null, knownStatus: string | null, runNumber: number | null) => {
    usedChildren.add(jobId);
    const c = childById.get(jobId);
    const a = ms(c?.startedAt ?? c?.createdAt ?? null) ?? fallback?.start ?? null;
    const status = c?.status ?? knownStatus ?? 'RUNNING';
    const b = ms(c?.completedAt ?? null) ?? (RUNNING.has(status) ? now : fallback?.end ?? a);
    const spans = a === null ? [] : [{ kind: 'child' as const, start: a, end: b ?? a, status, label: `child run #${c?.runNumber ?? runNumber ?? '?'}` }];
    rows.push({
      key: `c:${jobId}`,
      path: '',
      depth,
      label: `${c?.workflowName ? `${c.workflowName} ` : 'child run '}#${c?.runNumber ?? runNumber ?? '?'}`,
      kind: 'child',
      status,
      ...extent(spans),
      segments: spans.map(toSegment),
      durationMs: a !== null && b !== null ? b - a : null,
      attempts: 0,
      error: null,
      hasChildren: false,
      collapsed: false,
      failing: false,
      childJobId: jobId,
    });
  };

  const addSteps = (steps: readonly StepJson[], depth: number) => {
    for (const step of steps) addStep(step, depth);
  };

  const addStep = (given: StepJson, depth: number) => {
    const step = unended(given);
    const path = stepPathOf(step);
    const key = `s:${path}`;
    const events = eventsByStep.get(stepEventKey(step)) ?? [];
    const spans = stepSpans(step, events, now, waitSteps.has(step.name ?? ''));
    const attemptSpans = spans.filter((s) => s.kind === 'attempt' || s.kind === 'retry-gap');
    const showAttempts = step.attempts > 1 && attemptSpans.length > 1;
    const childIds = step.childJob ? [step.childJob.jobId] : [];
    for (const c of input.children ?? []) if (c.parentStepPath === path && !childIds.includes(c.id)) childIds.push(c.id);
    const hasChildren = showAttempts || !!step.branches?.length || !!step.iterations?.length || !!step.iterationPage || childIds.length > 0;
    rows.push({
      key,
      path,
      depth,
      label: step.name ?? path,
      kind: 'step',
      status: step.status,
      ...extent(spans),
      segments: spans.map(toSegment),
      durationMs: step.durationMs ?? null,
      attempts: step.attempts,
      error: step.error ?? null,
      hasChildren,
      collapsed: isClosed(key),
      failing: !!input.failingPath && input.failingPath === path,
    });
    if (isClosed(key)) {
      for (const id of childIds) usedChildren.add(id);
      return;
    }
    if (showAttempts) {
      let n = 0;
      for (const s of attemptSpans) {
        if (s.kind === 'attempt') n++;
        rows.push({
          key: `a:${path}:${rows.length}`,
          path,
          depth: depth + 1,
          label: s.kind === 'attempt' ? `attempt ${n}` : 'back-off',
          kind: 'attempt',
          status: s.status,
          ...place(s.start, s.end),
          segments: [toSegment(s)],
          durationMs: s.end - s.start,
          attempts: 0,
          error: null,
          hasChildren: false,
          collapsed: false,
          failing: false,
        });
      }
    }
    for (const br of step.branches ?? []) {
      const bKey = `b:${br.path}`;
      const inner = br.steps.flatMap((s) => stepSpans(unended(s), eventsByStep.get(stepEventKey(s)) ?? [], now, waitSteps.has(s.name ?? '')));
      const failed = br.steps.some((s) => s.status === 'FAILED');
      const running = br.steps.some((s) => RUNNING.has(s.status));
      rows.push({
        key: bKey,
        path: br.path,
        depth: depth + 1,
        label: `branch ${br.label}`,
        kind: 'branch',
        status: failed ? 'FAILED' : running ? 'RUNNING' : 'COMPLETED',
        ...extent(inner),
        segments: [],
        durationMs: null,
        attempts: 0,
        error: null,
        hasChildren: br.steps.length > 0,
        collapsed: isClosed(bKey),
        failing: false,
      });
      if (!isClosed(bKey)) addSteps(br.steps, depth + 2);
    }
    for (const it of step.iterations ?? []) {
      const iKey = `i:${it.path}`;
      const a = ms(it.startedAt);
      const itStatus = runEnd !== null && RUNNING.has(it.status) ? 'UNKNOWN' : it.status;
      const b = RUNNING.has(itStatus) ? now : ms(it.endedAt) ?? (itStatus === 'UNKNOWN' ? now : a);
      const spans = a === null ? [] : [{ kind: 'attempt' as const, start: a, end: b ?? a, status: itStatus, label: `iteration ${it.index}` }];
      rows.push({
        key: iKey,
        path: it.path,
        depth: depth + 1,
        label: `[${it.index}]`,
        kind: 'iteration',
        status: itStatus,
        ...extent(spans),
        segments: spans.map(toSegment),
        durationMs: a !== null && b !== null ? b - a : null,
        attempts: 0,
        error: it.error ?? null,
        hasChildren: it.steps.length > 0,
        failing: !!input.failingPath && input.failingPath === it.path,
        collapsed: isClosed(iKey, it),
      });
      if (!isClosed(iKey, it)) addSteps(it.steps, depth + 2);
    }
    if (step.iterationPage) {
      rows.push({
        key: `p:${path}`,
        path,
        depth: depth + 1,
        label: 'iterations',
        kind: 'page',
        status: step.status,
        startPct: 0,
        widthPct: 0,
        segments: [],
        durationMs: null,
        attempts: 0,
        error: null,
        hasChildren: false,
        collapsed: false,
        failing: false,
        loop: { path, page: step.iterationPage, shown: step.iterations?.length ?? 0 },
      });
    }
    const own = spans.length ? { start: Math.min(...spans.map((s) => s.start)), end: Math.max(...spans.map((s) => s.end)) } : null;
    for (const id of childIds) childRow(id, depth + 1, own, id === step.childJob?.jobId ? step.childJob.status ?? null : null, step.childJob?.jobId === id ? step.childJob.runNumber ?? null : null);
  };

  addSteps(input.steps, 0);
  // Children whose step is not on this page of the timeline still get a row.
  for (const c of input.children ?? []) if (!usedChildren.has(c.id)) childRow(c.id, 0, null, null, c.runNumber);
  return { rows, startMs, endMs, spanMs };
}

/** "iterations 1–100 of 5,000", for a loop's page row. */
export function iterationPageLabel(page: IterationPageJson, shown: number): string {
  const fmt = (n: number) => n.toLocaleString('en-US');
  const total = page.total ?? page.recorded;
  if (shown === 0) return `no iterations recorded${page.total !== null ? ` of ${fmt(page.total)}` : ''}`;
  const range = `iterations ${fmt(page.offset + 1)}–${fmt(page.offset + shown)}`;
  if (page.recorded < total) {
    return `${range} of ${fmt(page.recorded)} recorded · ${fmt(total)} items${page.succeededWithoutRows ? ` (${fmt(page.succeededWithoutRows)} succeeded without rows)` : ''}`;
  }
  return `${range} of ${fmt(total)}`;
}

/** Ticks for the time axis: about `count` round steps across the span, as offsets in ms and percent. */
export function axisTicks(spanMs: number, count = 6): { offsetMs: number; pct: number }[] {
  const steps = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 15_000, 30_000, 60_000, 120_000, 300_000, 600_000, 900_000, 1_800_000, 3_600_000, 7_200_000, 21_600_000, 43_200_000, 86_400_000];
  const raw = spanMs / Math.max(1, count);
  const step = steps.find((s) => s >= raw) ?? Math.ceil(raw / 86_400_000) * 86_400_000;
  const out: { offsetMs: number; pct: number }[] = [];
  for (let t = 0; t <= spanMs + 1e-9; t += step) out.push({ offsetMs: t, pct: (t / spanMs) * 100 });
  return out;
}
