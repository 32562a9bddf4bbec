import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Worker } from '../../src/engine/index.js';
import { findJob } from '../../src/store/index.js';
import { createTestDb, type TestDb } from '../helpers/db.js';
import { seedOrg, startWorker, waitForJob, waitForStatus } from '../helpers/fixtures.js';
import { client, createTestApp, type ApiClient, type Json } from '../helpers/api.js';
import { SseClient, type SseMessage } from '../helpers/sse.js';

/**
 * Live updates over a real socket (server-sent events need one): the app
 * listens on a loopback port and the tests read the streams with fetch.
 * Nothing here is timed: every wait is for an event, a status or a count.
 */
let t: TestDb;
let app: FastifyInstance;
let base: string;
let orgA: string;
let keyA: string;
let keyB: string;
let a: ApiClient;
let b: ApiClient;
let worker: Worker | undefined;
const open: SseClient[] = [];

/** Small per-connection queue, so a client that does not read overflows after a few MB (kernel buffers included). */
const MAX_QUEUED_BYTES = 64 * 1024;

beforeAll(async () => {
  t = await createTestDb();
  app = await createTestApp(t.db, undefined, { live: { coalesceMs: 20, maxQueuedBytes: MAX_QUEUED_BYTES, maxQueuedEvents: 1_000, recheckMs: 100 } });
  await app.listen({ host: '127.0.0.1', port: 0 });
  base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  const seededA = await seedOrg(t.db, 'A');
  orgA = seededA.organizationId;
  keyA = seededA.key;
  keyB = (await seedOrg(t.db, 'B')).key;
  a = client(app, keyA);
  b = client(app, keyB);
}, 60_000);

afterEach(async () => {
  for (const c of open.splice(0)) c.close();
  await worker?.stop();
  worker = undefined;
});

afterAll(async () => {
  await app?.close();
  await t?.close();
});

async function sse(path: string, key: string, headers: Record<string, string> = {}, opts: { read?: boolean } = {}): Promise<SseClient> {
  const c = await SseClient.open(`${base}${path}`, { authorization: `Bearer ${key}`, ...headers }, opts);
  open.push(c);
  return c;
}

async function workflow(api: ApiClient, definition: Json, extra: Json = {}): Promise<string> {
  const res = await api.post('/v1/workflows', { name: 'live', definition, ...extra });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.id;
}

async function start(api: ApiClient, workflowId: string, body: Json = {}): Promise<string> {
  const res = await api.post(`/v1/workflows/${workflowId}/runs`, body);
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return res.body.jobId;
}

const jobEvent = (jobId: string, status?: string) => (m: SseMessage) =>
  m.event === 'job' && JSON.parse(m.data).id === jobId && (status === undefined || JSON.parse(m.data).status === status);

/** Wait until the hub's subscriber count is `n` (it changes when a connection opens or closes). */
async function subscribers(n: number): Promise<void> {
  while (app.liveHub.subscriberCount() !== n) await new Promise((r) => setTimeout(r, 10));
}

const logSteps = [
  { id: 'first', type: 'log', message: 'first line' },
  { id: 'second', type: 'log', message: 'second line' },
];

