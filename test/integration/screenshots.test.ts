import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/api/index.js';
import { BlobUnavailableError, FsBlobStore, sha256Hex, type BlobStore } from '../../src/blob/index.js';
import { AzureBlobStore } from '../../src/blob/azure.js';
import { captureArtifact, policyRetainUntil, type ArtifactSink, type CaptureTarget } from '../../src/engine/artifacts.js';
import { Recorder, defineWorkflow, startRuns } from '../../src/engine/index.js';
import { JobRun } from '../../src/engine/job-run.js';
import { Frame } from '../../src/engine/frame.js';
import { JobAbort } from '../../src/engine/aborts.js';
import { captureTarget } from '../../src/engine/step-context.js';
import { PayloadTooLargeError } from '../../src/errors/index.js';
import { cleanupScreenshots, processBlobDeletions } from '../../src/lifecycle/screenshot-cleanup.js';
import {
  claimJobs,
  sqlRecordStore,
  findScreenshotBlobRefs,
  pinScreenshotBlob,
  reconcileScreenshotRefs,
  softDeleteScreenshot,
  upsertRetentionPolicy,
  type Screenshot,
} from '../../src/store/index.js';
import { client, expectError } from '../helpers/api.js';
import { startAzurite, type Azurite } from '../helpers/azurite.js';
import { createTestDb, type TestDb } from '../helpers/db.js';
import { seedOrg, silentLogger } from '../helpers/fixtures.js';
import { makePng } from '../helpers/png.js';
import { Outbound } from '../../src/net/outbound.js';

let t: TestDb;
let root: string;
let blobs: FsBlobStore;
let sink: ArtifactSink;
let orgA: { organizationId: string; key: string };
let orgB: { organizationId: string; key: string };
let app: FastifyInstance;

beforeAll(async () => {
  t = await createTestDb();
  root = await mkdtemp(join(tmpdir(), 'stepwise-shots-'));
  blobs = new FsBlobStore(root);
  sink = { db: t.db, blobs, retainUntil: policyRetainUntil(t.db) };
  orgA = await seedOrg(t.db, 'shots-a');
  orgB = await seedOrg(t.db, 'shots-b');
  app = await buildApp({ db: t.db, logger: silentLogger, version: 'test', blobs });
});

afterAll(async () => {
  await app?.close();
  await t?.close();
  if (root) await rm(root, { recursive: true, force: true });
});

/** A PENDING job of the organization (screenshots reference a real job row). */
async function newJob(organizationId: string): Promise<string> {
  const wf = await defineWorkflow(t.db, organizationId, { name: `wf-${Math.random()}`, definition: { steps: [{ id: 'a', type: 'noop' }] } });
  const [run] = await startRuns(t.db, organizationId, wf.id, [{}]);
  return run!.id;
}

/** A capture target that records the stream rows it was asked for. */
function target(organizationId: string, jobId: string, rows: unknown[] = []): CaptureTarget {
  return { organizationId, jobId, stepIndex: 0, emit: (_m, data) => rows.push(data) };
}

async function count(sql: string, params: unknown[] = []): Promise<number> {
  const { rows } = await t.db.query<{ n: number }>(sql, params);
  return rows[0]!.n;
}

function liveRefs(org: string, sha: string) {
  return findScreenshotBlobRefs(t.db, org, sha);
}

