import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LOCAL_TEST_EGRESS } from './local-egress.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** A Stepwise service started the way the README starts it, on its own embedded data directory. */
export interface RunningStepwise {
  url: string;
  /** The first-start OWNER key the service printed (null when the data directory already had an organization). */
  ownerKey: string | null;
  dataDir: string;
  output: () => string;
  stop(): Promise<void>;
}

export interface StartOptions {
  /** `npm start` (build, then serve: what the README says) or the built CLI directly (dist must exist). */
  via: 'npm-start' | 'dist';
  env?: Record<string, string>;
  /** Reuse a data directory (created and removed by the caller). */
  dataDir?: string;
  timeoutMs?: number;
}

const LISTENING = /listening on (http:\/\/[^\s]+)/;
const KEY = /^\s+(sw_[a-z0-9]{12}_[A-Za-z0-9_-]{43})\s*$/m;

/**
 * Start `npm start` (or `node dist/cli/main.js serve`) on port 0 and wait for
 * its "listening on" line. The process runs in its own process group so
 * stop() ends npm, its shell and the service together.
 */
export async function startStepwise(opts: StartOptions): Promise<RunningStepwise> {
  const ownDir = opts.dataDir === undefined;
  const dataDir = opts.dataDir ?? join(await mkdtemp(join(tmpdir(), 'atlas-e2e-')), 'data');
  const [cmd, args] = opts.via === 'npm-start' ? ['npm', ['start', '--silent']] : [process.execPath, ['dist/cli/main.js', 'serve']];
  const child: ChildProcess = spawn(cmd, args as string[], {
    cwd: ROOT,
    detached: true,
    env: { ...process.env, DATABASE_URL: '', PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'warn', STEPWISE_DATA_DIR: dataDir, STEPWISE_EGRESS_ALLOW: LOCAL_TEST_EGRESS, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`Stepwise did not start within ${opts.timeoutMs ?? 180_000} ms:\n${out}`)), opts.timeoutMs ?? 180_000);
    const check = () => {
      const m = LISTENING.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    };
    child.stdout!.on('data', check);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`Stepwise exited with ${code} before listening:\n${out}`));
    });
  });
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      try {
        process.kill(-child.pid!, 'SIGTERM');
      } catch {
        // already gone
      }
      const killer = setTimeout(() => {
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          // already gone
        }
      }, 15_000);
      await exited;
      clearTimeout(killer);
    }
    if (ownDir) await rm(join(dataDir, '..'), { recursive: true, force: true });
  };
  return { url, ownerKey: KEY.exec(out)?.[1] ?? null, dataDir, output: () => out, stop };
}
