import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BlobUnavailableError, FsBlobStore } from '../../src/blob/index.js';
import { createApiKey } from '../../src/security/index.js';
import { readJobStream, restoreJob, restoreRange, runMaintenance, setRetentionPolicy } from '../../src/lifecycle/index.js';
import { findJob, kindName, levelName, listStreamPartitions } from '../../src/store/index.js';
import { replayJobEvents } from '../../src/read/index.js';
import { generateStorageDataset } from '../../bench/storage-data.js';
import { createTestDb, type TestDb } from '../helpers/db.js';
import { client, createTestApp, expectError } from '../helpers/api.js';
import { expectEveryRowOnce, hotRows, snapshotRows, wrapBlobStore, type RowSnapshot } from '../helpers/archive.js';

const DAY = 86_400_000;
const NOW = new Date();

let t: TestDb;
let dir: string;
let blobs: FsBlobStore;
let app: FastifyInstance;
let orgs: string[];
let before: Map<string, RowSnapshot>;

beforeAll(async () => {
  t = await createTestDb();
  dir = await mkdtemp(join(tmpdir(), 'stepwise-archive-'));
  blobs = new FsBlobStore(dir);
  app = await createTestApp(t.db, blobs);
  // Four months of jobs ending now: with the default 30-day hot window about three are archived.
  const data = await generateStorageDataset(t.db, { months: 4, jobsPerMonth: 40, rowsPerJob: 12, organizations: 2, end: NOW });
  orgs = data.organizationIds;
  before = await snapshotRows(t.db);
  expect(before.size).toBe(4 * 40 * 12);
});

afterAll(async () => {
  await app?.close();
  await t?.close();
  await rm(dir, { recursive: true, force: true });
});

async function oldJobIds(olderThanDays: number): Promise<string[]> {
  const { rows } = await t.db.query<{ id: string }>(
    `SELECT id FROM stepwise.jobs WHERE completed_at < $1 ORDER BY run_number`,
    [new Date(NOW.getTime() - olderThanDays * DAY).toISOString()],
  );
  return rows.map((r) => r.id);
}