describe('capture', () => {
  it('stores the same image once per organization, reads PNG size, and links a stream row', async () => {
    const job = await newJob(orgA.organizationId);
    const png = makePng(32, 20, 1);
    const sha = sha256Hex(png);
    const rows: unknown[] = [];
    const first = await captureArtifact(sink, target(orgA.organizationId, job, rows), { bytes: png, name: 'after login' });
    const second = await captureArtifact(sink, target(orgA.organizationId, job, rows), { bytes: png });
    expect(first.id).not.toBe(second.id);
    expect(first).toMatchObject({ width: 32, height: 20, bytes: png.length, sha256: sha, contentType: 'image/png', name: 'after login', streamSeq: 1 });
    expect(second.streamSeq).toBe(2);
    expect(first.blobKey).toBe(second.blobKey);
    expect(rows).toEqual([
      expect.objectContaining({ screenshotId: first.id, sha256: sha, width: 32, height: 20 }),
      expect.objectContaining({ screenshotId: second.id }),
    ]);
    expect((await liveRefs(orgA.organizationId, sha))?.refCount).toBe(2);
    expect((await blobs.get(first.blobKey)).equals(png)).toBe(true);
    expect(await blobs.list(`screenshots/${orgA.organizationId}/`)).toHaveLength(1);
    // Same bytes in another organization: its own copy (tenants share nothing).
    const other = await captureArtifact(sink, target(orgB.organizationId, await newJob(orgB.organizationId)), { bytes: png });
    expect(other.blobKey).not.toBe(first.blobKey);
    expect(other.blobKey.startsWith(`screenshots/${orgB.organizationId}/`)).toBe(true);
  });

  it('through a running job: the SCREENSHOT stream row and the screenshot point at each other', async () => {
    const job = await newJob(orgA.organizationId);
    const [claimed] = (await claimJobs(t.db, 'w-capture', 100, 30_000)).filter((j) => j.id === job);
    const recorder = new Recorder(sqlRecordStore(t.db), 'w-capture', { flushIntervalMs: 1, maxBufferedRows: 100, leaseMs: 30_000 }, silentLogger);
    recorder.start({ jobId: claimed!.id, attempts: claimed!.attempts, startedAt: claimed!.startedAt, deadlineAt: null, lease: claimed!.lease });
    const run = new JobRun(claimed!, { steps: [{ id: 'a', type: 'noop' }] }, recorder, 60_000);
    run.emit('JOB_STARTED', 'INFO', null, 'started');
    const frame = Frame.top(run, { stepTimeoutMs: 1_000, httpMaxResponseBytes: 1_024, outbound: new Outbound(), checkpointTtlMs: 60_000, findSignal: async () => null }, new JobAbort());
    const shot = await captureArtifact(sink, captureTarget(frame, { id: 'a', type: 'noop' }), { bytes: makePng(8, 8, 2), type: 'ERROR_SCREENSHOT' });
    await recorder.flush();
    const { rows } = await t.db.query<{ seq: number; kind: number; data: { screenshotId: string } }>(
      `SELECT seq, kind, data FROM stepwise.execution_log WHERE job_id = $1 ORDER BY seq`,
      [job],
    );
    expect(rows.map((r) => r.kind)).toEqual([1, 30]);
    expect(rows[1]!.seq).toBe(shot.streamSeq);
    expect(rows[1]!.data.screenshotId).toBe(shot.id);
  });

  it("retain_until follows the organization's screenshot retention policy (default: kept for ever)", async () => {
    const org = await seedOrg(t.db, 'shots-policy');
    const job = await newJob(org.organizationId);
    const kept = await captureArtifact(sink, target(org.organizationId, job), { bytes: makePng(2, 2, 40) });
    expect(kept.retainUntil).toBeNull();
    await upsertRetentionPolicy(t.db, org.organizationId, 'screenshot', { hotRetentionDays: 7, archiveRetentionDays: 30, deleteAfterDays: 90 });
    const dated = await captureArtifact(sink, target(org.organizationId, job), { bytes: makePng(2, 2, 41) });
    expect(dated.retainUntil!.getTime() - dated.capturedAt.getTime()).toBe(90 * 86_400_000);
  });

  it('refuses empty and oversized artifacts before touching storage', async () => {
    const job = await newJob(orgA.organizationId);
    await expect(captureArtifact(sink, target(orgA.organizationId, job), { bytes: Buffer.alloc(0) })).rejects.toThrow(/empty/);
    await expect(captureArtifact(sink, target(orgA.organizationId, job), { bytes: Buffer.alloc(20 * 1024 * 1024 + 1) })).rejects.toBeInstanceOf(
      PayloadTooLargeError,
    );
    expect(await count(`SELECT count(*)::int AS n FROM stepwise.execution_screenshots WHERE job_id = $1`, [job])).toBe(0);
  });

  it('a failing blob store leaves no screenshot, no reference and no stream row', async () => {
    const job = await newJob(orgA.organizationId);
    const failing: BlobStore = Object.assign(Object.create(blobs) as BlobStore, {
      put: async (key: string) => {
        throw new BlobUnavailableError('put', key, 'full');
      },
    });
    const png = makePng(10, 10, 3);
    const rows: unknown[] = [];
    const err = await captureArtifact({ ...sink, blobs: failing }, target(orgA.organizationId, job, rows), { bytes: png }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BlobUnavailableError);
    expect(rows).toEqual([]);
    expect(await count(`SELECT count(*)::int AS n FROM stepwise.execution_screenshots WHERE job_id = $1`, [job])).toBe(0);
    expect(await liveRefs(orgA.organizationId, sha256Hex(png))).toBeNull();
    // The store recovers: the same capture now succeeds and the bytes are there.
    const ok = await captureArtifact(sink, target(orgA.organizationId, job), { bytes: png });
    expect((await blobs.get(ok.blobKey)).equals(png)).toBe(true);
  });

  it('an already stored image is not uploaded again', async () => {
    const job = await newJob(orgA.organizationId);
    const png = makePng(6, 6, 4);
    await captureArtifact(sink, target(orgA.organizationId, job), { bytes: png });
    let puts = 0;
    const counting: BlobStore = Object.assign(Object.create(blobs) as BlobStore, {
      put: async (...args: Parameters<BlobStore['put']>) => {
        puts++;
        return blobs.put(...args);
      },
    });
    await captureArtifact({ ...sink, blobs: counting }, target(orgA.organizationId, job), { bytes: png });
    expect(puts).toBe(0);
  });
});

