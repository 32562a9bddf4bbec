import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { LOCAL_TEST_EGRESS } from './local-egress.js';

/**
 * The real CLI as a child process, without anything of vitest, so
 * benchmarks can use it too (test/helpers/cli.ts re-exports it for tests).
 */
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
