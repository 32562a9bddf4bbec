import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/api/index.js';
import { FsBlobStore } from '../../src/blob/index.js';
import { captureArtifact, policyRetainUntil } from '../../src/engine/artifacts.js';
import { Worker, defineWorkflow, startRuns } from '../../src/engine/index.js';
import { emailMessageId } from '../../src/engine/steps/email-smtp.js';
import { generateKeyEntry, parseKeyRing } from '../../src/security/crypto.js';
import { credentialResolver } from '../../src/security/credentials.js';
import { findJob, listStream, type Job } from '../../src/store/index.js';
import { client, expectError, type ApiClient, type Json } from '../helpers/api.js';
import { createTestDb, type TestDb } from '../helpers/db.js';
import { startFakeSmtp, type FakeSmtp } from '../helpers/fake-smtp.js';
import { seedOrg, silentLogger, waitForJob, workerConfig } from '../helpers/fixtures.js';
import { makePng } from '../helpers/png.js';
import { EgressPolicy } from '../../src/net/address-policy.js';
import { LOCAL_TEST_EGRESS } from '../helpers/local-egress.js';

const USER = 'mailer-user';
const PASSWORD = 'smtp-pa55word-never-shown';
const FROM = 'Stepwise Ops <ops@stepwise.test>';

let t: TestDb;
let root: string;
let blobs: FsBlobStore;
let app: FastifyInstance;
let api: ApiClient;
let org: string;
let worker: Worker;
let smtp: FakeSmtp;
let picky: FakeSmtp;
let silent: Server;
const silentSockets: Socket[] = [];
let silentClosed = 0;
const ring = parseKeyRing(generateKeyEntry());

beforeAll(async () => {
  t = await createTestDb();
  root = await mkdtemp(join(tmpdir(), 'stepwise-email-'));
  blobs = new FsBlobStore(root);
  app = await buildApp({ db: t.db, logger: silentLogger, version: 'test', keyRing: ring, egressPolicy: new EgressPolicy(LOCAL_TEST_EGRESS), blobs });
  const seeded = await seedOrg(t.db, 'Mail');
  org = seeded.organizationId;
  api = client(app, seeded.key);
  smtp = await startFakeSmtp({ user: USER, password: PASSWORD });
  picky = await startFakeSmtp({ rejectRecipients: ['gone@example.org'] });
  // Accepts TCP and never says a word: only the step's abort ends the wait.
  silent = createServer((socket) => {
    silentSockets.push(socket);
    socket.on('close', () => silentClosed++);
  });
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  worker = new Worker(t.db, workerConfig(), silentLogger, 'mail-worker', { credentials: credentialResolver(t.db, ring), blobs });
  void worker.start();

  await createCred('mail', { host: smtp.host, port: smtp.port, user: USER, password: PASSWORD, from: FROM });
  await createCred('wrongpass', { host: smtp.host, port: smtp.port, user: USER, password: 'not-the-password', from: FROM });
  await createCred('picky', { host: picky.host, port: String(picky.port), from: 'reports@stepwise.test' });
  await createCred('nowhere', { host: '127.0.0.1', port: 1, from: 'ops@stepwise.test' });
  const silentPort = (silent.address() as { port: number }).port;
  await createCred('silent', { host: '127.0.0.1', port: silentPort, from: 'ops@stepwise.test' });
  const res = await api.post('/v1/credentials', { provider: 'openai', name: 'notsmtp', secret: { apiKey: 'sk-xxxxxxxx' } });
  expect(res.status).toBe(201);
});

afterAll(async () => {
  await worker?.stop();
  for (const s of silentSockets) s.destroy();
  await new Promise((r) => silent?.close(r));
  await smtp?.close();
  await picky?.close();
  await app?.close();
  await t?.close();
  if (root) await rm(root, { recursive: true, force: true });
});

async function createCred(name: string, secret: Json): Promise<void> {
  const res = await api.post('/v1/credentials', { provider: 'smtp', name, secret });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
}

async function run(steps: Json[], input: Json = {}): Promise<Job> {
  const wf = await api.post('/v1/workflows', { name: `mail-${Math.random()}`, definition: { steps } });
  expect(wf.status, JSON.stringify(wf.body)).toBe(201);
  const started = await api.post(`/v1/workflows/${wf.body.id}/runs`, { input });
  expect(started.status).toBe(202);
  return waitForJob(t.db, org, started.body.jobId);
}

async function streamOf(job: Job) {
  const found = await findJob(t.db, org, job.id);
  return listStream(t.db, org, found!, { limit: 1000 });
}

