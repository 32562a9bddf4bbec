import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ensureStreamPartitions, migrate, PgliteDb, type Db } from '../../src/db/index.js';
import { defineWorkflow, startRuns } from '../../src/engine/index.js';
import { generateKeyEntry, parseKeyRing } from '../../src/security/crypto.js';
import { findJob, listStream, type Job, type StreamEntry } from '../../src/store/index.js';
import { backend, createTestDb, type TestDb } from '../helpers/db.js';
import { seedOrg, waitForJob } from '../helpers/fixtures.js';
import { CHROMIUM, haveChromium, startBrowserWorker, type BrowserWorker } from '../helpers/browser-worker.js';
import { PORTAL_PASSWORD, PORTAL_USER, startPortal, type Portal } from '../helpers/portal.js';
import { spawnWorkerProcess } from '../helpers/worker-process.js';

/** Short, so the rescuing worker takes the killed worker's job over soon after the kill. */
const LEASE_MS = 2_000;
/** Each test takes ~15 s here; the ceiling leaves room for a machine busy with other browsers. */
const TEST_TIMEOUT_MS = 150_000;

/**
 * kill -9 of a worker process in the middle of a browser step, on both
 * backends. The killed worker runs in its own process (test/fixtures/
 * worker-process.ts with BROWSER=1); the rescuing worker runs here with the
 * same key ring, so it can open the session state the killed one sealed into
 * the job's checkpoint. What happened is read from the database and from the
 * servers' own counters, never from timings.
 *
 * - Killed while the step waits mid-session (after logging in and typing
 *   into the claim form): the rescuer restores the session (cookies, page,
 *   the typed amount) without logging in again, and the side-effecting
 *   submit after the wait happens exactly once.
 * - Killed while a side-effecting submit is in flight (its marker committed,
 *   its POST received and held by the server): `verify` selectors matching
 *   the revisited page say it happened and the job goes on, with one POST;
 *   without `verify` the step fails BROWSER_UNCERTAIN, with one POST.
 */
if (!haveChromium) console.warn('browser-crash tests SKIPPED: no Chromium (apt-get install chromium; CI installs it)');

/** A small loopback server of the test's own: counts requests per "METHOD path" and lets a handler hold any of them. */
interface CountingServer {
  url: string;
  origin: string;
  hits: Map<string, number>;
  close(): Promise<void>;
}

