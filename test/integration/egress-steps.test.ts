import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defineWorkflow, startRuns, Worker } from '../../src/engine/index.js';
import { Outbound } from '../../src/net/outbound.js';
import { generateKeyEntry, parseKeyRing } from '../../src/security/crypto.js';
import { createCredential, credentialResolver } from '../../src/security/credentials.js';
import { listStream } from '../../src/store/index.js';
import { createTestApp, client, type ApiClient } from '../helpers/api.js';
import { createTestDb, type TestDb } from '../helpers/db.js';
import { tableLookup } from '../helpers/egress.js';
import { startFakeSmtp, type FakeSmtp } from '../helpers/fake-smtp.js';
import { seedOrg, silentLogger, waitForJob, workerConfig } from '../helpers/fixtures.js';
import { startTestServer, type TestServer } from '../helpers/http-server.js';
import { delta, snapshot } from '../helpers/metrics.js';
import { EgressPolicy } from '../../src/net/address-policy.js';
import type { FastifyInstance } from 'fastify';

/**
 * One egress policy for every step that reaches the network. The worker's
 * policy here admits exactly two things: the name `admitted.test` on the
 * test server's port, and nothing else — so every other way of writing
 * 127.0.0.1 (and every internal address) must fail the step EGRESS_DENIED
 * before a byte reaches the server. Names resolve through a table (the
 * resolver override): `rebind.test` is 127.0.0.1, `mixed.test` has a public
 * and a private address.
 */

let t: TestDb;
let orgId: string;
let srv: TestServer;
let port: number;
let smtp: FakeSmtp;
let worker: Worker;
let app: FastifyInstance;
let api: ApiClient;
const ring = parseKeyRing(generateKeyEntry());
const lookup = tableLookup({
  'admitted.test': ['127.0.0.1'],
  'rebind.test': ['127.0.0.1'],
  'mixed.test': ['93.184.216.34', '10.1.2.3'],
  'meta.test': ['169.254.169.254'],
});

beforeAll(async () => {
  t = await createTestDb();
  orgId = (await seedOrg(t.db, 'Egress Co')).organizationId;
  srv = await startTestServer((req, res) => {
    const to = new URL(req.url!, 'http://x').searchParams.get('to');
    if (req.url!.startsWith('/redirect') && to) {
      res.writeHead(302, { location: to }).end();
      return true;
    }
    return false;
  });
  port = Number(new URL(srv.url).port);
  smtp = await startFakeSmtp();
  worker = new Worker(t.db, workerConfig(), silentLogger, 'egress-worker', {
    credentials: credentialResolver(t.db, ring),
    outbound: new Outbound(`admitted.test:${port}`, lookup),
  });
  void worker.start();
  // The API under the default policy: public addresses only.
  app = await createTestApp(t.db, undefined, { keyRing: ring, egressPolicy: new EgressPolicy() });
  const seeded = await seedOrg(t.db, 'Egress API Co');
  api = client(app, seeded.key);
});

afterAll(async () => {
  await worker?.stop();
  await app?.close();
  await srv?.close();
  await smtp?.close();
  await t?.close();
});

/** Runs one workflow per step list at once; returns each job as it ended, with its stream's failure row. */
async function runAll(stepLists: Record<string, unknown>[][]): Promise<{ status: string; errorCode: string | null; errorMessage: string | null; failed: Record<string, unknown> | undefined }[]> {
  const jobs = await Promise.all(
    stepLists.map(async (steps, i) => {
      const wf = await defineWorkflow(t.db, orgId, { name: `egress-${Date.now()}-${i}-${Math.random()}`, definition: { steps } as never });
      const [run] = await startRuns(t.db, orgId, wf.id, [{}]);
      return run!.id;
    }),
  );
  return Promise.all(
    jobs.map(async (jobId) => {
      const job = await waitForJob(t.db, orgId, jobId, 30_000);
      const stream = await listStream(t.db, orgId, job, { limit: 100 });
      const failed = stream.find((e) => e.kind === 'STEP_FAILED')?.data as Record<string, unknown> | undefined;
      return { status: job.status, errorCode: job.errorCode, errorMessage: job.errorMessage, failed };
    }),
  );
}

const get = (url: string) => [{ id: 'call', type: 'http', method: 'GET', url, retry: { maxAttempts: 3, initialMs: 10 } }];