/** A stored artifact of the organization (captured for a job of its own, as a browser step would). */
async function storedArtifact(bytes: Buffer, name: string, contentType = 'image/png'): Promise<string> {
  const wf = await defineWorkflow(t.db, org, { name: `shots-${Math.random()}`, definition: { steps: [{ id: 'a', type: 'noop' }] } });
  const [job] = await startRuns(t.db, org, wf.id, [{}]);
  const sink = { db: t.db, blobs, retainUntil: policyRetainUntil(t.db) };
  const shot = await captureArtifact(sink, { organizationId: org, jobId: job!.id, stepIndex: 0, emit: () => 1 }, { bytes, name, contentType });
  return shot.id;
}

const email = (extra: Json = {}): Json => ({
  id: 'send',
  type: 'email',
  credential: 'mail',
  to: 'ann@example.org',
  subject: 'Report',
  text: 'hello',
  ...extra,
});

describe('email step', () => {
  it('logs in and sends subject, text, html, cc, bcc and reply-to, a blob artifact and inline CSV and JSON files, byte for byte', async () => {
    const png = makePng(6, 4, 9);
    const shot = await storedArtifact(png, 'sales chart');
    const before = smtp.messages.length;
    const job = await run(
      [
        { id: 'data', type: 'transform', expression: '{ "rows": [{ "sku": "A-1", "qty": 3 }, { "sku": "B-2", "qty": 5 }], "total": 8 }' },
        email({
          to: ['{{ input.owner }}', 'Bob Doe <bob@example.org>'],
          cc: '"Doe, Carol" <carol@example.org>, dave@example.org',
          bcc: '{{ input.audit }}',
          replyTo: 'desk@example.org',
          subject: 'Sales for {{ input.day }}',
          text: 'Total {{ steps.data.total }} units.',
          html: '<p>Total <b>{{ steps.data.total }}</b> units.</p>',
          attachments: [
            { artifact: '{{ input.shot }}' },
            { name: 'rows-{{ input.day }}.csv', content: 'sku,qty\n{{ $join(steps.data.rows.(sku & "," & qty), "\n") }}\n' },
            { name: 'data.json', content: '{{ steps.data }}' },
            { name: 'meta.json', content: { day: '{{ input.day }}', fixed: [1, 2] } },
          ],
        }),
      ],
      { owner: 'ann@example.org', audit: ['audit@example.org'], day: '2024-05-01', shot },
    );
    expect(job.status, job.errorMessage ?? '').toBe('COMPLETED');
    await smtp.waitFor(before + 1);
    const mail = smtp.messages[before]!;
    const envelope = smtp.envelopes[before]!;

    expect(mail.subject).toBe('Sales for 2024-05-01');
    expect(mail.text?.trim()).toBe('Total 8 units.');
    expect(mail.html).toContain('<p>Total <b>8</b> units.</p>');
    expect(mail.from?.value).toEqual([{ name: 'Stepwise Ops', address: 'ops@stepwise.test' }]);
    const addressesOf = (field: typeof mail.to) => (Array.isArray(field) ? field : field ? [field] : []).flatMap((a) => a.value.map((v) => v.address));
    expect(addressesOf(mail.to)).toEqual(['ann@example.org', 'bob@example.org']);
    expect(addressesOf(mail.cc)).toEqual(['carol@example.org', 'dave@example.org']);
    expect(addressesOf(mail.replyTo)).toEqual(['desk@example.org']);
    // Bcc is in the envelope only, never in the headers.
    expect(mail.bcc).toBeUndefined();
    expect(envelope.from).toBe('ops@stepwise.test');
    expect(envelope.to.sort()).toEqual(['ann@example.org', 'audit@example.org', 'bob@example.org', 'carol@example.org', 'dave@example.org']);

    const files = new Map(mail.attachments.map((a) => [a.filename, a]));
    expect([...files.keys()]).toEqual(['sales chart.png', 'rows-2024-05-01.csv', 'data.json', 'meta.json']);
    expect(files.get('sales chart.png')!.contentType).toBe('image/png');
    expect(files.get('sales chart.png')!.content.equals(png)).toBe(true);
    expect(files.get('rows-2024-05-01.csv')!.contentType).toBe('text/csv');
    expect(files.get('rows-2024-05-01.csv')!.content.toString('utf8')).toBe('sku,qty\nA-1,3\nB-2,5\n');
    expect(files.get('data.json')!.contentType).toBe('application/json');
    expect(JSON.parse(files.get('data.json')!.content.toString('utf8'))).toEqual({ rows: [{ sku: 'A-1', qty: 3 }, { sku: 'B-2', qty: 5 }], total: 8 });
    expect(JSON.parse(files.get('meta.json')!.content.toString('utf8'))).toEqual({ day: '2024-05-01', fixed: [1, 2] });

    // The Message-ID is the job's and the step's, nothing else.
    const messageId = emailMessageId(job.id, 'send', 'ops@stepwise.test');
    expect(mail.messageId).toBe(messageId);
    expect(job.result).toMatchObject({ messageId, rejected: [] });
    expect(((job.result as Json).accepted as string[]).sort()).toEqual(envelope.to.sort());

    // The password went to the server only: not into the output, the stream or the raw rows.
    const stream = await api.get(`/v1/jobs/${job.id}/stream`);
    const view = await api.get(`/v1/jobs/${job.id}`);
    const raw = await t.db.query(`SELECT message, data::text AS data FROM stepwise.execution_log WHERE job_id = $1`, [job.id]);
    for (const text of [JSON.stringify(stream.body), JSON.stringify(view.body), JSON.stringify(raw.rows)]) expect(text).not.toContain(PASSWORD);
  });

  it('a wrong password fails EMAIL_AUTH, and the password is in neither the error nor the stream', async () => {
    const job = await run([email({ credential: 'wrongpass' })]);
    expect(job.status).toBe('FAILED');
    expect(job.errorCode).toBe('EMAIL_AUTH');
    const rows = JSON.stringify(await streamOf(job));
    expect(rows).toContain('535');
    expect(rows + job.errorMessage).not.toContain('not-the-password');
  });

  it('a 550 at DATA fails EMAIL_REJECTED with the SMTP code, and is not retried by a policy limited to transient codes', async () => {
    smtp.reject(550);
    const before = smtp.messages.length;
    const job = await run([email({ retry: { maxAttempts: 3, initialMs: 0, on: ['EMAIL_CONNECTION', 'EMAIL_DEFERRED'] } })]);
    expect(job.status).toBe('FAILED');
    expect(job.errorCode).toBe('EMAIL_REJECTED');
    const failed = (await streamOf(job)).filter((r) => r.kind === 'STEP_FAILED');
    expect(failed).toHaveLength(1);
    expect(failed[0]!.data).toMatchObject({ code: 'EMAIL_REJECTED', smtpCode: 550, command: 'DATA' });
    expect(smtp.messages.length).toBe(before);
  });

  it('a 451 fails the attempt EMAIL_DEFERRED; the retry sends it, with the same Message-ID', async () => {
    smtp.reject(451);
    const before = smtp.messages.length;
    const job = await run([email({ retry: { maxAttempts: 3, initialMs: 0, on: ['EMAIL_CONNECTION', 'EMAIL_DEFERRED'] } })]);
    expect(job.status, job.errorMessage ?? '').toBe('COMPLETED');
    const stream = await streamOf(job);
    expect(stream.filter((r) => r.kind === 'STEP_FAILED').map((r) => r.data)).toEqual([expect.objectContaining({ code: 'EMAIL_DEFERRED', smtpCode: 451, attempt: 1 })]);
    await smtp.waitFor(before + 1);
    expect(smtp.messages.length).toBe(before + 1);
    // Attempt 2 sent it under the Message-ID of attempt 1, which names no attempt.
    const messageId = emailMessageId(job.id, 'send', 'ops@stepwise.test');
    expect(smtp.messages[before]!.messageId).toBe(messageId);
    expect(smtp.refused.at(-1)!.messageId).toBe(messageId);
  });

  it('reports recipients the server refused while it took the others', async () => {
    const before = picky.messages.length;
    const job = await run([email({ credential: 'picky', to: 'ann@example.org, gone@example.org' })]);
    expect(job.status, job.errorMessage ?? '').toBe('COMPLETED');
    expect(job.result).toMatchObject({ accepted: ['ann@example.org'], rejected: ['gone@example.org'] });
    await picky.waitFor(before + 1);
    expect(picky.envelopes[before]!.to).toEqual(['ann@example.org']);
  });

  it('a closed port fails EMAIL_CONNECTION', async () => {
    const job = await run([email({ credential: 'nowhere' })]);
    expect(job.status).toBe('FAILED');
    expect(job.errorCode).toBe('EMAIL_CONNECTION');
    // host and port address the server, they unlock nothing: the error names them (the password stays redacted elsewhere).
    expect(job.errorMessage).toMatch(/^SMTP server 127\.0\.0\.1:1 could not be reached: connect ECONNREFUSED/);
  });

  it('a server that never greets is cut off by the step timeout, and the connection is closed', async () => {
    const closedBefore = silentClosed;
    const job = await run([email({ credential: 'silent', timeoutMs: 300 })]);
    expect(job.status).toBe('FAILED');
    expect(job.errorCode).toBe('STEP_TIMEOUT');
    for (let i = 0; i < 100 && silentClosed === closedBefore; i++) await new Promise((r) => setTimeout(r, 20));
    expect(silentClosed).toBeGreaterThan(closedBefore);
  });

  it('a bad address fails EMAIL_BAD_ADDRESS naming the field, before any connection', async () => {
    const before = smtp.connections();
    const bad = await run([email({ cc: '{{ input.cc }}' })], { cc: 'carol@example.org, nobody-at-example.org' });
    expect(bad.status).toBe('FAILED');
    expect(bad.errorCode).toBe('EMAIL_BAD_ADDRESS');
    expect(bad.errorMessage).toMatch(/^cc: "nobody-at-example.org" is not an email address/);
    const none = await run([email({ to: '{{ input.missing }}' })]);
    expect(none.errorCode).toBe('EMAIL_BAD_ADDRESS');
    expect(none.errorMessage).toContain('to:');
    const injected = await run([email({ to: '{{ input.to }}' })], { to: 'ann@example.org\r\nBcc: evil@example.org' });
    expect(injected.errorCode).toBe('EMAIL_BAD_ADDRESS');
    expect(smtp.connections()).toBe(before);
  });

  it('a missing artifact fails EMAIL_ATTACHMENT_NOT_FOUND naming its id; over 20 MiB fails EMAIL_TOO_LARGE', async () => {
    const ghost = '01900000-0000-7000-8000-000000000000';
    const missing = await run([email({ attachments: [{ artifact: ghost }] })]);
    expect(missing.errorCode).toBe('EMAIL_ATTACHMENT_NOT_FOUND');
    expect(missing.errorMessage).toContain(ghost);

    // One 11 MiB artifact attached twice: 22 MiB.
    const big = await storedArtifact(Buffer.alloc(11 * 1024 * 1024, 7), 'dump.bin', 'application/octet-stream');
    const before = smtp.connections();
    const large = await run([email({ attachments: [{ artifact: big }, { artifact: big, name: 'copy.bin' }] })]);
    expect(large.errorCode).toBe('EMAIL_TOO_LARGE');
    const failed = (await streamOf(large)).find((r) => r.kind === 'STEP_FAILED')!;
    expect(failed.data).toMatchObject({ limit: 20 * 1024 * 1024, part: 'attachments[1]' });
    expect(smtp.connections()).toBe(before);
  });

  it('a credential of another provider fails EMAIL_CREDENTIAL_INVALID', async () => {
    const job = await run([email({ credential: 'notsmtp' })]);
    expect(job.errorCode).toBe('EMAIL_CREDENTIAL_INVALID');
    expect(job.errorMessage).toContain('smtp');
  });

  it('refuses bad definitions at save with 400 naming the field', async () => {
    const save = (step: Json) => api.post('/v1/workflows', { name: `bad-${Math.random()}`, definition: { steps: [step] } });
    const cases: [Json, string, RegExp][] = [
      [email({ text: undefined }), '/definition/steps/0/text', /text, html or both/],
      [email({ to: Array.from({ length: 101 }, (_, i) => `u${i}@example.org`) }), '/definition/steps/0/to', /more than 100 items/],
      [
        email({ to: Array.from({ length: 60 }, (_, i) => `u${i}@example.org`), bcc: Array.from({ length: 41 }, (_, i) => `b${i}@example.org`) }),
        '/definition/steps/0/bcc',
        /101 recipients; at most 100/,
      ],
      [email({ attachments: Array.from({ length: 21 }, () => ({ name: 'a.txt', content: 'x' })) }), '/definition/steps/0/attachments', /more than 20 items/],
      [email({ attachments: [{ artifact: 'x', content: 'y' }] }), '/definition/steps/0/attachments/0/content', /not a known property/],
      [email({ attachments: [{ name: 'a.csv' }] }), '/definition/steps/0/attachments/0/content', /is required/],
      [email({ subject: 'Hi {{ input. }}' }), '/definition/steps/0/subject', /invalid JSONata/],
      [email({ credential: undefined }), '/definition/steps/0/credential', /is required/],
    ];
    for (const [step, path, message] of cases) {
      for (const k of Object.keys(step)) if (step[k] === undefined) delete step[k];
      const err = expectError(await save(step), 400, 'VALIDATION');
      expect(err.details.path, JSON.stringify(err)).toBe(path);
      expect(err.message).toMatch(message);
    }
  });
});
