import { describe, expect, it } from 'vitest';
import { applyJobEvent, initialJobState, pageJobState, pageSteps, parseStepPath, replayJobEvents, type JobEvent } from '../../src/read/index.js';
import { collectStepMetrics, metricStepPath } from '../../src/store/step-metrics.js';
import { STREAM_KINDS, type StreamRow } from '../../src/store/index.js';

/** Events as the engine writes them for blocks (shapes taken from real streams of the blocks tests). */
function stream() {
  let seq = 0;
  const t0 = Date.UTC(2026, 0, 1);
  const events: JobEvent[] = [];
  const ev = (kind: string, stepIndex: number | null, path: string | null, message: string, data: unknown = null, level = 'INFO') => {
    seq++;
    events.push({ seq, ts: new Date(t0 + seq * 1000), kind, level, stepIndex, message, data, path });
    return seq;
  };
  return { events, ev };
}

describe('parseStepPath', () => {
  it('splits branches, iterations and nested blocks', () => {
    expect(parseStepPath('route.then.big')).toEqual({
      top: 'route',
      hops: [{ list: { kind: 'branch', label: 'then', path: 'route.then' }, step: { id: 'big', path: 'route.then.big' } }],
      end: 'step',
    });
    expect(parseStepPath('inv[17].call')).toEqual({
      top: 'inv',
      hops: [{ list: { kind: 'iteration', index: 17, path: 'inv[17]' }, step: { id: 'call', path: 'inv[17].call' } }],
      end: 'step',
    });
    expect(parseStepPath('inv[3]')).toMatchObject({ end: 'list', hops: [{ list: { kind: 'iteration', index: 3 }, step: null }] });
    const deep = parseStepPath('a.crm.b[2].c.0.d')!;
    expect(deep.hops.map((h) => [h.list.path, h.step?.path])).toEqual([
      ['a.crm', 'a.crm.b'],
      ['a.crm.b[2]', 'a.crm.b[2].c'],
      ['a.crm.b[2].c.0', 'a.crm.b[2].c.0.d'],
    ]);
  });

  it('refuses what the engine never writes', () => {
    for (const bad of ['', 'a..b', 'a[1][2].c', 'a.then.1', '1.then.x', 'a.b c.d', 'a[x].b']) expect(parseStepPath(bad)).toBeNull();
  });
});

