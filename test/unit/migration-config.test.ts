import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { DEFAULT_MIGRATION_LOCK_TIMEOUT_MS } from '../../src/db/index.js';

describe('STEPWISE_MIGRATION_LOCK_TIMEOUT_MS', () => {
  it('defaults to the migration runner default and can be set', () => {
    expect(loadConfig({}).migrationLockTimeoutMs).toBe(DEFAULT_MIGRATION_LOCK_TIMEOUT_MS);
    expect(loadConfig({ STEPWISE_MIGRATION_LOCK_TIMEOUT_MS: '250' }).migrationLockTimeoutMs).toBe(250);
  });

  it('refuses a value that would mean "wait for ever" or is not a number', () => {
    expect(() => loadConfig({ STEPWISE_MIGRATION_LOCK_TIMEOUT_MS: '0' })).toThrow(/STEPWISE_MIGRATION_LOCK_TIMEOUT_MS/);
    expect(() => loadConfig({ STEPWISE_MIGRATION_LOCK_TIMEOUT_MS: '5s' })).toThrow(/STEPWISE_MIGRATION_LOCK_TIMEOUT_MS/);
  });
});
