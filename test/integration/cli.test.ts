import { mkdtemp, rm, writeFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgliteDb } from '../../src/db/index.js';
import { DataDirLockedError } from '../../src/errors/index.js';
import { backend, createTestDb, type TestDb } from '../helpers/db.js';
import { runCli } from '../helpers/cli.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'stepwise-cli-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe.runIf(backend === 'pglite')('embedded data directory lock', () => {
  it('refuses a second process with an error naming the owner, and frees the directory on close', async () => {
    const dataDir = join(dir, 'locked');
    const owner = await PgliteDb.open({ dataDir });
    try {
      const second = await runCli(['migrate', '--data-dir', dataDir]);
      expect(second.code).toBe(1);
      expect(second.stderr).toContain(`in use by process ${process.pid}`);
      // A second open inside this process is refused too.
      await expect(PgliteDb.open({ dataDir })).rejects.toBeInstanceOf(DataDirLockedError);
    } finally {
      await owner.close();
    }
    const after = await runCli(['migrate', '--data-dir', dataDir]);
    expect(after.code).toBe(0);
  });

  it('takes over a stale lock left by a process that died', async () => {
    const dataDir = join(dir, 'stale');
    const first = await PgliteDb.open({ dataDir });
    await first.close();
    await writeFile(join(dataDir, 'stepwise.lock'), '999999'); // no such process
    const db = await PgliteDb.open({ dataDir });
    expect(await readFile(join(dataDir, 'stepwise.lock'), 'utf8')).toBe(String(process.pid));
    await db.close();
  });
});

describe('CLI', () => {
  let t: TestDb | undefined;
  const target: string[] = [];
  beforeAll(async () => {
    if (backend === 'postgres') {
      t = await createTestDb();
      target.push('--database-url', t.url!);
    } else {
      target.push('--data-dir', join(dir, 'cli'));
    }
  });
  afterAll(() => t?.close());

  it('org create prints a working key; run --wait executes the workflow and prints the record', async () => {
    const created = await runCli(['org', 'create', '--name', 'CLI Org', ...target]);
    expect(created.code, created.stderr).toBe(0);
    const { organizationId, apiKey } = JSON.parse(created.stdout) as { organizationId: string; apiKey: string };
    expect(apiKey).toMatch(/^sw_/);

    // Define the workflow through the store (the CLI has no workflow command yet).
    const db = t?.db ?? (await PgliteDb.open({ dataDir: join(dir, 'cli') }));
    const { defineWorkflow } = await import('../../src/engine/index.js');
    const wf = await defineWorkflow(db, organizationId, {
      name: 'cli',
      definition: { steps: [{ id: 'double', type: 'transform', expression: 'input.n * 2' }] },
    });
    if (!t) await db.close();

    const ran = await runCli(['run', wf.id, '--key', apiKey, '--input', '{"n":21}', '--wait', ...target]);
    expect(ran.code, ran.stderr).toBe(0);
    const out = JSON.parse(ran.stdout) as { job: { status: string; result: unknown; initiatorType: string }; stream: { kind: string }[] };
    expect(out.job).toMatchObject({ status: 'COMPLETED', result: 42, initiatorType: 'MANUAL' });
    expect(out.stream.map((s) => s.kind)).toEqual(['JOB_STARTED', 'STEP_STARTED', 'STEP_COMPLETED', 'JOB_COMPLETED']);
  });

  it('bad input gets a clear message and a non-zero exit', async () => {
    const badJson = await runCli(['run', '00000000-0000-7000-8000-000000000000', '--key', 'sw_x', '--input', '{nope', ...target]);
    expect(badJson.code).toBe(1);
    expect(badJson.stderr).toContain('--input is not valid JSON');
    const badKey = await runCli(['run', '00000000-0000-7000-8000-000000000000', '--key', 'sw_wrong', ...target]);
    expect(badKey.code).toBe(1);
    expect(badKey.stderr).toContain('API key');
    const badPort = await runCli(['serve', '--port', 'abc', ...target]);
    expect(badPort.code).not.toBe(0);
    expect(badPort.stderr).toContain('--port must be an integer');
    const embeddedWorker = await runCli(['worker', '--data-dir', join(dir, 'w')]);
    expect(embeddedWorker.code).toBe(1);
    expect(embeddedWorker.stderr).toContain('needs DATABASE_URL');
  });
});