describe('API', () => {
  let job: string;
  let shot: Screenshot;
  const png = makePng(12, 9, 5);
  beforeAll(async () => {
    job = await newJob(orgA.organizationId);
    shot = await captureArtifact(sink, target(orgA.organizationId, job), { bytes: png, name: 'page' });
  });

  it("lists a job's screenshots and streams one with its content type", async () => {
    const api = client(app, orgA.key);
    const list = await api.get(`/v1/jobs/${job}/screenshots`);
    expect(list.status).toBe(200);
    expect(list.body.items).toEqual([
      expect.objectContaining({ id: shot.id, jobId: job, width: 12, height: 9, bytes: png.length, sha256: shot.sha256, contentUrl: `/v1/screenshots/${shot.id}` }),
    ]);
    const res = await app.inject({ method: 'GET', url: `/v1/screenshots/${shot.id}`, headers: { authorization: `Bearer ${orgA.key}` } });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('image/png');
    expect(res.rawPayload.equals(png)).toBe(true);
    const url = await api.get(`/v1/screenshots/${shot.id}/url`);
    expect(url.body).toEqual({ url: null, expiresAt: null, contentUrl: `/v1/screenshots/${shot.id}` });
  });

  it("another organization's job and screenshot are 404, never 403", async () => {
    const api = client(app, orgB.key);
    expectError(await api.get(`/v1/jobs/${job}/screenshots`), 404, 'NOT_FOUND');
    expectError(await api.get(`/v1/screenshots/${shot.id}`), 404, 'NOT_FOUND');
    expectError(await api.get(`/v1/screenshots/${shot.id}/url`), 404, 'NOT_FOUND');
  });

  it("fetching a PHI workflow's screenshot (bytes or URL) is audited; listing metadata and other workflows' are not", async () => {
    const audits = async (resourceId: string) =>
      (await t.db.query<{ resource_type: string; fields: string[] }>(
        `SELECT resource_type, fields FROM stepwise.phi_audit_log WHERE resource_id = $1 ORDER BY id`,
        [resourceId],
      )).rows;
    const wf = await defineWorkflow(t.db, orgA.organizationId, {
      name: 'portal check',
      definition: { phi: ['input.memberId'], steps: [{ id: 'a', type: 'noop' }] },
    });
    const [run] = await startRuns(t.db, orgA.organizationId, wf.id, [{ input: { memberId: 'M-1' } }]);
    const phiShot = await captureArtifact(sink, target(orgA.organizationId, run!.id), { bytes: makePng(4, 4, 77) });
    const api = client(app, orgA.key);
    expect((await api.get(`/v1/jobs/${run!.id}/screenshots`)).status).toBe(200);
    expect(await audits(phiShot.id)).toEqual([]);
    const bytes = await app.inject({ method: 'GET', url: `/v1/screenshots/${phiShot.id}`, headers: { authorization: `Bearer ${orgA.key}` } });
    expect(bytes.statusCode).toBe(200);
    expect((await api.get(`/v1/screenshots/${phiShot.id}/url`)).status).toBe(200);
    expect(await audits(phiShot.id)).toEqual([
      { resource_type: 'SCREENSHOT', fields: ['input.memberId'] },
      { resource_type: 'SCREENSHOT', fields: ['input.memberId'] },
    ]);
    // The plain workflow's screenshot of the test above: fetched, never audited.
    await app.inject({ method: 'GET', url: `/v1/screenshots/${shot.id}`, headers: { authorization: `Bearer ${orgA.key}` } });
    expect(await audits(shot.id)).toEqual([]);
  });

  it('a deleted screenshot is 404 and drops out of the list', async () => {
    const other = await captureArtifact(sink, target(orgA.organizationId, job), { bytes: makePng(3, 3, 6) });
    expect(await softDeleteScreenshot(t.db, orgA.organizationId, other.id)).toBe(true);
    const api = client(app, orgA.key);
    expectError(await api.get(`/v1/screenshots/${other.id}`), 404, 'NOT_FOUND');
    expect((await api.get(`/v1/jobs/${job}/screenshots`)).body.items.map((s: { id: string }) => s.id)).toEqual([shot.id]);
  });
});

