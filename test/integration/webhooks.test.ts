import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWebhookRun } from '../../src/engine/webhooks.js';
import { sign } from '../../src/security/webhook-signature.js';
import { createTestDb, type TestDb } from '../helpers/db.js';
import { seedOrg } from '../helpers/fixtures.js';
import { client, createTestApp, expectError, simpleDefinition, type ApiClient, type ApiResponse, type Json } from '../helpers/api.js';

let t: TestDb;
let app: FastifyInstance;
let a: ApiClient;
let b: ApiClient;
let orgA: string;

beforeAll(async () => {
  t = await createTestDb();
  app = await createTestApp(t.db);
  const seeded = await seedOrg(t.db, 'Org A');
  orgA = seeded.organizationId;
  a = client(app, seeded.key);
  b = client(app, (await seedOrg(t.db, 'Org B')).key);
});

afterAll(async () => {
  await app?.close();
  await t?.close();
});

const nowSeconds = () => Math.floor(Date.now() / 1000);

interface DeliveryOptions {
  secret?: string;
  /** null sends no Stepwise-Timestamp header (the signature still uses the current time). */
  timestamp?: number | null;
  /** Overrides the computed Stepwise-Signature header. */
  signature?: string;
  /** null sends no Content-Type header. */
  contentType?: string | null;
}

/** POST a delivery exactly as a sender would: sign the bytes, send the bytes. */
async function deliver(workflowId: string, payload: string | Buffer, opts: DeliveryOptions = {}): Promise<ApiResponse> {
  const timestamp = opts.timestamp ?? nowSeconds();
  const headers: Record<string, string> = opts.timestamp === null ? {} : { 'stepwise-timestamp': String(timestamp) };
  if (opts.signature !== undefined) headers['stepwise-signature'] = opts.signature;
  else if (opts.secret !== undefined) headers['stepwise-signature'] = sign(opts.secret, timestamp, payload);
  if (opts.contentType !== null) headers['content-type'] = opts.contentType ?? 'application/json';
  const res = await app.inject({ method: 'POST', url: `/v1/hooks/${workflowId}`, headers, payload });
  // Every answer of this route is JSON: 202 or our error body.
  return { status: res.statusCode, body: JSON.parse(res.body) as Json, headers: res.headers };
}

async function counts(): Promise<{ jobs: number; queue: number }> {
  const { rows } = await t.db.query<{ jobs: number; queue: number }>(
    `SELECT (SELECT count(*)::int FROM stepwise.jobs) AS jobs, (SELECT count(*)::int FROM stepwise.job_queue) AS queue`,
  );
  return rows[0]!;
}

/** A refused delivery: the right status and error body, and no job anywhere. */
async function refused(call: () => Promise<ApiResponse>, status: number, code: string): Promise<{ message: string; details: Json }> {
  const before = await counts();
  const err = expectError(await call(), status, code);
  expect(await counts()).toEqual(before);
  return err;
}

async function newWorkflow(as: ApiClient = a): Promise<string> {
  const res = await as.post('/v1/workflows', { name: 'hooked', definition: simpleDefinition() });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.id;
}

async function enable(workflowId: string, as: ApiClient = a): Promise<string> {
  const res = await as.post(`/v1/workflows/${workflowId}/webhook`);
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.secret;
}