describe('http steps under the egress policy', () => {
  it('refuses every way of writing a loopback or internal address, and the server sees none of them', async () => {
    const secret = `/secret-${Math.random().toString(36).slice(2)}`;
    const refused: [string, string, string][] = [
      // [url, host named in the message, reason]
      [`http://127.0.0.1:${port}${secret}`, '127.0.0.1', 'loopback'],
      [`http://127.1:${port}${secret}`, '127.0.0.1', 'loopback'], // short form: the URL parser reads it as 127.0.0.1
      [`http://2130706433:${port}${secret}`, '127.0.0.1', 'loopback'], // decimal
      [`http://0177.0.0.1:${port}${secret}`, '127.0.0.1', 'loopback'], // octal
      [`http://0x7f.0.0.1:${port}${secret}`, '127.0.0.1', 'loopback'], // hex
      [`http://localhost:${port}${secret}`, 'localhost', 'loopback'],
      [`http://app.localhost:${port}${secret}`, 'app.localhost', 'loopback'],
      [`http://[::1]:${port}${secret}`, '[::1]', 'loopback'],
      [`http://[::ffff:127.0.0.1]:${port}${secret}`, '[::ffff:7f00:1]', 'loopback'], // IPv4-mapped
      [`http://0.0.0.0:${port}${secret}`, '0.0.0.0', 'unspecified'],
      [`http://rebind.test:${port}${secret}`, 'rebind.test', 'loopback'], // a name resolving to 127.0.0.1
      [`http://admitted.test:${port + 1}${secret}`, 'admitted.test', 'loopback'], // named, but on another port
      ['http://10.0.0.7/', '10.0.0.7', 'private'],
      ['http://172.16.5.4/', '172.16.5.4', 'private'],
      ['http://192.168.1.1/', '192.168.1.1', 'private'],
      ['http://[fd12:3456::1]/', '[fd12:3456::1]', 'unique-local'],
      ['http://169.254.10.10/', '169.254.10.10', 'link-local'],
      ['http://[fe80::1]/', '[fe80::1]', 'link-local'],
      ['http://169.254.169.254/latest/meta-data/', '169.254.169.254', 'metadata'],
      ['http://meta.test/latest/meta-data/', 'meta.test', 'metadata'],
      ['http://224.0.0.1/', '224.0.0.1', 'multicast'],
      ['http://mixed.test/', 'mixed.test', 'private'], // one private address among public ones refuses the name
      // A redirect from the admitted host to a refused one: the first hop is made, the second is not.
      [`http://admitted.test:${port}/redirect?to=${encodeURIComponent(`http://127.0.0.1:${port}${secret}`)}`, '127.0.0.1', 'loopback'],
      [`http://admitted.test:${port}/redirect?to=${encodeURIComponent(`http://rebind.test:${port}${secret}`)}`, 'rebind.test', 'loopback'],
    ];
    const before = await snapshot();
    const results = await runAll(refused.map(([url]) => get(url)));
    const after = await snapshot();
    for (const [i, [url, host, reason]] of refused.entries()) {
      const r = results[i]!;
      expect(r.status, url).toBe('FAILED');
      expect(r.errorCode, url).toBe('EGRESS_DENIED');
      expect(r.errorMessage, url).toContain(host.replace(/^\[|\]$/g, ''));
      // Visible in the stream, with host and reason; never retried (one failure row, no RETRY_SCHEDULED).
      expect(r.failed, url).toMatchObject({ code: 'EGRESS_DENIED', reason });
      // A name's resolved addresses never appear: they would map the internal network for the workflow's author.
      if (/[a-z]\.test/.test(host)) expect(r.errorMessage, url).not.toMatch(/127\.0\.0\.1|10\.1\.2\.3|169\.254/);
    }
    expect(srv.calls.get(secret) ?? 0).toBe(0);
    expect([...srv.calls.keys()].filter((k) => k.startsWith('/secret'))).toEqual([]);
    // Counted by step type and reason, once per refused step (never retried although the steps allow 3 attempts).
    expect(delta(before, after, 'stepwise_egress_denied_total', { step_type: 'http', reason: 'loopback' })).toBe(
      refused.filter(([, , reason]) => reason === 'loopback').length,
    );
    expect(delta(before, after, 'stepwise_egress_denied_total', { step_type: 'http', reason: 'metadata' })).toBe(2);
  });

  it('admits exactly what the allowlist names: the named host on its port, through redirects that stay there', async () => {
    const [direct, redirected] = await runAll([
      get(`http://admitted.test:${port}/hello`),
      get(`http://admitted.test:${port}/redirect?to=${encodeURIComponent('/landed')}`),
    ]);
    expect(direct).toMatchObject({ status: 'COMPLETED' });
    expect(redirected).toMatchObject({ status: 'COMPLETED' });
    expect(srv.calls.get('/hello')).toBe(1);
    expect(srv.calls.get('/landed')).toBe(1);
  });
});

describe('the same policy for llm, email and sql steps', () => {
  it('refuses a provider base URL, an SMTP host and database hosts that are internal, before connecting', async () => {
    const creds: [string, string, Record<string, unknown>][] = [
      ['openai', 'llm_local', { apiKey: 'sk-egress-test-1', baseUrl: `http://127.0.0.1:${port}/v1` }],
      ['anthropic', 'llm_meta', { apiKey: 'sk-egress-test-2', baseUrl: 'http://169.254.169.254/v1' }],
      ['smtp', 'mail_local', { host: '127.0.0.1', port: smtp.port, from: 'ops@stepwise.test' }],
      ['smtp', 'mail_rebind', { host: 'rebind.test', port: smtp.port, from: 'ops@stepwise.test' }],
      ['postgres', 'pg_local', { connectionString: 'postgres://postgres:pw-egress@127.0.0.1:5432/postgres' }],
      ['mysql', 'my_private', { connectionString: 'mysql://root@10.20.30.40:3306/test' }],
    ];
    for (const [provider, name, secret] of creds) await createCredential(t.db, ring, orgId, { provider, name, secret }, { actor: 'cli:test' });
    const llm = (credential: string) => [{ id: 'ask', type: 'llm', credential, model: 'gpt-4o-mini', prompt: 'hi', retry: { maxAttempts: 2, initialMs: 10 } }];
    const mail = (credential: string) => [{ id: 'send', type: 'email', credential, to: ['a@example.com'], subject: 's', text: 't' }];
    const sql = (credential: string) => [{ id: 'q', type: 'sql', credential, query: 'SELECT 1' }];
    const sentBefore = smtp.messages.length;
    const before = await snapshot();
    const results = await runAll([llm('llm_local'), llm('llm_meta'), mail('mail_local'), mail('mail_rebind'), sql('pg_local'), sql('my_private')]);
    const after = await snapshot();
    const expected: [string, string, string][] = [
      ['llm', '127.0.0.1', 'loopback'],
      ['llm', '169.254.169.254', 'metadata'],
      ['email', '127.0.0.1', 'loopback'],
      ['email', 'rebind.test', 'loopback'],
      ['sql', '127.0.0.1', 'loopback'],
      ['sql', '10.20.30.40', 'private'],
    ];
    for (const [i, [type, host, reason]] of expected.entries()) {
      const r = results[i]!;
      expect(r, `${type} ${host}`).toMatchObject({ status: 'FAILED', errorCode: 'EGRESS_DENIED' });
      expect(r.errorMessage).toContain(host);
      expect(r.errorMessage).not.toContain('pw-egress');
      expect(r.failed).toMatchObject({ code: 'EGRESS_DENIED', host, reason });
    }
    expect(smtp.messages.length).toBe(sentBefore);
    for (const type of ['llm', 'email', 'sql']) {
      expect(delta(before, after, 'stepwise_egress_denied_total', { step_type: type }), type).toBe(2);
    }
  });

  it('a postgres connection string may not move its host with ?host=', async () => {
    await createCredential(t.db, ring, orgId, { provider: 'postgres', name: 'pg_moved', secret: { connectionString: 'postgres://u:p@db.example.com/app?host=127.0.0.1' } }, { actor: 'cli:test' });
    const [r] = await runAll([[{ id: 'q', type: 'sql', credential: 'pg_moved', query: 'SELECT 1' }]]);
    expect(r).toMatchObject({ status: 'FAILED', errorCode: 'SQL_CREDENTIAL' });
  });
});

describe('credentials naming a refused address are refused at save', () => {
  it('answers 400 naming the secret field, and stores nothing', async () => {
    const cases: [string, Record<string, unknown>, string][] = [
      ['openai', { apiKey: 'sk-x-123456', baseUrl: 'http://169.254.169.254/v1' }, '/body/secret/baseUrl'],
      ['anthropic', { apiKey: 'sk-x-123456', baseUrl: 'http://[::1]:8080' }, '/body/secret/baseUrl'],
      ['smtp', { host: 'localhost', port: 25, from: 'a@b.test' }, '/body/secret/host'],
      ['postgres', { connectionString: 'postgres://u:hunter22@2130706433/db' }, '/body/secret/connectionString'],
      ['mysql', { connectionString: 'mysql://root@192.168.0.10/db' }, '/body/secret/connectionString'],
    ];
    for (const [i, [provider, secret, path]] of cases.entries()) {
      const res = await api.post('/v1/credentials', { provider, name: `refused_${i}`, secret });
      expect(res.status, `${provider} ${JSON.stringify(secret)}`).toBe(400);
      expect(res.body.error.details.path).toBe(path);
      expect(JSON.stringify(res.body)).not.toContain('hunter22');
    }
    const list = await api.get('/v1/credentials');
    expect(list.body.items.filter((c: { name: string }) => c.name.startsWith('refused_'))).toEqual([]);
    // A public name is admitted at save (its addresses are checked at every connection).
    const ok = await api.post('/v1/credentials', { provider: 'openai', name: 'public_one', secret: { apiKey: 'sk-x-123456', baseUrl: 'https://llm.example.com/v1' } });
    expect(ok.status).toBe(201);
  });
});