async function startCountingServer(handle: (req: IncomingMessage, res: ServerResponse, body: string, n: number) => void): Promise<CountingServer> {
  const hits = new Map<string, number>();
  const server: Server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      const key = `${req.method} ${new URL(req.url ?? '/', 'http://x').pathname}`;
      const n = (hits.get(key) ?? 0) + 1;
      hits.set(key, n);
      handle(req, res, body, n);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = String((server.address() as AddressInfo).port);
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    origin: url,
    hits,
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

function html(title: string, body: string): string {
  return `<!doctype html><html><head><meta charset="utf-8"><title>${title}</title></head><body>${body}</body></html>`;
}

async function until(what: string, probe: () => boolean | Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function messages(stream: StreamEntry[]): string[] {
  return stream.map((r) => r.message);
}

describe.skipIf(!haveChromium)('browser step: kill -9 of its worker', () => {
  let t: TestDb | undefined;
  let dataDir: string | undefined;
  let blobDir: string;
  let portal: Portal;
  /** The blocking wait of the first test: its page polls GET /gate until the test opens it. */
  let gate: CountingServer;
  let gateOpen = false;
  /** The claim form of the second test: POST /submit/<variant> counts, and the first one is held (its worker dies waiting). */
  let forms: CountingServer;
  const held: ServerResponse[] = [];
  const submitted = new Map<string, string[]>();
  /** The same key ring for the killed worker and the rescuer: the rescuer opens what the other sealed. */
  const keyEntry = generateKeyEntry();
  let child: ChildProcess | undefined;
  let rescuer: BrowserWorker | undefined;
  let db: Db | undefined;

  beforeAll(async () => {
    portal = await startPortal();
    gate = await startCountingServer((_req, res) => {
      // The page on the portal's origin asks across origins: allowed by CORS, and by the step's allowOrigins and the egress allowlist.
      res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'no-store', 'access-control-allow-origin': '*' }).end(gateOpen ? 'open' : 'closed');
    });
    forms = await startCountingServer((req, res, body) => {
      const [, kind, variant = ''] = new URL(req.url ?? '/', 'http://x').pathname.split('/');
      if (req.method === 'GET' && kind === 'form') {
        // A revisit after a submission shows it, as a real portal's "your claims" would: what `verify` looks for.
        const done = (submitted.get(variant) ?? []).length > 0;
        res.writeHead(200, { 'content-type': 'text/html', 'cache-control': 'no-store' }).end(
          html(
            'Claim form',
            `<form method="post" action="/submit/${variant}"><input id="amount" name="amount" value=""><button id="submit-claim" type="submit">Submit</button></form>${
              done ? '<p id="confirmation">Claim received</p>' : ''
            }`,
          ),
        );
        return;
      }
      if (req.method === 'POST' && kind === 'submit') {
        const list = submitted.get(variant) ?? [];
        list.push(body);
        submitted.set(variant, list);
        // Counted, then never answered: the worker is killed with the click in flight.
        if (list.length === 1) return void held.push(res);
        res.writeHead(200, { 'content-type': 'text/html' }).end(html('Claim received', '<p id="confirmation">Claim received</p>'));
        return;
      }
      res.writeHead(404).end();
    });
    blobDir = await mkdtemp(join(tmpdir(), 'stepwise-browser-crash-blobs-'));
    if (backend === 'postgres') t = await createTestDb();
  });

  afterEach(async () => {
    await afterEachBody();
  });
  async function afterEachBody() {
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await new Promise((r) => child!.once('exit', r));
    }
    child = undefined;
    await rescuer?.stop();
    rescuer = undefined;
    if (!t) await db?.close();
    db = undefined;
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
    dataDir = undefined;
  }

  afterAll(async () => {
    for (const res of held.splice(0)) res.destroy();
    await portal?.close();
    await gate?.close();
    await forms?.close();
    await t?.close();
    if (blobDir) await rm(blobDir, { recursive: true, force: true });
  });

  /** STEPWISE_EGRESS_ALLOW: the three loopback servers by port (the policy refuses loopback otherwise). */
  const egressAllow = () => [portal.url, gate.url, forms.url].map((u) => `127.0.0.1:${new URL(u).port}`).join(',');

  async function openDb(): Promise<Db> {
    if (t) return t.db;
    dataDir ??= await mkdtemp(join(tmpdir(), 'stepwise-browser-crash-'));
    const opened = await PgliteDb.open({ dataDir });
    await migrate(opened);
    await ensureStreamPartitions(opened);
    return opened;
  }

  /** Start the runs, then hand the database to a worker process that runs browser steps. */
  async function startInChild(organizationId: string, workflowId: string, runs: number): Promise<string[]> {
    const started = await startRuns(db!, organizationId, workflowId, Array.from({ length: runs }, () => ({})));
    if (!t) {
      await db!.close(); // the worker process owns the embedded database now
      db = undefined;
    }
    child = await spawnWorkerProcess({
      databaseUrl: t?.url,
      dataDir,
      leaseMs: LEASE_MS,
      workerId: 'doomed',
      env: {
        BROWSER: '1',
        STEPWISE_ENCRYPTION_KEYS: keyEntry,
        STEPWISE_EGRESS_ALLOW: egressAllow(),
        STEPWISE_CHROMIUM_PATH: CHROMIUM,
        STEPWISE_BLOB_DIR: blobDir,
      },
    });
    return started.map((r) => r.id);
  }

  async function kill(): Promise<void> {
    const c = child!;
    c.kill('SIGKILL');
    if (c.exitCode === null && c.signalCode === null) await new Promise((r) => c.once('exit', r));
    child = undefined;
  }

  /** After the kill: the database back (PGlite: take over the dead process's stale lock), and a browser worker here with the same key ring. */
  async function rescue(): Promise<Db> {
    db = await openDb();
    rescuer = startBrowserWorker(db, {
      egressAllow: egressAllow(),
      keyRing: parseKeyRing(keyEntry),
      blobDir,
      worker: { leaseMs: LEASE_MS, pollIntervalMs: 100 },
      id: 'rescuer',
    });
    return db;
  }

  it('killed mid-session: resumes in a context restored from the sealed state, without logging in again; the submit happens once', async () => {
    db = await openDb();
    const { organizationId } = await seedOrg(db, 'browser-crash-session');
    const gateAt = `${gate.url}/gate`;
    const wf = await defineWorkflow(db, organizationId, {
      name: 'claim after login',
      definition: {
        steps: [
          {
            id: 'claim',
            type: 'browser',
            session: 'payer',
            allowOrigins: [portal.url, gate.origin],
            actions: [
              /* 0 */ { type: 'navigate', url: `${portal.url}/login` },
              /* 1 */ { type: 'change', selectors: [['#user']], value: PORTAL_USER },
              /* 2 */ { type: 'change', selectors: [['#password']], value: PORTAL_PASSWORD },
              /* 3 */ { type: 'click', selectors: [['#sign-in']], assertedEvents: [{ type: 'navigation', title: 'Home' }] },
              /* 4 */ { type: 'navigate', url: `${portal.url}/claims/new` },
              /* 5 */ { type: 'change', selectors: [['#amount']], value: '34.50' },
              // Blocks until the test opens the gate: the worker is killed here.
              /* 6 */ { type: 'waitForExpression', expression: `fetch(${JSON.stringify(gateAt)}, { cache: 'no-store' }).then((r) => r.text()).then((t) => t === 'open')`, timeout: 60_000 },
              // The restored page has the amount typed again (action 5 replayed; the portal's form starts at 12.00).
              /* 7 */ { type: 'waitForExpression', expression: `document.querySelector('#amount').value === '34.50'`, timeout: 2_000 },
              /* 8 */ { type: 'click', selectors: [['#submit-claim']], sideEffect: true, verify: [['#confirmation']] },
              /* 9 */ { type: 'waitForElement', selectors: [['#confirmation']] },
              // /home answers only a signed-in session (else it redirects to the sign-in page).
              /* 10 */ { type: 'navigate', url: `${portal.url}/home`, assertedEvents: [{ type: 'navigation', title: 'Home' }] },
              /* 11 */ { type: 'customStep', name: 'stepwise.extract', parameters: { output: 'welcome', selectors: [['#welcome']] } },
            ],
          },
        ],
      },
    });
    const [jobId] = await startInChild(organizationId, wf.id, 1);
    await until('first poll', () => (gate.hits.get('GET /gate') ?? 0) >= 1);

    // The wait is polling the gate: signed in, on the claim form, amount typed, progress kept before the wait (next action: 6).
    if (t) {
      await until('the page to poll the gate', () => (gate.hits.get('GET /gate') ?? 0) >= 1);
      // On the server, until that progress is committed.
      await until('the progress at the wait to be committed', async () => {
        const { rows } = await t!.db.query<{ next: number | null }>(`SELECT (state->>'next')::int AS next FROM stepwise.execution_checkpoints WHERE job_id = $1`, [jobId]);
        return rows[0]?.next === 6;
      });
    } else {
      // The embedded database belongs to the worker process, so its commits cannot be read from here. Each poll
      // of the gate is a round of the worker process's own loop (evaluate, then pause 100 ms), and its recorder
      // flushes every 2 ms in that loop: ten rounds after the progress was kept give that flush ample time.
      await until('ten polls of the gate', () => (gate.hits.get('GET /gate') ?? 0) >= 10);
    }
    await kill();
    const beforeResume = new Map(portal.hits);
    expect(beforeResume.get('/login')).toBe(2); // GET the form, POST the credentials
    expect(beforeResume.get('/home')).toBe(1);
    expect(portal.claimsSubmitted()).toBe(0);

    gateOpen = true;
    const rdb = await rescue();
    const job = await waitForJob(rdb, organizationId, jobId!, 45_000);
    expect(job.status, `${job.errorCode}: ${job.errorMessage}`).toBe('COMPLETED');
    expect(job.attempts).toBe(2);

    // Not signed in again, yet signed in: the sid cookie (HttpOnly) came back from the sealed state.
    expect(portal.hits.get('/login')).toBe(2);
    expect(portal.hits.get('/home')).toBe(2);
    // The claim form was loaded once by the killed run and once by the restore.
    expect(portal.hits.get('/claims/new')).toBe(2);
    expect(portal.claimsSubmitted()).toBe(1);

    const stream = await listStream(rdb, organizationId, job, { limit: 500 });
    expect(stream.map((s) => s.seq)).toEqual(stream.map((_, i) => i + 1));
    expect(stream.filter((s) => s.kind === 'JOB_STARTED')).toHaveLength(2);
    const completed = stream.filter((s) => s.kind === 'STEP_COMPLETED');
    expect(completed).toHaveLength(1);
    const output = (completed[0]!.data as { output: { title: string; extracted: { welcome: string }; durationsMs: (number | null)[] } }).output;
    expect(output.title).toBe('Home');
    expect(output.extracted.welcome).toBe(`Welcome, ${PORTAL_USER}`);
    // Restored at the claim form, with the one filling action since it loaded typed again.
    expect(messages(stream).some((m) => /restored at .*\/claims\/new; actions 5–5 replayed/.test(m))).toBe(true);
    // The resumed run timed only the actions it ran (6 on); what ran before the kill is known from the other run's progress.
    expect(output.durationsMs.slice(6).every((d) => typeof d === 'number')).toBe(true);
    expect(await findJob(rdb, organizationId, jobId!)).toMatchObject({ status: 'COMPLETED' });
  }, TEST_TIMEOUT_MS);

  it('killed during a side-effecting submit: verify decides it happened (one POST); without verify BROWSER_UNCERTAIN (one POST)', async () => {
    db = await openDb();
    const { organizationId } = await seedOrg(db, 'browser-crash-submit');
    const definition = (variant: 'verified' | 'unverified') => ({
      steps: [
        {
          id: 'submit',
          type: 'browser',
          session: 'payer',
          allowOrigins: [forms.origin],
          actions: [
            /* 0 */ { type: 'navigate', url: `${forms.url}/form/${variant}` },
            /* 1 */ { type: 'change', selectors: [['#amount']], value: `12.00-${variant}` },
            /* 2 */ {
              type: 'click',
              selectors: [['#submit-claim']],
              sideEffect: true,
              ...(variant === 'verified' ? { verify: [['#confirmation']] } : {}),
            },
            /* 3 */ { type: 'waitForElement', selectors: [['#confirmation']] },
            /* 4 */ { type: 'customStep', name: 'stepwise.extract', parameters: { output: 'confirmation', selectors: [['#confirmation']] } },
          ],
        },
      ],
    });
    const verified = await defineWorkflow(db, organizationId, { name: 'submit, verified', definition: definition('verified') });
    const unverified = await defineWorkflow(db, organizationId, { name: 'submit, unverified', definition: definition('unverified') });
    const [verifiedRun] = await startRuns(db, organizationId, verified.id, [{}]);
    const [unverifiedId] = await startInChild(organizationId, unverified.id, 1);
    const verifiedId = verifiedRun!.id;

    // Both clicks are in flight: each one's marker was committed before it ran, and the server holds both POSTs.
    await until('both submissions to reach the server', () => submitted.get('verified')?.length === 1 && submitted.get('unverified')?.length === 1);
    await kill();
    expect(submitted.get('verified')).toEqual(['amount=12.00-verified']);
    expect(submitted.get('unverified')).toEqual(['amount=12.00-unverified']);

    const rdb = await rescue();
    const [a, b] = await Promise.all([waitForJob(rdb, organizationId, verifiedId, 45_000), waitForJob(rdb, organizationId, unverifiedId!, 45_000)]);

    // (a) verify matched on the revisited form: the click is taken as done, never repeated, and the job goes on.
    expect(a.status, `${a.errorCode}: ${a.errorMessage}`).toBe('COMPLETED');
    expect(submitted.get('verified')).toHaveLength(1);
    expect(forms.hits.get('POST /submit/verified')).toBe(1);
    const aStream = await listStream(rdb, organizationId, a, { limit: 500 });
    expect(aStream.filter((s) => s.kind === 'JOB_STARTED')).toHaveLength(2);
    expect(messages(aStream).some((m) => m.includes('action 2 had happened before the interruption (verify matched)'))).toBe(true);
    const aDone = aStream.filter((s) => s.kind === 'STEP_COMPLETED');
    expect(aDone).toHaveLength(1);
    expect((aDone[0]!.data as { output: { extracted: { confirmation: string } } }).output.extracted.confirmation).toBe('Claim received');

    // (b) no verify: the step cannot know whether the click happened, so it fails rather than repeat it.
    expect(b.status).toBe('FAILED');
    expect(b.errorCode).toBe('BROWSER_UNCERTAIN');
    expect(b.errorStep).toBe('submit');
    expect(submitted.get('unverified')).toHaveLength(1);
    expect(forms.hits.get('POST /submit/unverified')).toBe(1);
    const bStream = await listStream(rdb, organizationId, b, { limit: 500 });
    expect(bStream.filter((s) => s.kind === 'JOB_STARTED')).toHaveLength(2);
    expect(bStream.filter((s) => s.kind === 'STEP_FAILED')).toHaveLength(1);
    expect(bStream.filter((s) => s.kind === 'STEP_COMPLETED')).toHaveLength(0);

    const failed: Job | null = await findJob(rdb, organizationId, unverifiedId!);
    expect(failed).toMatchObject({ status: 'FAILED', errorCode: 'BROWSER_UNCERTAIN' });
  }, TEST_TIMEOUT_MS);
});
