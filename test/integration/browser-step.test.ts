import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defineWorkflow, startRuns } from '../../src/engine/index.js';
import { findScreenshot, listJobScreenshots, listStream, type Job, type StreamEntry } from '../../src/store/index.js';
import { client, createTestApp, expectError, type ApiClient } from '../helpers/api.js';
import { createTestDb, type TestDb } from '../helpers/db.js';
import { seedOrg, waitForJob } from '../helpers/fixtures.js';
import { haveChromium, startBrowserWorker, type BrowserWorker } from '../helpers/browser-worker.js';
import { PORTAL_PASSWORD, PORTAL_USER, startPortal, type Portal } from '../helpers/portal.js';

/**
 * Browser steps end to end on both backends: a worker with Chromium behind
 * the egress proxy runs workflows against the fixture payer portal.
 */
if (!haveChromium) console.warn('browser-step tests SKIPPED: no Chromium (apt-get install chromium; CI installs it)');

describe.skipIf(!haveChromium)('browser step', () => {
  let t: TestDb;
  let orgId: string;
  let portal: Portal;
  let bw: BrowserWorker;
  let app: FastifyInstance;
  let api: ApiClient;
  let key: string;

  beforeAll(async () => {
    t = await createTestDb();
    const org = await seedOrg(t.db);
    orgId = org.organizationId;
    portal = await startPortal();
    bw = startBrowserWorker(t.db, { egressAllow: `127.0.0.1:${new URL(portal.url).port}` });
    app = await createTestApp(t.db, bw.blobs, { keyRing: bw.keyRing });
    key = org.key;
    api = client(app, key);
  });

  afterAll(async () => {
    await app?.close();
    await bw?.stop();
    await portal?.close();
    await t?.close();
  });

  async function run(definition: unknown, input?: unknown): Promise<Job> {
    const wf = await defineWorkflow(t.db, orgId, { name: `browser ${Math.random()}`, definition });
    const [r] = await startRuns(t.db, orgId, wf.id, [{ input }]);
    return waitForJob(t.db, orgId, r!.id, 60_000);
  }

  const login = () => [
    { type: 'navigate', url: '{{ input.portal }}/login' },
    { type: 'change', selectors: [['#user']], value: PORTAL_USER },
    { type: 'change', selectors: [['#password']], value: PORTAL_PASSWORD },
    { type: 'click', selectors: [['#sign-in']], assertedEvents: [{ type: 'navigation', title: 'Home' }] },
  ];

  it('logs in, searches, extracts the results table and screenshots, with the session carried to a later step', async () => {
    const job = await run(
      {
        steps: [
          { id: 'login', type: 'browser', allowOrigins: [portal.url], actions: login() },
          {
            id: 'search',
            type: 'browser',
            allowOrigins: [portal.url],
            actions: [
              { type: 'navigate', url: '{{ input.portal }}/search' },
              { type: 'change', selectors: [['#member']], value: 'M-100' },
              { type: 'customStep', name: 'stepwise.select', parameters: { selectors: [['#plan']], label: 'PPO Silver' } },
              { type: 'keyDown', key: 'Enter' },
              { type: 'keyUp', key: 'Enter' },
              { type: 'waitForElement', selectors: [['#claims']] },
              { type: 'customStep', name: 'stepwise.extract', parameters: { output: 'claims', selectors: [['#claims']], as: 'table' } },
              { type: 'customStep', name: 'stepwise.screenshot', parameters: {} },
            ],
          },
        ],
      },
      { portal: portal.url },
    );
    expect(job.status, job.errorMessage ?? '').toBe('COMPLETED');
    const stream = await listStream(t.db, orgId, job, { limit: 500 });
    const completed = stream.filter((r) => r.kind === 'STEP_COMPLETED');
    expect(completed).toHaveLength(2);
    const output = (completed[1]!.data as { output: { extracted: { claims: unknown }; screenshots: string[]; title: string } }).output;
    expect(output.title).toBe('Results');
    expect(output.extracted.claims).toEqual([
      { Claim: 'C-1', Date: '2024-01-02', Amount: '$10.00', column_4: 'paid' },
      { Claim: 'C-2', Date: '2024-02-03', Amount: '$20.50', column_4: 'open' },
    ]);
    expect(output.screenshots).toHaveLength(1);
    const shot = await findScreenshot(t.db, orgId, output.screenshots[0]!);
    expect(shot?.contentType).toBe('image/png');
    expect(bw.sessions.openCount()).toBe(0);
    // Only the portal was asked for anything: Chromium's own calls (autofill asks Google about each
    // form) are switched off, so no refusal was logged.
    expect(stream.filter((r) => r.kind === 'LOG').map((r) => JSON.stringify(r.data))).not.toContainEqual(expect.stringContaining('refused'));
  });

  async function streamOf(job: Job): Promise<StreamEntry[]> {
    return listStream(t.db, orgId, job, { limit: 1000 });
  }

  it('retries a flaky page from the first action, and the output has each action\'s duration', async () => {
    const before = portal.hits.get('/flaky') ?? 0;
    const job = await run(
      {
        steps: [
          {
            id: 'flaky',
            type: 'browser',
            allowOrigins: [portal.url],
            retry: { maxAttempts: 3, initialMs: 10 },
            actions: [
              { type: 'navigate', url: `${portal.url}/flaky` },
              // The page says "Ready" from its second load on (counted across the file, hence the start below).
              { type: 'waitForElement', selectors: [['#ready']], timeout: 1_500 },
            ],
          },
        ],
      },
    );
    expect(job.status, job.errorMessage ?? '').toBe('COMPLETED');
    const stream = await streamOf(job);
    const failed = stream.filter((r) => r.kind === 'STEP_FAILED');
    expect(failed.length).toBe(before === 0 ? 1 : 0);
    if (failed.length > 0) {
      expect(failed[0]!.data).toMatchObject({ action: 1, type: 'waitForElement', selectors: [['#ready']], code: 'BROWSER_SELECTOR_NOT_FOUND' });
      // The failure screenshot is in the stream before the failure, and named by it.
      const shotRow = stream.find((r) => r.kind === 'SCREENSHOT' && r.seq < failed[0]!.seq);
      expect(shotRow?.data).toMatchObject({ type: 'ERROR_SCREENSHOT' });
      expect((failed[0]!.data as { screenshotId: string }).screenshotId).toBe((shotRow!.data as { screenshotId: string }).screenshotId);
    }
    const output = (stream.find((r) => r.kind === 'STEP_COMPLETED')!.data as { output: { durationsMs: number[] } }).output;
    expect(output.durationsMs).toHaveLength(2);
    expect(output.durationsMs.every((d) => typeof d === 'number' && d >= 0)).toBe(true);
  });

  it('never repeats a finished side-effecting action on a retry', async () => {
    const before = portal.claimsSubmitted();
    const job = await run({
      steps: [
        {
          id: 'submit',
          type: 'browser',
          allowOrigins: [portal.url],
          retry: { maxAttempts: 2, initialMs: 10 },
          actions: [
            { type: 'navigate', url: `${portal.url}/claims/new` },
            { type: 'click', selectors: [['#submit-claim']], sideEffect: true, assertedEvents: [{ type: 'navigation', title: 'Claim submitted' }] },
            // Never there: both attempts fail here.
            { type: 'waitForElement', selectors: [['#never']], timeout: 1_500 },
          ],
        },
      ],
    });
    expect(job.status).toBe('FAILED');
    expect(job.errorCode).toBe('BROWSER_SELECTOR_NOT_FOUND');
    expect(portal.claimsSubmitted() - before).toBe(1);
    const failed = (await streamOf(job)).filter((r) => r.kind === 'STEP_FAILED');
    expect(failed.map((r) => (r.data as { action: number }).action)).toEqual([2, 2]);
  });

  it('keeps a failed step\'s trace sealed, short-lived, and served as a zip by the API', async () => {
    const job = await run({
      steps: [
        {
          id: 'traced',
          type: 'browser',
          allowOrigins: [portal.url],
          trace: 'onFailure',
          actions: [
            { type: 'navigate', url: `${portal.url}/search` },
            { type: 'change', selectors: [['#member']], value: 'M-TRACE-7' },
            { type: 'click', selectors: [['#missing']], timeout: 1_500 },
          ],
        },
      ],
    });
    expect(job.status).toBe('FAILED');
    const artifacts = (await listJobScreenshots(t.db, orgId, job.id)).filter((s) => s.type === 'ARTIFACT');
    expect(artifacts).toHaveLength(1);
    const trace = artifacts[0]!;
    expect(trace.contentType).toBe('application/vnd.stepwise.sealed-trace');
    expect(trace.retainUntil!.getTime() - trace.capturedAt.getTime()).toBeLessThanOrEqual(7 * 24 * 3600 * 1000);
    const stored = await bw.blobs.get(trace.blobKey);
    expect(stored.subarray(0, 2).toString('latin1')).not.toBe('PK');
    expect(stored.includes(Buffer.from('M-TRACE-7'))).toBe(false);
    const got = await app.inject({ method: 'GET', url: `/v1/screenshots/${trace.id}`, headers: { authorization: `Bearer ${key}` } });
    expect(got.statusCode).toBe(200);
    expect(got.headers['content-type']).toBe('application/zip');
    const zip = got.rawPayload;
    expect(zip.subarray(0, 2).toString('latin1')).toBe('PK');
    // Playwright's trace holds the typed value: which is why it is sealed at rest.
    expect(zip.length).toBeGreaterThan(1000);
    const url = await api.get(`/v1/screenshots/${trace.id}/url`);
    expect(url.body.url).toBeNull();
  });

  it('refuses a trace on a step that fills in credentials, and the other invalid definitions, naming the field', async () => {
    const base = { id: 'b', type: 'browser', allowOrigins: [portal.url] };
    const cases: [unknown, string][] = [
      [{ ...base, trace: 'always', actions: [{ type: 'change', selectors: [['#p']], value: '{{ credentials.portal.password }}' }] }, '/steps/0/trace'],
      [{ ...base, actions: [{ type: 'click', selectors: [['#x']], verify: [['#y']] }] }, '/steps/0/actions/0/verify'],
      [{ ...base, allowOrigins: ['file:///etc'], actions: [{ type: 'navigate', url: 'https://a.example' }] }, '/steps/0/allowOrigins/0'],
    ];
    for (const [step, path] of cases) {
      const res = await api.post('/v1/workflows', { name: `bad ${path}`, definition: { steps: [step] } });
      const err = expectError(res, 400, 'VALIDATION');
      expect(err.details.path ?? err.message).toContain(path);
    }
  });
});
