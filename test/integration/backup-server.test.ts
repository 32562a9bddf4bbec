import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, sep } from 'node:path';
import type { FastifyInstance } from 'fastify';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { FsBlobStore } from '../../src/blob/index.js';
import { migrate, PostgresDb } from '../../src/db/index.js';
import { Worker } from '../../src/engine/index.js';
import { backend, createTestDb, type TestDb } from '../helpers/db.js';
import { seedOrg, silentLogger, waitForJob, waitForStatus, workerConfig } from '../helpers/fixtures.js';
import { client, createTestApp, type ApiClient, type Json } from '../helpers/api.js';

/**
 * The server backup procedure of docs/operations.md ("Backups"), run as
 * written with PostgreSQL's own binaries: pg_dump -Fc of a database under
 * load, the blob store copied after the dump, createdb + pg_restore into a
 * fresh database, and a worker on the restored database.
 */

const BIN = '/usr/lib/postgresql/15/bin';
const bin = (name: string): string => (existsSync(join(BIN, name)) ? join(BIN, name) : name);

/** Run one of PostgreSQL's client programs. */
function pgTool(cmd: string, args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin(cmd), args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

describe.runIf(backend === 'postgres')('server backup: pg_dump -Fc under load, pg_restore into a fresh database', () => {
  let source: TestDb;
  let dir: string;
  let app: FastifyInstance;
  let restoredApp: FastifyInstance | undefined;
  let worker: Worker | undefined;
  let restoredWorker: Worker | undefined;
  let restored: PostgresDb | undefined;
  const restoredName = `stepwise_restore_${process.pid}_${randomBytes(3).toString('hex')}`;
  const admin = inject('pgAdminUrl');
  const urlOf = (database: string): string => {
    const u = new URL(admin);
    u.pathname = `/${database}`;
    return u.toString();
  };

  beforeAll(async () => {
    source = await createTestDb();
    dir = await mkdtemp(join(tmpdir(), 'backup-server-'));
  });
  afterAll(async () => {
    await restoredWorker?.stop();
    await worker?.stop();
    await restoredApp?.close();
    await app?.close();
    await restored?.close();
    const c = new pg.Client({ connectionString: admin });
    await c.connect();
    await c.query(`DROP DATABASE IF EXISTS ${restoredName} WITH (FORCE)`);
    await c.end();
    await source?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('restores every finished job, stream row, audit row and blob, and the restored database runs new work', async () => {
    const blobDir = join(dir, 'blobs');
    const blobs = new FsBlobStore(blobDir);
    app = await createTestApp(source.db, blobs);
    const org = await seedOrg(source.db, 'Backup Co');
    const a: ApiClient = client(app, org.key);
    // Results above 1 KB go to the blob store: every "big" job leaves a blob the dump refers to.
    worker = new Worker(source.db, workerConfig({ resultInlineBytes: 1024 }), silentLogger, 'source-worker', { blobs });
    void worker.start();

    const big = (
      await a.post('/v1/workflows', {
        name: 'big',
        definition: {
          phi: ['input.patientName', 'result'],
          steps: [{ id: 'big', type: 'transform', expression: '{ "who": input.patientName, "rows": [1..60].{ "n": $, "text": $pad("row", 60, ".") } }' }],
        },
      })
    ).body.id;
    const waits = (await a.post('/v1/workflows', { name: 'waits', definition: { steps: [{ id: 'later', type: 'delay', durationMs: 3_600_000 }] } })).body.id;
    const run = async (workflowId: string, input: Json = {}): Promise<string> => {
      const res = await a.post(`/v1/workflows/${workflowId}/runs`, { input });
      expect(res.status, JSON.stringify(res.body)).toBe(202);
      return res.body.jobId;
    };
    const finished: string[] = [];
    for (let i = 0; i < 10; i++) finished.push(await run(big, { patientName: `P${i}` }));
    for (const id of finished) expect((await waitForJob(source.db, org.organizationId, id)).status).toBe('COMPLETED');
    const waiting = await run(waits);
    await waitForStatus(source.db, org.organizationId, waiting, 'WAITING');
    for (const id of finished) expect((await a.get(`/v1/jobs/${id}`)).status).toBe(200); // PHI read: audited
    const streams = new Map<string, number[]>();
    for (const id of finished) {
      const { rows } = await source.db.query<{ seq: number }>('SELECT seq FROM stepwise.execution_log WHERE job_id = $1 ORDER BY seq', [id]);
      streams.set(id, rows.map((r) => r.seq));
    }
    const audit = (await source.db.query<{ id: string }>('SELECT id FROM stepwise.phi_audit_log')).rows.map((r) => r.id);
    expect(audit.length).toBeGreaterThanOrEqual(finished.length);

    // Under load: runs enqueued and worked while pg_dump takes its snapshot and writes the dump.
    let loading = true;
    let during = 0;
    const load = (async () => {
      while (loading) {
        await run(big, { patientName: 'during' });
        during++;
      }
    })();
    const dump = join(dir, 'stepwise.dump');
    const dumped = await pgTool('pg_dump', ['--format=custom', `--file=${dump}`, `--dbname=${source.url!}`]);
    expect(dumped.code, dumped.stderr).toBe(0);
    // The blob store is copied after the dump finished: every blob the dump refers to exists by then.
    // Its .tmp directory holds the parts of writes still under way (renamed into place when whole); one
    // can vanish between cp's listing and its copy, and none is a blob, so it is left out.
    await cp(blobDir, join(dir, 'blobs-copy'), { recursive: true, filter: (src) => !src.split(sep).includes('.tmp') });
    loading = false;
    await load;
    expect(during).toBeGreaterThan(0);

    // A fresh database; the cluster already has the roles (stepwise_tenant, stepwise_service) the dump's grants and policies name.
    const created = await pgTool('createdb', [`--maintenance-db=${admin}`, '--template=template0', restoredName]);
    expect(created.code, created.stderr).toBe(0);
    const restoredOut = await pgTool('pg_restore', ['--exit-on-error', `--dbname=${urlOf(restoredName)}`, dump]);
    expect(restoredOut.code, restoredOut.stderr).toBe(0);

    restored = new PostgresDb(urlOf(restoredName), { poolSize: 4, role: 'test' });
    // What a service does at start: no migration is pending on the restored schema.
    expect((await migrate(restored)).applied).toEqual([]);
    for (const id of finished) {
      const { rows } = await restored.query<{ status: string }>('SELECT status FROM stepwise.jobs WHERE id = $1', [id]);
      expect(rows[0]?.status, id).toBe('COMPLETED');
      const seqs = await restored.query<{ seq: number }>('SELECT seq FROM stepwise.execution_log WHERE job_id = $1 ORDER BY seq', [id]);
      expect(seqs.rows.map((r) => r.seq), id).toEqual(streams.get(id));
    }
    expect((await restored.query<{ status: string }>('SELECT status FROM stepwise.jobs WHERE id = $1', [waiting])).rows[0]?.status).toBe('WAITING');
    const auditBack = await restored.query<{ n: number }>('SELECT count(*)::int AS n FROM stepwise.phi_audit_log WHERE id = ANY($1::uuid[])', [audit]);
    expect(auditBack.rows[0]!.n).toBe(audit.length);
    const torn = await restored.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM stepwise.jobs j
        WHERE j.status IN ('COMPLETED', 'FAILED', 'CANCELLED', 'TIMED_OUT')
          AND j.last_seq <> (SELECT count(*) FROM stepwise.execution_log l WHERE l.job_id = j.id)`,
    );
    expect(torn.rows[0]!.n).toBe(0);
    const refs = await restored.query<{ job_id: string; blob_key: string; sha256: string }>(
      `SELECT job_id, blob_key, encode(sha256, 'hex') AS sha256 FROM stepwise.job_result_archives`,
    );
    expect(refs.rows.map((r) => r.job_id)).toEqual(expect.arrayContaining(finished));
    for (const r of refs.rows) expect(sha256(await readFile(join(dir, 'blobs-copy', r.blob_key))), r.blob_key).toBe(r.sha256);
    // Row-level security came along: the tenant role sees only its organization.
    const policies = await restored.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_policies WHERE schemaname = 'stepwise' AND policyname = 'tenant_isolation'`);
    expect(policies.rows[0]!.n).toBeGreaterThan(10);

    // The restored database runs new work, and serves an old result from the copied blobs.
    await worker.stop();
    worker = undefined;
    const copiedBlobs = new FsBlobStore(join(dir, 'blobs-copy'));
    restoredApp = await createTestApp(restored, copiedBlobs);
    const r = client(restoredApp, org.key);
    restoredWorker = new Worker(restored, workerConfig({ resultInlineBytes: 1024 }), silentLogger, 'restored-worker', { blobs: copiedBlobs });
    void restoredWorker.start();
    const fresh = (await r.post(`/v1/workflows/${big}/runs`, { input: { patientName: 'after restore' } })).body.jobId;
    expect((await waitForJob(restored, org.organizationId, fresh)).status).toBe('COMPLETED');
    expect((await r.get(`/v1/jobs/${fresh}`)).body.result).toMatchObject({ who: 'after restore' });
    expect((await r.get(`/v1/jobs/${finished[4]}`)).body.result).toMatchObject({ who: 'P4' });
  }, 300_000);
});
