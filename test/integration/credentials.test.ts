import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/api/index.js';
import { generateKeyEntry, parseKeyRing } from '../../src/security/crypto.js';
import { credentialResolver, resolveCredentials } from '../../src/security/credentials.js';
import { Worker } from '../../src/engine/index.js';
import { createTestDb, type TestDb } from '../helpers/db.js';
import { seedOrg, silentLogger, waitForJob, workerConfig } from '../helpers/fixtures.js';
import { client, expectError, type ApiClient, type Json } from '../helpers/api.js';
import { startTestServer, type TestServer } from '../helpers/http-server.js';

const TOKEN = 'tok_live_9f8e7d6c5b4a3210';
const PASSWORD = 'hunter2-correct-horse';

let t: TestDb;
let app: FastifyInstance;
let a: ApiClient;
let b: ApiClient;
let orgA: string;
let orgB: string;
let worker: Worker;
let echo: TestServer;
let received: string[];
const ring = parseKeyRing(`${generateKeyEntry()},${generateKeyEntry()}`);

beforeAll(async () => {
  t = await createTestDb();
  app = await buildApp({ db: t.db, logger: silentLogger, version: 'test', keyRing: ring });
  const sa = await seedOrg(t.db, 'Cred A');
  const sb = await seedOrg(t.db, 'Cred B');
  orgA = sa.organizationId;
  orgB = sb.organizationId;
  a = client(app, sa.key);
  b = client(app, sb.key);
  received = [];
  // Echoes the request headers back as JSON, the way a debugging endpoint would.
  echo = await startTestServer((req, res) => {
    received.push(String(req.headers.authorization ?? ''));
    res.writeHead(200, { 'content-type': 'application/json', 'x-echo-auth': String(req.headers.authorization ?? '') });
    res.end(JSON.stringify({ headers: req.headers, note: `you sent ${req.headers.authorization}` }));
    return true;
  });
  worker = new Worker(t.db, workerConfig(), silentLogger, 'cred-worker', { credentials: credentialResolver(t.db, ring) });
  void worker.start();
});

afterAll(async () => {
  await worker?.stop();
  await echo?.close();
  await app?.close();
  await t?.close();
});

async function createCred(api: ApiClient, name: string, secret: Json = { token: TOKEN, password: PASSWORD }): Promise<Json> {
  const res = await api.post('/v1/credentials', { provider: 'acme-api', name, secret });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body;
}

async function runWorkflow(api: ApiClient, definition: Json, input: Json = {}): Promise<string> {
  const wf = await api.post('/v1/workflows', { name: 'uses creds', definition });
  expect(wf.status, JSON.stringify(wf.body)).toBe(201);
  const run = await api.post(`/v1/workflows/${wf.body.id}/runs`, { input });
  expect(run.status).toBe(202);
  return run.body.jobId;
}

