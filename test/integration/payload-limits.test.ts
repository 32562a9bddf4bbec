import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/api/index.js';
import { BlobUnavailableError, FsBlobStore, sha256Hex, type BlobStore } from '../../src/blob/index.js';
import { Worker, defineWorkflow, startRuns } from '../../src/engine/index.js';
import { resultBlobKey } from '../../src/engine/results.js';
import { findJobResultArchive, listStream } from '../../src/store/index.js';
import { client, expectError } from '../helpers/api.js';
import { createTestDb, type TestDb } from '../helpers/db.js';
import { seedOrg, silentLogger, waitForJob, workerConfig } from '../helpers/fixtures.js';

let t: TestDb;
let root: string;
let blobs: FsBlobStore;
let org: { organizationId: string; key: string };
let app: FastifyInstance;
const workers: Worker[] = [];

beforeAll(async () => {
  t = await createTestDb();
  root = await mkdtemp(join(tmpdir(), 'stepwise-results-'));
  blobs = new FsBlobStore(root);
  org = await seedOrg(t.db, 'limits');
  app = await buildApp({ db: t.db, logger: silentLogger, version: 'test', blobs });
});

afterAll(async () => {
  for (const w of workers) await w.stop();
  await app?.close();
  await t?.close();
  if (root) await rm(root, { recursive: true, force: true });
});

/** Run one job of `steps` to its end on a worker with this blob store (or none). */
async function runJob(steps: unknown[], store: BlobStore | undefined, input: unknown = {}, inlineBytes = 64 * 1024) {
  const wf = await defineWorkflow(t.db, org.organizationId, { name: `wf-${Math.random()}`, definition: { steps } });
  const [run] = await startRuns(t.db, org.organizationId, wf.id, [{ input }]);
  const worker = new Worker(t.db, workerConfig({ resultInlineBytes: inlineBytes }), silentLogger, `w-${workers.length}`, { blobs: store });
  workers.push(worker);
  void worker.start();
  try {
    return await waitForJob(t.db, org.organizationId, run!.id);
  } finally {
    await worker.stop();
  }
}

async function rawResult(jobId: string): Promise<{ isNull: boolean }> {
  const { rows } = await t.db.query<{ is_null: boolean }>(`SELECT result IS NULL AS is_null FROM stepwise.jobs WHERE id = $1`, [jobId]);
  return { isNull: rows[0]!.is_null };
}

// ~200 KB of JSON: over the 64 KB inline threshold, under the 1 MB limit.
const bigResult = [{ id: 'big', type: 'transform', expression: '{ "rows": [1..2000].{ "n": $, "text": $pad("row", 90, ".") } }' }];

describe('results over the inline threshold are stored by reference', () => {
  it('the jobs row holds only a reference; GET /v1/jobs/:id reads the result back', async () => {
    const job = await runJob(bigResult, blobs);
    expect(job.status).toBe('COMPLETED');
    expect(await rawResult(job.id)).toEqual({ isNull: true });
    const ref = (await findJobResultArchive(t.db, org.organizationId, job.id))!;
    expect(ref.blobKey).toBe(resultBlobKey(org.organizationId, job.id));
    expect(ref.sizeBytes).toBeGreaterThan(64 * 1024);
    expect(ref.storedBytes).toBeLessThan(ref.sizeBytes);
    const stored = await blobs.get(ref.blobKey);
    expect(sha256Hex(stored)).toBe(ref.sha256);
    const fromBlob = JSON.parse(gunzipSync(stored).toString());
    expect(fromBlob.rows).toHaveLength(2000);

    const res = await client(app, org.key).get(`/v1/jobs/${job.id}`);
    expect(res.status).toBe(200);
    expect(res.body.result).toEqual(fromBlob);
    expect(res.body.resultStored).toEqual({ sizeBytes: ref.sizeBytes, storedBytes: ref.storedBytes, sha256: ref.sha256 });
  });

  it('a small result stays in the row', async () => {
    const job = await runJob([{ id: 'small', type: 'transform', expression: '{ "ok": true }' }], blobs);
    expect(await rawResult(job.id)).toEqual({ isNull: false });
    expect(await findJobResultArchive(t.db, org.organizationId, job.id)).toBeNull();
    const res = await client(app, org.key).get(`/v1/jobs/${job.id}`);
    expect(res.body).toMatchObject({ result: { ok: true }, resultStored: null });
  });

  it('the threshold is configurable', async () => {
    const job = await runJob([{ id: 'mid', type: 'transform', expression: '{ "text": $pad("", 2000, "x") }' }], blobs, {}, 1024);
    expect(await rawResult(job.id)).toEqual({ isNull: true });
    expect((await client(app, org.key).get(`/v1/jobs/${job.id}`)).body.result.text).toHaveLength(2000);
  });

  it('a failing blob store keeps the result inline and says so in the stream', async () => {
    const failing: BlobStore = Object.assign(Object.create(blobs) as BlobStore, {
      put: async (key: string) => {
        throw new BlobUnavailableError('put', key, 'full');
      },
    });
    const job = await runJob(bigResult, failing);
    expect(job.status).toBe('COMPLETED');
    expect(await rawResult(job.id)).toEqual({ isNull: false });
    expect(await findJobResultArchive(t.db, org.organizationId, job.id)).toBeNull();
    const stream = await listStream(t.db, org.organizationId, job, { limit: 100 });
    expect(stream.find((r) => (r.data as { code?: string } | null)?.code === 'RESULT_BLOB_UNAVAILABLE')?.level).toBe('WARN');
    expect((job.result as { rows: unknown[] }).rows).toHaveLength(2000);
  });

  it('without a blob store results stay inline up to 1 MB', async () => {
    const job = await runJob(bigResult, undefined);
    expect(await rawResult(job.id)).toEqual({ isNull: false });
  });

  it('a stored result with no blob store configured is a clear 503, not a wrong answer', async () => {
    const job = await runJob(bigResult, blobs);
    const bare = await buildApp({ db: t.db, logger: silentLogger, version: 'test' });
    try {
      const err = expectError(await client(bare, org.key).get(`/v1/jobs/${job.id}`), 503, 'UNAVAILABLE');
      expect(err.message).toMatch(/blob storage/);
    } finally {
      await bare.close();
    }
  });
});