describe('cleanup and reference counting', () => {
  it('soft-deletes screenshots past retain_until and deletes a blob only with its last reference', async () => {
    const job = await newJob(orgA.organizationId);
    const shared = makePng(5, 5, 7);
    const lone = makePng(5, 5, 8);
    const short = { ...sink, retainUntil: async () => new Date('2020-01-01T00:00:00Z') };
    const a = await captureArtifact(short, target(orgA.organizationId, job), { bytes: shared });
    const keep = await captureArtifact(sink, target(orgA.organizationId, job), { bytes: shared });
    const b = await captureArtifact(short, target(orgA.organizationId, job), { bytes: lone });
    const result = await cleanupScreenshots(t.db, blobs);
    expect(result.softDeleted).toBeGreaterThanOrEqual(2);
    expect(result.blobsPending).toBe(0);
    const { rows } = await t.db.query<{ id: string; deleted: boolean }>(
      `SELECT id, deleted_at IS NOT NULL AS deleted FROM stepwise.execution_screenshots WHERE id = ANY($1::uuid[]) ORDER BY id`,
      [[a.id, keep.id, b.id]],
    );
    expect(Object.fromEntries(rows.map((r) => [r.id, r.deleted]))).toEqual({ [a.id]: true, [keep.id]: false, [b.id]: true });
    expect(await blobs.exists(a.blobKey)).toBe(true); // still referenced by `keep`
    expect((await liveRefs(orgA.organizationId, a.sha256))?.refCount).toBe(1);
    expect(await blobs.exists(b.blobKey)).toBe(false);
    expect(await liveRefs(orgA.organizationId, b.sha256)).toBeNull();
    // Running again changes nothing.
    expect(await cleanupScreenshots(t.db, blobs)).toMatchObject({ softDeleted: 0, blobsDeleted: 0 });
  });

  it('two deletes racing one capture of the same image never lose the capture’s bytes', async () => {
    for (let round = 0; round < 8; round++) {
      const job = await newJob(orgA.organizationId);
      const png = makePng(4, 4, 100 + round);
      const s1 = await captureArtifact(sink, target(orgA.organizationId, job), { bytes: png });
      const s2 = await captureArtifact(sink, target(orgA.organizationId, job), { bytes: png });
      const [, , s3] = await Promise.all([
        softDeleteScreenshot(t.db, orgA.organizationId, s1.id),
        softDeleteScreenshot(t.db, orgA.organizationId, s2.id),
        captureArtifact(sink, target(orgA.organizationId, job), { bytes: png }),
      ]);
      await processBlobDeletions(t.db, blobs);
      const refs = await liveRefs(orgA.organizationId, s3.sha256);
      expect(refs, `round ${round}`).toMatchObject({ refCount: 1, stored: true, blobKey: s3.blobKey });
      expect((await blobs.get(s3.blobKey)).equals(png), `round ${round}`).toBe(true);
      // And when the survivor goes too, so do its bytes.
      await softDeleteScreenshot(t.db, orgA.organizationId, s3.id);
      await processBlobDeletions(t.db, blobs);
      expect(await blobs.exists(s3.blobKey)).toBe(false);
      expect(await liveRefs(orgA.organizationId, s3.sha256)).toBeNull();
    }
  });

  it('deleting a job (retention) releases its screenshots and their blobs', async () => {
    const job = await newJob(orgA.organizationId);
    const shot = await captureArtifact(sink, target(orgA.organizationId, job), { bytes: makePng(7, 7, 9) });
    await t.db.query(`DELETE FROM stepwise.job_queue WHERE job_id = $1`, [job]);
    await t.db.query(`DELETE FROM stepwise.jobs WHERE id = $1`, [job]);
    expect(await processBlobDeletions(t.db, blobs)).toMatchObject({ pending: 0 });
    expect(await blobs.exists(shot.blobKey)).toBe(false);
    expect(await liveRefs(orgA.organizationId, shot.sha256)).toBeNull();
  });

  it('a blob store that fails during cleanup keeps the deletion queued for the next run', async () => {
    const job = await newJob(orgA.organizationId);
    const shot = await captureArtifact({ ...sink, retainUntil: async () => new Date(0) }, target(orgA.organizationId, job), {
      bytes: makePng(9, 9, 10),
    });
    const broken: BlobStore = Object.assign(Object.create(blobs) as BlobStore, {
      delete: async (key: string) => {
        throw new BlobUnavailableError('delete', key, 'unreachable');
      },
    });
    const first = await cleanupScreenshots(t.db, broken);
    expect(first.blobsPending).toBe(1);
    expect(first.error).toMatch(/unreachable/);
    expect(await blobs.exists(shot.blobKey)).toBe(true);
    const second = await cleanupScreenshots(t.db, blobs);
    expect(second).toMatchObject({ blobsDeleted: 1, blobsPending: 0 });
    expect(await blobs.exists(shot.blobKey)).toBe(false);
  });

  it('repairs a count left high by a capture that died between pin and insert', async () => {
    const job = await newJob(orgA.organizationId);
    const png = makePng(11, 11, 11);
    const shot = await captureArtifact(sink, target(orgA.organizationId, job), { bytes: png });
    await pinScreenshotBlob(t.db, orgA.organizationId, shot.sha256, png.length, 'never/used');
    expect((await liveRefs(orgA.organizationId, shot.sha256))?.refCount).toBe(2);
    // Idle means updated before now(): PGlite's clock can read the same millisecond in the next
    // transaction (CI saw 0 rows repaired), so let it move on first.
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(await reconcileScreenshotRefs(t.db, 0)).toBeGreaterThanOrEqual(1);
    expect((await liveRefs(orgA.organizationId, shot.sha256))?.refCount).toBe(1);
  });
});

