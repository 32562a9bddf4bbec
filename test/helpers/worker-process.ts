import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { LOCAL_TEST_EGRESS } from './local-egress.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/**
 * A worker in a process of its own (test/fixtures/worker-process.ts), for
 * tests that kill it with SIGKILL mid-job. Resolves once it says it runs.
 * `databaseUrl`: the server's test database; else `dataDir`: the embedded
 * database, which the process then owns. `env`: more of its environment
 * (BROWSER=1 and what browser steps need: see the fixture).
 */
export function spawnWorkerProcess(options: {
  databaseUrl?: string | undefined;
  dataDir?: string | undefined;
  leaseMs: number;
  workerId: string;
  env?: Record<string, string> | undefined;
}): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/worker-process.ts'], {
    cwd: ROOT,
    env: {
      ...process.env,
      DATABASE_URL: options.databaseUrl ?? '',
      STEPWISE_DATA_DIR: options.dataDir ?? '',
      STEPWISE_LEASE_MS: String(options.leaseMs),
      STEPWISE_FLUSH_INTERVAL_MS: '2',
      WORKER_ID: options.workerId,
      BROWSER: '', // never inherited: only a test that asks for browser steps gets them
      STEPWISE_EGRESS_ALLOW: LOCAL_TEST_EGRESS,
      ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let err = '';
    child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
    child.stdout!.on('data', (c: Buffer) => c.toString().includes('ready') && resolve(child));
    child.once('exit', (code) => reject(new Error(`worker exited ${code}: ${err}`)));
  });
}
