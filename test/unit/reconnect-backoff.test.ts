import { describe, expect, it } from 'vitest';
import { RECONNECT_BACKOFF, reconnectDelayMs } from '../../src/db/backoff.js';

describe('reconnectDelayMs', () => {
  const top = () => 0.999_999;

  it('doubles its ceiling from 100 ms and caps it at 30 s', () => {
    const ceilings = Array.from({ length: 12 }, (_, attempt) => reconnectDelayMs(attempt, RECONNECT_BACKOFF, top) + 1);
    expect(ceilings).toEqual([100, 200, 400, 800, 1600, 3200, 6400, 12_800, 25_600, 30_000, 30_000, 30_000]);
  });

  it('is full jitter: anywhere from 0 up to the ceiling', () => {
    expect(reconnectDelayMs(5, RECONNECT_BACKOFF, () => 0)).toBe(0);
    expect(reconnectDelayMs(5, RECONNECT_BACKOFF, () => 0.5)).toBe(1600);
    for (let i = 0; i < 200; i++) {
      const d = reconnectDelayMs(3);
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThan(800);
    }
  });

  it('stays finite and capped after very many attempts', () => {
    expect(reconnectDelayMs(5_000, RECONNECT_BACKOFF, top)).toBe(29_999);
    expect(reconnectDelayMs(-1, RECONNECT_BACKOFF, top)).toBe(99);
  });
});