describe('GET /v1/events', () => {
  it("shows a run when it is started, then its status changes as a worker runs it; never another organization's runs", { timeout: 60_000 }, async () => {
    const wfA = await workflow(a, { steps: logSteps });
    const wfB = await workflow(b, { steps: logSteps });
    const eventsA = await sse('/v1/events', keyA);
    const eventsB = await sse('/v1/events', keyB);
    expect(eventsA.status).toBe(200);
    expect(eventsA.response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(eventsA.response.headers.get('cache-control')).toBe('no-store');
    expect(eventsA.response.headers.get('x-accel-buffering')).toBe('no');
    expect(eventsA.response.headers.get('x-content-type-options')).toBe('nosniff');
    await subscribers(2);

    const jobA = await start(a, wfA, { input: { member: 'M-1' } });
    const created = JSON.parse((await eventsA.next(jobEvent(jobA, 'PENDING'), 'the PENDING run')).data);
    expect(created).toMatchObject({ id: jobA, workflowId: wfA, workflowName: 'live', status: 'PENDING', input: { member: 'M-1' } });

    worker = startWorker(t.db, { pollIntervalMs: 20 });
    const done = JSON.parse((await eventsA.next(jobEvent(jobA, 'COMPLETED'), 'the COMPLETED run')).data);
    expect(done).toMatchObject({ id: jobA, status: 'COMPLETED', stepsCompleted: 2 });

    // B sees its own run; neither sees the other's.
    const jobB = await start(b, wfB);
    await eventsB.next(jobEvent(jobB, 'COMPLETED'), "B's run completing");
    const jobA2 = await start(a, wfA);
    await eventsA.next(jobEvent(jobA2, 'COMPLETED'), "A's second run completing");
    const ids = (c: SseClient) => new Set(c.messages.filter((m) => m.event === 'job').map((m) => JSON.parse(m.data).id));
    expect(ids(eventsA).has(jobB)).toBe(false);
    expect([...ids(eventsB)]).toEqual([jobB]);
  });

  it('unsubscribes when the client disconnects; the LISTEN goes with the last client', { timeout: 30_000 }, async () => {
    await subscribers(0);
    const events = await sse('/v1/events', keyA);
    const job = await sse(`/v1/jobs/${await start(a, await workflow(a, { steps: [{ id: 'w', type: 'wait', signal: 'go', timeoutMs: 60_000 }] }))}/stream/live`, keyA);
    await subscribers(2);
    expect(await app.liveHub.isListening()).toBe(true);
    events.close();
    await subscribers(1);
    job.close();
    await subscribers(0);
    expect(await app.liveHub.isListening()).toBe(false);
  });

  it('disconnects a client that does not read once its queue overflows; the worker is never held up', { timeout: 240_000 }, async () => {
    const wf = await workflow(a, { steps: [{ id: 'n', type: 'noop' }] });
    const slow = await sse('/v1/events', keyA, {}, { read: false });
    expect(slow.status).toBe(200);
    await subscribers(1);
    worker = startWorker(t.db, { pollIntervalMs: 20 });
    // Each event carries a 200 KB input: the kernel's socket buffers fill after a few MB, then the server's queue.
    const bulky = { blob: 'x'.repeat(200_000) };
    const started: string[] = [];
    for (let round = 0; round < 60 && app.liveHub.stats.overflows === 0; round++) {
      const batch: string[] = [];
      for (let i = 0; i < 5; i++) batch.push(await start(a, wf, { input: bulky }));
      for (const id of batch) await waitForJob(t.db, orgA, id, 60_000);
      started.push(...batch);
    }
    expect(app.liveHub.stats.overflows).toBe(1);
    await subscribers(0);
    // The worker finished every job while the client sat on its connection.
    for (const id of started) expect((await findJob(t.db, orgA, id))!.status).toBe('COMPLETED');
    // The server ended the connection: reading what was buffered reaches its end instead of waiting for more.
    expect(['end', 'error']).toContain(await slow.drain());
    const seen = new Set(slow.messages.map((m) => JSON.parse(m.data).id));
    expect(seen.size).toBeLessThan(started.length);
  });
});

describe('GET /v1/jobs/:id/stream/live', () => {
  it('sends the rows after afterSeq, then live rows and status changes, then end when the job finishes', { timeout: 60_000 }, async () => {
    const wf = await workflow(a, {
      steps: [
        { id: 'before', type: 'log', message: 'before the wait' },
        { id: 'w', type: 'wait', signal: 'go', timeoutMs: 60_000 },
        { id: 'after', type: 'log', message: 'after the wait' },
      ],
    });
    const jobId = await start(a, wf);
    worker = startWorker(t.db, { pollIntervalMs: 20 });
    const waiting = await waitForStatus(t.db, orgA, jobId, 'WAITING');
    expect(waiting.lastSeq).toBeGreaterThan(3);

    const live = await sse(`/v1/jobs/${jobId}/stream/live?afterSeq=2`, keyA);
    expect(live.status).toBe(200);
    const backlog: number[] = [];
    for (let seq = 3; seq <= waiting.lastSeq; seq++) {
      const m = await live.next((x) => x.event === 'entry', `row ${seq}`);
      backlog.push(Number(m.id));
      expect(JSON.parse(m.data)).toMatchObject({ seq: Number(m.id), kind: expect.any(String), level: expect.any(String) });
    }
    expect(backlog).toEqual(Array.from({ length: waiting.lastSeq - 2 }, (_, i) => i + 3));
    expect(JSON.parse((await live.next((x) => x.event === 'status')).data)).toEqual({ status: 'WAITING' });

    expect((await a.post(`/v1/jobs/${jobId}/signals/go`, { payload: 1 })).status).toBe(202);
    const end = await live.next((x) => x.event === 'end', 'end');
    expect(await live.ended).toBe('end');
    const finished = await findJob(t.db, orgA, jobId);
    expect(finished!.status).toBe('COMPLETED');
    // Every row exactly once, in order, and the status changes before the end.
    const seqs = live.messages.filter((m) => m.event === 'entry').map((m) => Number(m.id));
    expect(seqs).toEqual(Array.from({ length: finished!.lastSeq - 2 }, (_, i) => i + 3));
    const statuses = live.messages.filter((m) => m.event === 'status').map((m) => JSON.parse(m.data).status);
    expect(statuses[0]).toBe('WAITING');
    expect(statuses[statuses.length - 1]).toBe('COMPLETED');
    expect(JSON.parse(end.data)).toMatchObject({ status: 'COMPLETED', lastSeq: finished!.lastSeq });
    expect(live.messages.some((m) => m.event === 'entry' && JSON.parse(m.data).message === 'after the wait')).toBe(true);
    await subscribers(0);
  });

  it('resumes exactly after Last-Event-ID (which wins over afterSeq): no gap, no duplicate', { timeout: 60_000 }, async () => {
    const jobId = await start(a, await workflow(a, { steps: logSteps }));
    worker = startWorker(t.db, { pollIntervalMs: 20 });
    const job = await waitForJob(t.db, orgA, jobId);
    const first = await sse(`/v1/jobs/${jobId}/stream/live`, keyA);
    await first.ended;
    const all = first.messages.filter((m) => m.event === 'entry').map((m) => Number(m.id));
    expect(all).toEqual(Array.from({ length: job.lastSeq }, (_, i) => i + 1));

    const resumed = await sse(`/v1/jobs/${jobId}/stream/live?afterSeq=1`, keyA, { 'last-event-id': '4' });
    await resumed.ended;
    const seqs = resumed.messages.filter((m) => m.event === 'entry').map((m) => Number(m.id));
    expect(seqs).toEqual(all.filter((s) => s > 4));
    expect(resumed.messages[resumed.messages.length - 1]!.event).toBe('end');

    const bad = await sse(`/v1/jobs/${jobId}/stream/live`, keyA, { 'last-event-id': 'x' });
    expect(bad.status).toBe(400);
    const body = (await bad.response.json()) as Json;
    expect(body.error).toMatchObject({ code: 'VALIDATION', details: { path: 'headers/last-event-id' } });
  });

  it("answers 404 for another organization's job and holds nothing", { timeout: 30_000 }, async () => {
    const jobId = await start(a, await workflow(a, { steps: logSteps }));
    const res = await sse(`/v1/jobs/${jobId}/stream/live`, keyB);
    expect(res.status).toBe(404);
    expect(((await res.response.json()) as Json).error.code).toBe('NOT_FOUND');
    expect(res.response.headers.get('content-type')).toMatch(/^application\/json/);
    expect(app.liveHub.subscriberCount()).toBe(0);
  });

  it('/v1/events?phi=mask sends a PHI workflow\'s runs masked and audits nothing; without it, each sent item is audited', { timeout: 60_000 }, async () => {
    const wf = await workflow(a, { phi: ['input.patientName'], steps: logSteps });
    const masked = await sse('/v1/events?phi=mask', keyA);
    const plain = await sse('/v1/events', keyA);
    const jobId = await start(a, wf, { input: { patientName: 'Jane Roe' } });
    worker = startWorker(t.db, { pollIntervalMs: 20 });
    const seen = JSON.parse((await masked.next(jobEvent(jobId, 'COMPLETED'), 'the masked COMPLETED run')).data);
    expect(seen.phiMasked).toBe(true);
    expect(JSON.stringify(seen)).not.toContain('Jane Roe');
    const clear = JSON.parse((await plain.next(jobEvent(jobId, 'COMPLETED'), 'the plain COMPLETED run')).data);
    expect(clear.input).toEqual({ patientName: 'Jane Roe' });
    expect((await sse('/v1/events?phi=foo', keyA)).status).toBe(400);
    const { rows } = await t.db.query<{ n: string }>(`SELECT count(*)::text AS n FROM stepwise.phi_audit_log WHERE job_id = $1`, [jobId]);
    // Only the plain client's items were audited: one row per item sent (PENDING, …, COMPLETED), none for the masked client.
    const plainEvents = plain.messages.filter(jobEvent(jobId)).length;
    expect(Number(rows[0]!.n)).toBe(plainEvents);
  });

  it('sends a backlog larger than a connection\'s queue in slices: every row, then end', { timeout: 60_000 }, async () => {
    const wf = await workflow(a, {
      steps: [{ id: 'each', type: 'forEach', items: '[1..100]', steps: [1, 2, 3, 4].map((n) => ({ id: `log${n}`, type: 'log', message: `line ${n} of {{ item }}` })) }],
    });
    const jobId = await start(a, wf);
    worker = startWorker(t.db, { pollIntervalMs: 20 });
    await waitForJob(t.db, orgA, jobId);
    const { rows } = await t.db.query<{ n: number }>(`SELECT max(seq)::int AS n FROM stepwise.execution_log WHERE job_id = $1`, [jobId]);
    expect(rows[0]!.n).toBeGreaterThan(1_000);
    const live = await sse(`/v1/jobs/${jobId}/stream/live`, keyA);
    await live.next((m) => m.event === 'end', 'the end event');
    const seqs = live.messages.filter((m) => m.event === 'entry').map((m) => Number(m.id));
    expect(seqs).toEqual(Array.from({ length: rows[0]!.n }, (_, i) => i + 1));
  });

  it('ends an open stream once its key is revoked', { timeout: 60_000 }, async () => {
    const created = (await a.post('/v1/api-keys', { name: 'watcher' })).body;
    const events = await sse('/v1/events', created.key);
    expect(events.status).toBe(200);
    expect((await a.del(`/v1/api-keys/${created.id}`)).status).toBeLessThan(300);
    expect(await events.ended).toBe('end');
    expect((await sse('/v1/events', created.key)).status).toBe(401);
  });

  it("audits each batch of a PHI workflow's rows it sends", { timeout: 60_000 }, async () => {
    const wf = await workflow(a, { phi: ['input.patientName'], steps: logSteps });
    const jobId = await start(a, wf, { input: { patientName: 'Jane Roe' } });
    worker = startWorker(t.db, { pollIntervalMs: 20 });
    await waitForJob(t.db, orgA, jobId);
    const live = await sse(`/v1/jobs/${jobId}/stream/live`, keyA, { 'user-agent': 'live-test/1.0' });
    await live.ended;
    const { rows } = await t.db.query<{ resource_type: string; fields: string[]; user_agent: string }>(
      `SELECT resource_type, fields, user_agent FROM stepwise.phi_audit_log WHERE job_id = $1`,
      [jobId],
    );
    expect(rows).toEqual([{ resource_type: 'STREAM', fields: ['input.patientName'], user_agent: 'live-test/1.0' }]);
  });
});
