import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Worker } from '../../src/engine/index.js';
import { MASKED } from '../../src/read/index.js';
import { createTestDb, type TestDb } from '../helpers/db.js';
import { seedOrg, startWorker, waitForJob } from '../helpers/fixtures.js';
import { client, createTestApp, expectError, type ApiClient, type Json } from '../helpers/api.js';
import { SseClient } from '../helpers/sse.js';

/**
 * `?phi=mask` on the job read routes: a PHI workflow's protected values are
 * replaced (read/phi-mask.ts) and nothing is audited; without it the values
 * are shown and the read is audited as before. A workflow without PHI paths
 * answers the same either way.
 */
let t: TestDb;
let app: FastifyInstance;
let a: ApiClient;
let key: string;
let base: string;
let worker: Worker;
let phiJob: string;
let failedJob: string;
let plainJob: string;

const MEMBER = 'M-98765';
const PATIENT = 'Jane Roe';
const steps = [
  { id: 'note', type: 'log', message: 'checking {{ input.memberId }} for {{ input.patientName }}' },
  { id: 'check', type: 'transform', expression: '{ "eligible": true, "member": input.memberId }' },
];

beforeAll(async () => {
  t = await createTestDb();
  app = await createTestApp(t.db);
  const seeded = await seedOrg(t.db, 'PHI mask');
  key = seeded.key;
  a = client(app, key);
  // The live stream is server-sent events: it needs a real socket.
  await app.listen({ host: '127.0.0.1', port: 0 });
  base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  worker = startWorker(t.db);
  const workflow = async (name: string, definition: Json): Promise<string> => {
    const res = await a.post('/v1/workflows', { name, definition });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return res.body.id;
  };
  const phi = await workflow('eligibility', { phi: ['input.memberId', 'input.patientName', 'result'], steps });
  const failing = await workflow('lookup', {
    phi: ['input.memberId', 'input.patientName'],
    steps: [steps[0], { id: 'lookup', type: 'transform', expression: '$error("no member " & input.memberId)' }],
  });
  const plain = await workflow('plain', { steps });
  const input = { memberId: MEMBER, patientName: PATIENT, plan: 'gold' };
  phiJob = (await a.post(`/v1/workflows/${phi}/runs`, { input })).body.jobId;
  failedJob = (await a.post(`/v1/workflows/${failing}/runs`, { input })).body.jobId;
  plainJob = (await a.post(`/v1/workflows/${plain}/runs`, { input })).body.jobId;
  for (const id of [phiJob, failedJob, plainJob]) await waitForJob(t.db, seeded.organizationId, id);
});

afterAll(async () => {
  await worker?.stop();
  await app?.close();
  await t?.close();
});

async function auditCount(jobId: string): Promise<number> {
  const { rows } = await t.db.query<{ n: number }>('SELECT count(*)::int AS n FROM stepwise.phi_audit_log WHERE job_id = $1', [jobId]);
  return rows[0]!.n;
}

/** The single-job reads, and the stream's last seq for /state. */
async function readUrls(jobId: string): Promise<string[]> {
  const stream = await a.get(`/v1/jobs/${jobId}/stream`);
  expect(stream.status).toBe(200);
  return [`/v1/jobs/${jobId}`, `/v1/jobs/${jobId}/timeline`, `/v1/jobs/${jobId}/state?at=${stream.body.nextAfterSeq}`, `/v1/jobs/${jobId}/stream`];
}

function withMask(url: string): string {
  return `${url}${url.includes('?') ? '&' : '?'}phi=mask`;
}

