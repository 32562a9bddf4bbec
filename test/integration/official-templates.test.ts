import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FsBlobStore } from '../../src/blob/index.js';
import { EgressProxy } from '../../src/browser/egress-proxy.js';
import { BrowserPool } from '../../src/browser/pool.js';
import { WorkerBrowserSessions } from '../../src/browser/sessions.js';
import { validateDefinition } from '../../src/engine/definition/index.js';
import { Worker } from '../../src/engine/index.js';
import { EgressPolicy } from '../../src/net/address-policy.js';
import { credentialResolver } from '../../src/security/credentials.js';
import { generateKeyEntry, parseKeyRing } from '../../src/security/crypto.js';
import { keyRingSealer } from '../../src/security/sealer.js';
import { listStream, type Job, type Role } from '../../src/store/index.js';
import { applyConfig, checkConfig, checkCommunityTemplate, OFFICIAL_TEMPLATES, syncOfficialTemplates } from '../../src/templates/index.js';
import { client, createTestApp, type ApiClient, type Json } from '../helpers/api.js';
import { CHROMIUM, haveChromium } from '../helpers/browser-worker.js';
import { haveLocalPostgres, LOCAL_POSTGRES_URL } from '../helpers/local-databases.js';
import { createTestDb, type TestDb } from '../helpers/db.js';
import { startFakeLlm, type FakeLlm, type FakeLlmRequest } from '../helpers/fake-llm.js';
import { startFakeSmtp, type FakeSmtp } from '../helpers/fake-smtp.js';
import { seedOrg, silentLogger, waitForJob, waitForStatus, workerConfig } from '../helpers/fixtures.js';
import { startTestServer, type TestServer } from '../helpers/http-server.js';
import { PORTAL_PASSWORD, PORTAL_USER, startPortal, type Portal } from '../helpers/portal.js';
import { seedRoleKeys } from '../helpers/roles.js';

/**
 * Every official template, instantiated through the API and run to its end
 * against local fixtures on both backends: the fixture payer portal
 * (browser templates; skipped where Chromium is missing), a fake
 * OpenAI-compatible server, a fake SMTP server, the local PostgreSQL (the
 * report's database), a local HTTP server (bakery back office, CRM,
 * payments), an approval decided through the API and the knowledge API.
 */
if (!haveLocalPostgres) console.warn('the nightly report template SKIPPED: its query needs PostgreSQL on 127.0.0.1:5432 (.ci/run starts it)');
if (!haveChromium) console.warn('official browser templates SKIPPED: no Chromium (apt-get install chromium; CI installs it)');

/** A config for each template that validates it without any fixture (the static check below). */
const SAMPLE_CONFIGS: Record<string, Record<string, unknown>> = {
  'payer-eligibility-check': { portalOrigin: 'https://portal.payer.example' },
  'claim-status-check': { portalOrigin: 'https://portal.payer.example' },
  'draft-email-reply': { companyName: 'Acme Bakery' },
  'daily-bakery-orchestration': { apiBaseUrl: 'https://bakery.example.com/api', notifyUrl: 'https://chat.example.com/hooks/ops' },
  'webhook-to-crm-sync': { crmBaseUrl: 'https://crm.example.com/v2' },
  'nightly-report': { query: 'select 1 as one', recipients: ['ops@example.com'] },
  'document-triage': { collection: 'triage-rules', queues: ['billing', 'clinical'] },
  'approval-gated-refund': { paymentsBaseUrl: 'https://payments.example.com' },
};

