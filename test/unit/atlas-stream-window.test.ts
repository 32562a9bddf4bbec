import { describe, expect, it } from 'vitest';
import { computeWindow, scrollTopFor, SeqPageCache, SequentialCache } from '../../atlas/src/view/stream-window.js';

const rows = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => ({ seq: from + i }));

describe('stream window', () => {
  it('renders only the rows in view plus the overscan, padding the rest', () => {
    const w = computeWindow({ count: 50_000, rowHeight: 24, viewportHeight: 480, scrollTop: 24 * 10_000, overscan: 10 });
    expect(w).toEqual({ first: 9_990, last: 10_030, padTop: 9_990 * 24, padBottom: (50_000 - 10_030) * 24 });
    expect(w.last - w.first).toBeLessThanOrEqual(50);
  });

  it('clamps at both ends and for a scrollTop past the end', () => {
    expect(computeWindow({ count: 100, rowHeight: 20, viewportHeight: 200, scrollTop: 0, overscan: 5 })).toEqual({
      first: 0,
      last: 15,
      padTop: 0,
      padBottom: 85 * 20,
    });
    expect(computeWindow({ count: 100, rowHeight: 20, viewportHeight: 200, scrollTop: 99_999, overscan: 5 })).toEqual({
      first: 85,
      last: 100,
      padTop: 85 * 20,
      padBottom: 0,
    });
    expect(computeWindow({ count: 3, rowHeight: 20, viewportHeight: 200, scrollTop: 0, overscan: 5 })).toEqual({ first: 0, last: 3, padTop: 0, padBottom: 0 });
    expect(computeWindow({ count: 0, rowHeight: 20, viewportHeight: 200, scrollTop: 50, overscan: 5 })).toEqual({ first: 0, last: 0, padTop: 0, padBottom: 0 });
  });

  it('keeps padTop + rows + padBottom equal to the full height', () => {
    for (const scrollTop of [0, 37, 5000, 123_456, 1_199_000]) {
      const w = computeWindow({ count: 50_000, rowHeight: 24, viewportHeight: 400, scrollTop, overscan: 8 });
      expect(w.padTop + (w.last - w.first) * 24 + w.padBottom).toBe(50_000 * 24);
    }
  });

  it('scrolls a row to the centre or the top', () => {
    expect(scrollTopFor(100, 20, 200, 'top')).toBe(2000);
    expect(scrollTopFor(100, 20, 200, 'center')).toBe(2000 - 90);
    expect(scrollTopFor(0, 20, 200)).toBe(0);
  });
});

describe('paged stream cache', () => {
  it('fetches only the pages a window needs, once', () => {
    const cache = new SeqPageCache<{ seq: number }>(1000);
    cache.noteSeq(50_000);
    expect(cache.count).toBe(50_000);
    expect(cache.missing(24_950, 25_000)).toEqual([24]);
    expect(cache.pageQuery(24)).toEqual({ afterSeq: 24_000, limit: 1000 });
    cache.begin(24);
    expect(cache.missing(24_950, 25_000)).toEqual([]);
    cache.put(24, rows(24_001, 25_000));
    expect(cache.get(24_990)).toEqual({ seq: 24_991 });
    expect(cache.get(25_010)).toBeUndefined();
    expect(cache.missing(24_950, 25_000)).toEqual([]);
    expect(cache.missing(24_990, 25_001)).toEqual([25]);
    expect(cache.missing(998, 1002)).toEqual([0, 1]);
  });

  it('a failed page can be asked for again', () => {
    const cache = new SeqPageCache<{ seq: number }>(100);
    cache.noteSeq(500);
    cache.begin(2);
    cache.fail(2);
    expect(cache.missing(200, 210)).toEqual([2]);
  });

  it('grows with live rows, and fetches a short page again once the stream grew past it', () => {
    const cache = new SeqPageCache<{ seq: number }>(100);
    cache.put(0, rows(1, 40));
    expect(cache.count).toBe(40);
    expect(cache.missing(0, 40)).toEqual([]);
    cache.append(rows(41, 45));
    expect(cache.count).toBe(45);
    expect(cache.get(44)).toEqual({ seq: 45 });
    expect(cache.missing(0, 45)).toEqual([]);
    // A live row that does not continue the page (a reconnect gap): the count grows, the page is fetched again.
    cache.append([{ seq: 60 }]);
    expect(cache.count).toBe(60);
    expect(cache.get(59)).toBeUndefined();
    expect(cache.missing(40, 60)).toEqual([0]);
    cache.put(0, rows(1, 60));
    expect(cache.get(59)).toEqual({ seq: 60 });
    expect(cache.missing(0, 60)).toEqual([]);
  });

  it('starts a new page with live rows that continue the stream exactly at a page boundary', () => {
    const cache = new SeqPageCache<{ seq: number }>(10);
    cache.put(0, rows(1, 10));
    cache.append(rows(11, 12));
    expect(cache.get(11)).toEqual({ seq: 12 });
    expect(cache.missing(0, 12)).toEqual([]);
    expect(cache.loaded().map((r) => r.seq)).toEqual(rows(1, 12).map((r) => r.seq));
  });

  it('keeps live rows that arrived while their page was in flight', () => {
    const cache = new SeqPageCache<{ seq: number }>(100);
    cache.noteSeq(30);
    cache.begin(0);
    cache.append(rows(31, 32));
    cache.put(0, rows(1, 30));
    expect(cache.count).toBe(32);
    // The live rows were not kept (their page was in flight, nothing to continue): the page is due again.
    expect(cache.missing(0, 32)).toEqual([0]);
  });

  it('reads a filtered stream front to back', () => {
    const cache = new SequentialCache<{ seq: number }>(3);
    expect(cache.count).toBe(1);
    const q = cache.next(0);
    expect(q).toEqual({ afterSeq: 0, limit: 3 });
    expect(cache.next(0)).toBeNull();
    cache.put([{ seq: 5 }, { seq: 9 }, { seq: 12 }], 3);
    expect(cache.count).toBe(4);
    expect(cache.next(3)).toEqual({ afterSeq: 12, limit: 3 });
    cache.put([{ seq: 40 }], 3);
    expect(cache.done).toBe(true);
    expect(cache.count).toBe(4);
    expect(cache.get(3)).toEqual({ seq: 40 });
    cache.append([{ seq: 41 }]);
    expect(cache.count).toBe(5);
  });
});
