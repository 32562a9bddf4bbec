import { describe, expect, it } from 'vitest';
import { MASKED, maskInput, maskJobView, maskStreamEntries, maskStreamEntry, replayJobEvents, type JobEvent } from '../../src/read/index.js';

const PHI = ['input.memberId'];
const ts = new Date('2026-01-01T00:00:00Z');

function row(seq: number, kind: string, message: string, data: unknown = null, stepIndex: number | null = 0, path: string | null = null): JobEvent {
  return { seq, ts, kind, level: 'INFO', stepIndex, message, data, path };
}

describe('maskStreamEntry', () => {
  it('masks a log line’s text and its whole data', () => {
    const masked = maskStreamEntry(row(1, 'LOG', 'looking up M-1234', { memberId: 'M-1234', n: 3 }));
    expect(masked).toMatchObject({ seq: 1, kind: 'LOG', message: MASKED, data: MASKED, phiMasked: true });
  });

  it('keeps a step’s id and duration but masks its output', () => {
    const masked = maskStreamEntry(row(2, 'STEP_COMPLETED', 'check', { durationMs: 12, output: { member: 'M-1234' } }));
    expect(masked).toMatchObject({ message: 'check', data: { durationMs: 12, output: MASKED }, phiMasked: true });
    // A scalar output is masked too.
    expect(maskStreamEntry(row(2, 'STEP_COMPLETED', 'check', { durationMs: 1, output: 'M-1234' })).data).toEqual({ durationMs: 1, output: MASKED });
  });

  it('masks a failure’s message and the data a step added, keeping code, path and counters', () => {
    const masked = maskStreamEntry(
      row(3, 'STEP_FAILED', 'member M-1234 not found', { durationMs: 5, code: 'HTTP_STATUS', path: 'inv[2].call', attempt: 2, body: 'M-1234', status: 404 }),
    );
    expect(masked.message).toBe(MASKED);
    expect(masked.data).toEqual({ durationMs: 5, code: 'HTTP_STATUS', path: 'inv[2].call', attempt: 2, body: MASKED, status: MASKED });
  });

  it('masks an object or array under a key that is safe only for scalars', () => {
    expect(maskStreamEntry(row(4, 'STEP_FAILED', '', { code: { memberId: 'M-1234' } })).data).toEqual({ code: MASKED });
    expect(maskStreamEntry(row(4, 'JOB_PARTIAL_SUCCESS', 'run 1 completed; failed steps: a', { failedSteps: ['a'] })).data).toEqual({ failedSteps: ['a'] });
  });

  it('leaves a row with nothing to mask as it is (no phiMasked)', () => {
    const started = row(5, 'STEP_STARTED', 'check', { attempt: 2 });
    expect(maskStreamEntry(started)).toBe(started);
    const plain = row(6, 'JOB_STARTED', 'run 1 started', null, null);
    expect(maskStreamEntry(plain)).toBe(plain);
    expect(maskStreamEntry(row(7, 'STEP_COMPLETED', 'n', { durationMs: 1, output: null }))).not.toHaveProperty('phiMasked');
  });

  it('masks the message and whole data of kinds it does not know, and those whose message carries job data', () => {
    expect(maskStreamEntry(row(8, 'SOMETHING_NEW', 'M-1234', { durationMs: 1 }))).toMatchObject({ message: MASKED, data: MASKED, phiMasked: true });
    expect(maskStreamEntry(row(9, 'APPROVAL_REQUESTED', 'Approve Jane Roe', { approvalId: 'a1', title: 'Approve Jane Roe' }))).toMatchObject({
      message: MASKED,
      data: { approvalId: 'a1', title: MASKED },
    });
    expect(maskStreamEntry(row(10, 'JOB_FAILED', 'step check failed: M-1234', { code: 'X' }, null)).message).toBe(MASKED);
  });

  it('does not change the rows it is given', () => {
    const original = row(11, 'LOG', 'M-1234', { memberId: 'M-1234' });
    const copy = structuredClone(original);
    maskStreamEntry(original);
    expect(original).toEqual(copy);
  });
});

