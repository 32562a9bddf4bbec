import { DBOS, type WorkflowQueue } from '@dbos-inc/dbos-sdk';
import pg from 'pg';
import { log, withScratchDatabase, type ScratchDatabase } from '../lib.js';

/**
 * DBOS Transact 5 (`@dbos-inc/dbos-sdk` 5.3.0; API checked against its
 * dist/src/*.d.ts and, for the polling below, dist/src/wfqueue.js and
 * system_database.js), shared by the `latency`, `bytes` and `steps` scenarios.
 *
 * DBOS is a library: the workflows run in the process that starts them and
 * their record goes to a "system database" (schema `dbos`: workflow_status,
 * operation_outputs, …), here a scratch database of its own. `DBOS` is a
 * process-wide singleton: workflows are registered once per process, before
 * `DBOS.launch()`; queues are rows in that database, registered after it.
 *
 * How DBOS waits, which is what its latency is made of:
 * - A direct start (`DBOS.startWorkflow(wf)(…)` without a queue) inserts the
 *   workflow_status row and runs the function in this process at once; its
 *   handle's `getResult()` awaits that promise, no database polling.
 * - A queued start inserts the row as ENQUEUED and returns. Nothing is
 *   notified: each queue is polled by the dispatch loop, one claiming
 *   transaction per poll, every `minPollingIntervalMs` (default 1,000 ms,
 *   "Base (minimum) polling interval in ms for this queue's dispatch loop",
 *   ×2 on contention, decaying back by ×0.9 per clean poll, ±5% jitter).
 * - The handle of a queued start is a RetrievedHandle: `getResult()` polls
 *   workflow_status every `pollingIntervalMs` (default 1,000 ms, a
 *   `getResult` option), at most half the pool's connections polling at once
 *   (`systemDatabasePollingConcurrency`).
 * So out of the box a queued run takes on average ~0.5 s to be picked up and
 * ~0.5 s more to be seen finished. Its maintainers call 1 s "a very
 * reasonable default" and made both intervals settable for workers that
 * "desire a lower latency" (dbos-transact-py#515 → #518, the same knobs in
 * TS); the reference page (docs.dbos.dev/typescript/reference/queues) lists
 * `minPollingIntervalMs` among the queue options, and we found no value it
 * recommends. So the low-latency
 * setting is both knobs lowered to the same interval (bench/latency.ts
 * DBOS_FAST_POLL_MS), and the DBOS defaults can be run beside it
 * (`latency --systems … dbos-queued-default`).
 */

/** Steps of `tenSteps`, as bench/steps.ts STEPS (not imported: that would load the engine into every DBOS user). */
export const TEN_STEPS = 10;

export interface DbosWorkflows {
  /** One step returning the 52-character line Stepwise's `log` step writes in `throughput`/`latency`. */
  oneStep: (member: string) => Promise<string>;
  /** Ten steps as Stepwise's 10-step workflow: `{ member, i, prev }` objects and `step i checked member …` strings. */
  tenSteps: (member: string) => Promise<unknown>;
}

let workflows: DbosWorkflows | undefined;

/**
 * Register the bench's workflows with DBOS (once per process; DBOS requires
 * it before launch). Each step goes through `DBOS.runStep`, so its output is
 * checkpointed in operation_outputs, as Stepwise records each step.
 */
export function dbosWorkflows(): DbosWorkflows {
  if (workflows) return workflows;
  const oneStep = DBOS.registerWorkflow(
    async (member: string): Promise<string> =>
      DBOS.runStep(async () => `checked eligibility for member ${member}: plan active`, { name: 'note' }),
    { name: 'bench-one-step' },
  );
  const tenSteps = DBOS.registerWorkflow(
    async (member: string): Promise<unknown> => {
      let last: unknown;
      for (let i = 0; i < TEN_STEPS; i++) {
        last =
          i % 2 === 0
            ? await DBOS.runStep(async () => ({ member, i, prev: i }), { name: `t${i}` })
            : await DBOS.runStep(async () => `step ${i} checked member ${member} for eligibility`, { name: `l${i}` });
      }
      return last;
    },
    { name: 'bench-ten-steps' },
  );
  workflows = { oneStep, tenSteps };
  return workflows;
}

/** Errors only, and to stderr: DBOS's console logger writes info lines to stdout, which must stay JSON lines. */
const quietLogger = {
  info: () => undefined,
  debug: () => undefined,
  warn: () => undefined,
  error: (entry: unknown) => log(`dbos error: ${entry instanceof Error ? (entry.stack ?? entry.message) : String(entry)}`),
};

export interface DbosRun {
  scratch: ScratchDatabase;
  /** A client of our own on the system database (sizes, checks, settle). */
  client: pg.Client;
  /** Register a queue (DBOS 5 keeps them in the system database, so only after launch). */
  queue(name: string, minPollingIntervalMs: number, workerConcurrency?: number): Promise<WorkflowQueue>;
  /** Delete a registered queue, so its dispatch loop stops polling (within DBOS's 1 s reconcile). */
  dropQueue(name: string): Promise<void>;
}

/**
 * DBOS launched on a fresh scratch database with its defaults (pool of 10
 * unless `poolSize`), logging errors only; shut down and dropped afterwards.
 */
export async function withDbos<T>(prefix: string, fn: (run: DbosRun) => Promise<T>, opts: { poolSize?: number } = {}): Promise<T> {
  dbosWorkflows();
  return withScratchDatabase(prefix, async (scratch) => {
    DBOS.setConfig({
      name: 'stepwise-bench',
      systemDatabaseUrl: scratch.url,
      logLevel: 'error',
      logger: quietLogger,
      ...(opts.poolSize !== undefined ? { systemDatabasePoolSize: opts.poolSize } : {}),
    });
    await DBOS.launch();
    const client = new pg.Client({ connectionString: scratch.url, application_name: 'bench-dbos-check' });
    client.on('error', (err) => log(`dbos check connection: ${err.message}`));
    await client.connect();
    try {
      return await fn({
        scratch,
        client,
        queue: (name, minPollingIntervalMs, workerConcurrency) =>
          DBOS.registerQueue(name, {
            minPollingIntervalMs,
            ...(workerConcurrency !== undefined ? { workerConcurrency } : {}),
            onConflict: 'always_update',
          }),
        dropQueue: (name) => DBOS.deleteQueue(name),
      });
    } finally {
      await client.end().catch(() => undefined);
      // Nothing is left running by a finished scenario; do not wait for stragglers of a failed one.
      await DBOS.shutdown({ workflowCompletionTimeoutMS: 2_000 }).catch((err: unknown) => log(`DBOS shutdown: ${String(err)}`));
    }
  });
}

/** Rows of the system database's workflow_status by status, for checks and timeouts. */
export async function dbosStatusCounts(client: pg.Client): Promise<Record<string, number>> {
  const { rows } = await client.query<{ status: string; n: number }>(
    `SELECT status, count(*)::int AS n FROM dbos.workflow_status GROUP BY status ORDER BY status`,
  );
  return Object.fromEntries(rows.map((r) => [r.status, r.n]));
}