describe('official templates as code', () => {
  it('each has a unique slug, a settings schema that compiles, declared placeholders, and a definition the registry accepts', () => {
    expect(new Set(OFFICIAL_TEMPLATES.map((o) => o.slug)).size).toBe(OFFICIAL_TEMPLATES.length);
    expect(Object.keys(SAMPLE_CONFIGS).sort()).toEqual(OFFICIAL_TEMPLATES.map((o) => o.slug).sort());
    for (const o of OFFICIAL_TEMPLATES) {
      checkCommunityTemplate(o.definition, o.settingsSchema, `/official/${o.slug}`);
      const config = checkConfig(o.settingsSchema, SAMPLE_CONFIGS[o.slug], `/official/${o.slug}/config`);
      const definition = applyConfig(o.definition, config);
      expect(JSON.stringify(definition), o.slug).not.toMatch(/\[\[config\.|"\$config"/);
      expect(() => validateDefinition(definition), o.slug).not.toThrow();
    }
  });
});

describe('official templates run to completion', () => {
  let t: TestDb;
  let app: FastifyInstance;
  let worker: Worker;
  let sessions: WorkerBrowserSessions | undefined;
  let orgId: string;
  let as: Record<Role, ApiClient>;
  let llm: FakeLlm;
  let smtp: FakeSmtp;
  let srv: TestServer;
  let portal: Portal;
  let target: pg.Client;
  const table = `tpl_report_${randomBytes(4).toString('hex')}`;
  const received: { method: string; path: string; body: Json; auth: string }[] = [];
  let failOrders = false;
  const ring = parseKeyRing(generateKeyEntry());
  const targetUrl = LOCAL_POSTGRES_URL;

  beforeAll(async () => {
    t = await createTestDb();
    await syncOfficialTemplates(t.db);
    const blobs = new FsBlobStore(mkdtempSync(join(tmpdir(), 'stepwise-templates-')));
    app = await createTestApp(t.db, blobs, { keyRing: ring, rateLimit: { perSecond: 0, burst: 1 } });
    orgId = (await seedOrg(t.db, 'Template runner')).organizationId;
    const keys = await seedRoleKeys(t.db, orgId);
    as = { VIEWER: client(app, keys.VIEWER.key), MEMBER: client(app, keys.MEMBER.key), ADMIN: client(app, keys.ADMIN.key), OWNER: client(app, keys.OWNER.key) };

    llm = await startFakeLlm('openai');
    llm.reply(answerLlm);
    smtp = await startFakeSmtp();
    portal = await startPortal();
    srv = await startTestServer((req, res, raw) => {
      const path = req.url ?? '/';
      const body: Json = raw ? JSON.parse(raw) : null;
      received.push({ method: req.method ?? '', path, body, auth: String(req.headers.authorization ?? '') });
      const json = (status: number, value: unknown) => (res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(value)), true);
      const route = `${req.method} ${path.split('?')[0]}`;
      if (route === 'GET /bakery/forecast') return json(200, { items: [{ product: 'baguette', qty: 120 }, { product: 'croissant', qty: 80 }] });
      if (route === 'POST /bakery/production-plans') return json(201, { id: 'PP-1', ingredients: [{ item: 'flour', kg: 40 }] });
      if (route === 'POST /bakery/purchase-orders') return failOrders ? json(503, { error: 'supplier down' }) : json(201, { id: 'PO-1' });
      if (route.startsWith('DELETE /bakery/')) return json(200, { cancelled: true });
      if (route === 'POST /chat/hook') return json(200, { ok: true });
      if (route.startsWith('PUT /crm/contacts/')) return json(200, { id: 'CT-9', email: body.email });
      if (route === 'POST /crm/contacts/CT-9/notes') return json(201, { id: 'NT-1' });
      if (route === 'POST /pay/refunds') return json(201, { id: 'RF-7', amount: body.amount });
      return json(404, { error: `no route ${route}` });
    });

    if (haveLocalPostgres) {
      target = new pg.Client({ connectionString: targetUrl });
      await target.connect();
      await target.query(`CREATE TABLE ${table} (sku text, sold int)`);
      await target.query(`INSERT INTO ${table} VALUES ('baguette', 118), ('croissant', 75), ('brioche', 12)`);
    }

    for (const [provider, name, secret] of [
      ['openai', 'openai', { apiKey: 'sk-test-template-key', baseUrl: llm.url }],
      ['smtp', 'smtp', { host: smtp.host, port: smtp.port, secure: false, from: 'bakery@example.com' }],
      ['postgres', 'reporting_db', { connectionString: targetUrl }],
      ['api_token', 'bakery_api', { token: 'bakery-token-1' }],
      ['api_token', 'crm', { token: 'crm-token-2' }],
      ['api_token', 'payments', { token: 'pay-token-3' }],
      ['portal_login', 'payer_portal', { username: PORTAL_USER, password: PORTAL_PASSWORD }],
    ] as const) {
      const res = await as.ADMIN.post('/v1/credentials', { provider, name, secret });
      expect(res.status, JSON.stringify(res.body)).toBe(201);
    }

    if (haveChromium) {
      sessions = new WorkerBrowserSessions({
        runtime: () => Promise.resolve(new BrowserPool({ executablePath: CHROMIUM, maxContexts: 2 })),
        proxy: () => EgressProxy.start({ policy: new EgressPolicy(`127.0.0.1:${new URL(portal.url).port}`) }),
      });
    }
    worker = new Worker(t.db, workerConfig({ stepTimeoutMs: 60_000 }), silentLogger, 'template-worker', {
      credentials: credentialResolver(t.db, ring),
      blobs,
      sealer: keyRingSealer(ring),
      browser: sessions,
    });
    void worker.start();
  });

  afterAll(async () => {
    await worker?.stop();
    await sessions?.close();
    await app?.close();
    await target?.query(`DROP TABLE IF EXISTS ${table}`).catch(() => undefined);
    await target?.end();
    await Promise.all([llm?.close(), smtp?.close(), srv?.close(), portal?.close()]);
    await t?.close();
  });

  /** The fake model: a triage decision for triage prompts, an email reply otherwise (as JSON, which both ask for). */
  function answerLlm(req: FakeLlmRequest): { content: string } {
    const system = String(req.body?.messages?.[0]?.content ?? '');
    if (system.includes('triage')) {
      return { content: JSON.stringify({ queue: 'billing', priority: 'high', reason: 'denied claim appeal', usedDocuments: ['R-APPEAL'] }) };
    }
    return { content: JSON.stringify({ subject: 'Re: Order 1042', reply: 'Thanks for writing: your order ships tomorrow.' }) };
  }

  async function templateId(slug: string): Promise<string> {
    const res = await as.VIEWER.get('/v1/templates?limit=100');
    return res.body.items.find((i: Json) => i.slug === slug).id;
  }

  /** Instantiate with ADMIN (no integration missing), start a run with MEMBER, wait for its end. */
  async function runTemplate(slug: string, config: Json, input: Json): Promise<{ job: Job; workflowId: string }> {
    const made = await as.ADMIN.post(`/v1/templates/${await templateId(slug)}/instantiate`, { name: `${slug} ${randomBytes(3).toString('hex')}`, config });
    expect(made.status, JSON.stringify(made.body)).toBe(201);
    expect(made.body.missingIntegrations).toEqual([]);
    const run = await as.MEMBER.post(`/v1/workflows/${made.body.workflow.id}/runs`, { input });
    expect(run.status, JSON.stringify(run.body)).toBe(202);
    return { job: await waitForJob(t.db, orgId, run.body.jobId, 45_000), workflowId: made.body.workflow.id };
  }

  function expectCompleted(job: Job): void {
    expect(job.status, `${job.errorCode ?? ''} ${job.errorMessage ?? ''}`).toBe('COMPLETED');
  }

  it('draft an email reply: the model drafts, SMTP delivers it to the sender', async () => {
    const before = smtp.messages.length;
    const { job } = await runTemplate('draft-email-reply', { companyName: 'Acme Bakery' }, {
      email: { from: 'customer@example.org', subject: 'Order 1042', body: 'Where is my order?' },
    });
    expectCompleted(job);
    await smtp.waitFor(before + 1);
    const mail = smtp.messages[before]!;
    expect(mail.subject).toBe('Re: Order 1042');
    expect(mail.text?.trim()).toBe('Thanks for writing: your order ships tomorrow.');
    expect(smtp.envelopes[before]!.to).toEqual(['customer@example.org']);
    const request = llm.requests.at(-1)!;
    expect(request.body.model).toBe('gpt-4o-mini');
    expect(JSON.stringify(request.body.messages)).toContain('Where is my order?');
  });

  it.skipIf(!haveLocalPostgres)('nightly report: a read-only query of the local PostgreSQL mailed as JSON to the recipients', async () => {
    const before = smtp.messages.length;
    const { job } = await runTemplate(
      'nightly-report',
      { query: `select sku, sold from ${table} where sold > 50 order by sold desc`, recipients: ['ops@example.com', 'owner@example.com'], reportName: 'Sales' },
      {},
    );
    expectCompleted(job);
    expect(job.result).toMatchObject({ rows: 2, truncated: false });
    await smtp.waitFor(before + 1);
    const mail = smtp.messages[before]!;
    expect(mail.subject).toBe('Sales: 2 rows');
    expect(smtp.envelopes[before]!.to.sort()).toEqual(['ops@example.com', 'owner@example.com']);
    const attachment = mail.attachments.find((a) => a.filename === 'report.json')!;
    expect(JSON.parse(attachment.content.toString('utf8'))).toEqual([
      { sku: 'baguette', sold: 118 },
      { sku: 'croissant', sold: 75 },
    ]);
  });

  it('daily bakery orchestration: forecast, production, procurement, notification; a failed procurement undoes production', async () => {
    const config = { apiBaseUrl: `${srv.url}/bakery`, notifyUrl: `${srv.url}/chat/hook` };
    const ok = await runTemplate('daily-bakery-orchestration', config, { date: '2025-03-01' });
    expectCompleted(ok.job);
    expect(ok.job.result).toEqual({ date: '2025-03-01', productionPlanId: 'PP-1', purchaseOrderId: 'PO-1', products: 2 });
    const calls = received.filter((r) => r.path.startsWith('/bakery') || r.path.startsWith('/chat'));
    expect(calls.map((c) => `${c.method} ${c.path}`)).toEqual([
      'GET /bakery/forecast?date=2025-03-01',
      'POST /bakery/production-plans',
      'POST /bakery/purchase-orders',
      'POST /chat/hook',
    ]);
    expect(calls[1]!.body).toEqual({ date: '2025-03-01', items: [{ product: 'baguette', qty: 120 }, { product: 'croissant', qty: 80 }] });
    expect(calls[1]!.auth).toBe('Bearer bakery-token-1');
    expect(calls[3]!.body.text).toBe('Bakery plan for 2025-03-01: 2 products, production plan PP-1, purchase order PO-1.');

    received.length = 0;
    failOrders = true;
    try {
      const failed = await runTemplate('daily-bakery-orchestration', config, { date: '2025-03-02' });
      expect(failed.job).toMatchObject({ status: 'FAILED', errorStep: 'procurement' });
      expect(received.map((c) => `${c.method} ${c.path}`)).toEqual([
        'GET /bakery/forecast?date=2025-03-02',
        'POST /bakery/production-plans',
        'POST /bakery/purchase-orders',
        'DELETE /bakery/production-plans/PP-1',
      ]);
      const stream = await listStream(t.db, orgId, failed.job, { limit: 500 });
      expect(stream.filter((s) => s.kind === 'COMPENSATED').map((s) => (s.data as { compensation: string }).compensation)).toEqual(['cancel_production']);
    } finally {
      failOrders = false;
    }
  });

  it('webhook to CRM sync: the payload mapped, the contact upserted and a note added', async () => {
    received.length = 0;
    const { job } = await runTemplate(
      'webhook-to-crm-sync',
      { crmBaseUrl: `${srv.url}/crm`, emailField: 'customer.email', nameField: 'customer.name', companyField: 'customer.company', eventIdField: 'event' },
      { event: 'evt_77', customer: { email: ' Ada@Example.COM ', name: 'Ada', company: 'Analytical' } },
    );
    expectCompleted(job);
    expect(job.result).toEqual({ contactId: 'CT-9', email: 'ada@example.com', noteId: 'NT-1' });
    const [upsert, note] = received;
    expect(`${upsert!.method} ${upsert!.path}`).toBe('PUT /crm/contacts/ada%40example.com');
    expect(upsert!.body).toEqual({ email: 'ada@example.com', name: 'Ada', company: 'Analytical', source: 'webhook' });
    expect(upsert!.auth).toBe('Bearer crm-token-2');
    expect(note!.body.text).toBe('Event evt_77 from webhook');
  });

  it('approval-gated refund: waits for an approver decided through the API, then refunds', async () => {
    received.length = 0;
    const made = await as.ADMIN.post(`/v1/templates/${await templateId('approval-gated-refund')}/instantiate`, {
      name: 'refunds',
      config: { paymentsBaseUrl: `${srv.url}/pay`, currency: 'EUR' },
    });
    expect(made.status, JSON.stringify(made.body)).toBe(201);
    const run = await as.MEMBER.post(`/v1/workflows/${made.body.workflow.id}/runs`, { input: { orderId: 'O-5', amount: 19.5, reason: 'stale bread' } });
    await waitForStatus(t.db, orgId, run.body.jobId, 'WAITING');
    expect(received).toEqual([]);
    const pending = (await as.ADMIN.get('/v1/approvals?status=pending')).body.items.find((a: Json) => a.job.id === run.body.jobId);
    expect(pending.title).toBe('Refund 19.5 EUR for order O-5: stale bread');
    const decided = await as.ADMIN.post(`/v1/approvals/${pending.id}/decision`, { decision: 'approve', values: { note: 'goodwill' } });
    expect(decided.status, JSON.stringify(decided.body)).toBe(200);
    const job = await waitForJob(t.db, orgId, run.body.jobId);
    expectCompleted(job);
    expect(received).toHaveLength(1);
    expect(received[0]!.body).toEqual({ orderId: 'O-5', amount: 19.5, currency: 'EUR', note: 'goodwill' });
    expect(job.result).toMatchObject({ refundId: 'RF-7', amount: 19.5 });
  });

  it('document triage: rules retrieved from the knowledge API, the model decides, the cited rule is marked used', async () => {
    const docs = await as.ADMIN.post('/v1/knowledge/triage-rules/documents', {
      documents: [
        { externalId: 'R-APPEAL', type: 'rule', title: 'Denied claim appeals', text: 'Appeals of a denied claim go to billing with high priority.', condition: 'letter appeals a denied claim', action: 'queue billing, priority high', tags: ['billing'] },
        { externalId: 'R-RECORDS', type: 'rule', title: 'Medical records requests', text: 'Requests for medical records go to the clinical queue.', condition: 'records request', action: 'queue clinical', tags: ['clinical'] },
      ],
    });
    expect(docs.status, JSON.stringify(docs.body)).toBeLessThan(300);
    const { job } = await runTemplate(
      'document-triage',
      { collection: 'triage-rules', queues: ['billing', 'clinical'] },
      { document: { title: 'Appeal', text: 'We appeal the denied claim C-2 for member M-100.' } },
    );
    expectCompleted(job);
    expect(job.result).toMatchObject({ queue: 'billing', priority: 'high', rulesUsed: ['R-APPEAL'] });
    expect((job.result as { rulesRetrieved: number }).rulesRetrieved).toBeGreaterThanOrEqual(1);
    const prompt = JSON.stringify(llm.requests.at(-1)!.body.messages);
    expect(prompt).toContain('[R-APPEAL] Denied claim appeals');
    const retrievals = await as.VIEWER.get(`/v1/jobs/${job.id}/retrievals`);
    expect(retrievals.status, JSON.stringify(retrievals.body)).toBe(200);
    const [retrieval] = retrievals.body.items;
    expect(retrieval).toMatchObject({ stepPath: 'rules', collection: 'triage-rules' });
    // The rule the model cited is marked used (by the llm step), the other one retrieved but not.
    const marks = Object.fromEntries(retrieval.documents.map((d: Json) => [d.externalId, d.used]));
    expect(marks['R-APPEAL']).toBe(true);
    expect(Object.values(marks).filter(Boolean)).toHaveLength(1);
  });

  describe.skipIf(!haveChromium)('browser templates against the fixture portal', () => {
    const portalConfig = () => ({ portalOrigin: portal.url, resultTable: '#claims' });

    it('payer eligibility check: signs in with the stored login and returns the coverage table', async () => {
      const { job } = await runTemplate('payer-eligibility-check', portalConfig(), { memberId: 'M-100' });
      expectCompleted(job);
      expect(job.result).toMatchObject({ memberId: 'M-100', eligible: true });
      expect((job.result as { coverage: unknown[] }).coverage).toHaveLength(2);
    });

    it('claim status check: finds one claim\'s status in the member\'s claims', async () => {
      const { resultTable: _r, ...base } = portalConfig();
      const { job } = await runTemplate('claim-status-check', { ...base, statusColumn: 'column_4' }, { memberId: 'M-100', claimId: 'C-2' });
      expectCompleted(job);
      expect(job.result).toEqual({ claimId: 'C-2', found: true, status: 'open' });
    });
  });
});
