import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { FsBlobStore, type BlobStore } from '../../src/blob/index.js';
import { PgliteDb } from '../../src/db/index.js';
import { BlobDeletionGate, controlSocketPath, startBackupControl, type BackupControlServer } from '../../src/lifecycle/backup/index.js';
import { backend } from '../helpers/db.js';
import { runCli } from '../helpers/cli.js';
import { silentLogger } from '../helpers/fixtures.js';
import { startTestServer, type TestServer } from '../helpers/http-server.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const TOKEN = 's3cret-token-for-backup-test';

interface Serving {
  base: string;
  ownerKey: string | null;
  child: ChildProcess;
  stop(): Promise<void>;
}

/** `stepwise serve` on a data directory, as a process of its own; resolves once it listens. */
async function serve(dataDir: string, env: Record<string, string> = {}): Promise<Serving> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'serve', '--port', '0', '--data-dir', dataDir], {
    cwd: ROOT,
    // Results above 1 KB go to blob storage, so every "big" job leaves a blob behind.
    env: { ...process.env, DATABASE_URL: '', LOG_LEVEL: 'warn', STEPWISE_RESULT_INLINE_BYTES: '1024', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const base = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /listening on (http:\/\/[\d.]+:\d+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.once('exit', (code) => reject(new Error(`serve exited ${code}: ${out}`)));
  });
  return {
    base,
    ownerKey: /(sw_[a-z0-9]{12}_[A-Za-z0-9_-]{43})/.exec(out)?.[1] ?? null,
    child,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

function api(base: string, key: string) {
  const call = async (method: string, path: string, body?: unknown): Promise<{ status: number; body: Json }> => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${key}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  };
  return {
    get: (path: string) => call('GET', path),
    post: (path: string, body: unknown) => call('POST', path, body),
    async workflow(name: string, definition: unknown): Promise<string> {
      const res = await call('POST', '/v1/workflows', { name, definition });
      expect(res.status, JSON.stringify(res.body)).toBe(201);
      return res.body.id;
    },
    async run(workflowId: string, input: unknown = {}): Promise<string> {
      const res = await call('POST', `/v1/workflows/${workflowId}/runs`, { input });
      expect(res.status, JSON.stringify(res.body)).toBe(202);
      return res.body.jobId;
    },
    async finished(jobId: string): Promise<Json> {
      return vi.waitFor(
        async () => {
          const job = (await call('GET', `/v1/jobs/${jobId}?phi=mask`)).body;
          if (!['COMPLETED', 'FAILED', 'CANCELLED', 'TIMED_OUT'].includes(job.status)) throw new Error(`job ${jobId} is ${job.status}`);
          return job;
        },
        { timeout: 60_000, interval: 50 },
      );
    },
  };
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

describe.skipIf(backend === 'postgres')('stepwise backup of a running embedded service, and restore', () => {
  let dir: string;
  let serving: Serving | undefined;
  let restored: Serving | undefined;
  let echo: TestServer;
  const headersSeen: string[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'backup-e2e-'));
    echo = await startTestServer((req) => {
      headersSeen.push(String(req.headers.authorization ?? ''));
    });
  });
  afterAll(async () => {
    await serving?.stop();
    await restored?.stop();
    await echo?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('backs up under load, restores into a fresh directory with every finished job, stream row, audit row, blob and the key, and runs new work', async () => {
    const dataDir = join(dir, 'data');
    serving = await serve(dataDir);
    const key = serving.ownerKey!;
    expect(key).toBeTruthy();
    const a = api(serving.base, key);

    const cred = await a.post('/v1/credentials', { provider: 'acme', name: 'api', secret: { token: TOKEN } });
    expect(cred.status, JSON.stringify(cred.body)).toBe(201);
    const big = await a.workflow('big-result', {
      phi: ['input.patientName', 'result'],
      steps: [
        { id: 'note', type: 'log', message: 'checking eligibility' },
        { id: 'big', type: 'transform', expression: '{ "who": input.patientName, "rows": [1..60].{ "n": $, "text": $pad("row", 60, ".") } }' },
      ],
    });
    const waits = await a.workflow('waits-an-hour', { steps: [{ id: 'later', type: 'delay', durationMs: 3_600_000 }, { id: 'done', type: 'noop' }] });
    const quick = await a.workflow('quick', { steps: [{ id: 'n', type: 'noop' }] });

    // Finished before the backup starts: every one of these must come back whole.
    const finishedIds: string[] = [];
    for (let i = 0; i < 12; i++) finishedIds.push(await a.run(big, { patientName: `Patient ${i}` }));
    for (const id of finishedIds) expect((await a.finished(id)).status).toBe('COMPLETED');
    const waiting = [await a.run(waits), await a.run(waits)];
    await vi.waitFor(async () => expect((await a.get(`/v1/jobs/${waiting[1]}`)).body.status).toBe('WAITING'), { timeout: 60_000, interval: 50 });

    // Reading the PHI jobs (unmasked) writes PHI audit rows; their streams are what must be restored.
    const streams = new Map<string, number[]>();
    for (const id of finishedIds) {
      expect((await a.get(`/v1/jobs/${id}`)).status).toBe(200);
      const s = await a.get(`/v1/jobs/${id}/stream`);
      streams.set(id, s.body.items.map((r: Json) => r.seq));
      expect(streams.get(id)!.length).toBeGreaterThan(3);
    }
    const phiAudit: string[] = (await a.get('/v1/audit/phi?limit=500')).body.items.map((r: Json) => r.id);
    const credAudit: string[] = (await a.get('/v1/audit/credentials?limit=500')).body.items.map((r: Json) => r.id);
    expect(phiAudit.length).toBeGreaterThanOrEqual(finishedIds.length * 2);
    expect(credAudit.length).toBeGreaterThanOrEqual(1);
    const keyFile = await readFile(join(dataDir, 'encryption-keys'));

    // Under load: runs keep being enqueued (and worked) while the backup runs.
    let loading = true;
    let enqueuedDuring = 0;
    const load = (async () => {
      while (loading) {
        await a.run(quick);
        await a.run(big, { patientName: 'during' });
        enqueuedDuring += 2;
      }
    })();
    const file = join(dir, 'service.backup');
    const backup = await runCli(['backup', '--out', file, '--data-dir', dataDir], {}, 180_000);
    loading = false;
    await load;
    expect(backup.code, backup.stderr).toBe(0);
    const report = JSON.parse(backup.stdout);
    expect(report).toMatchObject({ via: 'service', file, keyFile: true });
    expect(report.jobs).toBeGreaterThanOrEqual(finishedIds.length + waiting.length);
    expect(report.blobs.count).toBeGreaterThanOrEqual(finishedIds.length);
    expect(report.pause.totalMs).toBeGreaterThan(0);
    expect(report.servicePausedMs).toBe(report.pause.totalMs);
    expect(enqueuedDuring).toBeGreaterThan(0);
    // The service kept serving throughout and still does.
    expect((await a.get(`/v1/jobs/${finishedIds[0]}?phi=mask`)).status).toBe(200);
    await serving.stop();
    serving = undefined;

    const restoredDir = join(dir, 'restored');
    const restore = await runCli(['backup', 'restore', file, '--data-dir', restoredDir], {}, 180_000);
    expect(restore.code, restore.stderr).toBe(0);
    expect(JSON.parse(restore.stdout)).toMatchObject({ dataDir: restoredDir, keyFile: true, notes: [] });
    expect(await readFile(join(restoredDir, 'encryption-keys'))).toEqual(keyFile);

    const db = await PgliteDb.open({ dataDir: restoredDir });
    try {
      for (const id of finishedIds) {
        const { rows } = await db.query<{ status: string; last_seq: number }>('SELECT status, last_seq FROM stepwise.jobs WHERE id = $1', [id]);
        expect(rows[0]?.status, id).toBe('COMPLETED');
        const seqs = await db.query<{ seq: number }>('SELECT seq FROM stepwise.execution_log WHERE job_id = $1 ORDER BY seq', [id]);
        expect(seqs.rows.map((r) => r.seq), id).toEqual(streams.get(id));
      }
      const w = await db.query<{ status: string }>('SELECT status FROM stepwise.jobs WHERE id = ANY($1::uuid[])', [waiting]);
      expect(w.rows.map((r) => r.status)).toEqual(['WAITING', 'WAITING']);
      // Jobs the copy caught finishing mid-flight are whole too: every finished job's stream has exactly last_seq rows
      // (last_seq moves with a job's outcome; a running job's flushed rows run ahead of it, and it resumes from them).
      const torn = await db.query<{ finished: number; torn: number }>(
        `SELECT count(*)::int AS finished,
                count(*) FILTER (WHERE j.last_seq <> (SELECT count(*) FROM stepwise.execution_log l WHERE l.job_id = j.id))::int AS torn
           FROM stepwise.jobs j WHERE j.status IN ('COMPLETED', 'FAILED', 'CANCELLED', 'TIMED_OUT')`,
      );
      expect(torn.rows[0]).toEqual({ finished: expect.any(Number), torn: 0 });
      expect(torn.rows[0]!.finished).toBeGreaterThan(finishedIds.length);
      const audits = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM stepwise.phi_audit_log WHERE id = ANY($1::uuid[])', [phiAudit]);
      expect(audits.rows[0]!.n).toBe(phiAudit.length);
      const creds = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM stepwise.credential_audit_log WHERE id = ANY($1::uuid[])', [credAudit]);
      expect(creds.rows[0]!.n).toBe(credAudit.length);
      // Every blob the restored database refers to is there, byte for byte.
      const refs = await db.query<{ job_id: string; blob_key: string; sha256: string }>(
        `SELECT job_id, blob_key, encode(sha256, 'hex') AS sha256 FROM stepwise.job_result_archives`,
      );
      expect(refs.rows.map((r) => r.job_id)).toEqual(expect.arrayContaining(finishedIds));
      for (const r of refs.rows) expect(sha256(await readFile(join(restoredDir, 'blobs', r.blob_key))), r.blob_key).toBe(r.sha256);
    } finally {
      await db.close();
    }

    // The restored instance serves the old records and runs new work with the restored key (a sealed credential opens).
    restored = await serve(restoredDir, { STEPWISE_EGRESS_ALLOW: '127.0.0.1' });
    expect(restored.ownerKey).toBeNull();
    const r = api(restored.base, key);
    const old = await r.get(`/v1/jobs/${finishedIds[3]}`);
    expect(old.body.result).toMatchObject({ who: 'Patient 3', rows: expect.any(Array) });
    const call = await r.workflow('calls-out', {
      steps: [{ id: 'call', type: 'http', method: 'GET', url: `${echo.url}/after-restore`, headers: { authorization: 'Bearer {{ credentials.api.token }}' } }],
    });
    const job = await r.finished(await r.run(call));
    expect(job.status, JSON.stringify(job)).toBe('COMPLETED');
    expect(headersSeen).toContain(`Bearer ${TOKEN}`);
    await restored.stop();
    restored = undefined;

    // Restore refuses a directory that is not empty, and changes nothing in it.
    const full = join(dir, 'not-empty');
    await mkdir(full);
    await writeFile(join(full, 'keep.txt'), 'mine');
    const refused = await runCli(['backup', 'restore', file, '--data-dir', full]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('is not empty');
    expect(await readdir(full)).toEqual(['keep.txt']);

    // A corrupted file fails its checksums with a clear message and leaves nothing behind.
    const bytes = await readFile(file);
    for (let i = 0; i < 16; i++) {
      const at = Math.floor(bytes.length / 2) + i * 997;
      bytes[at] = bytes[at]! ^ 0x5a;
    }
    const corrupt = join(dir, 'corrupt.backup');
    await writeFile(corrupt, bytes);
    const before = (await readdir(dir)).sort();
    const damaged = await runCli(['backup', 'restore', corrupt, '--data-dir', join(dir, 'from-corrupt')]);
    expect(damaged.code).not.toBe(0);
    expect(damaged.stderr).toMatch(/is damaged: .*nothing was restored/);
    expect((await readdir(dir)).sort()).toEqual(before);
  }, 420_000);

  it('refuses to back up a server database, pointing to pg_dump', async () => {
    const res = await runCli(['backup', '--out', join(dir, 'server.backup')], { DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/postgres' });
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain('pg_dump');
    expect(res.stderr).toContain('docs/operations.md');
    expect(await readdir(dir)).not.toContain('server.backup');
  });
});

describe.skipIf(backend === 'postgres')('a backup killed mid-way', () => {
  let dir: string;
  let db: PgliteDb;
  let control: BackupControlServer;
  let releaseDeletes: () => void;
  let deletion: Promise<boolean>;
  let gate: BlobDeletionGate;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'backup-kill-'));
    const dataDir = join(dir, 'data');
    db = await PgliteDb.open({ dataDir, loadDataDir: new Blob([await readFile(inject('pgliteTemplatePath'))]) });
    const fs = new FsBlobStore(join(dataDir, 'blobs'));
    await fs.put('results/a/one.json.gz', 'one');
    await fs.put('results/a/two.json.gz', 'two');
    // Deletions through this store finish only when the test lets them: one in flight keeps the backup waiting at the gate.
    const held: Array<() => void> = [];
    releaseDeletes = () => held.splice(0).forEach((r) => r());
    const slowDeletes = new Proxy<BlobStore>(fs, {
      get(target, prop, receiver) {
        if (prop === 'delete') {
          return async (key: string) => {
            await new Promise<void>((r) => held.push(r));
            return target.delete(key);
          };
        }
        const value: unknown = Reflect.get(target, prop, receiver);
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    gate = new BlobDeletionGate();
    control = (await startBackupControl({
      db,
      dataDir,
      blobConfig: { backend: 'fs', dir: join(dataDir, 'blobs'), azureConnectionString: undefined, azureContainer: 'stepwise' },
      blobs: gate.guard(slowDeletes),
      gate,
      stepwiseVersion: 'test',
      logger: silentLogger,
    }))!;
    deletion = gate.guard(slowDeletes).delete('results/a/two.json.gz');
  });
  afterAll(async () => {
    releaseDeletes?.();
    await control?.close();
    await db?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const outDir = () => join(dir, 'out');

  it('the request closed or the CLI killed at the gate: no file is left, backup mode ends, and the service keeps serving and backs up again', async () => {
    await mkdir(outDir());
    const dataDir = join(dir, 'data');
    expect(control.busy).toBe(false);

    // 1. The request's connection closes while the backup waits for the deletion in flight.
    const socket = createConnection(controlSocketPath(dataDir));
    await new Promise((r) => socket.once('connect', r));
    socket.write(`${JSON.stringify({ op: 'backup', out: join(outDir(), 'one.backup') })}\n`);
    await vi.waitFor(() => expect(gate.holdersWaiting).toBe(1), { timeout: 60_000, interval: 20 });
    expect((await readdir(outDir())).some((f) => f.endsWith('.partial'))).toBe(true);
    socket.destroy();
    await control.idle();
    expect(await readdir(outDir())).toEqual([]);
    expect((await db.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_replication_slots')).rows[0]!.n).toBe(0);

    // 2. The CLI asking for it is SIGKILLed at the same point.
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'backup', '--out', join(outDir(), 'two.backup'), '--data-dir', dataDir], {
      cwd: ROOT,
      env: { ...process.env, DATABASE_URL: '', LOG_LEVEL: 'silent' },
      stdio: 'ignore',
    });
    await vi.waitFor(() => expect(gate.holdersWaiting).toBe(1), { timeout: 60_000, interval: 20 });
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
    await vi.waitFor(() => expect(control.busy).toBe(false), { timeout: 60_000, interval: 20 });
    expect(await readdir(outDir())).toEqual([]);

    // The service still serves, its deletion finishes, and the next backup runs to the end.
    expect((await db.query<{ one: number }>('SELECT 1 AS one')).rows[0]!.one).toBe(1);
    releaseDeletes();
    expect(await deletion).toBe(true);
    const ok = await runCli(['backup', '--out', join(outDir(), 'three.backup'), '--data-dir', dataDir], {}, 120_000);
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ via: 'service', blobs: { count: 1 } });
    expect(await readdir(outDir())).toEqual(['three.backup']);
  }, 240_000);
});
