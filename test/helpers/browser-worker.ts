import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FsBlobStore, type BlobStore } from '../../src/blob/index.js';
import type { Db } from '../../src/db/index.js';
import { DEFAULT_CHROMIUM_PATH, type WorkerConfig } from '../../src/config/index.js';
import { Worker } from '../../src/engine/index.js';
import { EgressProxy } from '../../src/browser/egress-proxy.js';
import { BrowserPool } from '../../src/browser/pool.js';
import { WorkerBrowserSessions } from '../../src/browser/sessions.js';
import { EgressPolicy } from '../../src/net/address-policy.js';
import { generateKeyEntry, parseKeyRing, type KeyRing } from '../../src/security/crypto.js';
import { keyRingSealer } from '../../src/security/sealer.js';
import { silentLogger, workerConfig } from './fixtures.js';

/** Debian's Chromium (CI installs it); browser-step tests skip, saying so, where it is missing. */
export const CHROMIUM = process.env.STEPWISE_CHROMIUM_PATH || DEFAULT_CHROMIUM_PATH;
export const haveChromium = existsSync(CHROMIUM);

/** A worker that runs browser steps: sealed state, a blob store for screenshots, Chromium behind the egress proxy. */
export interface BrowserWorker {
  worker: Worker;
  sessions: WorkerBrowserSessions;
  blobs: BlobStore;
  blobDir: string;
  keyRing: KeyRing;
  stop(): Promise<void>;
}

/**
 * Starts one. `egressAllow` is STEPWISE_EGRESS_ALLOW's text (the fixture
 * portal is on loopback, which the policy refuses unless allowed by port).
 */
export function startBrowserWorker(
  db: Db,
  options: { egressAllow: string; keyRing?: KeyRing; blobDir?: string; worker?: Partial<WorkerConfig>; id?: string; maxContexts?: number },
): BrowserWorker {
  const keyRing = options.keyRing ?? parseKeyRing(generateKeyEntry());
  const blobDir = options.blobDir ?? mkdtempSync(join(tmpdir(), 'stepwise-browser-blobs-'));
  const blobs = new FsBlobStore(blobDir);
  const sessions = new WorkerBrowserSessions({
    runtime: () => Promise.resolve(new BrowserPool({ executablePath: CHROMIUM, maxContexts: options.maxContexts ?? 3 })),
    proxy: () => EgressProxy.start({ policy: new EgressPolicy(options.egressAllow) }),
  });
  const worker = new Worker(db, workerConfig({ stepTimeoutMs: 60_000, ...options.worker }), silentLogger, options.id, {
    blobs,
    sealer: keyRingSealer(keyRing),
    browser: sessions,
  });
  void worker.start();
  return {
    worker,
    sessions,
    blobs,
    blobDir,
    keyRing,
    async stop() {
      await worker.stop();
      await sessions.close();
      await blobs.close();
    },
  };
}
