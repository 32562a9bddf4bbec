import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { ValidationError } from '../../src/errors/index.js';
import { isUuid, uuidv7 } from '../../src/util/ids.js';
import { truncate } from '../../src/util/json.js';
import { decodeCursor, encodeCursor } from '../../src/api/cursor.js';
import { statusFor } from '../../src/api/errors.js';

describe('uuidv7', () => {
  it('is a valid, version 7, strictly increasing id', () => {
    const ids = Array.from({ length: 5000 }, () => uuidv7());
    expect(ids.every(isUuid)).toBe(true);
    expect(ids.every((id) => id[14] === '7')).toBe(true);
    for (let i = 1; i < ids.length; i++) expect(ids[i]! > ids[i - 1]!).toBe(true);
  });

  it('encodes the millisecond timestamp in the first 48 bits', () => {
    const ms = Date.UTC(2030, 0, 1);
    const id = uuidv7(ms);
    expect(parseInt(id.replace(/-/g, '').slice(0, 12), 16)).toBeGreaterThanOrEqual(ms);
  });
});

describe('config', () => {
  it('defaults to embedded PGlite on port 3000', () => {
    const c = loadConfig({});
    expect(c.databaseUrl).toBeUndefined();
    expect(c.port).toBe(3000);
    expect(c.dataDir.endsWith('.stepwise/data')).toBe(true);
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('rejects bad values naming the variable', () => {
    expect(() => loadConfig({ PORT: 'x' })).toThrow(/PORT must be an integer/);
    expect(() => loadConfig({ DATABASE_URL: 'mysql://x' })).toThrow(ValidationError);
    expect(() => loadConfig({ STEPWISE_WORKER_CONCURRENCY: '0' })).toThrow(/STEPWISE_WORKER_CONCURRENCY/);
  });

  it('trusts a proxy only when told to', () => {
    expect(loadConfig({}).trustProxy).toBe(false);
    expect(loadConfig({ STEPWISE_TRUST_PROXY: 'true' }).trustProxy).toBe(true);
    expect(loadConfig({ STEPWISE_TRUST_PROXY: '0' }).trustProxy).toBe(false);
    expect(() => loadConfig({ STEPWISE_TRUST_PROXY: 'yes' })).toThrow(/STEPWISE_TRUST_PROXY must be true or false/);
  });
});

describe('small pieces', () => {
  it('truncate marks the cut and respects the bound', () => {
    expect(truncate('short', 10)).toBe('short');
    const cut = truncate('x'.repeat(3000), 2000);
    expect(cut.length).toBe(2000);
    expect(cut.endsWith('…[truncated]')).toBe(true);
  });

  it('cursors round-trip and garbage is a validation error', () => {
    const id = uuidv7();
    expect(decodeCursor(encodeCursor(id)!)).toBe(id);
    expect(decodeCursor(undefined)).toBeUndefined();
    expect(() => decodeCursor('garbage')).toThrow(ValidationError);
  });

  it('maps error codes to statuses', () => {
    expect(statusFor('NOT_FOUND')).toBe(404);
    expect(statusFor('VALIDATION')).toBe(400);
    expect(statusFor('PAYLOAD_TOO_LARGE')).toBe(413);
    expect(statusFor('DATABASE')).toBe(500);
  });
});
