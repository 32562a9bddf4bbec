import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresDb } from '../../src/db/index.js';
import { defineWorkflow, startRuns, Worker } from '../../src/engine/index.js';
import { backend, createTestDb, type TestDb } from '../helpers/db.js';
import { seedOrg, waitForJob, workerConfig } from '../helpers/fixtures.js';

interface LogLine {
  msg: string;
}

const POLL_MS = 60_000;

describe.skipIf(backend !== 'postgres')('a worker whose LISTEN connection is killed', () => {
  let t: TestDb;
  let orgId: string;
  beforeAll(async () => {
    t = await createTestDb();
    orgId = (await seedOrg(t.db)).organizationId;
  });
  afterAll(() => t?.close());

  it(`reconnects, says so, and still starts new runs long before its ${POLL_MS / 1000} s poll`, async () => {
    const lines: LogLine[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line) as LogLine) });
    const db = new PostgresDb(t.url!, { poolSize: 4, role: 'worker', logger });
    // A fallback poll this slow means only a wake-up can start a run within the test's time.
    const worker = new Worker(db, workerConfig({ pollIntervalMs: POLL_MS }), logger, 'listener-victim');
    await worker.start();
    try {
      const wf = await defineWorkflow(t.db, orgId, { name: 'woken', definition: { steps: [{ id: 'n', type: 'noop' }] } });
      // Woken by NOTIFY before the drop (the worker sits in its long poll).
      const [before] = await startRuns(t.db, orgId, wf.id, [{}]);
      expect((await waitForJob(t.db, orgId, before!.id, POLL_MS / 3)).status).toBe('COMPLETED');

      const { rows } = await t.db.query<{ n: number }>(
        `SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity
          WHERE application_name = 'stepwise-worker-listen' AND datname = current_database()`,
      );
      expect(rows[0]!.n).toBe(1);
      // Started at once: its NOTIFY may fall into the gap, and must not be lost.
      const [during] = await startRuns(t.db, orgId, wf.id, [{}]);
      expect((await waitForJob(t.db, orgId, during!.id, POLL_MS / 3)).status).toBe('COMPLETED');
      // Started after the reconnect: woken on the new connection.
      const [after] = await startRuns(t.db, orgId, wf.id, [{}]);
      expect((await waitForJob(t.db, orgId, after!.id, POLL_MS / 3)).status).toBe('COMPLETED');

      const messages = lines.map((l) => l.msg);
      expect(messages.some((m) => /listen/i.test(m) && /lost|dropped|ended|error/i.test(m))).toBe(true);
      expect(messages.some((m) => /reconnected/i.test(m))).toBe(true);
      expect(messages).toContain('listener reconnected; polling for work and checking held jobs now');
    } finally {
      await worker.stop();
      await db.close();
    }
  });
});
