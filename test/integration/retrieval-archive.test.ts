import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FsBlobStore } from '../../src/blob/index.js';
import type { Worker } from '../../src/engine/index.js';
import { archiveExecutionLogs, readJobStream, restoreJob } from '../../src/lifecycle/index.js';
import { countBlobLines, decodeJobRetrievals, decodeJobRows, encodeMember } from '../../src/lifecycle/archive-format.js';
import { DEFAULT_ARCHIVE_OPTIONS } from '../../src/lifecycle/archiver.js';
import { deleteExpiredJobs, findJob, getRetentionPolicy, type StoredRetrieval } from '../../src/store/index.js';
import { createTestDb, type TestDb } from '../helpers/db.js';
import { seedOrg, startWorker, waitForJob } from '../helpers/fixtures.js';
import { client, createTestApp, type ApiClient, type Json } from '../helpers/api.js';

/**
 * The retrieval record follows its job's stream through retention: into the
 * stream's archive (and out of its tables in the same transaction), read
 * from there, back with a restore, and gone with the job at expiry; the
 * daily analytics counts stay throughout.
 */
const DAY = 86_400_000;
let t: TestDb;
let dir: string;
let blobs: FsBlobStore;
let app: FastifyInstance;
let worker: Worker;
let orgId: string;
let api: ApiClient;
let retrieving: string;
let plain: string;
let retrievalId: string;

beforeAll(async () => {
  t = await createTestDb();
  dir = await mkdtemp(join(tmpdir(), 'stepwise-retrieval-archive-'));
  blobs = new FsBlobStore(dir);
  app = await createTestApp(t.db, blobs);
  const org = await seedOrg(t.db, 'Claims');
  orgId = org.organizationId;
  api = client(app, org.key);
  worker = startWorker(t.db, { pollIntervalMs: 50 });
  const docs = await api.post('/v1/knowledge/rules/documents', {
    documents: [
      { externalId: 'pa-mri', title: 'Prior authorization for MRI', text: 'MRI needs prior authorization.', tags: ['imaging'] },
      { externalId: 'pa-ct', title: 'CT with contrast', text: 'CT with contrast needs prior authorization.', tags: ['imaging'] },
      { externalId: 'filing', title: 'Timely filing', text: 'File claims within 90 days.', tags: ['claims'] },
    ],
  });
  expect(docs.status, JSON.stringify(docs.body)).toBe(200);
  retrieving = await run([
    { id: 'rules', type: 'retrieve', collection: 'rules', query: 'prior authorization', topK: 5 },
    { id: 'mark', type: 'markUsed', documents: ['pa-ct'], reason: 'contrast ordered' },
  ]);
  plain = await run([{ id: 'note', type: 'log', message: 'no retrieval here' }]);
});

afterAll(async () => {
  await worker?.stop();
  await app?.close();
  await t?.close();
  await rm(dir, { recursive: true, force: true });
});

let n = 0;
async function run(steps: Json[]): Promise<string> {
  const wf = await api.post('/v1/workflows', { name: `claims-${++n}`, definition: { steps } });
  expect(wf.status, JSON.stringify(wf.body)).toBe(201);
  const started = await api.post(`/v1/workflows/${wf.body.id}/runs`, { input: {} });
  const job = await waitForJob(t.db, orgId, started.body.jobId);
  expect(job.status).toBe('COMPLETED');
  return job.id;
}

/** The job's rows in the live tables: its retrievals, and document rows of the retrieval `retrievalId`. */
async function liveCounts(jobId: string): Promise<{ retrievals: number; documents: number }> {
  const { rows } = await t.db.query<{ retrievals: number; documents: number }>(
    `SELECT (SELECT count(*)::int FROM stepwise.retrievals WHERE job_id = $1) AS retrievals,
            (SELECT count(*)::int FROM stepwise.retrieval_documents WHERE retrieval_id = $2) AS documents`,
    [jobId, retrievalId],
  );
  return rows[0]!;
}

async function streamLength(jobId: string): Promise<number> {
  const job = (await findJob(t.db, orgId, jobId))!;
  return (await readJobStream(t.db, blobs, orgId, job, { limit: 1000 })).items.length;
}

