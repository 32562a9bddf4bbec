import { buildApp } from '../api/index.js';
import { createBlobStore } from '../blob/index.js';
import { apiRequestDb, openReadReplica } from '../db/index.js';
import type { Config } from '../config/index.js';
import { Worker } from '../engine/index.js';
import { Scheduler } from '../engine/scheduler.js';
import { MaintenanceLoop } from '../lifecycle/index.js';
import { BlobDeletionGate, startBackupControl } from '../lifecycle/backup/index.js';
import { createOrganizationWithOwner } from '../security/index.js';
import { getOrganizationCount } from '../store/index.js';
import { onShutdownSignal, openRuntime, scheduleMaintenance, VERSION } from './runtime.js';
import { openKeyRing } from './keyring.js';
import { credentialResolver } from '../security/credentials.js';
import { keyRingSealer } from '../security/sealer.js';
import { EgressPolicy } from '../net/address-policy.js';
import { workerBrowserSessions } from '../browser/worker-browser.js';
import { BulkRunner } from '../engine/bulk.js';
import { bulkJobSelector } from '../read/bulk-selection.js';
import { startOpsServer, watchProcessMetrics } from './observability.js';

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
  // Blob deletions wait while `stepwise backup` copies the blobs its database copy refers to.
  const blobGate = new BlobDeletionGate();
  const blobs = blobGate.guard(await createBlobStore(config.blob));
  // STEPWISE_READ_DATABASE_URL: run lists, analytics, finished jobs' streams and audit reads go there while it keeps up.
  const readReplica = openReadReplica(config, db, { logger });
  // Bulk cancel/retry operations (POST /v1/jobs/bulk): worked through here, resumed on start if a crash left some RUNNING.
  const bulkRunner = new BulkRunner({ db, logger, selector: bulkJobSelector, checkpointTtlMs: config.worker.checkpointTtlMs });
  const app = await buildApp({
    // Requests wait a bounded time for a connection and are answered 503 + Retry-After past it, never left hanging.
    db: apiRequestDb(db),
    logger,
    version: VERSION,
    blobs,
    rateLimit: config.rateLimit,
    keyRing,
    egressPolicy: new EgressPolicy(config.egressAllow),
    checkpointTtlMs: config.worker.checkpointTtlMs,
    bulkRunner,
    trustProxy: config.trustProxy,
    sessionLimits: config.sessions,
    readReplica,
    metricsToken: config.metricsToken,
    workerLiveness: opts.worker ? () => worker!.liveness() : undefined,
  });
  const browser = opts.worker ? workerBrowserSessions(config, logger) : undefined;
  const worker = opts.worker
    ? new Worker(db, config.worker, logger, undefined, {
        blobs,
        credentials: credentialResolver(db, keyRing),
        sealer: keyRing ? keyRingSealer(keyRing) : undefined,
        browser,
        llmPrices: config.llmPrices,
      })
    : undefined;
  const stopMetrics = watchProcessMetrics(config, db, readReplica);
  const ops = await startOpsServer(config, { db, logger, version: VERSION, workerLiveness: worker ? () => worker.liveness() : undefined });
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
  readReplica?.start();
  // Embedded: `stepwise backup` asks this process for an online backup over a socket in the data directory.
  const backupControl =
    db.backend === 'pglite'
      ? await startBackupControl({ db, dataDir: config.dataDir, blobConfig: config.blob, blobs, gate: blobGate, stepwiseVersion: VERSION, logger })
      : null;
  const where = db.backend === 'pglite' ? `embedded PGlite at ${config.dataDir}` : 'PostgreSQL server';
  process.stdout.write(`Stepwise ${VERSION} listening on ${address} (${where}${worker ? ', worker running' : ''})\n`);
  process.stdout.write(`  health: ${address}/health   API docs: ${address}/openapi.json\n`);
  onShutdownSignal(async () => {
    stopMaintenance();
    await backupControl?.close();
    await app.close();
    await ops?.close();
    await bulkRunner.stop();
    await lifecycle.stop();
    await scheduler.stop();
    await worker?.stop();
    await browser?.close();
    await blobs.close();
    await readReplica?.close();
    stopMetrics();
    await db.close();
  }, logger);
}