describe('archival', () => {
  it('a dry run reports what would be archived and changes nothing', async () => {
    const due = await oldJobIds(30);
    const report = await runMaintenance(t.db, blobs, { asOf: NOW, dryRun: true });
    expect(report.dryRun).toBe(true);
    expect(report.executionLog.jobs).toBe(due.length);
    expect(report.executionLog.rows).toBe(due.length * 12);
    expect(await blobs.list('')).toEqual([]);
    expect((await hotRows(t.db)).length).toBe(before.size);
  });

  it('refuses to delete anything when the blob store is unreachable', async () => {
    const broken = wrapBlobStore(blobs, {
      put: async (key) => {
        throw new BlobUnavailableError('put', key, 'unreachable');
      },
    });
    await expect(runMaintenance(t.db, broken, { asOf: NOW })).rejects.toBeInstanceOf(BlobUnavailableError);
    expect((await hotRows(t.db)).length).toBe(before.size);
    const { rows } = await t.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM stepwise.execution_log_archives`);
    expect(rows[0]!.n).toBe(0);
    // The lease was given back: the next run is not locked out.
    const lease = await t.db.query(`SELECT * FROM stepwise.maintenance_leases`);
    expect(lease.rows).toEqual([]);
  });

  it('refuses when a blob reads back different from what was written', async () => {
    const lying = wrapBlobStore(blobs, {
      get: async (k) => {
        const real = await blobs.get(k);
        real[real.length - 1]! ^= 0xff;
        return real;
      },
    });
    await expect(runMaintenance(t.db, lying, { asOf: NOW })).rejects.toThrow(/did not read back/);
    expect((await hotRows(t.db)).length).toBe(before.size);
  });

  let archivedBeforeFull = 0;
  it('a blob store that fills up after one blob keeps that batch archived and the rest hot, and reports', async () => {
    let puts = 0;
    const filling = wrapBlobStore(blobs, {
      put: async (key, body, o) => {
        if (puts++ > 0) throw new BlobUnavailableError('put', key, 'full');
        return blobs.put(key, body, o);
      },
    });
    const err = await runMaintenance(t.db, filling, { asOf: NOW, batchJobs: 10 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BlobUnavailableError);
    expect((err as BlobUnavailableError).reason).toBe('full');
    const counts = await expectEveryRowOnce(t.db, blobs, before, false);
    expect(counts.archived).toBe(10 * 12);
    archivedBeforeFull = 10;
  });

  it('archives jobs past the hot window, drops whole old partitions, and loses or duplicates nothing', async () => {
    const due = await oldJobIds(30);
    const report = await runMaintenance(t.db, blobs, { asOf: NOW, batchJobs: 25 });
    expect(report.executionLog.jobs).toBe(due.length - archivedBeforeFull);
    expect(report.executionLog.rows).toBe((due.length - archivedBeforeFull) * 12);
    expect(report.executionLog.blobs).toBeGreaterThan(1);
    expect(report.executionLog.compressedBytes).toBeLessThan(report.executionLog.rawBytes / 3);
    // Month partitions wholly before the window went whole; at least the oldest one existed.
    expect(report.partitions.dropped.length).toBeGreaterThan(0);
    const remaining = (await listStreamPartitions(t.db)).map((p) => p.name);
    for (const d of report.partitions.dropped) expect(remaining).not.toContain(d);
    const counts = await expectEveryRowOnce(t.db, blobs, before, true);
    expect(counts.archived).toBe(due.length * 12);
    // Hot storage holds only jobs inside the window.
    const { rows } = await t.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM stepwise.execution_log l JOIN stepwise.jobs j ON j.id = l.job_id WHERE j.completed_at < $1`,
      [new Date(NOW.getTime() - 30 * DAY).toISOString()],
    );
    expect(rows[0]!.n).toBe(0);
  });

  it('a second run finds nothing to do', async () => {
    const report = await runMaintenance(t.db, blobs, { asOf: NOW });
    expect(report.executionLog.jobs).toBe(0);
    expect(report.orphanBlobs).toBe(0);
    await expectEveryRowOnce(t.db, blobs, before, true);
  });

  it('reads an archived job through the API exactly as it was, with filters, marked archived', async () => {
    const jobId = (await oldJobIds(60))[3]!;
    const org = (await findJob(t.db, orgs[0]!, jobId)) ? orgs[0]! : orgs[1]!;
    const { key } = await createApiKey(t.db, org, { name: 'reader' });
    const api = client(app, key);
    const res = await api.get(`/v1/jobs/${jobId}/stream`);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.archived).toBe(true);
    expect(res.body.items.map((i: { seq: number }) => i.seq)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
    const first = before.get(`${jobId}:1`)!;
    expect(res.body.items[0]).toMatchObject({ seq: 1, kind: 'JOB_STARTED', message: first.message });
    expect(new Date(res.body.items[0].ts).getTime()).toBe(Math.floor(Number(BigInt(first.us) / 1000n)));
    const page = await api.get(`/v1/jobs/${jobId}/stream?afterSeq=5&limit=3`);
    expect(page.body.items.map((i: { seq: number }) => i.seq)).toEqual([6, 7, 8]);
    expect(page.body.nextAfterSeq).toBe(8);
    const warn = await api.get(`/v1/jobs/${jobId}/stream?level=WARN`);
    const expectedWarn = [...before.values()].filter((r) => r.jobId === jobId && r.level >= 4).map((r) => r.seq).sort((a, b) => a - b);
    expect(warn.body.items.map((i: { seq: number }) => i.seq)).toEqual(expectedWarn);
    // Another organization's key: 404, archived or not.
    const other = client(app, (await createApiKey(t.db, org === orgs[0] ? orgs[1]! : orgs[0]!, { name: 'x' })).key);
    expectError(await other.get(`/v1/jobs/${jobId}/stream`), 404, 'NOT_FOUND');
    expectError(await other.get(`/v1/jobs/${jobId}/timeline`), 404, 'NOT_FOUND');
    // The timeline and the state at a sequence number are rebuilt from the archive, exactly as from the rows it replaced.
    const written = [...before.values()]
      .filter((r) => r.jobId === jobId && r.kind !== 0)
      .map((r) => ({ seq: r.seq, ts: new Date(Math.floor(Number(BigInt(r.us) / 1000n))), kind: kindName(r.kind), level: levelName(r.level), stepIndex: r.stepIndex, message: r.message, data: r.data }));
    const expected = replayJobEvents(written);
    expect(expected.steps.length).toBeGreaterThan(0);
    const timeline = await api.get(`/v1/jobs/${jobId}/timeline`);
    expect(timeline.status, JSON.stringify(timeline.body)).toBe(200);
    expect(timeline.body.archived).toBe(true);
    expect(timeline.body.steps).toEqual(JSON.parse(JSON.stringify(expected.steps)));
    const state = await api.get(`/v1/jobs/${jobId}/state?at=6`);
    expect(state.status).toBe(200);
    expect(state.body).toEqual(JSON.parse(JSON.stringify(replayJobEvents(written.filter((e) => e.seq <= 6)))));
    // Hot jobs are unchanged and not marked.
    const hotJob = (await t.db.query<{ id: string }>(`SELECT id FROM stepwise.jobs WHERE organization_id = $1 ORDER BY run_number DESC LIMIT 1`, [org])).rows[0]!.id;
    const hot = await api.get(`/v1/jobs/${hotJob}/stream`);
    expect(hot.body.archived).toBe(false);
    expect(hot.body.items).toHaveLength(12);
  });

  it('reads a job that is part archived, part hot as one stream', async () => {
    const jobId = (await oldJobIds(60))[4]!;
    const org = (await findJob(t.db, orgs[0]!, jobId)) ? orgs[0]! : orgs[1]!;
    await t.db.query(
      // Stamped at the job's end: reads are bounded by the job's lifetime (± clock skew), as every real row is.
      `INSERT INTO stepwise.execution_log (organization_id, job_id, ts, seq, kind, level, message)
       SELECT $1, $2, completed_at, 13, 0, 3, 'late line' FROM stepwise.jobs WHERE id = $2`,
      [org, jobId],
    );
    const job = (await findJob(t.db, org, jobId))!;
    const page = await readJobStream(t.db, blobs, org, job, { limit: 100 });
    expect(page.archived).toBe(true);
    expect(page.items.map((i) => i.seq)).toEqual(Array.from({ length: 13 }, (_, i) => i + 1));
    expect(page.items[12]!.message).toBe('late line');
    const tail = await readJobStream(t.db, blobs, org, job, { afterSeq: 11, limit: 100 });
    expect(tail.items.map((i) => i.seq)).toEqual([12, 13]);
    await t.db.query(`DELETE FROM stepwise.execution_log WHERE job_id = $1 AND seq = 13`, [jobId]);
  });

  it('restores a job exactly (to the microsecond), keeps it hot, and is idempotent', async () => {
    const jobId = (await oldJobIds(60))[0]!;
    const stepExecutions = async () =>
      Number((await t.db.query<{ n: string }>(`SELECT coalesce(sum(executions), 0)::text AS n FROM stepwise.step_metrics`)).rows[0]!.n);
    const executionsBefore = await stepExecutions();
    expect(executionsBefore).toBeGreaterThan(0);
    const r1 = await restoreJob(t.db, blobs, jobId, { holdDays: 30, now: NOW });
    expect(r1).toMatchObject({ jobs: 1, rows: 12 });
    // Restored step results are not new executions: step metrics count them once.
    expect(await stepExecutions()).toBe(executionsBefore);
    const r2 = await restoreJob(t.db, blobs, jobId, { holdDays: 30, now: NOW });
    expect(r2).toMatchObject({ jobs: 0, rows: 0 });
    const counts = await expectEveryRowOnce(t.db, blobs, before, true);
    expect((await hotRows(t.db)).filter((r) => r.jobId === jobId)).toHaveLength(12);
    // The hold keeps the next run from archiving it straight back.
    const report = await runMaintenance(t.db, blobs, { asOf: NOW });
    expect(report.executionLog.jobs).toBe(0);
    expect((await expectEveryRowOnce(t.db, blobs, before, true)).hot).toBe(counts.hot);
    // After the hold, it goes back to the archive.
    const later = await runMaintenance(t.db, blobs, { asOf: new Date(NOW.getTime() + 31 * DAY) });
    expect(later.executionLog.jobs).toBeGreaterThanOrEqual(1);
    await expectEveryRowOnce(t.db, blobs, before, true);
  });

  it('restores a time range, deleting blobs nothing refers to any more', async () => {
    const from = new Date(NOW.getTime() - 200 * DAY);
    const to = new Date(NOW.getTime() - 60 * DAY);
    const r = await restoreRange(t.db, blobs, { from, to, organizationId: orgs[0]! }, { holdDays: 1, now: NOW });
    expect(r.jobs).toBeGreaterThan(0);
    expect(r.rows).toBe(r.jobs * 12);
    await expectEveryRowOnce(t.db, blobs, before, true);
    const again = await restoreRange(t.db, blobs, { from, to, organizationId: orgs[0]! }, { holdDays: 1, now: NOW });
    expect(again.jobs).toBe(0);
  });

  it('deletes archives past delete-after, and only those organizations that asked', async () => {
    await setRetentionPolicy(t.db, orgs[1]!, 'execution_log', { hotRetentionDays: 30, archiveRetentionDays: 40, deleteAfterDays: 40 });
    const { rows: beforeRows } = await t.db.query<{ org: string; n: number }>(
      `SELECT organization_id AS org, count(*)::int AS n FROM stepwise.execution_log_archives GROUP BY 1`,
    );
    const keys = (await blobs.list('')).length;
    const report = await runMaintenance(t.db, blobs, { asOf: new Date(NOW.getTime() + 400 * DAY) });
    expect(report.expired.archives).toBeGreaterThanOrEqual(beforeRows.find((r) => r.org === orgs[1])!.n);
    expect(report.blobsDeleted).toBeGreaterThan(0);
    const { rows } = await t.db.query<{ org: string; n: number }>(
      `SELECT organization_id AS org, count(*)::int AS n FROM stepwise.execution_log_archives GROUP BY 1`,
    );
    expect(rows.find((r) => r.org === orgs[1])).toBeUndefined();
    expect(rows.find((r) => r.org === orgs[0])!.n).toBeGreaterThan(0);
    expect((await blobs.list('')).length).toBeLessThan(keys);
    expect((await blobs.list(`archive/execution_log/${orgs[1]}/`))).toEqual([]);
  });

  it('moves large results of old jobs to blob storage; GET /v1/jobs/:id reads them back; small ones stay', async () => {
    const { rows } = await t.db.query<{ id: string; organization_id: string }>(
      `SELECT id, organization_id FROM stepwise.jobs WHERE organization_id = $1 ORDER BY run_number LIMIT 3`,
      [orgs[0]!],
    );
    const big = { rows: Array.from({ length: 200 }, (_, i) => ({ line: i, member: `M${100000 + i}`, status: 'active' })) };
    await t.db.query(`UPDATE stepwise.jobs SET result = $2 WHERE id = ANY($1::uuid[])`, [[rows[0]!.id, rows[1]!.id], JSON.stringify(big)]);
    await t.db.query(`UPDATE stepwise.jobs SET result = '{"ok":true}' WHERE id = $1`, [rows[2]!.id]);
    const dry = await runMaintenance(t.db, blobs, { asOf: new Date(NOW.getTime() + 800 * DAY), dryRun: true });
    expect(dry.jobResults.jobs).toBe(2);
    const report = await runMaintenance(t.db, blobs, { asOf: new Date(NOW.getTime() + 800 * DAY) });
    expect(report.jobResults.jobs).toBe(2);
    expect(report.jobResults.compressedBytes).toBeLessThan(report.jobResults.rawBytes);
    const { rows: after } = await t.db.query<{ id: string; result: unknown }>(
      `SELECT id, result FROM stepwise.jobs WHERE id = ANY($1::uuid[]) ORDER BY run_number`,
      [rows.map((r) => r.id)],
    );
    expect(after.map((r) => r.result)).toEqual([null, null, { ok: true }]);
    const api = client(app, (await createApiKey(t.db, orgs[0]!, { name: 'results' })).key);
    const res = await api.get(`/v1/jobs/${rows[0]!.id}`);
    expect(res.status).toBe(200);
    expect(res.body.result).toEqual(big);
    const again = await runMaintenance(t.db, blobs, { asOf: new Date(NOW.getTime() + 800 * DAY) });
    expect(again.jobResults.jobs).toBe(0);
  });
});
