import { describe, expect, it } from 'vitest';
import { changedPaths, diffStates, sameValue } from '../../atlas/src/view/state-diff.js';
import type { JobStateJson } from '../../atlas/src/view/timeline-types.js';

const base: JobStateJson = {
  atSeq: 5,
  status: 'RUNNING',
  currentStep: 1,
  currentPath: null,
  startedAt: '2026-01-01T00:00:00.000Z',
  endedAt: null,
  retryCount: 0,
  error: null,
  steps: [
    { index: 0, name: 'fetch', status: 'COMPLETED', attempts: 1, startedAt: 'a', endedAt: 'b', durationMs: 10, error: null, output: { id: 1, tags: ['x'] } },
    { index: 1, name: 'each', status: 'RUNNING', attempts: 1, startedAt: 'c', endedAt: null, durationMs: null, error: null,
      iterations: [{ index: 0, path: 'each[0]', status: 'RUNNING', startedAt: 'c', endedAt: null, error: null, steps: [
        { path: 'each[0].call', name: 'call', status: 'RUNNING', attempts: 1, startedAt: 'c', endedAt: null, durationMs: null, error: null },
      ] }] },
  ],
};

describe('state diff', () => {
  it('finds nothing between equal states, whatever the key order', () => {
    const copy = JSON.parse(JSON.stringify(base)) as JobStateJson;
    copy.steps[0]!.output = { tags: ['x'], id: 1 };
    expect(diffStates(base, copy)).toEqual([]);
    expect(sameValue({ a: 1, b: undefined }, { a: 1 })).toBe(true);
  });

  it('lists changed fields of the job, of steps inside blocks and of iterations', () => {
    const next = JSON.parse(JSON.stringify(base)) as JobStateJson;
    next.atSeq = 9;
    next.currentPath = 'each[0].call';
    const it0 = next.steps[1]!.iterations![0]!;
    it0.status = 'FAILED';
    it0.error = { code: 'BOOM', message: 'no' };
    it0.steps[0]!.status = 'FAILED';
    it0.steps[0]!.attempts = 2;
    const changes = diffStates(base, next);
    expect(changes.map((c) => [c.path, c.field, c.kind])).toEqual([
      ['', 'currentPath', 'changed'],
      ['each[0]', 'status', 'changed'],
      ['each[0]', 'error', 'changed'],
      ['each[0].call', 'status', 'changed'],
      ['each[0].call', 'attempts', 'changed'],
    ]);
    expect(changes[3]).toMatchObject({ before: 'RUNNING', after: 'FAILED' });
    expect([...changedPaths(changes)]).toEqual(['', 'each[0]', 'each[0].call']);
  });

  it('sees an output change deep inside a value', () => {
    const next = JSON.parse(JSON.stringify(base)) as JobStateJson;
    next.steps[0]!.output = { id: 1, tags: ['y'] };
    expect(diffStates(base, next)).toEqual([{ path: 'fetch', field: 'output', kind: 'changed', before: { id: 1, tags: ['x'] }, after: { id: 1, tags: ['y'] } }]);
  });

  it('reports steps that appear going forward and disappear going back', () => {
    const next = JSON.parse(JSON.stringify(base)) as JobStateJson;
    next.steps.push({ index: 2, name: 'save', status: 'RUNNING', attempts: 1, startedAt: 'd', endedAt: null, durationMs: null, error: null });
    expect(diffStates(base, next).map((c) => [c.path, c.kind])).toEqual([['save', 'added']]);
    expect(diffStates(next, base).map((c) => [c.path, c.kind])).toEqual([['save', 'removed']]);
  });

  it('treats every step as added without a previous state', () => {
    expect(diffStates(null, base).map((c) => c.path)).toEqual(['fetch', 'each', 'each[0]', 'each[0].call']);
  });
});
