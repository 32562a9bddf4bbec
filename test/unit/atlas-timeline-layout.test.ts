import { describe, expect, it } from 'vitest';
import { axisTicks, iterationPageLabel, layoutTimeline, type StepEvent } from '../../atlas/src/view/timeline-layout.js';
import type { StepJson } from '../../atlas/src/view/timeline-types.js';

const T0 = Date.parse('2026-01-01T00:00:00.000Z');
const at = (s: number) => new Date(T0 + s * 1000).toISOString();

function step(over: Partial<StepJson> & { name: string }): StepJson {
  return { status: 'COMPLETED', attempts: 1, startedAt: null, endedAt: null, durationMs: null, error: null, ...over };
}

describe('timeline layout', () => {
  it('places steps on the axis from the job start to its end', () => {
    const { rows, spanMs } = layoutTimeline({
      steps: [
        step({ index: 0, name: 'fetch', startedAt: at(0), endedAt: at(25), durationMs: 25_000 }),
        step({ index: 1, name: 'save', startedAt: at(50), endedAt: at(100), durationMs: 50_000 }),
      ],
      jobStart: at(0),
      jobEnd: at(100),
      now: T0 + 500_000,
    });
    expect(spanMs).toBe(100_000);
    expect(rows.map((r) => [r.label, r.depth, r.kind, r.startPct, r.widthPct])).toEqual([
      ['fetch', 0, 'step', 0, 25],
      ['save', 0, 'step', 50, 50],
    ]);
    expect(rows[0]!.segments).toEqual([{ kind: 'attempt', startPct: 0, widthPct: 25, status: 'COMPLETED', label: 'completed' }]);
    expect(rows[0]!.path).toBe('fetch');
  });

  it('gives a zero-length step the minimum width, kept inside the axis', () => {
    const { rows } = layoutTimeline({
      steps: [
        step({ index: 0, name: 'a', startedAt: at(0), endedAt: at(100) }),
        step({ index: 1, name: 'noop', startedAt: at(40), endedAt: at(40), durationMs: 0 }),
        step({ index: 2, name: 'last', startedAt: at(100), endedAt: at(100), durationMs: 0 }),
      ],
      jobStart: at(0),
      jobEnd: at(100),
      now: T0,
      minWidthPct: 1,
    });
    expect(rows[1]!.startPct).toBe(40);
    expect(rows[1]!.widthPct).toBe(1);
    expect(rows[2]!.startPct).toBe(99);
    expect(rows[2]!.widthPct).toBe(1);
  });

  it('extends a running step to now, and the axis with it', () => {
    const { rows, endMs } = layoutTimeline({
      steps: [step({ index: 0, name: 'slow', status: 'RUNNING', startedAt: at(10) })],
      jobStart: at(0),
      jobEnd: null,
      now: T0 + 40_000,
    });
    expect(endMs).toBe(T0 + 40_000);
    expect(rows[0]!.startPct).toBe(25);
    expect(rows[0]!.widthPct).toBe(75);
  });

  it('ends a step without an end row at the end of a run that ended (cancelled, or past the stream cap)', () => {
    const { rows, endMs } = layoutTimeline({
      steps: [
        step({ index: 0, name: 'loop', status: 'RUNNING', startedAt: at(10), iterations: [{ index: 0, path: 'loop[0]', status: 'RUNNING', startedAt: at(10), steps: [] }] }),
      ],
      jobStart: at(0),
      jobEnd: at(50),
      now: T0 + 3_600_000,
    });
    expect(endMs).toBe(T0 + 50_000);
    expect(rows.map((r) => [r.status, r.startPct, r.widthPct])).toEqual([
      ['UNKNOWN', 20, 80],
      ['UNKNOWN', 20, 80],
    ]);
  });

  it('shows each attempt of a retried step and the back-off between them from the stream events', () => {
    const events: StepEvent[] = [
      { path: null, stepIndex: 0, kind: 'STEP_FAILED', ts: at(10), durationMs: 10_000, attempt: 1, code: 'HTTP_503' },
      { path: null, stepIndex: 0, kind: 'RETRY_SCHEDULED', ts: at(10), delayMs: 20_000, attempt: 2 },
      { path: null, stepIndex: 0, kind: 'STEP_FAILED', ts: at(40), durationMs: 10_000, attempt: 2, code: 'HTTP_503' },
      { path: null, stepIndex: 0, kind: 'RETRY_SCHEDULED', ts: at(40), delayMs: 40_000, attempt: 3 },
    ];
    const { rows } = layoutTimeline({
      steps: [step({ index: 0, name: 'call', attempts: 3, startedAt: at(0), endedAt: at(100), durationMs: 20_000 })],
      jobStart: at(0),
      jobEnd: at(100),
      now: T0,
      events,
    });
    const [main, ...attempts] = rows;
    expect(main!.segments.map((s) => [s.kind, s.status, s.startPct, s.widthPct])).toEqual([
      ['attempt', 'FAILED', 0, 10],
      ['retry-gap', 'RETRYING', 10, 20],
      ['attempt', 'FAILED', 30, 10],
      ['retry-gap', 'RETRYING', 40, 40],
      ['attempt', 'COMPLETED', 80, 20],
    ]);
    expect(main!.hasChildren).toBe(true);
    expect(attempts.map((r) => [r.kind, r.label, r.depth, r.startPct, r.widthPct])).toEqual([
      ['attempt', 'attempt 1', 1, 0, 10],
      ['attempt', 'back-off', 1, 10, 20],
      ['attempt', 'attempt 2', 1, 30, 10],
      ['attempt', 'back-off', 1, 40, 40],
      ['attempt', 'attempt 3', 1, 80, 20],
    ]);
  });

  it('without the events, marks the earlier attempts of a retried step as one block', () => {
    const { rows } = layoutTimeline({
      steps: [step({ index: 0, name: 'call', attempts: 3, startedAt: at(0), endedAt: at(100), durationMs: 30_000 })],
      jobStart: at(0),
      jobEnd: at(100),
      now: T0,
    });
    expect(rows[0]!.segments.map((s) => [s.kind, s.startPct, s.widthPct])).toEqual([
      ['retry-gap', 0, 70],
      ['attempt', 70, 30],
    ]);
  });

  it('shows waits distinctly: from WAITING to the signal, and a step that waits now up to now', () => {
    const { rows } = layoutTimeline({
      steps: [
        step({ index: 0, name: 'approve', startedAt: at(0), endedAt: at(50), durationMs: 50_000 }),
        step({ index: 1, name: 'hold', status: 'WAITING', startedAt: at(60) }),
      ],
      jobStart: at(0),
      jobEnd: null,
      now: T0 + 100_000,
      events: [
        { path: null, stepIndex: 0, kind: 'WAITING', ts: at(5), message: 'approve' },
        { path: null, stepIndex: 0, kind: 'SIGNAL_RECEIVED', ts: at(45) },
      ],
    });
    const wait0 = rows[0]!.segments.find((s) => s.kind === 'wait')!;
    expect([wait0.startPct, wait0.widthPct]).toEqual([5, 40]);
    const wait1 = rows[1]!.segments.find((s) => s.kind === 'wait')!;
    expect([wait1.startPct, wait1.widthPct, wait1.status]).toEqual([60, 40, 'WAITING']);
  });

  it('draws a step of a waiting type as a wait', () => {
    const { rows } = layoutTimeline({
      steps: [step({ index: 0, name: 'pause', startedAt: at(0), endedAt: at(10), durationMs: 10_000 })],
      jobStart: at(0),
      jobEnd: at(10),
      now: T0,
      waitSteps: new Set(['pause']),
    });
    expect(rows[0]!.segments.map((s) => s.kind)).toEqual(['wait']);
  });

  it('nests branches, loop iterations with their page row, and child runs', () => {
    const loop = step({
      index: 1,
      name: 'each',
      status: 'FAILED',
      startedAt: at(10),
      endedAt: at(90),
      error: { code: 'BOOM', message: 'bad item', path: 'each[1].call' },
      iterations: [
        { index: 0, path: 'each[0]', status: 'COMPLETED', startedAt: at(10), endedAt: at(20), steps: [step({ path: 'each[0].call', name: 'call', startedAt: at(10), endedAt: at(20) })] },
        {
          index: 1,
          path: 'each[1]',
          status: 'FAILED',
          startedAt: at(20),
          endedAt: at(30),
          error: { code: 'BOOM', message: 'bad item' },
          steps: [step({ path: 'each[1].call', name: 'call', status: 'FAILED', startedAt: at(20), endedAt: at(30) })],
        },
      ],
      iterationPage: { offset: 0, limit: 2, recorded: 5000, total: 5000, hasMore: true, nextOffset: 2, succeededWithoutRows: 0 },
    });
    const branchy = step({
      index: 0,
      name: 'check',
      startedAt: at(0),
      endedAt: at(10),
      branch: 'then',
      branches: [{ label: 'then', path: 'check.then', steps: [step({ path: 'check.then.log', name: 'log', startedAt: at(2), endedAt: at(4) })] }],
    });
    const sub = step({ index: 2, name: 'sub', startedAt: at(90), endedAt: at(100), childJob: { jobId: 'c1', runNumber: 7, status: 'COMPLETED' } });
    const { rows } = layoutTimeline({
      steps: [branchy, loop, sub],
      jobStart: at(0),
      jobEnd: at(100),
      now: T0,
      failingPath: 'each[1].call',
      children: [{ id: 'c1', runNumber: 7, status: 'COMPLETED', createdAt: at(90), startedAt: at(91), completedAt: at(99), workflowName: 'child-flow' }],
    });
    expect(rows.map((r) => [r.kind, r.depth, r.label])).toEqual([
      ['step', 0, 'check'],
      ['branch', 1, 'branch then'],
      ['step', 2, 'log'],
      ['step', 0, 'each'],
      ['iteration', 1, '[0]'],
      ['iteration', 1, '[1]'],
      ['step', 2, 'call'],
      ['page', 1, 'iterations'],
      ['step', 0, 'sub'],
      ['child', 1, 'child-flow #7'],
    ]);
    expect(rows[1]!.startPct).toBe(2);
    expect(rows[1]!.widthPct).toBe(2);
    expect(rows.filter((r) => r.failing).map((r) => r.path)).toEqual(['each[1].call']);
    expect(rows[7]!.loop).toMatchObject({ path: 'each', shown: 2 });
    const child = rows[9]!;
    expect(child.childJobId).toBe('c1');
    expect([child.startPct, child.widthPct]).toEqual([91, 8]);
  });

  it('closes loop iterations by default unless they failed, run, or hold the focus; a toggle flips a row', () => {
    const loop = step({
      index: 0,
      name: 'each',
      status: 'RUNNING',
      startedAt: at(0),
      iterations: [
        { index: 0, path: 'each[0]', status: 'COMPLETED', startedAt: at(0), endedAt: at(1), steps: [step({ path: 'each[0].a', name: 'a' })] },
        { index: 1, path: 'each[1]', status: 'FAILED', startedAt: at(1), endedAt: at(2), steps: [step({ path: 'each[1].a', name: 'a', status: 'FAILED' })] },
        { index: 2, path: 'each[2]', status: 'RUNNING', startedAt: at(2), steps: [step({ path: 'each[2].a', name: 'a', status: 'RUNNING' })] },
        { index: 3, path: 'each[3]', status: 'COMPLETED', startedAt: at(2), endedAt: at(3), steps: [step({ path: 'each[3].a', name: 'a' })] },
      ],
    });
    const base = { steps: [loop], jobStart: at(0), jobEnd: null, now: T0 + 10_000 };
    const keys = (over: object) => layoutTimeline({ ...base, ...over }).rows.map((r) => r.key);
    expect(keys({})).toEqual(['s:each', 'i:each[0]', 'i:each[1]', 's:each[1].a', 'i:each[2]', 's:each[2].a', 'i:each[3]']);
    expect(layoutTimeline(base).rows[1]!.collapsed).toBe(true);
    expect(keys({ focusPath: 'each[3].a' })).toContain('s:each[3].a');
    expect(keys({ toggled: new Set(['i:each[0]', 'i:each[1]']) })).toEqual(['s:each', 'i:each[0]', 's:each[0].a', 'i:each[1]', 'i:each[2]', 's:each[2].a', 'i:each[3]']);
    const closed = layoutTimeline({ ...base, toggled: new Set(['s:each']) });
    expect(closed.rows.map((r) => r.key)).toEqual(['s:each']);
    expect(closed.rows[0]!.collapsed).toBe(true);
  });

  it('gives a step that never started no bar', () => {
    const { rows } = layoutTimeline({ steps: [step({ index: 0, name: 'later', status: 'RUNNING', attempts: 0 })], jobStart: at(0), jobEnd: null, now: T0 + 1000 });
    expect(rows[0]!.segments).toEqual([]);
    expect(rows[0]!.widthPct).toBe(0);
  });

  it('labels loop pages and axis ticks', () => {
    expect(iterationPageLabel({ offset: 0, limit: 100, recorded: 5000, total: 5000, hasMore: true, nextOffset: 100, succeededWithoutRows: 0 }, 100)).toBe(
      'iterations 1–100 of 5,000',
    );
    expect(iterationPageLabel({ offset: 100, limit: 100, recorded: 120, total: 5000, hasMore: false, nextOffset: null, succeededWithoutRows: 4880 }, 20)).toBe(
      'iterations 101–120 of 120 recorded · 5,000 items (4,880 succeeded without rows)',
    );
    const ticks = axisTicks(60_000, 6);
    expect(ticks[0]).toEqual({ offsetMs: 0, pct: 0 });
    expect(ticks[1]!.offsetMs).toBe(10_000);
    expect(ticks.at(-1)!.pct).toBe(100);
  });
});
