import { mkdtempSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FsBlobStore } from '../../src/blob/index.js';
import { EgressProxy } from '../../src/browser/egress-proxy.js';
import { BrowserPool } from '../../src/browser/pool.js';
import { WorkerBrowserSessions } from '../../src/browser/sessions.js';
import { defineWorkflow, startRuns, Worker } from '../../src/engine/index.js';
import { sendSignal } from '../../src/engine/control.js';
import { EgressPolicy } from '../../src/net/address-policy.js';
import { createCredential, credentialResolver } from '../../src/security/credentials.js';
import { generateKeyEntry, parseKeyRing } from '../../src/security/crypto.js';
import { keyRingSealer } from '../../src/security/sealer.js';
import { findScreenshot, listStream, type Job, type StreamEntry } from '../../src/store/index.js';
import { CHROMIUM, haveChromium } from '../helpers/browser-worker.js';
import { createTestDb, type TestDb } from '../helpers/db.js';
import { seedOrg, silentLogger, waitForJob, waitForStatus, workerConfig } from '../helpers/fixtures.js';
import { decodePng } from '../helpers/png-decode.js';
import { startCountingServer } from '../helpers/egress.js';
import { FORBIDDEN_URL, PORTAL_USER, startPortal, type Portal } from '../helpers/portal.js';

/**
 * What a browser step must never do, end to end through real workflows on
 * one worker (Chromium behind the egress proxy, sealed state, credentials
 * opened from the real store): keep a credential or a session cookie
 * anywhere readable, reach an address the policy refuses (another loopback
 * port, the metadata address, file:, names for loopback) by navigation,
 * redirect, subresource or websocket, or share cookies between jobs. Plus
 * the record a failed action leaves, and masked, deduplicated screenshots.
 */
if (!haveChromium) console.warn('browser-security tests SKIPPED: no Chromium (apt-get install chromium; CI installs it)');

/** The portal's password, kept in a credential: distinctive, with characters URL-encoding changes. */
const SECRET = 'Kx9 Quokka&Zebra/7731!';

/** A TCP server on 127.0.0.1 that must never be reached: counts connections (and answers HTTP, so a leak would look like success). */
interface Guard {
  port: number;
  origin: string;
  connections: () => number;
  close(): Promise<void>;
}

async function startGuard(): Promise<Guard> {
  const server = await startCountingServer((socket) =>
    socket.end('HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: 27\r\nconnection: close\r\n\r\n<title>Guard reached</title>'),
  );
  return { ...server, origin: `http://127.0.0.1:${server.port}` };
}

