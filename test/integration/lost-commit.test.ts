import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresDb } from '../../src/db/index.js';
import { defineWorkflow, startRuns } from '../../src/engine/index.js';
import { backend, createTestDb, type TestDb } from '../helpers/db.js';
import { seedOrg, silentLogger, startWorker, waitForJob } from '../helpers/fixtures.js';
import { startTestServer, type TestServer } from '../helpers/http-server.js';

/**
 * A flush whose COMMIT reached the server and committed, but whose answer
 * never came back (the connection broke in between: a restart, a
 * terminated backend, a network cut at the worst moment). The recorder
 * cannot tell it from a flush that failed, retries it, and must neither
 * lose nor repeat anything: stream rows are not unique in the table (it is
 * partitioned by time), so only the retry's check of the stored sequence
 * keeps a row from being written twice. Here a relay between the worker and
 * the server lets the COMMIT of flushes through, waits for the server's
 * answer, and cuts the connection instead of passing it on.
 */

/** A Simple Query message "COMMIT" (what PostgresDb.transaction sends to end a transaction). */
const COMMIT = Buffer.concat([Buffer.from('Q'), Buffer.from([0, 0, 0, 11]), Buffer.from('COMMIT\0')]);
/** The server's CommandComplete of it. */
const COMMITTED = Buffer.concat([Buffer.from('C'), Buffer.from([0, 0, 0, 11]), Buffer.from('COMMIT\0')]);

interface CommitCutter {
  url: string;
  /** Flush COMMITs that committed and whose answer was withheld. */
  cut: number;
  close(): Promise<void>;
}

/**
 * A TCP relay to the server that, for the next `times` transactions that
 * wrote stream rows (a flush), lets the COMMIT through, waits until the
 * server answers it, and destroys both sides instead of relaying the answer.
 */
async function commitCutter(serverUrl: string, times: number): Promise<CommitCutter> {
  const target = new URL(serverUrl);
  const sockets = new Set<net.Socket>();
  const state = { cut: 0, armed: times };
  const relay = net.createServer((client) => {
    const upstream = net.connect(Number(target.port || 5432), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => {
        sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    let wroteStream = false;
    let withholding = false;
    client.on('data', (chunk: Buffer) => {
      if (chunk.includes('INSERT INTO stepwise.execution_log')) wroteStream = true;
      if (wroteStream && state.armed > 0 && chunk.includes(COMMIT)) {
        state.armed--;
        withholding = true;
      }
      if (chunk.includes(COMMIT)) wroteStream = false;
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (!withholding) {
        client.write(chunk);
        return;
      }
      // The server has answered the COMMIT (it committed): the worker never hears it.
      if (chunk.includes(COMMITTED)) {
        state.cut++;
        client.destroy();
        upstream.destroy();
      }
    });
  });
  await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
  const url = new URL(serverUrl);
  url.hostname = '127.0.0.1';
  url.port = String((relay.address() as net.AddressInfo).port);
  return {
    url: url.toString(),
    get cut() {
      return state.cut;
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => relay.close(() => resolve()));
    },
  };
}

describe.skipIf(backend !== 'postgres')('a flush whose COMMIT answer was lost (server)', () => {
  let t: TestDb;
  let server: TestServer;
  beforeAll(async () => {
    t = await createTestDb();
    server = await startTestServer(() => false);
  });
  afterAll(async () => {
    await server?.close();
    await t?.close();
  });

  it('is retried without losing or repeating a stream row, and the job’s side effect happens once', async () => {
    const { organizationId } = await seedOrg(t.db);
    const wf = await defineWorkflow(t.db, organizationId, {
      name: 'lost commit',
      definition: {
        steps: [
          { id: 'a', type: 'log', message: 'before' },
          // A step with side effects: its STEP_STARTED and its outcome are separate flushes, so the cut
          // COMMITs fall on flushes in the middle of the job as well as on the one that ends it.
          { id: 'call', type: 'http', method: 'POST', url: `${server.url}/effect` },
          { id: 'b', type: 'log', message: 'after' },
        ],
      },
    });
    const cutter = await commitCutter(t.url!, 3);
    const db = new PostgresDb(cutter.url, { poolSize: 2, role: 'worker', logger: silentLogger });
    const worker = startWorker(db, { pollIntervalMs: 50 });
    try {
      const [job] = await startRuns(t.db, organizationId, wf.id, [{ input: {} }]);
      const done = await waitForJob(t.db, organizationId, job!.id, 30_000);
      expect(done.status).toBe('COMPLETED');
      expect(cutter.cut).toBeGreaterThanOrEqual(2);
      expect(worker.stats.failedFlushes).toBeGreaterThanOrEqual(cutter.cut);
      const { rows } = await t.db.query<{ seq: number; n: number }>(
        'SELECT seq, count(*)::int AS n FROM stepwise.execution_log WHERE job_id = $1 GROUP BY seq ORDER BY seq',
        [job!.id],
      );
      expect(rows.map((r) => r.seq)).toEqual(Array.from({ length: done.lastSeq }, (_, i) => i + 1));
      expect(rows.filter((r) => r.n > 1)).toEqual([]);
      expect(server.calls.get('/effect')).toBe(1);
    } finally {
      await worker.stop();
      await db.close();
      await cutter.close();
    }
  });
});
