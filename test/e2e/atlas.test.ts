import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStepwise, type RunningStepwise } from '../helpers/atlas-server.js';
import { apiClient, CHROMIUM_PATH, createUserWithPassword, haveChromium, launchBrowser, newPage, screenshotDir, shoot, signIn, type ApiCall } from '../helpers/atlas-browser.js';
import { runCli } from '../helpers/cli.js';
import { backend } from '../helpers/db.js';
import { startTestServer, type TestServer } from '../helpers/http-server.js';

/**
 * Atlas end to end, in headless Chromium, against the service `npm start`
 * runs on PGlite (the README's way): one server, one browser, the steps of
 * the issue in order, sharing what the earlier ones made. Every page is
 * screenshotted into ATLAS_SCREENSHOT_DIR (or a temp directory, printed).
 */

const OPS = { email: 'ops@example.com', password: 'ops-password-0123', role: 'ADMIN', name: 'Ops' };
const VIEWER = { email: 'viewer@example.com', password: 'viewer-password-0123', role: 'VIEWER', name: 'Viewer' };
const FAILING_MEMBER = 'M-FAIL-7';
/** Waits without timing anything: generous, since CI runs this beside other files on two cores. */
const eventually = <T>(fn: () => T | Promise<T>, timeout = 15_000) => expect.poll(fn, { timeout, interval: 100 });

const TERMINAL = ['COMPLETED', 'PARTIAL_SUCCESS', 'FAILED', 'CANCELLED', 'TIMED_OUT'];

interface JobJson {
  id: string;
  status: string;
  runNumber: number;
  retryOfJobId: string | null;
  cancelRequestedAt: string | null;
}

/**
 * The "member portal" the browser step visits: /member/<id> has #eligible,
 * except the failing member's page while `mode` is 'absent'. In 'gated'
 * mode that page waits for release() before answering, so the test can see
 * the retried run RUNNING before it completes.
 */
function memberSite() {
  let mode: 'absent' | 'gated' = 'absent';
  let release!: () => void;
  let released = new Promise<void>((r) => (release = r));
  const page = (eligible: boolean) =>
    `<!doctype html><html><head><title>Member</title></head><body><h1>Member</h1>${eligible ? '<p id="eligible">Eligible</p>' : '<p>Checking…</p>'}</body></html>`;
  return {
    setMode(m: 'absent' | 'gated') {
      mode = m;
      released = new Promise<void>((r) => (release = r));
    },
    release: () => release(),
    handler(req: { url?: string }, res: import('node:http').ServerResponse): boolean {
      const m = /^\/member\/([A-Za-z0-9-]+)$/.exec(req.url ?? '');
      if (!m) return false;
      const send = (eligible: boolean) => res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(page(eligible));
      if (m[1] !== FAILING_MEMBER) send(true);
      else if (mode === 'absent') send(false);
      else void released.then(() => send(true));
      return true;
    },
  };
}

/** A page on another origin of the same site (another port of 127.0.0.1): the session cookie goes along. */
function crossOriginPage(target: string): string {
  return `<!doctype html><html><head><title>Elsewhere</title></head><body>
<form method="post" action="${target}"><input type="hidden" name="reason" value="csrf"><button type="submit">Cancel it</button></form>
</body></html>`;
}

if (backend === 'pglite' && !haveChromium) console.warn(`Atlas end-to-end test SKIPPED: no Chromium at ${CHROMIUM_PATH} (apt-get install chromium; CI installs it)`);

