import { buildApp } from '../api/index.js';
import { createBlobStore } from '../blob/index.js';
import type { Config } from '../config/index.js';
import { Worker } from '../engine/index.js';
import { Scheduler } from '../engine/scheduler.js';
import { MaintenanceLoop } from '../lifecycle/index.js';
import { createOrganizationWithOwner } from '../security/index.js';
import { getOrganizationCount } from '../store/index.js';
import { onShutdownSignal, openRuntime, scheduleMaintenance, VERSION } from './runtime.js';
import { openKeyRing } from './keyring.js';
import { credentialResolver } from '../security/credentials.js';
import { keyRingSealer } from '../security/sealer.js';
import { workerBrowserSessions } from '../browser/worker-browser.js';
import { BulkRunner } from '../engine/bulk.js';
import { bulkJobSelector } from '../read/bulk-selection.js';

/**
 * API + worker in one process (the only way in embedded mode, where the
 * process owns the database). On first start with an empty embedded database
 * it creates a default organization and prints its key, once.
 */
export async function serve(config: Config, opts: { worker: boolean }): Promise<void> {
  const { db, logger } = await openRuntime(config, { role: 'api' });
  const keyRing = openKeyRing(config, logger);
  if (db.backend === 'pglite' && (await getOrganizationCount(db)) === 0) {
    // The operator's own organization on their own machine: no plan limits.
    const { organization: org, apiKey } = await createOrganizationWithOwner(db, {
      name: 'default',
      plan: 'ENTERPRISE',
      keyName: 'first-start owner key',
    });
    const key = apiKey.key;
    process.stdout.write(
      `\nCreated organization "default" (${org.id}, plan ENTERPRISE) with an OWNER user.\n` +
        `Its owner API key is shown this once; keep it:\n\n    ${key}\n\n`,
    );
  }
  const blobs = await createBlobStore(config.blob);
  // Bulk cancel/retry operations (POST /v1/jobs/bulk): worked through here, resumed on start if a crash left some RUNNING.
  const bulkRunner = new BulkRunner({ db, logger, selector: bulkJobSelector, checkpointTtlMs: config.worker.checkpointTtlMs });
  const app = await buildApp({
    db,
    logger,
    version: VERSION,
    blobs,
    rateLimit: config.rateLimit,
    keyRing,
    checkpointTtlMs: config.worker.checkpointTtlMs,
    bulkRunner,
    trustProxy: config.trustProxy,
    sessionLimits: config.sessions,
  });
  const browser = opts.worker ? workerBrowserSessions(config, logger) : undefined;
  const worker = opts.worker
    ? new Worker(db, config.worker, logger, undefined, {
        blobs,
        credentials: credentialResolver(db, keyRing),
        sealer: keyRing ? keyRingSealer(keyRing) : undefined,
        browser,
      })
    : undefined;
  // Every process runs a scheduler; an advisory lock makes one of them the leader per tick.
  const scheduler = new Scheduler(db, {}, logger);
  const stopMaintenance = scheduleMaintenance(db, logger);
  // Daily archival and retention; a lease makes one process per database do it.
  const lifecycle = new MaintenanceLoop(db, blobs, logger);
  const address = await app.listen({ port: config.port, host: config.host });
  await worker?.start();
  scheduler.start();
  lifecycle.start();
  bulkRunner.start();
  const where = db.backend === 'pglite' ? `embedded PGlite at ${config.dataDir}` : 'PostgreSQL server';
  process.stdout.write(`Stepwise ${VERSION} listening on ${address} (${where}${worker ? ', worker running' : ''})\n`);
  process.stdout.write(`  health: ${address}/health   API docs: ${address}/openapi.json\n`);
  onShutdownSignal(async () => {
    stopMaintenance();
    await app.close();
    await bulkRunner.stop();
    await lifecycle.stop();
    await scheduler.stop();
    await worker?.stop();
    await browser?.close();
    await blobs.close();
    await db.close();
  }, logger);
}
