import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FsBlobStore } from '../../src/blob/index.js';
import { DatabaseUnavailableError, type Db } from '../../src/db/index.js';
import { MaintenanceLoop } from '../../src/lifecycle/index.js';
import { createTestDb, type TestDb } from '../helpers/db.js';

/**
 * The daily maintenance run, stopped by the database being unavailable, runs
 * again soon: waiting for the next day would hold retention back a day for a
 * restart that lasted seconds.
 */
let t: TestDb;
let dir: string;

beforeAll(async () => {
  t = await createTestDb();
  dir = await mkdtemp(join(tmpdir(), 'stepwise-maintenance-outage-'));
});

afterAll(async () => {
  await t?.close();
  await rm(dir, { recursive: true, force: true });
});

/** `base` while `up()` says so; every call refused as a restarting server refuses it otherwise. */
function outageDb(base: Db, up: () => boolean): Db {
  const refuse = () => Promise.reject(new DatabaseUnavailableError('restarting'));
  return new Proxy(base, {
    get(target, prop, receiver) {
      if (prop === 'query' || prop === 'exec' || prop === 'transaction' || prop === 'session') {
        return (...args: unknown[]) => (up() ? (Reflect.get(target, prop, receiver) as (...a: unknown[]) => unknown).apply(target, args) : refuse());
      }
      return Reflect.get(target, prop, receiver);
    },
  });
}

describe('maintenance after an outage', () => {
  it('a run the database’s unavailability stopped runs again after retryAfterUnavailableMs, not the next day', async () => {
    const messages: string[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void messages.push((JSON.parse(line) as { msg: string }).msg) });
    let up = false;
    const loop = new MaintenanceLoop(outageDb(t.db, () => up), new FsBlobStore(dir), logger, {
      initialDelayMs: 0,
      intervalMs: 24 * 3600 * 1000,
      retryAfterUnavailableMs: 50,
    });
    const until = async (msg: string) => {
      const deadline = Date.now() + 20_000;
      while (!messages.includes(msg)) {
        if (Date.now() > deadline) throw new Error(`never logged "${msg}"; logged ${JSON.stringify(messages)}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    };
    loop.start();
    try {
      await until('maintenance run stopped: the database was unavailable; nothing unarchived was deleted, it runs again soon');
      up = true;
      await until('maintenance run finished');
      expect(messages).not.toContain('maintenance run failed; nothing unarchived was deleted, the next run continues');
    } finally {
      await loop.stop();
    }
  });
});
