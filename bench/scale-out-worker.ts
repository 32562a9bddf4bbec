/**
 * One worker process of `bench scale-out` (bench/scale-out.ts): the Worker
 * `stepwise worker` runs, with the configuration `stepwise worker` reads
 * from the environment (DATABASE_URL, the STEPWISE_* defaults: concurrency
 * 100, claims of 100, a flush every 5 ms, a pool of 10). What it leaves out
 * (blob store, credentials, scheduler, maintenance loop) the benchmark's
 * steps never use. It exists because the scenario needs what the worker
 * counted — flushes above all, to give lock wait per flush — and
 * `stepwise worker` does not print its counters.
 *
 * Prints `ready` once running. On SIGUSR2 it prints its counters as one
 * JSON line `{"worker": id, "stats": RecorderStats, "cpuMs": n}` (cpuMs:
 * the process's user + system CPU time). On SIGTERM it stops the way
 * `stepwise worker` does (no new claims, in-flight work finished, record
 * drained), prints the same line and exits 0.
 */
import { loadConfig } from '../src/config/index.js';
import { openDb } from '../src/db/index.js';
import { Worker } from '../src/engine/index.js';
import { createStderrLogger } from '../src/util/logger.js';

const config = loadConfig();
// Warnings and errors (a failed flush, a lost lease) on stderr, which the benchmark passes through.
const logger = createStderrLogger('warn');
const db = await openDb(config, { role: 'worker', logger });
const worker = new Worker(db, config.worker, logger, process.env.WORKER_ID || undefined);

function printStats(): void {
  const cpu = process.cpuUsage();
  process.stdout.write(`${JSON.stringify({ worker: worker.id, stats: worker.stats, cpuMs: (cpu.user + cpu.system) / 1000 })}\n`);
}

process.on('SIGUSR2', printStats);
process.once('SIGTERM', () => {
  worker
    .stop()
    .then(() => db.close())
    .then(
      () => {
        printStats();
        process.exit(0);
      },
      (err: unknown) => {
        logger.error({ err }, 'stopping failed');
        process.exit(1);
      },
    );
});

await worker.start();
process.stdout.write('ready\n');