describe('phi=mask on a PHI workflow’s job', () => {
  for (const which of ['completed', 'failed'] as const) {
    it(`${which}: job, timeline, state and stream carry no PHI value, say phiMasked, and write no audit row`, async () => {
      const jobId = which === 'completed' ? phiJob : failedJob;
      const urls = await readUrls(jobId);
      const before = await auditCount(jobId);
      for (const url of urls) {
        const res = await a.get(withMask(url));
        expect(res.status, url).toBe(200);
        const body = JSON.stringify(res.body);
        expect(body, url).not.toContain(MEMBER);
        expect(body, url).not.toContain(PATIENT);
        expect(res.body.phiMasked, url).toBe(true);
      }
      expect(await auditCount(jobId)).toBe(before);
    });
  }

  it('keeps what is not PHI: undeclared input fields, step names, statuses, codes and sequence numbers', async () => {
    const job = (await a.get(`/v1/jobs/${failedJob}?phi=mask`)).body;
    expect(job).toMatchObject({ id: failedJob, status: 'FAILED', input: { memberId: MASKED, patientName: MASKED, plan: 'gold' } });
    // The error message interpolated the member id: masked, though the workflow does not declare the result.
    expect(job.error).toMatchObject({ message: MASKED, step: 'lookup' });

    const completed = (await a.get(`/v1/jobs/${phiJob}?phi=mask`)).body;
    expect(completed.input).toEqual({ memberId: MASKED, patientName: MASKED, plan: 'gold' });
    expect(completed.result).toBe(MASKED);

    const timeline = (await a.get(`/v1/jobs/${phiJob}/timeline?phi=mask`)).body;
    expect(timeline.steps.map((s: Json) => [s.name, s.status])).toEqual([
      ['note', 'COMPLETED'],
      ['check', 'COMPLETED'],
    ]);
    expect(timeline.steps[1].output).toBe(MASKED);

    const masked = (await a.get(`/v1/jobs/${phiJob}/stream?phi=mask`)).body;
    const plain = (await a.get(`/v1/jobs/${phiJob}/stream`)).body;
    expect(masked.items.map((e: Json) => [e.seq, e.kind])).toEqual(plain.items.map((e: Json) => [e.seq, e.kind]));
    const log = masked.items.find((e: Json) => e.kind === 'LOG');
    expect(log).toMatchObject({ message: MASKED, phiMasked: true });
    const started = masked.items.find((e: Json) => e.kind === 'STEP_STARTED');
    expect(started.message).toBe('note');
    expect(started).not.toHaveProperty('phiMasked');
    expect(masked.nextAfterSeq).toBe(plain.nextAfterSeq);
  });

  it('without phi=mask the values are returned and each read is audited as before', async () => {
    const urls = await readUrls(phiJob);
    for (const url of urls) {
      const before = await auditCount(phiJob);
      const res = await a.get(url);
      expect(res.status, url).toBe(200);
      expect(res.body, url).not.toHaveProperty('phiMasked');
      expect(await auditCount(phiJob), url).toBe(before + 1);
    }
    const job = (await a.get(`/v1/jobs/${phiJob}`)).body;
    expect(job.input.memberId).toBe(MEMBER);
    expect(job.result).toEqual({ eligible: true, member: MEMBER });
    const stream = (await a.get(`/v1/jobs/${phiJob}/stream`)).body;
    expect(JSON.stringify(stream)).toContain(MEMBER);
    const timeline = (await a.get(`/v1/jobs/${phiJob}/timeline`)).body;
    expect(timeline.steps[1].output).toEqual({ eligible: true, member: MEMBER });
  });

  it('the list masks each PHI job’s item and audits none; unmasked, it audits as before', async () => {
    const before = await auditCount(phiJob);
    const masked = await a.get('/v1/jobs?limit=50&phi=mask');
    expect(masked.status).toBe(200);
    expect(JSON.stringify(masked.body.items.filter((j: Json) => j.id !== plainJob))).not.toContain(MEMBER);
    const byId = new Map(masked.body.items.map((j: Json) => [j.id, j]));
    expect(byId.get(phiJob)).toMatchObject({ phiMasked: true, result: MASKED, input: { plan: 'gold' } });
    expect(byId.get(plainJob)).not.toHaveProperty('phiMasked');
    expect(await auditCount(phiJob)).toBe(before);
    await a.get('/v1/jobs?limit=50');
    expect(await auditCount(phiJob)).toBe(before + 1);
  });
});

describe('phi=mask on the live stream', () => {
  /** Every `entry` event of a finished job's live stream (the server ends it after the last). */
  async function liveEntries(url: string): Promise<Json[]> {
    const c = await SseClient.open(`${base}${url}`, { authorization: `Bearer ${key}` });
    try {
      expect(c.status).toBe(200);
      expect(await c.ended).toBe('end');
      return c.messages.filter((m) => m.event === 'entry').map((m) => JSON.parse(m.data));
    } finally {
      c.close();
    }
  }

  it('sends each row masked (phiMasked on the rows that were), and audits nothing', async () => {
    const before = await auditCount(phiJob);
    const masked = await liveEntries(`/v1/jobs/${phiJob}/stream/live?phi=mask`);
    expect(masked.length).toBeGreaterThan(0);
    expect(JSON.stringify(masked)).not.toContain(MEMBER);
    expect(masked.find((e) => e.kind === 'LOG')).toMatchObject({ message: MASKED, phiMasked: true });
    expect(await auditCount(phiJob)).toBe(before);
    const plain = await liveEntries(`/v1/jobs/${phiJob}/stream/live`);
    expect(JSON.stringify(plain)).toContain(MEMBER);
    expect(await auditCount(phiJob)).toBeGreaterThan(before);
  });
});

describe('phi=mask on a workflow without PHI paths', () => {
  it('answers exactly what the unmasked read does', async () => {
    for (const url of await readUrls(plainJob)) {
      const plain = await a.get(url);
      const masked = await a.get(withMask(url));
      expect(masked.status, url).toBe(200);
      expect(masked.body, url).toEqual(plain.body);
    }
    const item = async (url: string) => (await a.get(url)).body.items.find((j: Json) => j.id === plainJob);
    expect(await item('/v1/jobs?limit=50&phi=mask')).toEqual(await item('/v1/jobs?limit=50'));
    expect(JSON.stringify((await a.get(`/v1/jobs/${plainJob}/stream?phi=mask`)).body)).toContain(MEMBER);
    expect(await auditCount(plainJob)).toBe(0);
  });
});

describe('a bad phi value', () => {
  it('is refused naming /querystring/phi on every route that takes it', async () => {
    const urls = [...(await readUrls(phiJob)), '/v1/jobs', `/v1/jobs/${phiJob}/stream/live`];
    const before = await auditCount(phiJob);
    for (const url of urls) {
      const err = expectError(await a.get(`${url}${url.includes('?') ? '&' : '?'}phi=foo`), 400, 'VALIDATION');
      expect(err.details.path, url).toBe('/querystring/phi');
    }
    expect(await auditCount(phiJob)).toBe(before);
  });
});