describe('replayJobEvents with blocks', () => {
  it('nests branches and loop iterations under their top-level block without touching the block itself', () => {
    const { events, ev } = stream();
    ev('JOB_STARTED', null, null, 'run 1 started');
    ev('STEP_STARTED', 0, null, 'route');
    ev('BRANCH_TAKEN', 0, null, 'then', { branch: 'then' });
    ev('STEP_STARTED', 0, 'route.then.big', 'big');
    ev('STEP_COMPLETED', 0, 'route.then.big', 'big', { output: 'review', durationMs: 0.2 });
    ev('STEP_COMPLETED', 0, null, 'route', { output: { branch: 'then', output: 'review' }, durationMs: 3 });
    ev('STEP_STARTED', 1, null, 'enrich');
    ev('STEP_STARTED', 1, 'enrich.crm.score', 'score');
    ev('STEP_STARTED', 1, 'enrich.billing.a', 'a');
    ev('STEP_FAILED', 1, 'enrich.billing.a', 'HTTP 503', { code: 'HTTP_STATUS', durationMs: 4 }, 'ERROR');
    ev('RETRY_SCHEDULED', 1, 'enrich.billing.a', 'a', { attempt: 2, of: 2, delayMs: 10 }, 'WARN');
    ev('STEP_COMPLETED', 1, 'enrich.crm.score', 'score', { output: 42, durationMs: 1 });
    ev('STEP_STARTED', 1, 'enrich.billing.a', 'a', { attempt: 2 });
    ev('STEP_COMPLETED', 1, 'enrich.billing.a', 'a', { output: 1, durationMs: 2 });
    ev('STEP_COMPLETED', 1, null, 'enrich', { output: { crm: 42, billing: 1 }, durationMs: 20 });
    ev('STEP_STARTED', 2, null, 'inv');
    ev('ITERATION_STARTED', 2, 'inv[0]', '[0]', { index: 0 });
    ev('STEP_STARTED', 2, 'inv[0].inner', 'inner');
    ev('ITERATION_STARTED', 2, 'inv[0].inner[0]', '[0]', { index: 0 });
    ev('STEP_STARTED', 2, 'inv[0].inner[0].call', 'call');
    ev('STEP_FAILED', 2, 'inv[0].inner[0].call', 'boom', { code: 'EXPRESSION_ERROR', durationMs: 1 }, 'ERROR');
    ev('ITERATION_FAILED', 2, 'inv[0].inner[0]', 'boom', { code: 'EXPRESSION_ERROR', path: 'inv[0].inner[0].call', index: 0 }, 'ERROR');
    ev('STEP_FAILED', 2, 'inv[0].inner', 'iteration inv[0].inner[0].call failed: boom', { code: 'EXPRESSION_ERROR', path: 'inv[0].inner[0].call', durationMs: 2 }, 'ERROR');
    ev('ITERATION_FAILED', 2, 'inv[0]', 'iteration inv[0].inner[0].call failed: boom', { code: 'EXPRESSION_ERROR', path: 'inv[0].inner[0].call', index: 0 }, 'ERROR');
    ev('STEP_FAILED', 2, null, 'iteration inv[0].inner[0].call failed', { code: 'EXPRESSION_ERROR', path: 'inv[0].inner[0].call', durationMs: 5 }, 'ERROR');
    ev('JOB_FAILED', null, null, 'step inv[0].inner[0].call failed', { code: 'EXPRESSION_ERROR' }, 'ERROR');

    const s = replayJobEvents(events);
    expect(s).toMatchObject({ status: 'FAILED', currentStep: null, currentPath: null, error: { code: 'EXPRESSION_ERROR' } });
    const [route, enrich, inv] = s.steps;
    // The block's own state is its own rows only: the rows inside it do not rename or recount it.
    expect(route).toMatchObject({ index: 0, name: 'route', status: 'COMPLETED', attempts: 1, durationMs: 3, branch: 'then' });
    expect(route!.branches).toEqual([
      {
        label: 'then',
        path: 'route.then',
        steps: [
          {
            path: 'route.then.big',
            name: 'big',
            status: 'COMPLETED',
            attempts: 1,
            startedAt: new Date(Date.UTC(2026, 0, 1) + 4000),
            endedAt: new Date(Date.UTC(2026, 0, 1) + 5000),
            durationMs: 0.2,
            error: null,
            output: 'review',
          },
        ],
      },
    ]);
    expect(enrich).toMatchObject({ name: 'enrich', attempts: 1, status: 'COMPLETED' });
    expect(enrich!.branches!.map((b) => b.label)).toEqual(['crm', 'billing']);
    expect(enrich!.branches![1]!.steps[0]).toMatchObject({ name: 'a', status: 'COMPLETED', attempts: 2, durationMs: 2, error: null, output: 1 });
    expect(inv).toMatchObject({ name: 'inv', status: 'FAILED', attempts: 1, error: { code: 'EXPRESSION_ERROR', path: 'inv[0].inner[0].call' } });
    const it0 = inv!.iterations![0]!;
    expect(it0).toMatchObject({ index: 0, path: 'inv[0]', status: 'FAILED', error: { code: 'EXPRESSION_ERROR', path: 'inv[0].inner[0].call' } });
    const inner = it0.steps[0]!;
    expect(inner).toMatchObject({ path: 'inv[0].inner', name: 'inner', status: 'FAILED', attempts: 1 });
    expect(inner.iterations![0]!.steps[0]).toMatchObject({ path: 'inv[0].inner[0].call', status: 'FAILED', error: { code: 'EXPRESSION_ERROR', message: 'boom' } });
  });

  it('gives the nested state at any sequence number, and applyJobEvent agrees with the replay without changing its input', () => {
    const { events, ev } = stream();
    ev('JOB_STARTED', null, null, 'run 1 started');
    ev('STEP_STARTED', 0, null, 'enrich');
    ev('STEP_STARTED', 0, 'enrich.crm.score', 'score');
    ev('STEP_STARTED', 0, 'enrich.kyc.check', 'check');
    const waitSeq = ev('WAITING', 0, 'enrich.kyc.check', 'check', { signal: 'approved' });
    // The other branch finishes after the WAITING row; the job then suspends (no row says so).
    const scoreSeq = ev('STEP_COMPLETED', 0, 'enrich.crm.score', 'score', { output: 1, durationMs: 1 });
    ev('SIGNAL_RECEIVED', 0, 'enrich.kyc.check', 'approved');
    const doneSeq = ev('STEP_COMPLETED', 0, 'enrich.kyc.check', 'check', { output: { ok: true }, durationMs: 9000 });
    ev('STEP_COMPLETED', 0, null, 'enrich', { durationMs: 9100 });
    ev('JOB_COMPLETED', null, null, 'done');
    const at = (n: number) => replayJobEvents(events.filter((e) => e.seq <= n));
    expect(at(3)).toMatchObject({ status: 'RUNNING', currentStep: 0, currentPath: 'enrich.crm.score' });
    expect(at(waitSeq)).toMatchObject({ status: 'WAITING', currentStep: 0, currentPath: 'enrich.kyc.check' });
    expect(at(waitSeq).steps[0]!.branches![1]!.steps[0]!.status).toBe('WAITING');
    expect(at(scoreSeq)).toMatchObject({ status: 'WAITING' });
    expect(at(doneSeq)).toMatchObject({ status: 'RUNNING', currentStep: 0, currentPath: null });
    expect(at(doneSeq + 2)).toMatchObject({ status: 'COMPLETED', currentStep: null });

    let step = initialJobState();
    for (const e of events) {
      const before = JSON.stringify(step);
      const next = applyJobEvent(step, e);
      expect(JSON.stringify(step)).toBe(before);
      step = next;
      expect(step).toEqual(replayJobEvents(events.filter((x) => x.seq <= e.seq)));
    }
  });

  it('keeps a sub-workflow step its child job, and an iteration past the first 100 that failed without ITERATION_STARTED', () => {
    const { events, ev } = stream();
    ev('JOB_STARTED', null, null, 'run 1 started');
    ev('STEP_STARTED', 0, null, 'kids');
    ev('ITERATION_STARTED', 0, 'kids[0]', '[0]', { index: 0 });
    ev('STEP_STARTED', 0, 'kids[0].call', 'call');
    ev('CHILD_JOB_STARTED', 0, 'kids[0].call', 'run 2', { jobId: 'c-1', runNumber: 2, workflowId: 'w-1' });
    ev('WAITING', 0, 'kids[0].call', 'call', { childJobId: 'c-1' });
    ev('ITERATION_STARTED', 0, 'kids[0]', '[0]', { index: 0 });
    ev('CHILD_JOB_COMPLETED', 0, 'kids[0].call', 'run 2 COMPLETED', { jobId: 'c-1', status: 'COMPLETED' });
    ev('STEP_COMPLETED', 0, 'kids[0].call', 'call', { output: 10, durationMs: 500 });
    ev('ITERATION_COMPLETED', 0, 'kids[0]', '[0]', { index: 0 });
    // A quiet iteration (index ≥ 100) writes its held rows only because it failed.
    ev('STEP_STARTED', 0, 'kids[150].call', 'call');
    ev('STEP_FAILED', 0, 'kids[150].call', 'child failed', { code: 'CHILD_JOB_FAILED', durationMs: 3 }, 'ERROR');
    ev('ITERATION_FAILED', 0, 'kids[150]', 'child failed', { index: 150, code: 'CHILD_JOB_FAILED', path: 'kids[150].call' }, 'ERROR');
    ev('MAP_PROGRESS', 0, null, '250 of 250', { total: 250, succeeded: 249, failed: 1, running: 0 });
    ev('STEP_COMPLETED', 0, null, 'kids', { durationMs: 900, outputBytes: 5000 });
    const s = replayJobEvents(events);
    const kids = s.steps[0]!;
    expect(kids.progress).toEqual({ total: 250, succeeded: 249, failed: 1, running: 0 });
    expect(kids.iterations!.map((i) => [i.index, i.status])).toEqual([
      [0, 'COMPLETED'],
      [150, 'FAILED'],
    ]);
    expect(kids.iterations![0]!.steps[0]).toMatchObject({ name: 'call', status: 'COMPLETED', childJob: { jobId: 'c-1', runNumber: 2, workflowId: 'w-1', status: 'COMPLETED' } });
    expect(kids.iterations![1]!.startedAt).toEqual(events[10]!.ts);
    expect(s.status).toBe('RUNNING');
  });

  it('leaves rows with a path it cannot read out, and top-level rows as before', () => {
    const { events, ev } = stream();
    ev('STEP_STARTED', 0, null, 'a');
    ev('STEP_COMPLETED', 0, 'a..b', 'b', { durationMs: 1 });
    ev('ITERATION_STARTED', 0, 'a.then.b', 'x');
    ev('SCREENSHOT', 0, 'a[1].b', 'shot');
    const s = replayJobEvents(events);
    expect(s.steps).toEqual([{ index: 0, name: 'a', status: 'RUNNING', attempts: 1, startedAt: events[0]!.ts, endedAt: null, durationMs: null, error: null }]);
  });
});

