import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PgliteDb, type Db } from '../../src/db/index.js';
import { backend, createTestDb, type TestDb } from './db.js';
import { LOCAL_TEST_EGRESS } from './local-egress.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run the real CLI (src/cli/main.ts through tsx) as a separate process; `stdin`, when given, is piped to it. */
export function runCli(args: string[], env: Record<string, string | undefined> = {}, timeoutMs = 60_000, stdin?: string): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
      cwd: ROOT,
      env: { ...process.env, DATABASE_URL: '', LOG_LEVEL: 'silent', STEPWISE_EGRESS_ALLOW: LOCAL_TEST_EGRESS, ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    child.stdin.end(stdin ?? '');
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`stepwise ${args.join(' ')} timed out\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/**
 * Where a test file's CLI calls point: the server database (a fresh test
 * database) or an embedded data directory. `withDb` reads it from the test:
 * the test database as it is, or the data directory opened only for the
 * call (PGlite allows one process at a time, so never while a CLI runs).
 */
export interface CliTarget {
  /** `--database-url …` or `--data-dir …`, to append to every CLI call. */
  args: string[];
  /** A scratch directory of the file's (the data directory is inside it). */
  dir: string;
  withDb<T>(fn: (db: Db) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

export async function cliTarget(prefix: string): Promise<CliTarget> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  const t: TestDb | undefined = backend === 'postgres' ? await createTestDb() : undefined;
  const dataDir = join(dir, 'data');
  return {
    args: t ? ['--database-url', t.url!] : ['--data-dir', dataDir],
    dir,
    async withDb(fn) {
      if (t) return fn(t.db);
      const db = await PgliteDb.open({ dataDir });
      try {
        return await fn(db);
      } finally {
        await db.close();
      }
    },
    async close() {
      await t?.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