describe('retrievals through archive, restore and expiry', () => {
  it('go into the stream archive, leave their tables in the same commit, and read back the same', async () => {
    const live = await api.get(`/v1/jobs/${retrieving}/retrievals`);
    expect(live.body.archived).toBe(false);
    expect(live.body.items).toHaveLength(1);
    retrievalId = live.body.items[0].id;
    expect(live.body.items[0].documents.map((d: Json) => [d.externalId, d.used])).toEqual([
      ['pa-mri', false],
      ['pa-ct', true],
    ]);
    const analytics = (await api.get('/v1/knowledge/rules/analytics')).body;
    const rowsBefore = { retrieving: await streamLength(retrieving), plain: await streamLength(plain) };
    expect(await liveCounts(retrieving)).toEqual({ retrievals: 1, documents: 2 });

    const policy = await getRetentionPolicy(t.db, orgId, 'execution_log');
    const report = await archiveExecutionLogs(t.db, blobs, [policy], {
      asOf: new Date(Date.now() + (policy.hotRetentionDays + 1) * DAY),
      dryRun: false,
      keepBefore: null,
      ...DEFAULT_ARCHIVE_OPTIONS,
    });
    expect(report).toMatchObject({ jobs: 2, retrievals: 1 });
    expect(await liveCounts(retrieving)).toEqual({ retrievals: 0, documents: 0 });

    const archived = await api.get(`/v1/jobs/${retrieving}/retrievals`);
    expect(archived.status, JSON.stringify(archived.body)).toBe(200);
    expect(archived.body).toEqual({ ...live.body, archived: true });
    expect((await api.get(`/v1/jobs/${plain}/retrievals`)).body).toEqual({ items: [], archived: true });
    // Both jobs' streams share one member; the retrieval lines between them are skipped when reading either.
    expect({ retrieving: await streamLength(retrieving), plain: await streamLength(plain) }).toEqual(rowsBefore);
    // Analytics reads the daily counts, never the archive.
    expect((await api.get('/v1/knowledge/rules/analytics')).body).toEqual({ ...analytics, from: expect.any(String), to: expect.any(String) });
  });

  it('come back with a restore, exactly as they were', async () => {
    const archived = (await api.get(`/v1/jobs/${retrieving}/retrievals`)).body;
    const report = await restoreJob(t.db, blobs, retrieving, { holdDays: 1 });
    expect(report.jobs).toBe(1);
    expect(await liveCounts(retrieving)).toEqual({ retrievals: 1, documents: 2 });
    expect((await api.get(`/v1/jobs/${retrieving}/retrievals`)).body).toEqual({ ...archived, archived: false });
  });

  it('go with their job at expiry', async () => {
    const now = Date.now();
    const deleted = await t.db.transaction((tx) => deleteExpiredJobs(tx, orgId, new Date(now + 3 * DAY), new Date(now + 2 * DAY), 100));
    expect(deleted.jobs).toBe(2);
    expect(await liveCounts(retrieving)).toEqual({ retrievals: 0, documents: 0 });
  });
});

describe('the archive format', () => {
  const header = (jobId: string, records: number) => ({ jobId, organizationId: 'o', firstSeq: 1, lastSeq: records, records });
  const line = (seq: number) => JSON.stringify({ seq, ts: '2026-01-05T10:00:00.123456Z', stepIndex: 0, kind: 0, level: 3, message: `m${seq}`, data: null });
  const retrieval = (id: string): StoredRetrieval => ({
    id,
    jobId: 'a',
    workflowId: 'w',
    stepPath: 'rules',
    collection: 'rules',
    query: 'q',
    tookMs: 1,
    count: 1,
    averageScore: 0.5,
    createdAt: '2026-01-05T10:00:00.123456Z',
    documents: [{ rank: 1, documentId: 'd', score: 0.5, usedAt: null, usedByPath: null, usedReason: null }],
  });

  it('reads members written before retrievals, and skips retrieval lines to reach the next job', async () => {
    const old = await encodeMember([{ header: header('a', 2), lines: [line(1), line(2)].join('\n') }]);
    expect((await decodeJobRows(old, 'a')).map((r) => r.seq)).toEqual([1, 2]);
    expect(await decodeJobRetrievals(old, 'a')).toEqual([]);
    const member = await encodeMember([
      { header: header('a', 2), lines: [line(1), line(2)].join('\n'), retrievals: [retrieval('r1'), retrieval('r2')] },
      { header: header('b', 1), lines: line(1) },
    ]);
    expect(await countBlobLines(member)).toBe(2 + 2 + 2 + 1);
    expect((await decodeJobRows(member, 'b')).map((r) => r.message)).toEqual(['m1']);
    expect((await decodeJobRetrievals(member, 'a')).map((r) => r.id)).toEqual(['r1', 'r2']);
    expect(await decodeJobRetrievals(member, 'b')).toEqual([]);
    // A job without retrievals archives byte for byte as before.
    expect(await encodeMember([{ header: header('a', 2), lines: [line(1), line(2)].join('\n'), retrievals: [] }])).toEqual(old);
  });
});
