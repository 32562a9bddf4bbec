import { describe, expect, it } from 'vitest';
import {
  bucketValue,
  coverRange,
  durationBucket,
  HISTOGRAM_BUCKETS,
  HISTOGRAM_MAX_RELATIVE_ERROR,
  histogramBins,
  histogramOf,
  histogramPercentile,
  histogramPercentiles,
  mergeHistograms,
  parseHistogram,
  replayJobEvents,
  type JobEvent,
} from '../../src/read/index.js';

describe('duration histogram', () => {
  it('reads every value back within 4.88 % (values ≥ 0.01 ms)', () => {
    expect(HISTOGRAM_MAX_RELATIVE_ERROR).toBeLessThan(0.05);
    for (let i = 0; i < 5000; i++) {
      const v = 0.01 * Math.exp((i / 5000) * 27); // 0.01 ms … ~5 days
      const back = bucketValue(durationBucket(v));
      expect(Math.abs(back - v) / v).toBeLessThanOrEqual(HISTOGRAM_MAX_RELATIVE_ERROR + 1e-12);
    }
  });

  it('puts values below 0.01 ms in bucket 0 (read as 0) and clamps the longest', () => {
    expect(durationBucket(0)).toBe(0);
    expect(durationBucket(0.0099)).toBe(0);
    expect(bucketValue(0)).toBe(0);
    expect(durationBucket(0.01)).toBe(1);
    expect(durationBucket(1e15)).toBe(HISTOGRAM_BUCKETS - 1);
  });

  it('buckets are monotonic: a larger value never lands in a smaller bucket', () => {
    let prev = 0;
    for (let v = 0; v < 100_000; v += 7.3) {
      const b = durationBucket(v);
      expect(b).toBeGreaterThanOrEqual(prev);
      prev = b;
    }
  });

  it('nearest-rank percentiles from the histogram are within the bound of the exact ones', () => {
    let seed = 7;
    const random = () => ((seed = (seed * 16807) % 2147483647) / 2147483647);
    const values = Array.from({ length: 10_000 }, () => Math.exp(random() * 10));
    const sorted = [...values].sort((a, b) => a - b);
    const h = histogramOf(values);
    for (const p of [0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 1]) {
      const exact = sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)]!;
      const got = histogramPercentile(h, p)!;
      expect(Math.abs(got - exact) / exact).toBeLessThanOrEqual(HISTOGRAM_MAX_RELATIVE_ERROR + 1e-12);
    }
  });

  it('merging equals the histogram of all values, in any order', () => {
    const a = [1, 2, 3, 500, 7000];
    const b = [2, 2, 90, 0, 123_456];
    expect(mergeHistograms(histogramOf(a), histogramOf(b))).toEqual(histogramOf([...b, ...a]));
    expect(mergeHistograms(histogramOf(b), histogramOf(a))).toEqual(histogramOf([...a, ...b]));
  });

  it('parses the stored sparse form and ignores junk', () => {
    const h = parseHistogram({ '3': 2, '10': '5', x: 1, '-1': 4, '7': 0 });
    expect([...h.entries()].sort()).toEqual([
      [10, 5],
      [3, 2],
    ]);
    expect(parseHistogram(null).size).toBe(0);
    expect(histogramPercentiles(new Map())).toEqual({ p50: null, p95: null, p99: null });
  });

  it('groups buckets into ≈ 1.95× bins for drawing: every value lands in the bin that spans it, nothing is lost', () => {
    const values = [0.001, 3, 3.4, 5, 120, 125, 4_000, 4_100, 3_600_000];
    const bins = histogramBins(histogramOf(values));
    expect(bins.reduce((n, b) => n + b.count, 0)).toBe(values.length);
    expect(bins[0]).toEqual({ fromMs: 0, toMs: 0.01, count: 1 });
    for (const v of values.slice(1)) {
      const bin = bins.find((b) => b.fromMs <= v && v < b.toMs);
      expect(bin, `a bin spans ${v}`).toBeDefined();
      expect(bin!.toMs / bin!.fromMs).toBeCloseTo(1.1 ** 7, 2);
    }
    expect(bins.map((b) => b.fromMs)).toEqual([...bins.map((b) => b.fromMs)].sort((a, b) => a - b));
    expect(histogramBins(new Map())).toEqual([]);
  });
});

describe('coverRange', () => {
  const HOUR = 3600_000;
  function hoursCovered(from: Date, to: Date): number[] {
    const out: number[] = [];
    for (const s of coverRange(from, to)) for (let t = s.from.getTime(); t < s.to.getTime(); t += HOUR) out.push(t);
    return out.sort((x, y) => x - y);
  }

  it('covers every hour of the widened range exactly once, months in the middle', () => {
    const cases: [string, string][] = [
      ['2026-01-20T05:30:00Z', '2026-04-05T10:10:00Z'],
      ['2026-03-01T00:00:00Z', '2026-04-01T00:00:00Z'],
      ['2026-03-05T10:00:00Z', '2026-03-05T12:00:00Z'],
      ['2026-02-27T22:00:00Z', '2026-03-02T01:00:00Z'],
      ['2025-01-01T00:00:00Z', '2026-01-01T00:00:00Z'],
    ];
    for (const [f, t] of cases) {
      const from = new Date(f);
      const to = new Date(t);
      const start = Math.floor(from.getTime() / HOUR) * HOUR;
      const end = Math.ceil(to.getTime() / HOUR) * HOUR;
      const expected = Array.from({ length: (end - start) / HOUR }, (_, i) => start + i * HOUR);
      expect(hoursCovered(from, to)).toEqual(expected);
    }
    const year = coverRange(new Date('2025-01-01T00:00:00Z'), new Date('2026-01-01T00:00:00Z'));
    expect(year).toEqual([{ period: 'MONTH', from: new Date('2025-01-01T00:00:00Z'), to: new Date('2026-01-01T00:00:00Z') }]);
    // A ragged year: ≤ 12 months + ≤ 61 days + ≤ 46 hours of rows per key.
    const ragged = coverRange(new Date('2025-01-20T05:30:00Z'), new Date('2026-01-19T17:00:00Z'));
    expect(ragged.map((s) => s.period)).toEqual(['HOUR', 'DAY', 'MONTH', 'DAY', 'HOUR']);
  });

  it('is empty for an empty or inverted range', () => {
    expect(coverRange(new Date('2026-01-01T00:00:00Z'), new Date('2026-01-01T00:00:00Z'))).toEqual([]);
    expect(coverRange(new Date('2026-01-02T00:00:00Z'), new Date('2026-01-01T00:00:00Z'))).toEqual([]);
  });
});