describe('managing a webhook', () => {
  it('enable shows the URL and the secret once; GET never shows the secret', async () => {
    const wf = await newWorkflow();
    expect((await a.get(`/v1/workflows/${wf}/webhook`)).body).toEqual({ enabled: false, createdAt: null, rotatedAt: null });
    const res = await a.post(`/v1/workflows/${wf}/webhook`);
    expect(res.status).toBe(201);
    expect(res.body).toEqual({ url: `/v1/hooks/${wf}`, secret: expect.stringMatching(/^whsec_[A-Za-z0-9_-]{43}$/) });
    const got = await a.get(`/v1/workflows/${wf}/webhook`);
    expect(got.status).toBe(200);
    expect(got.body).toEqual({ enabled: true, createdAt: expect.any(String), rotatedAt: null });
    for (const r of [got, await a.get(`/v1/workflows/${wf}`)]) expect(JSON.stringify(r.body)).not.toContain(res.body.secret);
    // A second enable would have to show a secret again: refused, and the first secret still works.
    expectError(await a.post(`/v1/workflows/${wf}/webhook`), 409, 'CONFLICT');
    expect((await deliver(wf, '{}', { secret: res.body.secret })).status).toBe(202);
  });

  it("another organization's key cannot see or manage it (404), no key at all is 401, and nothing changes", async () => {
    const wf = await newWorkflow();
    const secret = await enable(wf);
    const before = (await a.get(`/v1/workflows/${wf}/webhook`)).body;
    expectError(await b.get(`/v1/workflows/${wf}/webhook`), 404, 'NOT_FOUND');
    expectError(await b.post(`/v1/workflows/${wf}/webhook`), 404, 'NOT_FOUND');
    expectError(await b.post(`/v1/workflows/${wf}/webhook/rotate`), 404, 'NOT_FOUND');
    expectError(await b.del(`/v1/workflows/${wf}/webhook`), 404, 'NOT_FOUND');
    expectError(await client(app, undefined).post(`/v1/workflows/${wf}/webhook/rotate`), 401, 'UNAUTHORIZED');
    expect((await a.get(`/v1/workflows/${wf}/webhook`)).body).toEqual(before);
    expect((await deliver(wf, '{"still":"works"}', { secret })).status).toBe(202);
    // Same answer as a workflow that does not exist at all.
    expectError(await a.get(`/v1/workflows/${randomUUID()}/webhook`), 404, 'NOT_FOUND');
  });

  it('an archived workflow cannot get a webhook', async () => {
    const wf = await newWorkflow();
    await a.del(`/v1/workflows/${wf}`);
    expectError(await a.post(`/v1/workflows/${wf}/webhook`), 404, 'NOT_FOUND');
  });
});

describe('a signed delivery', () => {
  it('starts a run with the body as input, initiator WEBHOOK: 202 with the job id', async () => {
    const wf = await newWorkflow();
    const secret = await enable(wf);
    const payload = JSON.stringify({ claim: 'C-1', amount: 12.5, lines: [{ code: '99213' }], note: 'é ✓' });
    const before = await counts();
    const res = await deliver(wf, payload, { secret });
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    expect(res.body).toEqual({ jobId: expect.any(String), runNumber: expect.any(Number), status: 'PENDING' });
    expect(await counts()).toEqual({ jobs: before.jobs + 1, queue: before.queue + 1 });
    const job = (await a.get(`/v1/jobs/${res.body.jobId}`)).body;
    expect(job).toMatchObject({ workflowId: wf, initiatorType: 'WEBHOOK', runNumber: res.body.runNumber, input: JSON.parse(payload) });
  });

  it('accepts any JSON value, and a charset parameter on the content type', async () => {
    const wf = await newWorkflow();
    const secret = await enable(wf);
    for (const payload of ['[1,2,3]', '"text"', '42', 'null']) {
      const res = await deliver(wf, payload, { secret, contentType: 'application/json; charset=utf-8' });
      expect(res.status, payload).toBe(202);
      expect((await a.get(`/v1/jobs/${res.body.jobId}`)).body.input).toEqual(JSON.parse(payload));
    }
  });

  it('accepts a body of exactly 1 MB and refuses one byte more with 413', async () => {
    const wf = await newWorkflow();
    const secret = await enable(wf);
    const exact = JSON.stringify({ pad: 'x'.repeat(1024 * 1024 - 10) });
    expect(Buffer.byteLength(exact)).toBe(1024 * 1024);
    expect((await deliver(wf, exact, { secret })).status).toBe(202);
    const over = JSON.stringify({ pad: 'x'.repeat(1024 * 1024 - 9) });
    const err = await refused(() => deliver(wf, over, { secret }), 413, 'PAYLOAD_TOO_LARGE');
    expect(err.message).toContain('1048576');
    expect(err.details.limit).toBe(1024 * 1024);
  });
});