describe('credentials API', () => {
  it('creates, lists, replaces and deletes without ever returning the secret', async () => {
    const created = await createCred(a, 'crud');
    expect(Object.keys(created).sort()).toEqual(['createdAt', 'id', 'name', 'provider', 'updatedAt']);
    const list = await a.get('/v1/credentials');
    expect(list.status).toBe(200);
    expect(JSON.stringify(list.body)).not.toContain(TOKEN);
    expect(list.body.items.map((c: Json) => c.name)).toContain('crud');
    const one = await a.get(`/v1/credentials/${created.id}`);
    expect(one.body).toEqual(created);

    // At rest: ciphertext only, under the ring's newest key.
    const { rows } = await t.db.query<{ ciphertext: Uint8Array; key_id: string }>(
      'SELECT ciphertext, key_id FROM stepwise.credentials WHERE id = $1',
      [created.id],
    );
    expect(Buffer.from(rows[0]!.ciphertext).toString('latin1')).not.toContain(TOKEN);
    expect(rows[0]!.key_id).toBe(ring.currentKeyId);

    const put = await a.put(`/v1/credentials/${created.id}`, { provider: 'acme-api', name: 'crud2', secret: { token: 'replaced-token' } });
    expect(put.status, JSON.stringify(put.body)).toBe(200);
    expect(put.body.name).toBe('crud2');
    expect(JSON.stringify(put.body)).not.toContain('replaced-token');
    expect((await a.del(`/v1/credentials/${created.id}`)).status).toBe(204);
    expectError(await a.get(`/v1/credentials/${created.id}`), 404, 'NOT_FOUND');
  });

  it('refuses bad input naming the field, a taken name, and another tenant’s credential (404)', async () => {
    const c = await createCred(a, 'taken');
    expectError(await a.post('/v1/credentials', { provider: 'x', name: 'taken', secret: { k: 'v' } }), 409, 'CONFLICT');
    const bad = expectError(await a.post('/v1/credentials', { provider: 'x', name: 'not an id', secret: { k: 'v' } }), 400, 'VALIDATION');
    expect(bad.details.path).toBe('/body/name');
    const nested = expectError(await a.post('/v1/credentials', { provider: 'x', name: 'n1', secret: { k: { deep: 1 } } }), 400, 'VALIDATION');
    expect(nested.details.path).toBe('/body/secret/k');
    const big = expectError(await a.post('/v1/credentials', { provider: 'x', name: 'n2', secret: { k: 'x'.repeat(17_000) } }), 400, 'VALIDATION');
    expect(big.details).toMatchObject({ path: '/body/secret', limit: 16384 });
    expectError(await a.post('/v1/credentials', { provider: 'x', name: 'n3', secret: {} }), 400, 'VALIDATION');
    expectError(await b.get(`/v1/credentials/${c.id}`), 404, 'NOT_FOUND');
    expectError(await b.put(`/v1/credentials/${c.id}`, { provider: 'x', name: 'stolen', secret: { k: 'v' } }), 404, 'NOT_FOUND');
    expectError(await b.del(`/v1/credentials/${c.id}`), 404, 'NOT_FOUND');
    expect((await b.get('/v1/credentials')).body.items).toEqual([]);
    expect((await a.get(`/v1/credentials/${c.id}`)).status).toBe(200);
  });

  it('refuses a credential past the plan’s limit (STARTER: 3) with 402 PLAN_LIMIT, creating nothing', async () => {
    const starter = await seedOrg(t.db, 'Starter', 'STARTER');
    const api = client(app, starter.key);
    for (const n of ['s1', 's2', 's3']) await createCred(api, n);
    const res = await api.post('/v1/credentials', { provider: 'x', name: 's4', secret: { k: 'v' } });
    expect(expectError(res, 402, 'PLAN_LIMIT').details).toMatchObject({ resource: 'credentials', limit: 3, current: 3 });
    expect((await api.get('/v1/credentials')).body.items).toHaveLength(3);
  });

  it('answers 503 naming STEPWISE_ENCRYPTION_KEYS when the service has no key ring', async () => {
    const bare = await buildApp({ db: t.db, logger: silentLogger, version: 'test' });
    const key = (await seedOrg(t.db, 'No ring')).key;
    const res = await client(bare, key).post('/v1/credentials', { provider: 'x', name: 'n', secret: { k: 'v' } });
    expectError(res, 503, 'UNAVAILABLE');
    expect(res.body.error.message).toContain('STEPWISE_ENCRYPTION_KEYS');
    await bare.close();
  });

  it('a ciphertext moved to another row or tenant does not decrypt', async () => {
    const mine = await createCred(a, 'moved_from');
    const theirs = await createCred(b, 'moved_to', { token: 'b-token-value' });
    // An attacker with database access copies A's sealed secret over B's.
    await t.db.query(
      `UPDATE stepwise.credentials t SET ciphertext = s.ciphertext, iv = s.iv, tag = s.tag, key_id = s.key_id
         FROM stepwise.credentials s WHERE s.id = $1 AND t.id = $2`,
      [mine.id, theirs.id],
    );
    const use = { organizationId: orgB, jobId: mine.id, stepId: 's', actor: 'test' };
    const opened = await resolveCredentials(t.db, ring, use, ['moved_to']);
    expect(opened).toEqual({ values: {}, providers: {}, missing: [], unreadable: ['moved_to'] });
    // Same row, right tenant: opens.
    const ok = await resolveCredentials(t.db, ring, { ...use, organizationId: orgA }, ['moved_from']);
    expect(ok.values.moved_from).toEqual({ token: TOKEN, password: PASSWORD });
  });
});

