import { createBlobStore } from '../blob/index.js';
import type { Config } from '../config/index.js';
import { ValidationError } from '../errors/index.js';
import { Worker } from '../engine/index.js';
import { Scheduler } from '../engine/scheduler.js';
import { MaintenanceLoop } from '../lifecycle/index.js';
import { onShutdownSignal, openRuntime, scheduleMaintenance, VERSION } from './runtime.js';
import { openKeyRing } from './keyring.js';
import { credentialResolver } from '../security/credentials.js';
import { keyRingSealer } from '../security/sealer.js';
import { workerBrowserSessions } from '../browser/worker-browser.js';
import { startOpsServer, watchProcessMetrics } from './observability.js';

/** Workers alone: any number of these processes can share one PostgreSQL server. */
export async function runWorker(config: Config): Promise<void> {
  if (!config.databaseUrl) {
    throw new ValidationError(
      'stepwise worker needs DATABASE_URL: in embedded mode the database belongs to one process, so run `stepwise serve` (it includes a worker)',
      { path: 'DATABASE_URL' },
    );
  }
  const { db, logger } = await openRuntime(config, { role: 'worker' });
  const blobs = await createBlobStore(config.blob);
  const keyRing = openKeyRing(config, logger);
  const browser = workerBrowserSessions(config, logger);
  const worker = new Worker(db, config.worker, logger, undefined, {
    blobs,
    credentials: credentialResolver(db, keyRing),
    sealer: keyRing ? keyRingSealer(keyRing) : undefined,
    browser,
    llmPrices: config.llmPrices,
  });
  // Every process runs a scheduler; an advisory lock makes one of them the leader per tick.
  const scheduler = new Scheduler(db, {}, logger);
  const stopMaintenance = scheduleMaintenance(db, logger);
  // Daily archival and retention; a lease makes one process per database do it.
  const lifecycle = new MaintenanceLoop(db, blobs, logger);
  const stopMetrics = watchProcessMetrics(config, db);
  // STEPWISE_METRICS_PORT: the worker's only HTTP, for Prometheus and Kubernetes probes.
  const ops = await startOpsServer(config, { db, logger, version: VERSION, workerLiveness: () => worker.liveness() });
  await worker.start();
  scheduler.start();
  lifecycle.start();
  process.stdout.write(`Stepwise worker ${worker.id} running (concurrency ${config.worker.concurrency})\n`);
  onShutdownSignal(async () => {
    stopMaintenance();
    await ops?.close();
    await lifecycle.stop();
    await scheduler.stop();
    await worker.stop();
    await browser.close();
    await blobs.close();
    stopMetrics();
    await db.close();
  }, logger);
}