// Generous per-step time: CI runs this beside other files on two cores (no assertion is timed).
describe.runIf(backend === 'pglite' && haveChromium)('Atlas end to end (headless Chromium, npm start on PGlite)', { timeout: 120_000 }, () => {
  let scratch: string;
  let dataDir: string;
  let server: RunningStepwise;
  let browser: Browser;
  let site: TestServer;
  let elsewhere: TestServer;
  const member = memberSite();
  let shots: string;
  let owner: ApiCall;
  let otherOrg: ApiCall;
  let url: string;
  let crossTarget = '';
  const ids = { failed: '', retried: '', other: '', held: '', workflow: '' };
  let failedRunNumber = 0;
  let ops: { page: Page; errors: string[]; close: () => Promise<void> };

  beforeAll(async () => {
    const t0 = Date.now();
    scratch = await mkdtemp(join(tmpdir(), 'atlas-e2e-'));
    dataDir = join(scratch, 'data');
    // A second organization can only be made while no server holds the PGlite directory: both first, by the CLI.
    const orgs: { organizationId: string; apiKey: string }[] = [];
    for (const name of ['default', 'other']) {
      const r = await runCli(['org', 'create', '--name', name, '--plan', 'ENTERPRISE', '--data-dir', dataDir], {}, 120_000);
      if (r.code !== 0) throw new Error(`stepwise org create ${name}: ${r.stdout}\n${r.stderr}`);
      orgs.push(JSON.parse(r.stdout.trim().split('\n').pop()!));
    }
    const t1 = Date.now();
    site = await startTestServer((req, res) => member.handler(req, res));
    elsewhere = await startTestServer((req, res) => {
      if (req.url !== '/csrf') return false;
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(crossOriginPage(crossTarget));
      return true;
    });
    [server, browser, shots] = await Promise.all([
      startStepwise({ via: 'npm-start', dataDir, env: { STEPWISE_EGRESS_ALLOW: '127.0.0.1' }, timeoutMs: 220_000 }),
      launchBrowser(),
      screenshotDir(),
    ]);
    url = server.url;
    owner = apiClient(url, orgs[0]!.apiKey);
    otherOrg = apiClient(url, orgs[1]!.apiKey);
    ids.other = (await startOtherOrgRun(otherOrg)).jobId;
    console.log(`Atlas e2e: screenshots in ${shots} (setup: CLI ${((t1 - t0) / 1000).toFixed(1)} s, npm start ${((Date.now() - t1) / 1000).toFixed(1)} s)`);
  }, 240_000);

  afterAll(async () => {
    member.release();
    await ops?.close().catch(() => undefined);
    await browser?.close();
    await server?.stop();
    await site?.close();
    await elsewhere?.close();
    if (scratch) await rm(scratch, { recursive: true, force: true });
  }, 60_000);

  async function startOtherOrgRun(other: ApiCall) {
    const wf = await other<{ id: string }>('POST', '/v1/workflows', { name: 'other org', definition: { steps: [{ id: 'one', type: 'transform', expression: '1' }] } }, 201);
    return other<{ jobId: string }>('POST', `/v1/workflows/${wf.id}/runs`, { input: {} }, 202);
  }

  const job = (id: string) => owner<JobJson>('GET', `/v1/jobs/${id}`);
  const finished = async (id: string) => {
    await expect.poll(async () => TERMINAL.includes((await job(id)).status), { timeout: 60_000, interval: 250 }).toBe(true);
    return job(id);
  };
  const heading = (page: Page, name: string | RegExp) => page.getByRole('heading', { level: 1, name });

  it('sets up users, a second organization and runs through the API', async () => {
    await createUserWithPassword(url, owner, { email: OPS.email, role: OPS.role, name: OPS.name }, OPS.password);
    await createUserWithPassword(url, owner, { email: VIEWER.email, role: VIEWER.role, name: VIEWER.name }, VIEWER.password);

    const wf = await owner<{ id: string }>(
      'POST',
      '/v1/workflows',
      {
        name: 'member-check',
        definition: {
          searchKeys: ['input.memberId'],
          steps: [
            { id: 'prepare', type: 'transform', expression: 'input.memberId' },
            {
              id: 'portal',
              type: 'browser',
              allowOrigins: [site.url],
              // Long enough for the gated page; the element check itself fails fast.
              timeoutMs: 30_000,
              actions: [
                { type: 'navigate', url: `${site.url}/member/{{ input.memberId }}` },
                { type: 'waitForElement', selectors: [['#eligible']], timeout: 1_500 },
              ],
            },
          ],
        },
      },
      201,
    );
    ids.workflow = wf.id;
    const start = (memberId: string) => owner<{ jobId: string; runNumber: number }>('POST', `/v1/workflows/${wf.id}/runs`, { input: { memberId } }, 202);
    const ok1 = await start('M-1001');
    const bad = await start(FAILING_MEMBER);
    const ok2 = await start('M-1002');
    ids.failed = bad.jobId;
    failedRunNumber = bad.runNumber;

    const hold = await owner<{ id: string }>('POST', '/v1/workflows', { name: 'held', definition: { steps: [{ id: 'hold', type: 'wait', signal: 'go' }] } }, 201);
    ids.held = (await owner<{ jobId: string }>('POST', `/v1/workflows/${hold.id}/runs`, { input: {} }, 202)).jobId;

    expect((await finished(ok1.jobId)).status).toBe('COMPLETED');
    expect((await finished(ok2.jobId)).status).toBe('COMPLETED');
    const failed = await finished(bad.jobId);
    expect(failed.status).toBe('FAILED');
    const shotsOfFailed = await owner<{ items: { type: string }[] }>('GET', `/v1/jobs/${bad.jobId}/screenshots`);
    expect(shotsOfFailed.items.map((s) => s.type)).toContain('ERROR_SCREENSHOT');
  });

  it('signs in, finds the failed run by its memberId, and shows the failing step and its screenshot', async () => {
    ops = await newPage(browser);
    const { page } = ops;
    await page.goto(`${url}/runs`);
    await eventually(() => new URL(page.url()).pathname).toBe('/sign-in');
    await page.getByLabel('Email').waitFor();
    await shoot(page, shots, '01-sign-in');
    await signIn(page, url, OPS.email, OPS.password);
    await heading(page, 'Runs').waitFor();
    await page.getByRole('link', { name: `#${failedRunNumber}`, exact: true }).waitFor();
    await shoot(page, shots, '02-runs');

    await page.getByLabel('Business field').fill('input.memberId');
    await page.getByLabel('Value', { exact: true }).fill(FAILING_MEMBER);
    await page.getByRole('button', { name: 'Add field' }).click();
    await eventually(() => new URL(page.url()).searchParams.getAll('search')).toEqual([`input.memberId:${FAILING_MEMBER}`]);
    const table = page.getByRole('grid', { name: 'Runs' });
    // Only the failed run matches: its row, and no other run's link.
    await eventually(() => table.getByRole('link').allTextContents()).toEqual([`#${failedRunNumber}`]);
    await shoot(page, shots, '03-runs-by-member');

    await table.getByRole('link', { name: `#${failedRunNumber}`, exact: true }).click();
    await eventually(() => new URL(page.url()).pathname).toBe(`/runs/${ids.failed}`);
    // The failing step is selected on the timeline and says it failed.
    const stepButton = page.getByRole('button', { name: 'portal', exact: true });
    await stepButton.waitFor({ timeout: 15_000 });
    await eventually(() => stepButton.getAttribute('aria-pressed')).toBe('true');
    const stepRow = page.getByRole('row').filter({ has: stepButton });
    await eventually(() => stepRow.textContent()).toMatch(/failed/i);
    await shoot(page, shots, '04-inspector-failed');

    // Its failure screenshot: the marker on the timeline opens it, and the image really loads.
    await page.getByRole('button', { name: /^Screenshot .*of step portal/ }).first().click();
    const viewer = page.getByRole('dialog');
    const img = viewer.getByRole('img');
    await img.waitFor();
    await eventually(() => img.evaluate((el) => {
      // No DOM types in the test tsconfig: the element as the browser has it.
      const i = el as unknown as { complete: boolean; naturalWidth: number };
      return i.complete ? i.naturalWidth : 0;
    })).toBeGreaterThan(0);
    await shoot(page, shots, '05-inspector-screenshot');
    await viewer.getByRole('button', { name: 'Close' }).click();
    await eventually(() => viewer.count()).toBe(0);
    expect(ops.errors).toEqual([]);
  });

  it('retries from the failed step and watches the new run complete live', async () => {
    const { page } = ops;
    member.setMode('gated');
    // Set in this document: still there at the end means the page was never reloaded.
    await page.evaluate(() => ((globalThis as unknown as { atlasMark: string }).atlasMark = 'same document'));
    await page.getByRole('button', { name: /retry from (the )?failed step/i }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByRole('button', { name: /retry from (the )?failed step/i }).click();
    await eventually(() => new URL(page.url()).pathname).not.toBe(`/runs/${ids.failed}`);
    ids.retried = new URL(page.url()).pathname.split('/')[2]!;
    const retried = await job(ids.retried);
    expect(retried.retryOfJobId).toBe(ids.failed);

    // The portal holds its answer: the new run is running, and the page says so.
    await page.getByText('RUNNING', { exact: true }).first().waitFor({ timeout: 30_000 });
    expect((await job(ids.retried)).status).toBe('RUNNING');
    member.release();
    // …then turns COMPLETED by itself (server-sent events), with no reload.
    await page.getByText('COMPLETED', { exact: true }).first().waitFor({ timeout: 30_000 });
    expect(await page.evaluate(() => (globalThis as unknown as { atlasMark?: string }).atlasMark)).toBe('same document');
    expect((await job(ids.retried)).status).toBe('COMPLETED');
    // The stream tailed it to its last row.
    await page.getByRole('list', { name: 'Stream rows' }).getByText('JOB_COMPLETED', { exact: true }).waitFor({ timeout: 30_000 });
    await shoot(page, shots, '06-inspector-retried-completed');
    expect(ops.errors).toEqual([]);
  });

  it('shows a VIEWER no retry button and refuses the request when forced', async () => {
    const viewer = await newPage(browser);
    try {
      const { page } = viewer;
      await signIn(page, url, VIEWER.email, VIEWER.password, `/runs/${ids.failed}`);
      await page.getByText('FAILED', { exact: true }).first().waitFor({ timeout: 15_000 });
      await page.getByRole('button', { name: 'portal', exact: true }).waitFor();
      // The page has rendered the run (header and timeline): no retry control for a VIEWER.
      expect(await page.getByRole('button', { name: /retry/i }).count()).toBe(0);
      await shoot(page, shots, '07-inspector-viewer');
      const forced = await page.evaluate(async (id) => {
        const res = await fetch(`/v1/jobs/${id}/retry`, {
          method: 'POST',
          credentials: 'same-origin',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ from: 'failed-step' }),
        });
        return { status: res.status, body: (await res.json()) as { error: { code: string } } };
      }, ids.failed);
      expect(forced.status).toBe(403);
      expect(forced.body.error.code).toBe('FORBIDDEN');
      expect(viewer.errors).toEqual([]);
    } finally {
      await viewer.close();
    }
  });

  it('shows "not found" for another organization\'s run', async () => {
    const { page } = ops;
    // The run exists, in the other organization.
    expect((await otherOrg<JobJson>('GET', `/v1/jobs/${ids.other}`)).id).toBe(ids.other);
    await page.goto(`${url}/runs/${ids.other}`);
    const alert = page.getByRole('alert');
    await alert.waitFor({ timeout: 15_000 });
    expect(await alert.textContent()).toMatch(/not found/i);
    await shoot(page, shots, '08-inspector-other-org');
  });

  it('refuses a state-changing request from another origin of the same site', async () => {
    const { page } = ops;
    crossTarget = `${url}/v1/jobs/${ids.held}/cancel`;
    const before = await job(ids.held);
    expect(TERMINAL).not.toContain(before.status);
    await page.goto(`${elsewhere.url}/csrf`);
    const [response] = await Promise.all([page.waitForResponse((r) => r.url() === crossTarget), page.getByRole('button', { name: 'Cancel it' }).click()]);
    expect(response.status()).toBe(403);
    // The cookie went along (else 401): the origin check refused it.
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe('CROSS_ORIGIN_REQUEST');
    const after = await job(ids.held);
    expect(after.status).toBe(before.status);
    expect(after.cancelRequestedAt).toBeNull();
  });

  it('screenshots the workflows, analytics and settings pages', async () => {
    const { page } = ops;
    await page.goto(`${url}/workflows`);
    await heading(page, 'Workflows').waitFor({ timeout: 15_000 });
    await page.getByRole('link', { name: 'member-check' }).first().waitFor();
    await shoot(page, shots, '09-workflows');
    await page.getByRole('link', { name: 'member-check' }).first().click();
    await eventually(() => new URL(page.url()).pathname).toBe(`/workflows/${ids.workflow}`);
    await heading(page, /member-check/).waitFor({ timeout: 15_000 });
    await shoot(page, shots, '10-workflow');
    await page.goto(`${url}/analytics`);
    await heading(page, 'Analytics').waitFor({ timeout: 15_000 });
    await shoot(page, shots, '11-analytics');
    for (const tab of ['users', 'keys', 'credentials', 'retention', 'usage', 'audit']) {
      await page.goto(`${url}/settings/${tab}`);
      await heading(page, 'Settings').waitFor({ timeout: 15_000 });
      await eventually(() => page.getByRole('navigation', { name: 'Settings sections' }).locator('[aria-current="page"]').getAttribute('href')).toBe(`/settings/${tab}`);
      await shoot(page, shots, `12-settings-${tab}`);
    }
    expect(ops.errors).toEqual([]);
  });

  it('sends an expired session back to sign-in with a notice', async () => {
    // A second service on the same data directory (the first one gives it up), from the dist the
    // first one built, with a 2-second idle limit.
    const idleS = 2;
    await ops.close();
    await server.stop();
    const short = await startStepwise({ via: 'dist', dataDir, env: { STEPWISE_SESSION_IDLE_S: String(idleS) }, timeoutMs: 60_000 });
    const p = await newPage(browser);
    try {
      const { page } = p;
      let lastApiCall = Date.now();
      page.on('request', (r) => {
        if (new URL(r.url()).pathname.startsWith('/v1/')) lastApiCall = Date.now();
      });
      await signIn(page, short.url, OPS.email, OPS.password, '/settings/keys');
      await heading(page, 'Settings').waitFor({ timeout: 15_000 });
      // Wait until the page has left the server alone for longer than the idle limit…
      await expect.poll(() => Date.now() - lastApiCall, { timeout: 30_000, interval: 250 }).toBeGreaterThan(idleS * 1000 + 1000);
      // …then act: the next request finds the session expired, and the app goes to sign-in saying why.
      await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Workflows' }).click();
      await eventually(() => new URL(page.url()).pathname).toBe('/sign-in');
      await page.getByText(/session ended/i).waitFor();
      expect(new URL(page.url()).searchParams.get('next')).toBe('/workflows');
      await shoot(page, shots, '13-sign-in-session-ended');
    } finally {
      await p.close();
      await short.stop();
    }
  }, 120_000);
});
