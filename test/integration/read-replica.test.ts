import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureStreamPartitions, migrate, PostgresDb, ReadReplica } from '../../src/db/index.js';
import type { Worker } from '../../src/engine/index.js';
import { client, createTestApp, type ApiClient, type Json } from '../helpers/api.js';
import { backend } from '../helpers/db.js';
import { seedOrg, silentLogger, startWorker, waitForJob, waitForStatus } from '../helpers/fixtures.js';
import { createCluster, createStandby, pgClustersUnavailable, waitForReplay, type PgCluster } from '../helpers/pg-cluster.js';

/**
 * STEPWISE_READ_DATABASE_URL against a real streaming replica: a primary and
 * a hot standby of our own (test/helpers/pg-cluster.ts), never the shared
 * server. Which server answered is proved from the servers themselves — the
 * standby's pg_stat_activity and pg_stat_database, its log, and data the
 * standby does not have yet while its replay is paused — and from the
 * router's counters.
 */
const unavailable = backend !== 'postgres' ? 'server backend only (set STEPWISE_TEST_DATABASE_URL)' : pgClustersUnavailable();

const DATABASE = 'stepwise_replica';

/** Poll `condition` until it holds; fail naming `what` after `timeoutMs` (a bound, not a measurement). */
async function waitUntil(what: string, condition: () => Promise<boolean> | boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`still not ${what} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe.skipIf(unavailable !== null)(`read replica${unavailable ? ` (skipped: ${unavailable})` : ''}`, () => {
  let primary: PgCluster;
  let standby: PgCluster;
  let db: PostgresDb;
  /** Probed only when a test calls check(), so each test decides when the router learns something. */
  let replica: ReadReplica;
  let app: FastifyInstance;
  let api: ApiClient;
  let worker: Worker;
  let organizationId: string;
  let plainWorkflow: string;
  let finishedJobs: string[];
  let phiJob: string;
  let waitingJob: string;

  beforeAll(async () => {
    primary = await createCluster();
    standby = await createStandby(primary);
    // Created and migrated after the standby exists: schema and data reach it by streaming.
    await primary.query(`CREATE DATABASE ${DATABASE}`);
    db = new PostgresDb(primary.url(DATABASE), { poolSize: 8, role: 'test' });
    await migrate(db);
    await ensureStreamPartitions(db);
    replica = new ReadReplica({ url: standby.url(DATABASE), primary: db, maxLagMs: 600_000, poolSize: 4, logger: silentLogger });
    app = await createTestApp(db, undefined, { readReplica: replica });
    const org = await seedOrg(db, 'Replica');
    organizationId = org.organizationId;
    api = client(app, org.key);
    worker = startWorker(db);
    plainWorkflow = (await api.post('/v1/workflows', { name: 'plain', definition: { steps: [{ id: 'n', type: 'noop' }] } })).body.id;
    const phiWorkflow = (
      await api.post('/v1/workflows', {
        name: 'eligibility',
        definition: { phi: ['input.memberId', 'result'], steps: [{ id: 'check', type: 'transform', expression: '{ "member": input.memberId }' }] },
      })
    ).body.id;
    const slowWorkflow = (await api.post('/v1/workflows', { name: 'slow', definition: { steps: [{ id: 'sleep', type: 'delay', durationMs: 3_600_000 }] } })).body.id;
    finishedJobs = [];
    for (let i = 0; i < 3; i++) finishedJobs.push((await api.post(`/v1/workflows/${plainWorkflow}/runs`, { input: { i } })).body.jobId);
    phiJob = (await api.post(`/v1/workflows/${phiWorkflow}/runs`, { input: { memberId: 'M-1' } })).body.jobId;
    waitingJob = (await api.post(`/v1/workflows/${slowWorkflow}/runs`, { input: {} })).body.jobId;
    for (const id of [...finishedJobs, phiJob]) expect((await waitForJob(db, organizationId, id)).status).toBe('COMPLETED');
    await waitForStatus(db, organizationId, waitingJob, 'WAITING');
    await waitForReplay(primary, standby);
    await replica.check();
    expect(replica.usable()).toBe(true);
  });

  afterAll(async () => {
    await worker?.stop();
    await app?.close();
    await replica?.close();
    await db?.close();
    await standby?.destroy();
    await primary?.destroy();
  });

  async function standbyCommits(): Promise<number> {
    const [row] = await standby.query<{ n: number }>('SELECT xact_commit::int AS n FROM pg_stat_database WHERE datname = $1', [DATABASE]);
    return row!.n;
  }

  async function auditRows(jobId: string, resourceType: string): Promise<number> {
    const { rows } = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM stepwise.phi_audit_log WHERE job_id = $1 AND resource_type = $2`, [jobId, resourceType]);
    return rows[0]!.n;
  }

  async function pauseReplay(): Promise<void> {
    await standby.query('SELECT pg_wal_replay_pause()');
    await waitUntil('paused', async () => (await standby.query<{ s: string }>('SELECT pg_get_wal_replay_pause_state() AS s'))[0]!.s === 'paused');
  }

  async function resumeReplay(): Promise<void> {
    await standby.query('SELECT pg_wal_replay_resume()');
  }

  it('serves the runs list and count, analytics, a finished job’s stream, audit and usage from the replica', async () => {
    const before = replica.status();
    const commitsBefore = await standbyCommits();
    const reads: Array<[string, (body: Json) => void]> = [
      ['/v1/jobs?phi=mask&limit=50', (b) => expect(b.items.map((j: Json) => j.id)).toEqual(expect.arrayContaining([...finishedJobs, phiJob]))],
      [`/v1/jobs/count?workflowId=${plainWorkflow}`, (b) => expect(b).toEqual({ count: 3, capped: false })],
      ['/v1/analytics/workflows', (b) => expect(b.items.find((w: Json) => w.workflowId === plainWorkflow)?.total).toBe(3)],
      [`/v1/jobs/${finishedJobs[0]}/stream`, (b) => expect(b.items.map((r: Json) => r.kind)).toContain('JOB_COMPLETED')],
      [`/v1/jobs/${finishedJobs[0]}/timeline`, (b) => expect(b.steps).toHaveLength(1)],
      [`/v1/jobs/${phiJob}/stream?phi=mask`, (b) => expect(b.phiMasked).toBe(true)],
      ['/v1/audit/phi', (b) => expect(Array.isArray(b.items)).toBe(true)],
      ['/v1/usage', (b) => expect(b.current.executions).toBe(5)],
    ];
    for (const [url, check] of reads) {
      const res = await api.get(url);
      expect(res.status, `${url}: ${JSON.stringify(res.body)}`).toBe(200);
      check(res.body);
    }
    const after = replica.status();
    expect(after.readsOnReplica - before.readsOnReplica).toBe(reads.length);
    expect(after.readsOnPrimary).toBe(before.readsOnPrimary);
    expect(after).toMatchObject({ configured: true, usingReplica: true });
    // The standby itself saw them: our pool's connections are there, and its commit count grew by the reads.
    const onStandby = await standby.query('SELECT 1 FROM pg_stat_activity WHERE application_name = $1 AND datname = $2', ['stepwise-api-read', DATABASE]);
    expect(onStandby.length).toBeGreaterThan(0);
    const onPrimary = await primary.query('SELECT 1 FROM pg_stat_activity WHERE application_name = $1', ['stepwise-api-read']);
    expect(onPrimary).toEqual([]);
    // Statistics reach pg_stat_database when a backend goes idle long enough or disconnects: poll, bounded.
    await waitUntil('counted on the standby', async () => (await standbyCommits()) - commitsBefore >= reads.length);
  });

  it('answers from the replica’s snapshot while it lags within the bound; job detail, saved views and a job it lacks come from the primary', async () => {
    await pauseReplay();
    let fresh: string;
    try {
      fresh = (await api.post(`/v1/workflows/${plainWorkflow}/runs`, { input: { fresh: true } })).body.jobId;
      await waitForJob(db, organizationId, fresh);
      await replica.check(); // behind now, but by less than its 10-minute bound: still used
      expect(replica.usable()).toBe(true);
      const before = replica.status();
      // The list comes from the paused standby, which has not replayed the new run.
      const list = await api.get('/v1/jobs?phi=mask&limit=50');
      expect(list.body.items.map((j: Json) => j.id)).not.toContain(fresh);
      expect(list.body.items.map((j: Json) => j.id)).toEqual(expect.arrayContaining(finishedJobs));
      // Job detail is never routed: the caller sees the run it just started.
      const detail = await api.get(`/v1/jobs/${fresh}`);
      expect(detail.status).toBe(200);
      expect(detail.body.status).toBe('COMPLETED');
      // Saved views are listed again right after saving one: the list must have it.
      const saved = await api.post('/v1/views', { name: 'failed', page: 'runs', query: 'status=FAILED' });
      expect(saved.status, JSON.stringify(saved.body)).toBe(201);
      expect((await api.get('/v1/views')).body.items.map((v: Json) => v.id)).toEqual([saved.body.id]);
      // The replica does not have the job: its 404 is not believed, the primary answers.
      const stream = await api.get(`/v1/jobs/${fresh}/stream`);
      expect(stream.status, JSON.stringify(stream.body)).toBe(200);
      expect(stream.body.items.map((r: Json) => r.kind)).toContain('JOB_COMPLETED');
      const after = replica.status();
      expect(after.readsOnReplica - before.readsOnReplica).toBe(1);
      expect(after.readsOnPrimary - before.readsOnPrimary).toBe(1);
      // A job nobody has is still a 404, after asking the primary.
      expect((await api.get('/v1/jobs/00000000-0000-7000-8000-000000000000/stream')).status).toBe(404);
      expect(replica.status().readsOnPrimary - after.readsOnPrimary).toBe(1);
    } finally {
      await resumeReplay();
    }
    await waitForReplay(primary, standby);
    const list = await api.get('/v1/jobs?phi=mask&limit=50');
    expect(list.body.items.map((j: Json) => j.id)).toContain(fresh);
  });

  it('reads a job that is not finished (its stream, timeline, state) on the primary', async () => {
    const before = replica.status();
    const stream = await api.get(`/v1/jobs/${waitingJob}/stream`);
    expect(stream.status).toBe(200);
    expect(stream.body.status).toBe('WAITING');
    expect((await api.get(`/v1/jobs/${waitingJob}/timeline`)).status).toBe(200);
    expect((await api.get(`/v1/jobs/${waitingJob}/state?at=${stream.body.lastSeq}`)).status).toBe(200);
    const after = replica.status();
    expect(after.readsOnPrimary - before.readsOnPrimary).toBe(3);
    expect(after.readsOnReplica).toBe(before.readsOnReplica);
  });

  it('an unmasked PHI read, whose audit row the standby refuses, is answered by the primary with its audit row kept', async () => {
    const before = replica.status();
    const jobRows = await auditRows(phiJob, 'JOB');
    const streamRows = await auditRows(phiJob, 'STREAM');
    // The list: the replica attempt hits the refused INSERT (25006) and the request runs again on the primary.
    const list = await api.get('/v1/jobs?limit=50');
    expect(list.status, JSON.stringify(list.body)).toBe(200);
    expect(list.body.items.find((j: Json) => j.id === phiJob)?.phiMasked).toBeUndefined();
    expect(await auditRows(phiJob, 'JOB')).toBe(jobRows + 1);
    expect(await standby.log()).toMatch(/stepwise-api-read ERROR: {2}cannot execute INSERT in a read-only transaction/);
    // A finished PHI job's stream, unmasked: decided before reading, straight to the primary.
    const stream = await api.get(`/v1/jobs/${phiJob}/stream`);
    expect(stream.status).toBe(200);
    expect(stream.body.items.length).toBeGreaterThan(0);
    expect(await auditRows(phiJob, 'STREAM')).toBe(streamRows + 1);
    const after = replica.status();
    expect(after.readsOnPrimary - before.readsOnPrimary).toBe(2);
    expect(after.readsOnReplica).toBe(before.readsOnReplica);
  });

  it('falls back to the primary when the standby stops, and returns to it once it is back', async () => {
    await standby.stop('fast');
    try {
      // The monitor has not noticed yet: the request tries the replica, fails to reach it, and is answered by the primary.
      expect(replica.usable()).toBe(true);
      let before = replica.status();
      const first = await api.get('/v1/jobs?phi=mask&limit=50');
      expect(first.status, JSON.stringify(first.body)).toBe(200);
      expect(first.body.items.map((j: Json) => j.id)).toEqual(expect.arrayContaining(finishedJobs));
      expect(replica.status().readsOnPrimary - before.readsOnPrimary).toBe(1);
      // Once probed, the replica is unusable and reads go straight to the primary.
      await replica.check();
      expect(replica.usable()).toBe(false);
      expect(replica.status()).toMatchObject({ configured: true, usingReplica: false, lagSeconds: null });
      before = replica.status();
      expect((await api.get(`/v1/analytics/workflows`)).status).toBe(200);
      expect((await api.get(`/v1/jobs/${finishedJobs[1]}/stream`)).status).toBe(200);
      expect(replica.status().readsOnPrimary - before.readsOnPrimary).toBe(2);
      expect(replica.status().readsOnReplica).toBe(before.readsOnReplica);
    } finally {
      if (!standby.running) await standby.start();
    }
    await waitUntil('usable again', async () => {
      await replica.check();
      return replica.usable();
    });
    const before = replica.status();
    expect((await api.get('/v1/jobs/count')).status).toBe(200);
    expect(replica.status().readsOnReplica - before.readsOnReplica).toBe(1);
  });

  it('falls back when the lag passes the bound, measured by its own timer, and comes back once replay catches up', async () => {
    // A 1 ms bound: only a replica that has replayed everything the primary had written a round ago qualifies.
    const strict = new ReadReplica({ url: standby.url(DATABASE), primary: db, maxLagMs: 1, probeIntervalMs: 20, poolSize: 2, logger: silentLogger });
    const strictApp = await createTestApp(db, undefined, { readReplica: strict });
    const strictApi = client(strictApp, (await seedOrg(db, 'Strict')).key);
    try {
      strict.start();
      await waitForReplay(primary, standby);
      await waitUntil('caught up', () => strict.usable());
      await pauseReplay();
      let fresh: string;
      try {
        // Any write the standby cannot replay now makes it lag.
        fresh = (await api.post(`/v1/workflows/${plainWorkflow}/runs`, { input: { late: true } })).body.jobId;
        await waitForJob(db, organizationId, fresh);
        await waitUntil('over the bound', () => !strict.usable());
        const status = strict.status();
        expect(status.usingReplica).toBe(false);
        expect(status.lagSeconds === null || status.lagSeconds > 0.001).toBe(true);
        const before = strict.status();
        expect((await strictApi.get('/v1/jobs/count')).status).toBe(200);
        expect(strict.status().readsOnPrimary - before.readsOnPrimary).toBe(1);
        expect(strict.status().readsOnReplica).toBe(before.readsOnReplica);
      } finally {
        await resumeReplay();
      }
      await waitForReplay(primary, standby);
      await waitUntil('within the bound again', () => strict.usable());
      expect(strict.status().lagSeconds).toBeLessThanOrEqual(0.001);
      const before = strict.status();
      expect((await strictApi.get('/v1/jobs/count')).status).toBe(200);
      expect(strict.status().readsOnReplica - before.readsOnReplica).toBe(1);
      // The main replica sees the same run once replayed: the list on the replica has it.
      await replica.check();
      expect((await api.get('/v1/jobs?phi=mask&limit=50')).body.items.map((j: Json) => j.id)).toContain(fresh);
    } finally {
      await strictApp.close();
      await strict.close();
    }
  });
});