describe('maskStreamEntries', () => {
  it('returns the rows unchanged for a workflow without PHI paths', () => {
    const rows = [row(1, 'LOG', 'M-1234', { memberId: 'M-1234' })];
    expect(maskStreamEntries(rows, [])).toEqual(rows);
    expect(maskStreamEntries(rows, undefined)[0]).toBe(rows[0]);
  });

  it('masks every row of a PHI workflow, whichever path is declared', () => {
    const rows = [row(1, 'LOG', 'M-1234', { memberId: 'M-1234' }), row(2, 'STEP_COMPLETED', 'check', { durationMs: 1, output: 'M-1234' })];
    expect(JSON.stringify(maskStreamEntries(rows, ['result']))).not.toContain('M-1234');
    expect(JSON.stringify(maskStreamEntries(rows, PHI))).not.toContain('M-1234');
  });

  it('gives a replay that keeps the step structure and masks outputs and error messages', () => {
    const events = [
      row(1, 'JOB_STARTED', 'run 1 started', null, null),
      row(2, 'STEP_STARTED', 'check'),
      row(3, 'STEP_COMPLETED', 'check', { durationMs: 4, output: { member: 'M-1234' } }),
      row(4, 'STEP_STARTED', 'pick', null, 1),
      row(5, 'BRANCH_TAKEN', 'then', { branch: 'then' }, 1),
      row(6, 'STEP_STARTED', 'call', null, 1, 'pick.then.call'),
      row(7, 'STEP_FAILED', 'no member M-1234', { durationMs: 2, code: 'HTTP_STATUS' }, 1, 'pick.then.call'),
      row(8, 'STEP_FAILED', 'no member M-1234', { durationMs: 3, code: 'HTTP_STATUS', path: 'pick.then.call' }, 1),
      row(9, 'JOB_FAILED', 'step pick failed: no member M-1234', { code: 'HTTP_STATUS' }, null),
    ];
    const state = replayJobEvents(maskStreamEntries(events, PHI));
    expect(JSON.stringify(state)).not.toContain('M-1234');
    expect(state.status).toBe('FAILED');
    expect(state.error).toEqual({ code: 'HTTP_STATUS', message: MASKED });
    expect(state.steps[0]).toMatchObject({ index: 0, name: 'check', status: 'COMPLETED', durationMs: 4, output: MASKED });
    expect(state.steps[1]).toMatchObject({ index: 1, name: 'pick', status: 'FAILED', branch: 'then', error: { code: 'HTTP_STATUS', message: MASKED, path: 'pick.then.call' } });
    expect(state.steps[1]!.branches![0]!.steps[0]).toMatchObject({ name: 'call', status: 'FAILED', error: { code: 'HTTP_STATUS', message: MASKED } });
  });
});

describe('maskJobView', () => {
  const view = {
    id: 'j1',
    input: { memberId: 'M-1234', plan: 'gold', patient: { name: 'Jane Roe', age: 40 } },
    result: { eligible: true, member: 'M-1234' },
    error: { code: 'X', message: 'no member M-1234', step: 'check' },
  };

  it('masks the declared input paths, the whole result and the error message', () => {
    const masked = maskJobView(view, ['input.memberId', 'input.patient.name']);
    expect(masked).toEqual({
      id: 'j1',
      input: { memberId: MASKED, plan: 'gold', patient: { name: MASKED, age: 40 } },
      result: MASKED,
      error: { code: 'X', message: MASKED, step: 'check' },
      phiMasked: true,
    });
    expect(view.input.memberId).toBe('M-1234'); // the view given is not changed
  });

  it('masks a declared object whole, and the whole input when `input` is declared', () => {
    expect(maskInput(view.input, ['input.patient'])).toEqual({ memberId: 'M-1234', plan: 'gold', patient: MASKED });
    expect(maskInput(view.input, ['input'])).toBe(MASKED);
  });

  it('ignores paths that are absent, null or under a non-object', () => {
    const input = { memberId: null, plan: 'gold', tags: ['a'] };
    expect(maskInput(input, ['input.memberId', 'input.absent.deeper', 'input.plan.x', 'input.tags.length', 'result.x'])).toEqual(input);
    expect(maskJobView({ input: null, result: null, error: null }, ['result'])).toEqual({ input: null, result: null, error: null, phiMasked: true });
  });

  it('returns the view itself for a workflow without PHI paths', () => {
    expect(maskJobView(view, [])).toBe(view);
    expect(maskJobView(view, undefined)).not.toHaveProperty('phiMasked');
  });
});