describe('credentials in steps', () => {
  it('reach the HTTP request, and are redacted from the output, the result and the stream', async () => {
    await createCred(a, 'api');
    const jobId = await runWorkflow(a, {
      steps: [
        {
          id: 'call',
          type: 'http',
          method: 'POST',
          url: `${echo.url}/echo`,
          headers: { authorization: 'Bearer {{ credentials.api.token }}' },
          body: { user: 'me', password: '{{ credentials.api.password }}' },
        },
        { id: 'after', type: 'transform', expression: 'steps.call.body' },
      ],
    });
    const job = await waitForJob(t.db, orgA, jobId);
    expect(job.status).toBe('COMPLETED');
    expect(received).toContain(`Bearer ${TOKEN}`);
    const got = await a.get(`/v1/jobs/${jobId}`);
    const text = JSON.stringify(got.body);
    expect(text).not.toContain(TOKEN);
    expect(text).toContain('[REDACTED]');
    const stream = await a.get(`/v1/jobs/${jobId}/stream`);
    expect(JSON.stringify(stream.body)).not.toContain(TOKEN);
    expect(JSON.stringify(stream.body)).not.toContain(PASSWORD);
    const raw = await t.db.query(`SELECT message, data::text AS data FROM stepwise.execution_log WHERE job_id = $1`, [jobId]);
    expect(JSON.stringify(raw.rows)).not.toContain(TOKEN);

    // The use is audited: actor the worker, with job and step.
    const audit = await a.get(`/v1/audit/credentials?jobId=${jobId}`);
    expect(audit.status).toBe(200);
    expect(audit.body.items).toEqual([
      expect.objectContaining({ action: 'USE', credentialName: 'api', actor: 'worker:cred-worker', jobId, stepId: 'call' }),
    ]);
  });

  it('redacts a secret from an error message', async () => {
    await createCred(a, 'pathsecret', { segment: 'sekret-path-segment' });
    // Port 1 refuses the connection; the error names the URL's path.
    const jobId = await runWorkflow(a, {
      steps: [{ id: 'fail', type: 'http', method: 'GET', url: 'http://127.0.0.1:1/{{ credentials.pathsecret.segment }}' }],
    });
    const job = await waitForJob(t.db, orgA, jobId);
    expect(job.status).toBe('FAILED');
    expect(job.errorCode).toBe('HTTP_ERROR');
    expect(job.errorMessage).toContain('[REDACTED]');
    expect(job.errorMessage).not.toContain('sekret-path-segment');
    const stream = await a.get(`/v1/jobs/${jobId}/stream`);
    expect(JSON.stringify(stream.body)).not.toContain('sekret-path-segment');
  });

  it('a missing credential fails the step with CREDENTIAL_NOT_FOUND; another tenant’s is missing too', async () => {
    await createCred(b, 'only_in_b');
    const jobId = await runWorkflow(a, {
      steps: [{ id: 'x', type: 'http', method: 'GET', url: `${echo.url}/{{ credentials.only_in_b.token }}` }],
    });
    const job = await waitForJob(t.db, orgA, jobId);
    expect(job.status).toBe('FAILED');
    expect(job.errorCode).toBe('CREDENTIAL_NOT_FOUND');
    expect(job.errorMessage).toContain('"only_in_b"');
  });

  it('records create, update, delete in the audit log, filterable and exportable as CSV', async () => {
    const c = await createCred(a, 'audited');
    await a.put(`/v1/credentials/${c.id}`, { provider: 'acme-api', name: 'audited', secret: { token: 'v2-token' } });
    await a.del(`/v1/credentials/${c.id}`);
    const res = await a.get(`/v1/audit/credentials?credentialId=${c.id}`);
    expect(res.status).toBe(200);
    expect(res.body.items.map((e: Json) => e.action)).toEqual(['DELETE', 'UPDATE', 'CREATE']);
    expect(res.body.items[0].actor).toMatch(/^user:[0-9a-f-]{36}$/);
    expect(res.body.items[0].apiKeyId).toMatch(/^[0-9a-f-]{36}$/);
    const paged = await a.get(`/v1/audit/credentials?credentialId=${c.id}&limit=2`);
    expect(paged.body.items).toHaveLength(2);
    const rest = await a.get(`/v1/audit/credentials?credentialId=${c.id}&limit=2&cursor=${paged.body.nextCursor}`);
    expect(rest.body.items.map((e: Json) => e.action)).toEqual(['CREATE']);
    expect(rest.body.nextCursor).toBeNull();
    const csv = await a.get(`/v1/audit/credentials?credentialId=${c.id}&format=csv`);
    expect(csv.status).toBe(200);
    expect(csv.headers['content-type']).toContain('text/csv');
    const lines = String(csv.body).trimEnd().split('\r\n');
    expect(lines[0]).toBe('id,at,action,credential_id,credential_name,actor,api_key_id,job_id,step_id');
    expect(lines).toHaveLength(4);
    // B sees none of A's audit rows.
    expect((await b.get(`/v1/audit/credentials?credentialId=${c.id}`)).body.items).toEqual([]);
  });
});