describe('bounded text from step execution is truncated with a marker, not refused', () => {
  it('a 50,000-character step error: job error 2,000, stream rows at most 10,000, both marked', async () => {
    const job = await runJob([{ id: 'boom', type: 'transform', expression: '$error($pad("", 50000, "e"))' }], blobs);
    expect(job.status).toBe('FAILED');
    expect(job.errorMessage).toHaveLength(2000);
    expect(job.errorMessage!.endsWith('…[truncated]')).toBe(true);
    const stream = await listStream(t.db, org.organizationId, job, { limit: 100 });
    const failed = stream.filter((r) => r.kind === 'STEP_FAILED' || r.kind === 'JOB_FAILED');
    expect(failed).toHaveLength(2);
    for (const row of failed) {
      expect(row.message.length).toBeLessThanOrEqual(10_000);
      expect(row.message.endsWith('…[truncated]')).toBe(true);
    }
  });

  it('a log line rendered past 10,000 characters is cut with a marker', async () => {
    const job = await runJob([{ id: 'say', type: 'log', message: '{{ input.text }}' }], blobs, { text: 'z'.repeat(30_000) });
    expect(job.status).toBe('COMPLETED');
    const line = (await listStream(t.db, org.organizationId, job, { limit: 100 })).find((r) => r.kind === 'LOG')!;
    expect(line.message).toHaveLength(10_000);
    expect(line.message.endsWith('…[truncated]')).toBe(true);
  });
});

describe('CHECK constraints stand behind the 1 MB limits', () => {
  it('the database refuses an oversized result, input, definition or result reference written around the API', async () => {
    const wf = await defineWorkflow(t.db, org.organizationId, { name: 'checks', definition: { steps: [{ id: 'a', type: 'noop' }] } });
    const [run] = await startRuns(t.db, org.organizationId, wf.id, [{}]);
    const huge = JSON.stringify({ s: 'x'.repeat(2 * 1024 * 1024 + 10) });
    await expect(t.db.query(`UPDATE stepwise.jobs SET result = $2::jsonb WHERE id = $1`, [run!.id, huge])).rejects.toThrow();
    await expect(t.db.query(`UPDATE stepwise.jobs SET input = $2::jsonb WHERE id = $1`, [run!.id, huge])).rejects.toThrow();
    await expect(
      t.db.query(`INSERT INTO stepwise.workflow_versions (workflow_id, version, organization_id, definition) VALUES ($1, 99, $2, $3::jsonb)`, [
        wf.id,
        org.organizationId,
        huge,
      ]),
    ).rejects.toThrow();
    await expect(
      t.db.query(
        `INSERT INTO stepwise.job_result_archives (job_id, organization_id, blob_key, size_bytes, stored_bytes, sha256)
         VALUES ($1, $2, 'k', $3, 1, decode(repeat('00', 32), 'hex'))`,
        [run!.id, org.organizationId, 1024 * 1024 + 1],
      ),
    ).rejects.toThrow();
    const { rows } = await t.db.query<{ is_null: boolean }>(`SELECT result IS NULL AS is_null FROM stepwise.jobs WHERE id = $1`, [run!.id]);
    expect(rows[0]!.is_null).toBe(true);
  });
});