/** The forms a secret could be stored in: as is, URL- and form-encoded, JSON-escaped, hex (a bytea as text), base64 at each alignment. */
function forms(secret: string): string[] {
  const out = new Set<string>([secret, encodeURIComponent(secret), new URLSearchParams({ s: secret }).toString().slice(2), JSON.stringify(secret).slice(1, -1)]);
  out.add(Buffer.from(secret, 'utf8').toString('hex'));
  for (let shift = 0; shift < 3; shift++) {
    // The characters of base64(prefix + secret) that depend on the secret alone.
    const encoded = Buffer.concat([Buffer.alloc(shift, 0x20), Buffer.from(secret, 'utf8')]).toString('base64');
    const from = Math.ceil((shift * 4) / 3) + 1;
    const core = encoded.slice(from, encoded.length - 4);
    if (core.length >= 12) {
      out.add(core);
      out.add(core.replace(/\+/g, '-').replace(/\//g, '_'));
    }
  }
  return [...out];
}

describe.skipIf(!haveChromium)('browser step security', () => {
  let t: TestDb;
  let orgA: string;
  let orgB: string;
  let portal: Portal;
  let portalPort: number;
  let guard: Guard;
  let worker: Worker;
  let sessions: WorkerBrowserSessions;
  let blobs: FsBlobStore;
  let blobDir: string;
  const keyRing = parseKeyRing(generateKeyEntry());
  const sealer = keyRingSealer(keyRing);

  beforeAll(async () => {
    t = await createTestDb();
    orgA = (await seedOrg(t.db, 'Org A')).organizationId;
    orgB = (await seedOrg(t.db, 'Org B')).organizationId;
    portal = await startPortal({ password: SECRET });
    portalPort = Number(new URL(portal.url).port);
    guard = await startGuard();
    await createCredential(t.db, keyRing, orgA, { provider: 'payer-portal', name: 'portal', secret: { user: PORTAL_USER, password: SECRET } }, { actor: 'cli:test' });
    // test/helpers/browser-worker.ts's worker, plus the credential store (it takes none).
    blobDir = mkdtempSync(join(tmpdir(), 'stepwise-browser-security-'));
    blobs = new FsBlobStore(blobDir);
    sessions = new WorkerBrowserSessions({
      runtime: () => Promise.resolve(new BrowserPool({ executablePath: CHROMIUM, maxContexts: 4 })),
      // Only the portal's port on loopback: the guard's port, other loopback names and the metadata address stay refused.
      proxy: () => EgressProxy.start({ policy: new EgressPolicy(`127.0.0.1:${portalPort}`) }),
    });
    worker = new Worker(t.db, workerConfig({ stepTimeoutMs: 60_000 }), silentLogger, 'browser-security', {
      blobs,
      sealer,
      browser: sessions,
      credentials: credentialResolver(t.db, keyRing),
    });
    void worker.start();
  });

  afterAll(async () => {
    await worker?.stop();
    await sessions?.close();
    await blobs?.close();
    await guard?.close();
    await portal?.close();
    await t?.close();
  });

  async function start(org: string, definition: unknown, input: Record<string, unknown> = {}): Promise<string> {
    const wf = await defineWorkflow(t.db, org, { name: `security ${Math.random()}`, definition });
    const [r] = await startRuns(t.db, org, wf.id, [{ input: { portal: portal.url, ...input } }]);
    return r!.id;
  }

  async function finished(org: string, jobId: string): Promise<{ job: Job; stream: StreamEntry[] }> {
    const job = await waitForJob(t.db, org, jobId, 60_000);
    const stream = await listStream(t.db, org, job, { limit: 1000 });
    return { job, stream };
  }

  async function run(org: string, definition: unknown, input?: Record<string, unknown>): Promise<{ job: Job; stream: StreamEntry[] }> {
    return finished(org, await start(org, definition, input));
  }

  /** One browser step (id `b`) doing `actions` with these allowed origins. */
  const browser = (actions: unknown[], allowOrigins: string[] = [portal.url], extra: Record<string, unknown> = {}) => ({
    steps: [{ id: 'b', type: 'browser', allowOrigins, actions, ...extra }],
  });

  const loginWithCredential = () => [
    { type: 'navigate', url: '{{ input.portal }}/login' },
    { type: 'change', selectors: [['#user']], value: '{{ credentials.portal.user }}' },
    { type: 'change', selectors: [['#password']], value: '{{ credentials.portal.password }}' },
    { type: 'click', selectors: [['#sign-in']], assertedEvents: [{ type: 'navigation', title: 'Home' }] },
  ];

  const stepFailed = (stream: StreamEntry[]) => stream.find((r) => r.kind === 'STEP_FAILED')?.data as Record<string, unknown> | undefined;
  const stepOutput = (stream: StreamEntry[], index: number) =>
    (stream.filter((r) => r.kind === 'STEP_COMPLETED')[index]?.data as { output: { url: string; title: string; extracted: Record<string, unknown>; screenshots: string[] } } | undefined)?.output;
  const warnings = (stream: StreamEntry[]) => stream.filter((r) => r.kind === 'LOG' && r.level === 'WARN');

  /** Every row of every table outside the system schemas, as text (`SELECT t::text`), by table. */
  async function dumpDatabase(): Promise<Map<string, string[]>> {
    const { rows: tables } = await t.db.query<{ schema: string; name: string }>(
      `SELECT n.nspname AS schema, c.relname AS name
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p', 'm')
          AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
        ORDER BY 1, 2`,
    );
    const dump = new Map<string, string[]>();
    for (const { schema, name } of tables) {
      const quoted = `"${schema.replace(/"/g, '""')}"."${name.replace(/"/g, '""')}"`;
      const { rows } = await t.db.query<{ row: string }>(`SELECT t::text AS row FROM ${quoted} t`);
      dump.set(`${schema}.${name}`, rows.map((r) => r.row));
    }
    return dump;
  }

  /** Every file under the blob directory: path and bytes. */
  async function blobFiles(dir = blobDir): Promise<{ path: string; bytes: Buffer }[]> {
    const out: { path: string; bytes: Buffer }[] = [];
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) out.push(...(await blobFiles(path)));
      else if (entry.isFile()) out.push({ path, bytes: await readFile(path) });
    }
    return out;
  }

  /** The blob keys of the jobs' screenshots (identical screenshots share one). */
  async function storedBlobsOf(jobIds: string[]): Promise<string[]> {
    const { rows } = await t.db.query<{ blob_key: string }>('SELECT DISTINCT blob_key FROM stepwise.execution_screenshots WHERE job_id = ANY($1::uuid[]) ORDER BY 1', [jobIds]);
    return rows.map((r) => r.blob_key);
  }

  /** Where any form of any secret occurs: `table: row` in the database, `file` in the blob directory. */
  function occurrences(dump: Map<string, string[]>, files: { path: string; bytes: Buffer }[], secrets: string[]): string[] {
    const needles = secrets.flatMap(forms);
    const found: string[] = [];
    for (const [table, rows] of dump) {
      for (const row of rows) for (const n of needles) if (row.includes(n)) found.push(`${table}: ${n} in ${row.slice(0, 300)}`);
    }
    for (const f of files) {
      const text = f.bytes.toString('utf8');
      for (const n of needles) if (f.bytes.includes(Buffer.from(n, 'utf8')) || text.includes(n)) found.push(`${f.path}: ${n}`);
    }
    return found;
  }

  /** The secrets: the password, and every session id the portal issued (there must be some, or the check proves nothing). */
  function secrets(): string[] {
    const sids = portal.issuedSessions();
    expect(sids.length).toBeGreaterThan(0);
    return [SECRET, ...sids];
  }

  describe('credential secrecy', () => {
    it('keeps the password and the session cookie out of every table and blob: while waiting between browser steps, after a failed action and after success', async () => {
      // 1. Suspended (waiting for a signal) between two browser steps of one session: the sealed state must be in the checkpoint, and nothing else.
      const waitingId = await start(orgA, {
        steps: [
          { id: 'login', type: 'browser', allowOrigins: [portal.url], screenshots: 'eachAction', actions: loginWithCredential() },
          { id: 'pause', type: 'wait', signal: 'go' },
          {
            id: 'after',
            type: 'browser',
            allowOrigins: [portal.url],
            screenshots: 'eachAction',
            actions: [
              { type: 'navigate', url: '{{ input.portal }}/home' },
              { type: 'customStep', name: 'stepwise.extract', parameters: { output: 'welcome', selectors: [['#welcome']] } },
            ],
          },
        ],
      });
      // 2. A failed action after the login: its value is the password, on a selector that is not there.
      const failedId = await start(orgA, {
        steps: [
          {
            id: 'login',
            type: 'browser',
            allowOrigins: [portal.url],
            screenshots: 'eachAction',
            actions: [
              ...loginWithCredential(),
              { type: 'change', selectors: [['#nope'], ['aria/Nothing here']], value: '{{ credentials.portal.password }}', timeout: 1_000 },
            ],
          },
        ],
      });
      // 3. Success, with a screenshot after every action.
      const okId = await start(orgA, browser([...loginWithCredential(), { type: 'navigate', url: '{{ input.portal }}/home' }], [portal.url], { screenshots: 'eachAction' }));
      const [failed, ok] = await Promise.all([finished(orgA, failedId), finished(orgA, okId), waitForStatus(t.db, orgA, waitingId, 'WAITING', 60_000)]);
      expect(failed.job.status).toBe('FAILED');
      expect(failed.job.errorCode).toBe('BROWSER_SELECTOR_NOT_FOUND');
      expect(ok.job.status, ok.job.errorMessage ?? '').toBe('COMPLETED');

      // While the first job waits: three logins, three session ids.
      const sids = portal.issuedSessions();
      expect(sids).toHaveLength(3);
      const waitingDump = await dumpDatabase();
      const waitingFiles = await blobFiles();
      const { rows: checkpoint } = await t.db.query<{ carried: Record<string, unknown> | null; text: string }>(
        'SELECT c.carried, c::text AS text FROM stepwise.execution_checkpoints c WHERE c.job_id = $1',
        [waitingId],
      );
      expect(checkpoint).toHaveLength(1);
      const sealed = checkpoint[0]!.carried?.['browser:default'];
      expect(typeof sealed, 'the sealed session state is in the checkpoint while the job waits').toBe('string');
      // Not readable: no JSON inside, no cookie names or values.
      expect(() => JSON.parse(Buffer.from((sealed as string).split('.').at(-1)!, 'base64url').toString('utf8'))).toThrow();
      expect(checkpoint[0]!.text).not.toMatch(/cookies|"sid"|sessionStorage|localStorage/);
      // …yet it is the session: it opens (for this organization and session only) to a cookie the portal issued.
      const opened = sealer.open(sealed as string, `browser-state:${orgA}:default`) as { storage: { cookies: { name: string; value: string }[] } };
      expect(sids).toContain(opened.storage.cookies.find((c) => c.name === 'sid')?.value);
      expect(() => sealer.open(sealed as string, `browser-state:${orgB}:default`)).toThrow();
      // The scan sees what it should: rows of every table, the checkpoint among them, and the screenshots as files.
      expect([...waitingDump.values()].flat().some((row) => row.includes('browser:default'))).toBe(true);
      expect(waitingDump.get('stepwise.credentials')?.length).toBe(1);
      const keys = await storedBlobsOf([waitingId, failedId, okId]);
      expect(keys.length).toBeGreaterThanOrEqual(4);
      for (const key of keys) expect(waitingFiles.map((f) => f.path)).toContain(join(blobDir, key));
      expect(occurrences(waitingDump, waitingFiles, [SECRET, ...sids])).toEqual([]);

      await sendSignal(t.db, orgA, waitingId, 'go', null);
      const resumed = await finished(orgA, waitingId);
      expect(resumed.job.status, resumed.job.errorMessage ?? '').toBe('COMPLETED');
      // The restored session was still logged in.
      expect(stepOutput(resumed.stream, 2)?.extracted.welcome).toBe(`Welcome, ${PORTAL_USER}`);
      const eachAction = await t.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM stepwise.execution_screenshots WHERE job_id = $1 AND type = 'SCREENSHOT'`, [waitingId]);
      expect(eachAction.rows[0]!.n).toBe(6);

      // Afterwards: none of the session ids, nor the password, anywhere.
      const all = secrets();
      expect(all).toHaveLength(4);
      const dump = await dumpDatabase();
      const files = await blobFiles();
      for (const key of await storedBlobsOf([waitingId, failedId, okId])) expect(files.map((f) => f.path)).toContain(join(blobDir, key));
      expect(occurrences(dump, files, all)).toEqual([]);
      // The credential was opened through the store each time (audited), which is what the scan had to beat.
      const uses = await t.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM stepwise.credential_audit_log WHERE organization_id = $1 AND action = 'USE'`, [orgA]);
      expect(uses.rows[0]!.n).toBeGreaterThanOrEqual(3);
    });
  });

  describe('a failed action', () => {
    it('records the failure screenshot and the action, its selectors and the screenshot id on STEP_FAILED', async () => {
      const { job, stream } = await run(
        orgA,
        browser([
          { type: 'navigate', url: '{{ input.portal }}/text' },
          { type: 'click', selectors: [['#missing-button'], ['aria/Missing']], timeout: 1_000 },
        ]),
      );
      expect(job.status).toBe('FAILED');
      expect(job.errorCode).toBe('BROWSER_SELECTOR_NOT_FOUND');
      const failure = stepFailed(stream)!;
      expect(failure).toMatchObject({ code: 'BROWSER_SELECTOR_NOT_FOUND', action: 1, type: 'click', selectors: [['#missing-button'], ['aria/Missing']] });
      expect(typeof failure.screenshotId).toBe('string');
      const shotRow = stream.find((r) => r.kind === 'SCREENSHOT');
      expect(shotRow?.data).toMatchObject({ screenshotId: failure.screenshotId, type: 'ERROR_SCREENSHOT', contentType: 'image/png' });
      expect(shotRow!.seq).toBeLessThan(stream.find((r) => r.kind === 'STEP_FAILED')!.seq);
      const shot = await findScreenshot(t.db, orgA, failure.screenshotId as string);
      expect(shot).toMatchObject({ type: 'ERROR_SCREENSHOT', jobId: job.id, contentType: 'image/png' });
      expect(decodePng(await blobs.get(shot!.blobKey)).width).toBeGreaterThan(0);
    });
  });

  describe('egress refusals', () => {
    it('refuses navigation to another loopback port (by policy and by allowOrigins), also through a redirect and via 0.0.0.0, never reaching it', async () => {
      const [byPolicy, notAllowed, redirected, unspecified] = await Promise.all([
        run(orgA, browser([{ type: 'navigate', url: `${guard.origin}/by-policy` }], [portal.url, guard.origin])),
        run(orgA, browser([{ type: 'navigate', url: `${guard.origin}/not-allowed` }])),
        run(orgA, browser([{ type: 'navigate', url: `{{ input.portal }}/redirect?to=${encodeURIComponent(`${guard.origin}/redirected`)}` }], [portal.url, guard.origin])),
        run(orgA, browser([{ type: 'navigate', url: `http://0.0.0.0:${guard.port}/unspecified` }], [portal.url, `http://0.0.0.0:${guard.port}`])),
      ]);
      for (const { job } of [byPolicy, notAllowed, redirected, unspecified]) {
        expect(job.status).toBe('FAILED');
        expect(job.errorCode, job.errorMessage ?? '').toBe('EGRESS_DENIED');
      }
      expect(stepFailed(byPolicy.stream)?.refused).toContainEqual(expect.objectContaining({ host: '127.0.0.1', reason: 'loopback' }));
      expect(stepFailed(notAllowed.stream)?.refused).toContainEqual(expect.objectContaining({ host: '127.0.0.1', reason: 'not-allowed' }));
      expect(stepFailed(redirected.stream)?.refused).toContainEqual(expect.objectContaining({ host: '127.0.0.1', reason: 'loopback' }));
      expect(stepFailed(unspecified.stream)?.refused).toContainEqual(expect.objectContaining({ host: '0.0.0.0', reason: 'unspecified' }));
      expect(byPolicy.job.errorMessage).toContain('127.0.0.1');
      expect(portal.hits.get('/redirect')).toBeGreaterThanOrEqual(1);
      expect(guard.connections()).toBe(0);
    });

    it('refuses the redirect to the metadata address, whether or not allowOrigins names it', async () => {
      const metadata = new URL(FORBIDDEN_URL).origin;
      const [unlisted, listed] = await Promise.all([
        run(orgA, browser([{ type: 'navigate', url: '{{ input.portal }}/escape' }])),
        run(orgA, browser([{ type: 'navigate', url: '{{ input.portal }}/escape' }], [portal.url, metadata])),
      ]);
      for (const { job } of [unlisted, listed]) {
        expect(job.status).toBe('FAILED');
        expect(job.errorCode, job.errorMessage ?? '').toBe('EGRESS_DENIED');
        expect(job.errorMessage).toContain('169.254.169.254');
      }
      expect(stepFailed(unlisted.stream)?.refused).toContainEqual(expect.objectContaining({ host: '169.254.169.254', reason: 'not-allowed' }));
      expect(stepFailed(listed.stream)?.refused).toContainEqual(expect.objectContaining({ host: '169.254.169.254', reason: 'metadata' }));
    });

    it('refuses subresources (an image and a fetch) to a refused host: the step completes, logs a WARN naming the host, and the guard gets nothing', async () => {
      const target = `${guard.origin}/pixel.png`;
      const actions = [
        { type: 'navigate', url: `{{ input.portal }}/leaky?target=${encodeURIComponent(target)}` },
        { type: 'waitForElement', selectors: [['#done']], timeout: 15_000 },
        { type: 'customStep', name: 'stepwise.extract', parameters: { output: 'done', selectors: [['#done']] } },
      ];
      const [listed, unlisted] = await Promise.all([run(orgA, browser(actions, [portal.url, guard.origin])), run(orgA, browser(actions))]);
      for (const [{ job, stream }, reason] of [
        [listed, 'loopback'],
        [unlisted, 'not-allowed'],
      ] as const) {
        expect(job.status, job.errorMessage ?? '').toBe('COMPLETED');
        // The image failed; the fetch's outcome says nothing (an opaque answer to no-cors is not the guard's): the guard's count is what does.
        expect(stepOutput(stream, 0)?.extracted.done).toMatch(/^error; /);
        const warned = warnings(stream);
        expect(warned.length).toBeGreaterThanOrEqual(1);
        expect(warned.map((w) => w.message).join('\n')).toContain(`127.0.0.1 (${reason})`);
        const refused = warned.flatMap((w) => (w.data as { refused: { host: string; reason: string; url?: string }[] }).refused);
        expect(refused).toContainEqual(expect.objectContaining({ host: '127.0.0.1', reason, url: target }));
      }
      expect(guard.connections()).toBe(0);
    });

    it('refuses a websocket to a refused host (plain ws and wss), and the guard gets nothing', async () => {
      const go = (target: string, allowOrigins: string[]) =>
        run(
          orgA,
          browser(
            [
              { type: 'navigate', url: `{{ input.portal }}/ws-leak?target=${encodeURIComponent(target)}` },
              { type: 'waitForElement', selectors: [['#done']], timeout: 15_000 },
              { type: 'customStep', name: 'stepwise.extract', parameters: { output: 'done', selectors: [['#done']] } },
            ],
            allowOrigins,
          ),
        );
      const [ws, wss, unlisted] = await Promise.all([
        // An allowed origin names host and port (the step's schema takes http and https only); ws and wss reach it by CONNECT.
        go(`ws://127.0.0.1:${guard.port}/`, [portal.url, `http://127.0.0.1:${guard.port}`]),
        go(`wss://127.0.0.1:${guard.port}/`, [portal.url, `https://127.0.0.1:${guard.port}`]),
        go(`ws://127.0.0.1:${guard.port}/`, [portal.url]),
      ]);
      for (const [{ job, stream }, reason] of [
        [ws, 'loopback'],
        [wss, 'loopback'],
        [unlisted, 'not-allowed'],
      ] as const) {
        expect(job.status, job.errorMessage ?? '').toBe('COMPLETED');
        expect(stepOutput(stream, 0)?.extracted.done).not.toBe('open');
        const refused = warnings(stream).flatMap((w) => (w.data as { refused: { host: string; reason: string }[] }).refused);
        expect(refused).toContainEqual(expect.objectContaining({ host: '127.0.0.1', reason }));
      }
      expect(guard.connections()).toBe(0);
    });

    it('refuses file: URLs, typed or through a redirect, and reads nothing', async () => {
      const [typed, upper, redirected] = await Promise.all([
        run(orgA, browser([{ type: 'navigate', url: 'file:///etc/passwd' }])),
        run(orgA, browser([{ type: 'navigate', url: '{{ input.portal }}/home' }, { type: 'navigate', url: 'FILE://localhost/etc/passwd' }])),
        run(
          orgA,
          browser([
            { type: 'navigate', url: `{{ input.portal }}/redirect?to=${encodeURIComponent('file:///etc/passwd')}` },
            { type: 'customStep', name: 'stepwise.extract', parameters: { output: 'page', selectors: [['body']] } },
          ]),
        ),
      ]);
      for (const { job, stream } of [typed, upper]) {
        expect(job.status).toBe('FAILED');
        expect(job.errorCode, job.errorMessage ?? '').toBe('BROWSER_URL_REFUSED');
        expect(stepFailed(stream)).toMatchObject({ code: 'BROWSER_URL_REFUSED' });
      }
      // Chromium itself refuses an http page's redirect to file: (ERR_UNSAFE_REDIRECT).
      expect(redirected.job.status).toBe('FAILED');
      expect(stepOutput(redirected.stream, 0)).toBeUndefined();
      for (const { job, stream } of [typed, upper, redirected]) {
        const text = JSON.stringify({ job, stream });
        expect(text).not.toMatch(/root:[^:]*:0:0/);
      }
    });

    it('refuses names for loopback (localhost, foo.localhost) even on the allowlisted port', async () => {
      const go = (origin: string, path: string) => run(orgA, browser([{ type: 'navigate', url: `${origin}${path}` }], [portal.url, origin]));
      const [localhost, sub] = await Promise.all([
        go(`http://localhost:${portalPort}`, '/via-localhost'),
        go(`http://foo.localhost:${portalPort}`, '/via-foo-localhost'),
      ]);
      for (const [{ job, stream }, host] of [
        [localhost, 'localhost'],
        [sub, 'foo.localhost'],
      ] as const) {
        expect(job.status).toBe('FAILED');
        expect(job.errorCode, job.errorMessage ?? '').toBe('EGRESS_DENIED');
        expect(stepFailed(stream)?.refused).toContainEqual(expect.objectContaining({ host, reason: 'loopback' }));
      }
      expect(portal.hits.get('/via-localhost')).toBeUndefined();
      expect(portal.hits.get('/via-foo-localhost')).toBeUndefined();
    });
  });

  describe('cookie isolation', () => {
    it('never shares cookies between organizations, nor between two jobs of one organization, while they run at once', async () => {
      // Job 1 (org A) logs in, then its second step's page is held by the portal while the others run.
      const holder = await start(orgA, {
        steps: [
          { id: 'login', type: 'browser', allowOrigins: [portal.url], actions: loginWithCredential() },
          {
            id: 'hold',
            type: 'browser',
            allowOrigins: [portal.url],
            actions: [
              { type: 'navigate', url: '{{ input.portal }}/hold?key=isolation', timeout: 50_000 },
              { type: 'navigate', url: '{{ input.portal }}/home' },
            ],
          },
        ],
      });
      await portal.held('isolation');
      const visitor = browser([{ type: 'navigate', url: '{{ input.portal }}/home' }]);
      const [otherOrg, sameOrg] = await Promise.all([run(orgB, visitor), run(orgA, visitor)]);
      portal.release('isolation');
      const held = await finished(orgA, holder);

      expect(held.job.status, held.job.errorMessage ?? '').toBe('COMPLETED');
      expect(stepOutput(held.stream, 1)?.title).toBe('Home');
      for (const { job, stream } of [otherOrg, sameOrg]) {
        expect(job.status, job.errorMessage ?? '').toBe('COMPLETED');
        expect(stepOutput(stream, 0)).toMatchObject({ title: 'Sign in', url: `${portal.url}/login` });
      }
      // They did overlap: both visitors ran inside the holder's logged-in second step.
      const holdStarted = held.stream.find((r) => r.kind === 'STEP_STARTED' && r.message === 'hold')!.ts.getTime();
      const holdDone = held.stream.find((r) => r.kind === 'STEP_COMPLETED' && r.stepIndex === 1)!.ts.getTime();
      for (const { stream } of [otherOrg, sameOrg]) {
        const started = stream.find((r) => r.kind === 'STEP_STARTED')!.ts.getTime();
        const done = stream.find((r) => r.kind === 'STEP_COMPLETED')!.ts.getTime();
        expect(started).toBeGreaterThanOrEqual(holdStarted);
        expect(done).toBeLessThanOrEqual(holdDone);
      }
      expect(sessions.openCount()).toBe(0);
    });
  });

  describe('masked screenshots', () => {
    it('paints the mask over the box and stores two identical masked screenshots of one job once', async () => {
      const masked = { type: 'customStep', name: 'stepwise.screenshot', parameters: { mask: [['#ssn']] } };
      const { job, stream } = await run(
        orgB,
        browser([{ type: 'navigate', url: '{{ input.portal }}/masked' }, masked, masked, { type: 'customStep', name: 'stepwise.screenshot', parameters: {} }]),
      );
      expect(job.status, job.errorMessage ?? '').toBe('COMPLETED');
      const ids = stepOutput(stream, 0)!.screenshots;
      expect(ids).toHaveLength(3);
      const shots = await Promise.all(ids.map((id) => findScreenshot(t.db, orgB, id)));
      const [first, second, plain] = shots.map((s) => s!) as [NonNullable<(typeof shots)[0]>, NonNullable<(typeof shots)[0]>, NonNullable<(typeof shots)[0]>];
      expect(first.sha256).toBe(second.sha256);
      expect(first.blobKey).toBe(second.blobKey);
      expect(plain.sha256).not.toBe(first.sha256);
      expect(stream.filter((r) => r.kind === 'SCREENSHOT').map((r) => (r.data as { screenshotId: string }).screenshotId)).toEqual(ids);
      const { rows: stored } = await t.db.query<{ blob_key: string; ref_count: number }>(
        `SELECT b.blob_key, b.ref_count FROM stepwise.screenshot_blobs b WHERE b.organization_id = $1 AND b.sha256 = decode($2, 'hex')`,
        [orgB, first.sha256],
      );
      expect(stored).toEqual([{ blob_key: first.blobKey, ref_count: 2 }]);
      const { rows: files } = await t.db.query<{ n: number }>(`SELECT count(DISTINCT blob_key)::int AS n FROM stepwise.execution_screenshots WHERE job_id = $1`, [job.id]);
      expect(files[0]!.n).toBe(2);

      // The box is at (40, 40), 240 × 60 CSS pixels: masked, one colour; unmasked, the gradient.
      const region = (png: Buffer) => {
        const image = decodePng(png);
        const colours = new Set<string>();
        for (let y = 45; y < 95; y += 3) for (let x = 45; x < 275; x += 3) colours.add(image.at(x, y).join(','));
        return colours;
      };
      expect([...region(await blobs.get(first.blobKey))]).toEqual(['0,0,0,255']);
      expect(region(await blobs.get(plain.blobKey)).size).toBeGreaterThan(10);
    });
  });
});