describe('pageSteps', () => {
  function loopState(recorded: number[], failed: number[], progress?: { total: number; succeeded: number; failed: number; running: number }) {
    const { events, ev } = stream();
    ev('STEP_STARTED', 0, null, 'inv');
    for (const i of recorded) {
      ev('ITERATION_STARTED', 0, `inv[${i}]`, `[${i}]`, { index: i });
      ev('STEP_STARTED', 0, `inv[${i}].t`, 't');
      if (failed.includes(i)) ev('ITERATION_FAILED', 0, `inv[${i}]`, 'bad', { index: i, code: 'X', path: `inv[${i}].t` }, 'ERROR');
      else ev('ITERATION_COMPLETED', 0, `inv[${i}]`, `[${i}]`, { index: i });
    }
    if (progress) ev('MAP_PROGRESS', 0, null, 'p', progress);
    ev('STEP_COMPLETED', 0, null, 'inv', { durationMs: 1 });
    return replayJobEvents(events);
  }

  it('cuts every loop to a page and says what is left, including the iterations without rows', () => {
    const indexes = [...Array.from({ length: 100 }, (_, i) => i), 150, 200];
    const state = loopState(indexes, [5, 150, 200], { total: 250, succeeded: 247, failed: 3, running: 0 });
    const [first] = pageSteps(state.steps, { offset: 0, limit: 50 });
    expect(first!.iterations!.map((i) => i.index)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(first!.iterationPage).toEqual({ offset: 0, limit: 50, recorded: 102, total: 250, hasMore: true, nextOffset: 50, succeededWithoutRows: 148 });
    const [last] = pageSteps(state.steps, { loop: 'inv', offset: 100, limit: 50 });
    expect(last!.iterations!.map((i) => [i.index, i.status])).toEqual([
      [150, 'FAILED'],
      [200, 'FAILED'],
    ]);
    expect(last!.iterationPage).toMatchObject({ offset: 100, hasMore: false, nextOffset: null });
    // An offset for another loop leaves this one at its start.
    expect(pageSteps(state.steps, { loop: 'other', offset: 100, limit: 10 })[0]!.iterationPage).toMatchObject({ offset: 0, nextOffset: 10 });
    // The state itself keeps every recorded iteration.
    expect(state.steps[0]!.iterations).toHaveLength(102);
  });

  it('a small loop that completed knows its total; steps without blocks are returned unchanged', () => {
    const state = loopState([0, 1, 2], []);
    expect(pageJobState(state, { offset: 0, limit: 2 }).steps[0]!.iterationPage).toEqual({
      offset: 0,
      limit: 2,
      recorded: 3,
      total: 3,
      hasMore: true,
      nextOffset: 2,
      succeededWithoutRows: 0,
    });
    const plain = replayJobEvents([{ seq: 1, ts: new Date(0), kind: 'STEP_STARTED', level: 'INFO', stepIndex: 0, message: 'a', data: null }]);
    expect(pageJobState(plain, { offset: 0, limit: 50 })).toEqual(plain);
  });
});

describe('step metrics of nested steps', () => {
  it('metricStepPath leaves loop indexes out and keeps branch labels', () => {
    expect(metricStepPath('inv[17].call')).toBe('inv[].call');
    expect(metricStepPath('a[2].b[5].c')).toBe('a[].b[].c');
    expect(metricStepPath('route.then.big')).toBe('route.then.big');
    expect(metricStepPath('src.1.p')).toBe('src.1.p');
  });

  it("counts a loop's iterations of one step into one group, apart from the block and the top-level steps", () => {
    const base = { organizationId: 'o', jobId: 'j', workflowId: 'w', level: 3, tsMs: Date.UTC(2026, 0, 5, 10) };
    const rows: StreamRow[] = [
      { ...base, seq: 1, stepIndex: 0, kind: STREAM_KINDS.STEP_COMPLETED, message: 'inv', data: { durationMs: 10 }, path: null },
      { ...base, seq: 2, stepIndex: 0, kind: STREAM_KINDS.STEP_COMPLETED, message: 'call', data: { durationMs: 2 }, path: 'inv[17].call' },
      { ...base, seq: 3, stepIndex: 0, kind: STREAM_KINDS.STEP_FAILED, message: 'bad', data: { durationMs: 3, code: 'X' }, path: 'inv[3].call' },
      { ...base, seq: 4, stepIndex: 0, kind: STREAM_KINDS.STEP_STARTED, message: 'call', data: null, path: 'inv[4].call' },
      { ...base, seq: 5, stepIndex: 0, kind: STREAM_KINDS.STEP_COMPLETED, message: 'undo', data: { compensation: 'undo' }, path: 'inv[4].call' },
    ];
    const day = collectStepMetrics(rows).filter((g) => g.period === 'DAY');
    expect(day.map((g) => [g.stepIndex, g.path, g.executions, g.successes, g.failures, g.durationMs])).toEqual([
      [0, '', 1, 1, 0, 10],
      [0, 'inv[].call', 2, 1, 1, 5],
    ]);
    expect(day[1]!.name).toBe('call');
    expect([...day[1]!.errors.values()]).toEqual([{ code: 'X', message: 'bad', count: 1 }]);
  });
});