describe('refused deliveries create no job', () => {
  let wf: string;
  let secret: string;
  beforeAll(async () => {
    wf = await newWorkflow();
    secret = await enable(wf);
  });

  it('a bad signature, an unknown workflow and a disabled webhook get the same 401', async () => {
    const badSig = await refused(() => deliver(wf, '{"a":1}', { secret: `${secret}x` }), 401, 'UNAUTHORIZED');
    const tampered = await refused(() => deliver(wf, '{"a":2}', { signature: sign(secret, nowSeconds(), '{"a":1}') }), 401, 'UNAUTHORIZED');
    const unknown = await refused(() => deliver(randomUUID(), '{"a":1}', { secret }), 401, 'UNAUTHORIZED');
    const disabledWf = await newWorkflow();
    const disabledSecret = await enable(disabledWf);
    expect((await a.del(`/v1/workflows/${disabledWf}/webhook`)).status).toBe(204);
    const disabled = await refused(() => deliver(disabledWf, '{"a":1}', { secret: disabledSecret }), 401, 'UNAUTHORIZED');
    const plain = await newWorkflow();
    const neverEnabled = await refused(() => deliver(plain, '{"a":1}', { secret }), 401, 'UNAUTHORIZED');
    for (const other of [tampered, unknown, disabled, neverEnabled]) expect(other).toEqual(badSig);
  });

  it('a timestamp more than 5 minutes old or ahead gets 401 saying so, even when correctly signed', async () => {
    // 360 s, not 301: on a loaded machine the request can reach the server seconds after it was signed.
    for (const timestamp of [nowSeconds() - 360, nowSeconds() + 360, nowSeconds() - 86_400]) {
      const err = await refused(() => deliver(wf, '{"late":true}', { secret, timestamp }), 401, 'UNAUTHORIZED');
      expect(err.message).toMatch(/Stepwise-Timestamp is outside the 5-minute window/);
    }
  });

  it('missing or malformed signature headers get 401', async () => {
    await refused(() => deliver(wf, '{}', {}), 401, 'UNAUTHORIZED');
    await refused(() => deliver(wf, '{}', { signature: 'sha256=abc' }), 401, 'UNAUTHORIZED');
    await refused(() => deliver(wf, '{}', { secret, timestamp: null }), 401, 'UNAUTHORIZED');
  });

  it('a replay of the same delivery is 409 REPLAY naming the first job; the same event re-signed later is new', async () => {
    const timestamp = nowSeconds();
    const first = await deliver(wf, '{"event":"e-1"}', { secret, timestamp });
    expect(first.status).toBe(202);
    const err = await refused(() => deliver(wf, '{"event":"e-1"}', { secret, timestamp }), 409, 'CONFLICT');
    expect(err.details).toEqual({ reason: 'REPLAY', jobId: first.body.jobId });
    // Extra entries in the header do not make it a different delivery.
    const padded = `${sign(secret, timestamp, '{"event":"e-1"}')},v1=${'0'.repeat(64)}`;
    await refused(() => deliver(wf, '{"event":"e-1"}', { signature: padded, timestamp }), 409, 'CONFLICT');
    expect((await deliver(wf, '{"event":"e-1"}', { secret, timestamp: timestamp - 1 })).status).toBe(202);
  });

  it('two identical deliveries at once: exactly one job', async () => {
    const timestamp = nowSeconds();
    const before = await counts();
    const results = await Promise.all(Array.from({ length: 4 }, () => deliver(wf, '{"event":"twin"}', { secret, timestamp })));
    expect(results.map((r) => r.status).sort()).toEqual([202, 409, 409, 409]);
    expect((await counts()).jobs).toBe(before.jobs + 1);
  });

  it('a content type other than application/json is 415, a missing one too', async () => {
    await refused(() => deliver(wf, 'a=1', { secret, contentType: 'application/x-www-form-urlencoded' }), 415, 'UNSUPPORTED_MEDIA_TYPE');
    await refused(() => deliver(wf, '{"a":1}', { secret, contentType: 'text/plain' }), 415, 'UNSUPPORTED_MEDIA_TYPE');
    await refused(() => deliver(wf, '{"a":1}', { secret, contentType: null }), 415, 'UNSUPPORTED_MEDIA_TYPE');
    await refused(() => deliver(wf, '{"a":1}', { secret, contentType: 'application/vnd.api+json' }), 415, 'UNSUPPORTED_MEDIA_TYPE');
  });

  it('invalid JSON correctly signed is 400; badly signed it is 401 (the body is not looked at first)', async () => {
    for (const payload of ['{"a":', 'not json', '', '{"__proto__":{"x":1}}']) {
      const err = await refused(() => deliver(wf, payload, { secret }), 400, 'VALIDATION');
      expect(err.details.path).toBe('/body');
    }
    await refused(() => deliver(wf, '{"a":', { secret: `${secret}x` }), 401, 'UNAUTHORIZED');
  });

  it('a string holding U+0000 is 400 naming the field', async () => {
    const err = await refused(() => deliver(wf, '{"name":"a\\u0000b"}', { secret }), 400, 'VALIDATION');
    expect(err.details.path).toBe('/body/name');
  });

  it('a malformed workflow id is 400', async () => {
    await refused(() => deliver('not-a-uuid', '{}', { secret }), 400, 'VALIDATION');
  });

  it('a paused workflow is 409 to a correctly signed delivery', async () => {
    const paused = await newWorkflow();
    const pausedSecret = await enable(paused);
    expect((await a.put(`/v1/workflows/${paused}`, { status: 'PAUSED' })).status).toBe(200);
    await refused(() => deliver(paused, '{}', { secret: pausedSecret }), 409, 'CONFLICT');
  });
});

