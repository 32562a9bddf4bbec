import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';

describe('session limits configuration', () => {
  it('defaults to 15 minutes idle and 12 hours at most', () => {
    expect(loadConfig({}).sessions).toEqual({ idleMs: 15 * 60_000, absoluteMs: 12 * 3_600_000 });
  });

  it('reads STEPWISE_SESSION_IDLE_S and STEPWISE_SESSION_MAX_S in seconds', () => {
    expect(loadConfig({ STEPWISE_SESSION_IDLE_S: '2', STEPWISE_SESSION_MAX_S: '3600' }).sessions).toEqual({ idleMs: 2_000, absoluteMs: 3_600_000 });
  });

  it('refuses a value out of range or not an integer, naming the variable', () => {
    expect(() => loadConfig({ STEPWISE_SESSION_IDLE_S: '0' })).toThrow(/STEPWISE_SESSION_IDLE_S must be an integer between 1 and/);
    expect(() => loadConfig({ STEPWISE_SESSION_MAX_S: '1.5' })).toThrow(/STEPWISE_SESSION_MAX_S must be an integer between 60 and/);
  });
});
