import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { backend } from '../helpers/db.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const hasCurl = spawnSync('curl', ['--version']).status === 0;

/** The README's curl example, run as written against a real `stepwise serve` on a fresh data directory. */
describe.runIf(backend === 'pglite' && hasCurl)('README quick start', () => {
  let child: ChildProcess | undefined;
  let dir: string | undefined;
  afterAll(async () => {
    child?.kill('SIGTERM');
    await new Promise((r) => child?.once('exit', r) ?? r(undefined));
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('the curl example creates a workflow, runs it, and reads back the job and its stream', async () => {
    const readme = await readFile(join(ROOT, 'README.md'), 'utf8');
    const block = /```sh\n(KEY=sw_[^\n]*\n[\s\S]*?)```/.exec(readme)?.[1];
    expect(block, 'README has a curl example starting with KEY=sw_…').toBeDefined();
    dir = await mkdtemp(join(tmpdir(), 'stepwise-readme-'));
    child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'serve', '--port', '0', '--data-dir', dir], {
      cwd: ROOT,
      env: { ...process.env, DATABASE_URL: '', LOG_LEVEL: 'silent' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    const ready = new Promise<{ key: string; base: string }>((resolve, reject) => {
      child!.stdout!.on('data', (c: Buffer) => {
        out += c.toString();
        const key = /(sw_[a-z0-9]{12}_[A-Za-z0-9_-]{43})/.exec(out)?.[1];
        const base = /listening on (http:\/\/[\d.]+:\d+)/.exec(out)?.[1];
        if (key && base) resolve({ key, base });
      });
      child!.once('exit', (code) => reject(new Error(`serve exited ${code}: ${out}`)));
    });
    const { key, base } = await ready;
    // As written, except the port (the test server listens on a free one) and the key (printed at start).
    const script = block!.replace(/^KEY=sw_.*$/m, `KEY=${key}`).replaceAll('http://127.0.0.1:3000', base);
    const ran = spawnSync('bash', ['-c', script], { encoding: 'utf8', timeout: 30_000 });
    expect(ran.status, ran.stderr).toBe(0);
    const [job, stream] = ran.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(job).toMatchObject({ status: 'COMPLETED', result: { greeting: 'Hello, Ada' } });
    const items = (stream!.items as { kind: string; message: string }[]);
    expect(items.map((i) => i.kind)).toEqual([
      'JOB_STARTED',
      'STEP_STARTED', 'STEP_COMPLETED',
      'STEP_STARTED', 'LOG', 'STEP_COMPLETED',
      'STEP_STARTED', 'STEP_COMPLETED',
      'JOB_COMPLETED',
    ]);
    expect(items.find((i) => i.kind === 'LOG')?.message).toBe('said Hello, Ada');
  });
});