describe('rotate and disable', () => {
  it('rotate: the new secret is shown once, the old one is refused at once', async () => {
    const wf = await newWorkflow();
    const old = await enable(wf);
    const res = await a.post(`/v1/workflows/${wf}/webhook/rotate`);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ url: `/v1/hooks/${wf}`, secret: expect.stringMatching(/^whsec_/) });
    expect(res.body.secret).not.toBe(old);
    await refused(() => deliver(wf, '{"k":"old"}', { secret: old }), 401, 'UNAUTHORIZED');
    expect((await deliver(wf, '{"k":"new"}', { secret: res.body.secret })).status).toBe(202);
    const state = (await a.get(`/v1/workflows/${wf}/webhook`)).body;
    expect(state.enabled).toBe(true);
    expect(new Date(state.rotatedAt).getTime()).toBeGreaterThanOrEqual(new Date(state.createdAt).getTime());
  });

  it('disable: deliveries get 401; rotate and a second disable are 409; re-enable issues a new secret', async () => {
    const wf = await newWorkflow();
    const first = await enable(wf);
    expect((await a.del(`/v1/workflows/${wf}/webhook`)).status).toBe(204);
    expect((await a.get(`/v1/workflows/${wf}/webhook`)).body).toMatchObject({ enabled: false, createdAt: expect.any(String) });
    await refused(() => deliver(wf, '{}', { secret: first }), 401, 'UNAUTHORIZED');
    expectError(await a.del(`/v1/workflows/${wf}/webhook`), 409, 'CONFLICT');
    expectError(await a.post(`/v1/workflows/${wf}/webhook/rotate`), 409, 'CONFLICT');
    const second = await enable(wf);
    expect(second).not.toBe(first);
    await refused(() => deliver(wf, '{}', { secret: first }), 401, 'UNAUTHORIZED');
    expect((await deliver(wf, '{}', { secret: second })).status).toBe(202);
  });
});

describe('replay rows', () => {
  it('are pruned once their timestamp can no longer pass the window', async () => {
    const wf = await newWorkflow();
    await enable(wf);
    const count = async () =>
      (await t.db.query<{ n: number }>('SELECT count(*)::int AS n FROM stepwise.webhook_deliveries WHERE workflow_id = $1', [wf])).rows[0]!.n;
    const now = Date.now();
    const delivery = (signedAt: number, byte: number) => ({ organizationId: orgA, workflowId: wf, signature: Buffer.alloc(32, byte), signedAt: new Date(signedAt) });
    await startWebhookRun(t.db, delivery(now - 300_000, 1), {}, now);
    await startWebhookRun(t.db, delivery(now - 200_000, 2), {}, now);
    expect(await count()).toBe(2);
    // Ten minutes later the first two are past the window (plus a minute's margin) and go with the next delivery.
    await startWebhookRun(t.db, delivery(now + 600_000, 3), {}, now + 600_000);
    expect(await count()).toBe(1);
  });
});

describe('OpenAPI', () => {
  it('documents the delivery headers and marks the route as needing no key', async () => {
    const doc = (await a.get('/openapi.json')).body;
    const op = doc.paths['/v1/hooks/{workflowId}'].post;
    expect(op.description).toContain('Stepwise-Timestamp: <unix seconds');
    expect(op.description).toContain('Stepwise-Signature: v1=');
    expect(op.security).toEqual([]);
    expect(doc.paths['/v1/workflows/{id}/webhook/rotate'].post).toBeDefined();
  });
});