describe('replayJobEvents (event sourcing)', () => {
  let seq = 0;
  const t0 = Date.UTC(2026, 0, 1);
  const ev = (kind: string, stepIndex: number | null, message: string, data: unknown = null, level = 'INFO'): JobEvent => {
    seq++;
    return { seq, ts: new Date(t0 + seq * 1000), kind, level, stepIndex, message, data };
  };
  seq = 0;
  const events: JobEvent[] = [
    ev('JOB_STARTED', null, 'run 1 started'),
    ev('STEP_STARTED', 0, 'fetch'),
    ev('STEP_FAILED', 0, 'HTTP 503', { durationMs: 12, code: 'HTTP_503', attempt: 1 }, 'ERROR'),
    ev('RETRY_SCHEDULED', 0, 'fetch', { attempt: 2, of: 3, delayMs: 100 }, 'WARN'),
    ev('STEP_STARTED', 0, 'fetch', { attempt: 2 }),
    ev('STEP_COMPLETED', 0, 'fetch', { durationMs: 8, output: { ok: true } }),
    ev('LOG', 1, 'looking', null, 'WARN'),
    ev('STEP_STARTED', 1, 'wait-approval'),
    ev('WAITING', 1, 'wait-approval', { signal: 'approve' }),
    ev('SIGNAL_RECEIVED', 1, 'approve'),
    ev('STEP_COMPLETED', 1, 'wait-approval', { durationMs: 5000 }),
    ev('STEP_STARTED', 2, 'submit'),
    ev('STEP_FAILED', 2, 'bad request', { durationMs: 3, code: 'HTTP_400' }, 'ERROR'),
    ev('STEP_STARTED', 0, 'undo-fetch', { compensation: true }),
    ev('STEP_COMPLETED', 0, 'undo-fetch', { durationMs: 1, compensation: true }),
    ev('COMPENSATED', 0, 'fetch', { compensation: 'undo-fetch', ok: true }),
    ev('JOB_FAILED', null, 'step submit failed: bad request', { code: 'HTTP_400' }, 'ERROR'),
  ];

  it('rebuilds the final state and timeline', () => {
    const s = replayJobEvents(events);
    expect(s).toMatchObject({ atSeq: 17, status: 'FAILED', currentStep: null, error: { code: 'HTTP_400' } });
    expect(s.steps.map((x) => [x.index, x.name, x.status, x.attempts, x.durationMs, x.error?.code ?? null, x.compensated ?? null])).toEqual([
      [0, 'fetch', 'COMPLETED', 2, 1, null, true],
      [1, 'wait-approval', 'COMPLETED', 1, 5000, null, null],
      [2, 'submit', 'FAILED', 1, 3, 'HTTP_400', null],
    ]);
    expect(s.steps[0]!.startedAt).toEqual(new Date(t0 + 2000));
    expect(s.steps[1]!.endedAt).toEqual(new Date(t0 + 11_000));
  });

  it('gives the state at any sequence number', () => {
    const at = (n: number) => replayJobEvents(events.filter((e) => e.seq <= n));
    expect(at(0)).toMatchObject({ atSeq: 0, status: 'PENDING', steps: [] });
    expect(at(3)).toMatchObject({ status: 'RUNNING', steps: [{ index: 0, status: 'FAILED', attempts: 1, error: { code: 'HTTP_503' } }] });
    expect(at(4)).toMatchObject({ currentStep: 0, steps: [{ status: 'RETRYING' }] });
    expect(at(6).steps[0]).toMatchObject({ status: 'COMPLETED', attempts: 2, error: null, output: { ok: true } });
    expect(at(9)).toMatchObject({ status: 'WAITING', currentStep: 1 });
    expect(at(10)).toMatchObject({ status: 'RUNNING' });
    expect(at(16)).toMatchObject({ status: 'RUNNING', error: null });
    // Input order does not matter; the reducer does not change its input.
    const shuffled = [...events].reverse();
    expect(replayJobEvents(shuffled)).toEqual(replayJobEvents(events));
    expect(shuffled[0]!.seq).toBe(17);
  });

  it('a job-level retry goes back to PENDING and counts', () => {
    seq = 0;
    const s = replayJobEvents([
      ev('JOB_STARTED', null, 'run 2 started'),
      ev('STEP_STARTED', 0, 'a'),
      ev('STEP_FAILED', 0, 'boom', { code: 'X' }, 'ERROR'),
      ev('RETRY_SCHEDULED', null, 'job retry 1 of 2', { retry: 1 }, 'WARN'),
    ]);
    expect(s).toMatchObject({ status: 'PENDING', retryCount: 1 });
    const done = replayJobEvents([...events.slice(0, 0), ev('JOB_STARTED', null, 'x'), ev('JOB_COMPLETED', null, 'done')]);
    expect(done).toMatchObject({ status: 'COMPLETED', error: null });
  });
});