describe('Azure backend: signed URL through the API', () => {
  let azurite: Azurite;
  let azureApp: FastifyInstance;
  let azureSink: ArtifactSink;
  beforeAll(async () => {
    azurite = await startAzurite();
    const store = AzureBlobStore.fromConnectionString(azurite.connectionString, 'shots');
    azureSink = { db: t.db, blobs: store, retainUntil: policyRetainUntil(t.db) };
    azureApp = await buildApp({ db: t.db, logger: silentLogger, version: 'test', blobs: store });
  });
  afterAll(async () => {
    await azureApp?.close();
    await azurite?.stop();
  });

  it('hands out a SAS URL that reads the bytes straight from blob storage', async () => {
    const org = await seedOrg(t.db, 'shots-azure');
    const job = await newJob(org.organizationId);
    const png = makePng(16, 16, 12);
    const shot = await captureArtifact(azureSink, target(org.organizationId, job), { bytes: png });
    const res = await client(azureApp, org.key).get(`/v1/screenshots/${shot.id}/url?expiresIn=120`);
    expect(res.status).toBe(200);
    const direct = await fetch(res.body.url);
    expect(direct.status).toBe(200);
    expect(direct.headers.get('content-type')).toBe('image/png');
    expect(Buffer.from(await direct.arrayBuffer()).equals(png)).toBe(true);
    const streamed = await azureApp.inject({ method: 'GET', url: `/v1/screenshots/${shot.id}`, headers: { authorization: `Bearer ${org.key}` } });
    expect(streamed.rawPayload.equals(png)).toBe(true);
  });
});
