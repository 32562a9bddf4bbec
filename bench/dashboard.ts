/**
 * `npm run -s bench -- dashboard`: the Atlas dashboard in headless Chromium
 * against the one-year scale dataset on the server (issue 16): time to the
 * first row of the runs page with a filter, time to interactive of the
 * inspector on a 10,000-row run, scrolling that stream to its end, and the
 * JavaScript shipped. Every time is the browser's own (`performance.now()`
 * in the page, from its navigation start), not Playwright's round trips.
 * JSON lines on stdout, progress on stderr.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { migrate, PostgresDb } from '../src/db/index.js';
import { MAINTENANCE_LEASE } from '../src/lifecycle/index.js';
import { releaseMaintenanceLease, tryAcquireMaintenanceLease } from '../src/store/index.js';
import { prepareDashboardFixture, LONG_RUN_ROWS, SEARCH_KEY, type DashboardFixture } from './dashboard-data.js';
import { BenchUsageError, databaseFlag, eachFlag, intFlag, unknownFlag, datasetFlag } from './flags.js';
import { BenchCheckError, check, createScratchDatabase, emit, log, nearestRank, round, serverUrl, sleep, urlForDatabase, type ScratchDatabase } from './lib.js';
import { generateScaleDataset, SCALE_DEFAULTS } from './scale-data.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const CHROMIUM = process.env.STEPWISE_CHROMIUM_PATH || '/usr/lib/chromium/chromium';
const VIEWPORT = { width: 1280, height: 800 };
/** The issue's targets: each time at most 1 s, JavaScript at most 150 KB gzipped. */
const TARGET_MS = 1000;
const TARGET_JS_BYTES = 150 * 1024;
/** TTI: the main thread free of long tasks (> 50 ms) this long after the page is complete. */
const QUIET_MS = 200;
const WAIT_TIMEOUT_MS = 30_000;


export interface DashboardOptions {
  /** Timed page loads per filter/page and cache state. */
  runs: number;
  months: number;
  jobsPerMonth: number;
  rowsPerJob: number;
  keep: boolean;
  database: string | null;
  scroll: boolean;
  /** Measure only this page (`runs` or `inspector`); null: both. */
  only: 'runs' | 'inspector' | null;
}

export const DASHBOARD_USAGE = `dashboard options: [--runs N] [--database NAME] [--keep] [--months N] [--jobs-per-month N] [--rows-per-job N] [--no-scroll] [--only runs|inspector]
  defaults: 20 runs per figure; without --database a fresh ${SCALE_DEFAULTS.months} × ${SCALE_DEFAULTS.jobsPerMonth} scale dataset (dropped unless --keep)`;


export function parseDashboardOptions(args: string[]): DashboardOptions {
  const opts: DashboardOptions = {
    runs: 20,
    months: SCALE_DEFAULTS.months,
    jobsPerMonth: SCALE_DEFAULTS.jobsPerMonth,
    rowsPerJob: SCALE_DEFAULTS.rowsPerJob,
    keep: false,
    database: null,
    scroll: true,
    only: null,
  };
  eachFlag(args, (flag, value, arg) => {
    if (datasetFlag(opts, flag, value, { months: 1, rowsPerJob: 3 })) return;
    switch (flag) {
      case '--runs':
        opts.runs = intFlag(flag, value(), 1);
        break;
      case '--keep':
        opts.keep = true;
        break;
      case '--no-scroll':
        opts.scroll = false;
        break;
      case '--only': {
        const page = value();
        if (page !== 'runs' && page !== 'inspector') throw new BenchUsageError(`--only needs runs or inspector, got "${page ?? ''}"`);
        opts.only = page;
        break;
      }
      case '--database':
        opts.database = databaseFlag(flag, value());
        break;
      default:
        unknownFlag(arg);
    }
  });
  return opts;
}


function stats(values: readonly number[]): { p50: number; p95: number; min: number; max: number } {
  const s = [...values].sort((a, b) => a - b);
  return { p50: round(nearestRank(s, 50), 1), p95: round(nearestRank(s, 95), 1), min: round(s[0]!, 1), max: round(s[s.length - 1]!, 1) };
}

// ---------------------------------------------------------------- the server

interface Server {
  url: string;
  stop(): Promise<void>;
}

/**
 * `stepwise serve --no-worker` on the dataset, run from the sources through
 * tsx (other work in progress may break a full tsc build; the dashboard's
 * assets are built on their own), on a free port.
 */
async function startServer(databaseUrl: string): Promise<Server> {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'serve', '--no-worker'], {
    cwd: ROOT,
    detached: true,
    env: { ...process.env, DATABASE_URL: databaseUrl, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => {
    out += c.toString();
    // The server's warnings and errors (a failed query) belong in the bench's diagnostics.
    process.stderr.write(`[server] ${c.toString()}`);
  });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the server did not start within 120 s:\n${out}`)), 120_000);
    const onData = () => {
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the server exited with ${code} before listening:\n${out}`));
    });
  });
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    try {
      process.kill(-child.pid!, 'SIGTERM');
    } catch {
      return;
    }
    const killer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // gone
      }
    }, 10_000);
    await exited;
    clearTimeout(killer);
  };
  return { url, stop };
}

/** `node scripts/build-atlas.mjs` → dist/atlas; the gzipped JavaScript bytes it reports. */
function buildAtlas(): number {
  const r = spawnSync(process.execPath, ['scripts/build-atlas.mjs'], { cwd: ROOT, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`the dashboard build failed:\n${r.stderr}${r.stdout}`);
  log(r.stderr.trim());
  const build = JSON.parse(readFileSync(new URL('../dist/atlas/build.json', import.meta.url), 'utf8')) as { jsGzipBytes: number };
  return build.jsGzipBytes;
}

// ---------------------------------------------------------------- in the page

/**
 * Installed before any of the page's own scripts: notes (performance.now(),
 * i.e. ms since the navigation started) when the elements measured first
 * appear, and every long task. A MutationObserver callback runs right after
 * the DOM change, before the frame that paints it; the frame's time is
 * noted too (the requestAnimationFrame after it).
 */
const PROBE = `(() => {
  const m = { firstRow: null, firstRowFrame: null, header: null, gantt: null, stream: null, ready: null, readyFrame: null, error: null, longTasks: [] };
  window.__bench = m;
  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) m.longTasks.push([e.startTime, e.startTime + e.duration]);
    }).observe({ type: 'longtask', buffered: true });
  } catch (e) { m.error = 'no longtask observer: ' + e; }
  let mo = null;
  const check = () => {
    const t = performance.now();
    if (m.firstRow === null && document.querySelector('.runs-table tbody tr[data-id]')) {
      m.firstRow = t;
      requestAnimationFrame(() => { m.firstRowFrame = performance.now(); });
    }
    if (m.header === null && document.querySelector('header.run-head')) m.header = t;
    if (m.gantt === null && document.querySelector('.gantt-body [role=row]')) m.gantt = t;
    if (m.stream === null && document.querySelector('.s-body .s-row:not(.s-loading)')) m.stream = t;
    if (m.ready === null && m.header !== null && m.gantt !== null && m.stream !== null) {
      m.ready = t;
      requestAnimationFrame(() => { m.readyFrame = performance.now(); });
    }
    if (m.error === null) {
      const err = document.querySelector('.error-box');
      if (err) m.error = err.textContent;
    }
    // Done: stop looking, so the scrolling measured later pays nothing for the probe.
    if (m.firstRow !== null || m.ready !== null) mo.disconnect();
  };
  mo = new MutationObserver(check);
  mo.observe(document, { childList: true, subtree: true });
})();`;

interface Probe {
  firstRow: number | null;
  firstRowFrame: number | null;
  header: number | null;
  gantt: number | null;
  stream: number | null;
  ready: number | null;
  readyFrame: number | null;
  error: string | null;
  longTasks: [number, number][];
}

interface ResourceTiming {
  name: string;
  startTime: number;
  requestStart: number;
  responseStart: number;
  responseEnd: number;
}

const READ_PROBE = `({ probe: window.__bench, resources: performance.getEntriesByType('resource').map((e) => ({ name: e.name, startTime: e.startTime, requestStart: e.requestStart, responseStart: e.responseStart, responseEnd: e.responseEnd })) })`;

async function readProbe(page: Page): Promise<{ probe: Probe; resources: ResourceTiming[] }> {
  return (await page.evaluate(READ_PROBE)) as { probe: Probe; resources: ResourceTiming[] };
}

/** The first request whose path (and query) matches. */
function resource(resources: readonly ResourceTiming[], test: (path: string) => boolean): ResourceTiming | undefined {
  return resources.find((r) => {
    const u = new URL(r.name);
    return test(u.pathname + u.search);
  });
}

/**
 * Wait (polling every 50 ms, outside the page's frames) until `condition`
 * holds; on a timeout fail with what the page showed (an error box).
 */
async function waitOrExplain(page: Page, url: string, condition: string): Promise<void> {
  // Polled from here: the page's CSP (script-src 'self') refuses waitForFunction's string evaluation.
  const deadline = Date.now() + WAIT_TIMEOUT_MS;
  while (!(await page.evaluate(condition))) {
    if (Date.now() > deadline) {
      const shown = await page.evaluate(`window.__bench ? window.__bench.error : null`).catch(() => null);
      throw new BenchCheckError(`${url}: not complete after ${WAIT_TIMEOUT_MS} ms (page error: ${String(shown)})`);
    }
    await sleep(50);
  }
}

// ---------------------------------------------------------------- measurements

interface Sample {
  ms: number;
  /** Where the time went (ms since navigation start; server = the API call's request to first byte). */
  parts: Record<string, number>;
}

/** /runs?<filter>: navigation start → the first data row of the runs table (the frame that paints it). */
async function runsSample(page: Page, url: string): Promise<Sample> {
  await page.goto(url, { waitUntil: 'commit' });
  await waitOrExplain(page, url, 'window.__bench && window.__bench.firstRowFrame !== null');
  const { probe, resources } = await readProbe(page);
  const list = resource(resources, (p) => p.startsWith('/v1/jobs?'));
  const session = resource(resources, (p) => p.startsWith('/v1/sessions/current'));
  const script = resource(resources, (p) => p.startsWith('/assets/') && p.endsWith('.js'));
  const parts: Record<string, number> = { dom: probe.firstRow! };
  if (script) parts.script_loaded = script.responseEnd;
  if (session) {
    parts.session_start = session.startTime;
    parts.session_server = session.responseStart - session.requestStart;
    parts.session_done = session.responseEnd;
  }
  if (list) {
    parts.list_start = list.startTime;
    parts.list_server = list.responseStart - list.requestStart;
    parts.list_done = list.responseEnd;
  }
  return { ms: probe.firstRowFrame!, parts };
}

/**
 * /runs/<id>: navigation start → TTI: the header, a Gantt row and a stream
 * row are in the DOM, and the main thread then stays free of long tasks for
 * 200 ms; TTI is the later of "complete" and the end of the last long task
 * before that quiet window.
 */
async function inspectorSample(page: Page, url: string): Promise<Sample> {
  await page.goto(url, { waitUntil: 'commit' });
  await waitOrExplain(
    page,
    url,
    `(() => {
      const m = window.__bench;
      if (!m || m.ready === null || m.readyFrame === null) return false;
      const lastEnd = m.longTasks.reduce((a, t) => Math.max(a, t[1]), 0);
      return performance.now() - Math.max(m.readyFrame, lastEnd) >= ${QUIET_MS};
    })()`,
  );
  const { probe, resources } = await readProbe(page);
  const lastLong = probe.longTasks.reduce((a, t) => Math.max(a, t[1]), 0);
  const tti = Math.max(probe.readyFrame!, lastLong);
  const parts: Record<string, number> = {
    complete: probe.readyFrame!,
    header: probe.header!,
    gantt: probe.gantt!,
    stream: probe.stream!,
    long_tasks: probe.longTasks.length,
    long_task_ms: probe.longTasks.reduce((a, t) => a + (t[1] - t[0]), 0),
  };
  const jobPath = url.replace('/runs/', '/v1/jobs/');
  for (const [name, test] of [
    ['script', (p: string) => p.startsWith('/assets/') && p.endsWith('.js')],
    ['session', (p: string) => p.startsWith('/v1/sessions/current')],
    ['job', (p: string) => p.startsWith(`${jobPath}?`) || p === jobPath],
    ['timeline', (p: string) => p.startsWith(`${jobPath}/timeline`)],
    ['stream', (p: string) => p.startsWith(`${jobPath}/stream?`) && p.includes('afterSeq=0') && !p.includes('level=')],
    ['failures', (p: string) => p.startsWith(`${jobPath}/stream?`) && p.includes('level=')],
    ['list_item', (p: string) => p.startsWith('/v1/jobs?') && p.includes('createdTo=')],
  ] as const) {
    const r = resource(resources, test);
    if (r) {
      parts[`${name}_start`] = r.startTime;
      parts[`${name}_server`] = r.responseStart - r.requestStart;
      parts[`${name}_done`] = r.responseEnd;
    }
  }
  return { ms: tti, parts };
}

/** Median of each part over the samples, for the stderr breakdown. */
function partsSummary(samples: readonly Sample[]): string {
  const keys = [...new Set(samples.flatMap((s) => Object.keys(s.parts)))];
  return keys
    .map((k) => {
      const v = samples.map((s) => s.parts[k]).filter((x): x is number => x !== undefined);
      return `${k} ${round(nearestRank([...v].sort((a, b) => a - b), 50), 1)}`;
    })
    .join(', ');
}

async function newContext(browser: Browser, baseURL: string, storageState: Awaited<ReturnType<BrowserContext['storageState']>>): Promise<BrowserContext> {
  const ctx = await browser.newContext({ baseURL, viewport: VIEWPORT, storageState });
  await ctx.addInitScript({ content: PROBE });
  return ctx;
}

/**
 * `runs` samples cold (each in a new browser context: empty HTTP and code
 * caches, signed in with the session cookie) and warm (one page navigated
 * to the address again and again after one untimed load).
 */
async function measure(
  browser: Browser,
  baseURL: string,
  storageState: Awaited<ReturnType<BrowserContext['storageState']>>,
  url: string,
  runs: number,
  sample: (page: Page, url: string) => Promise<Sample>,
): Promise<{ cold: Sample[]; warm: Sample[] }> {
  const cold: Sample[] = [];
  for (let i = 0; i < runs; i++) {
    const ctx = await newContext(browser, baseURL, storageState);
    try {
      cold.push(await sample(await ctx.newPage(), url));
    } finally {
      await ctx.close();
    }
  }
  const warm: Sample[] = [];
  const ctx = await newContext(browser, baseURL, storageState);
  try {
    const page = await ctx.newPage();
    await sample(page, url);
    for (let i = 0; i < runs; i++) warm.push(await sample(page, url));
  } finally {
    await ctx.close();
  }
  return { cold, warm };
}

function emitTimes(figure: string, extra: Record<string, unknown>, cache: 'cold' | 'warm', samples: readonly Sample[]): void {
  const s = stats(samples.map((x) => x.ms));
  log(`${figure} ${JSON.stringify(extra)} ${cache}: ${samples.length} runs, min ${s.min} max ${s.max} ms; medians: ${partsSummary(samples)}`);
  const server = samples.map((x) => x.parts.list_server).filter((x): x is number => x !== undefined);
  emit({
    scenario: 'dashboard',
    figure,
    ...extra,
    cache,
    p50_ms: s.p50,
    p95_ms: s.p95,
    runs: samples.length,
    ...(server.length > 0 ? { list_api_p50_ms: stats(server).p50 } : {}),
    target_ms: TARGET_MS,
    ok: s.p95 <= TARGET_MS,
  });
}

/**
 * Scroll the stream from its first row to its last, 20 rows a frame (the
 * whole 10,000 in ~500 frames), then until no placeholder row is left in
 * view. Frame times from requestAnimationFrame: a frame over 1.5 × 16.7 ms
 * missed ⌊(gap / 16.7) − 0.5⌋ vsyncs.
 */
const SCROLL = `(async () => {
  const el = document.querySelector('.s-body');
  const rowHeight = 24;
  const step = rowHeight * 20;
  const frameMs = 1000 / 60;
  const gaps = [];
  let placeholderFrames = 0;
  let last = await new Promise((r) => requestAnimationFrame(r));
  const t0 = last;
  el.scrollTop = 0;
  for (;;) {
    // Setting scrollTop fires the scroll event the list listens to, before the next frame.
    el.scrollTop = el.scrollTop + step;
    const t = await new Promise((r) => requestAnimationFrame(r));
    gaps.push(t - last);
    last = t;
    if (el.querySelector('.s-loading')) placeholderFrames++;
    if (el.scrollTop + el.clientHeight >= el.scrollHeight - 1) break;
    if (t - t0 > 60000) break;
  }
  const scrolled = last - t0;
  while (el.querySelector('.s-loading') && performance.now() - t0 < 90000) await new Promise((r) => setTimeout(r, 10));
  const settled = performance.now() - t0;
  const dropped = gaps.reduce((a, g) => a + Math.max(0, Math.round(g / frameMs) - 1), 0);
  const lastSeq = Number((el.querySelector('.s-row:last-of-type .s-seq') || {}).textContent || 0);
  const seqs = [...el.querySelectorAll('.s-row .s-seq')].map((s) => Number(s.textContent));
  const long = window.__bench.longTasks.filter((t) => t[0] >= t0);
  return { longTasks: long.length, longTaskMs: long.reduce((a, t) => a + t[1] - t[0], 0), frames: gaps.length, scrolled, settled, dropped, maxGap: Math.max(...gaps), gaps: gaps.sort((a, b) => a - b), placeholderFrames, lastSeq: Math.max(lastSeq, ...seqs) };
})()`;

async function scrollStream(browser: Browser, baseURL: string, storageState: Awaited<ReturnType<BrowserContext['storageState']>>, url: string): Promise<void> {
  const ctx = await newContext(browser, baseURL, storageState);
  try {
    const page = await ctx.newPage();
    await inspectorSample(page, url);
    // The stream sizes itself (its last seq) in the background: scroll once the whole run is on the scrollbar.
    await waitOrExplain(page, url, `(() => { const h = document.querySelector('.stream .panel-head'); return !!h && /${LONG_RUN_ROWS.toLocaleString('en-US')} rows/.test(h.textContent) && !/\\+ rows/.test(h.textContent); })()`);
    const r = (await page.evaluate(SCROLL)) as {
      frames: number;
      scrolled: number;
      settled: number;
      dropped: number;
      maxGap: number;
      gaps: number[];
      placeholderFrames: number;
      lastSeq: number;
      longTasks: number;
      longTaskMs: number;
    };
    check(r.lastSeq === LONG_RUN_ROWS, `scrolled to the end of the stream but its last row shown is ${r.lastSeq}, not ${LONG_RUN_ROWS}`);
    log(`stream scroll: ${r.frames} frames in ${round(r.scrolled, 0)} ms, settled at ${round(r.settled, 0)} ms, frame p50 ${round(nearestRank(r.gaps, 50), 1)} p95 ${round(nearestRank(r.gaps, 95), 1)} max ${round(r.maxGap, 1)} ms`);
    emit({
      scenario: 'dashboard',
      figure: 'stream_scroll',
      rows: LONG_RUN_ROWS,
      frames: r.frames,
      dropped_frames: r.dropped,
      frame_p95_ms: round(nearestRank(r.gaps, 95), 1),
      max_frame_ms: round(r.maxGap, 1),
      placeholder_frames: r.placeholderFrames,
      long_tasks: r.longTasks,
      long_task_ms: round(r.longTaskMs, 0),
      scroll_ms: round(r.scrolled, 0),
      settled_ms: round(r.settled, 0),
    });
  } finally {
    await ctx.close();
  }
}

// ---------------------------------------------------------------- the scenario

export async function dashboard(args: string[]): Promise<void> {
  const opts = parseDashboardOptions(args);
  const { chromium } = await import('playwright-core');
  let scratch: ScratchDatabase | null = null;
  const name = opts.database ?? (scratch = await createScratchDatabase('dashboard')).name;
  const databaseUrl = urlForDatabase(serverUrl(), name);
  const db = new PostgresDb(databaseUrl, { poolSize: 2, role: 'bench' });
  const holder = `bench-dashboard:${process.pid}`;
  let leased = false;
  let server: Server | null = null;
  let browser: Browser | null = null;
  try {
    // A kept dataset gets the migrations added since it was generated (sessions, search keys, …).
    const migrated = await migrate(db);
    log(`migrated ${name}: ${JSON.stringify(migrated)}`);
    if (!opts.database) {
      log(`generating ${opts.months} months × ${opts.jobsPerMonth} jobs × ~${opts.rowsPerJob} stream rows into ${name}`);
      const ds = await generateScaleDataset(db, { months: opts.months, jobsPerMonth: opts.jobsPerMonth, rowsPerJob: opts.rowsPerJob, onProgress: log });
      log(`generated ${ds.jobs} jobs and ${ds.streamRows} stream rows in ${round(ds.generationSeconds, 1)} s`);
    }
    // The server's daily maintenance (5 minutes after start) would archive this
    // dataset's old months and drop their partitions: hold its lease meanwhile.
    leased = await tryAcquireMaintenanceLease(db, MAINTENANCE_LEASE, holder, 6 * 3_600_000);
    if (!leased) log('the maintenance lease is held by another process; a maintenance run cannot start meanwhile either');

    const fx: DashboardFixture = await prepareDashboardFixture(db, log);
    const jsBytes = buildAtlas();
    server = await startServer(databaseUrl);
    log(`server ${server.url} on ${name}; load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);

    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    // Sign in once, as a person does (POST /v1/sessions); every context then carries the session cookie.
    const signIn = await browser.newContext({ baseURL: server.url });
    const res = await signIn.request.post('/v1/sessions', { data: { email: fx.email, password: fx.password, organizationId: fx.organizationId } });
    check(res.status() === 201, `sign-in answered ${res.status()}: ${await res.text()}`);
    const storageState = await signIn.storageState();
    await signIn.close();

    const filters: [string, string][] = [
      ['status=FAILED', 'status=FAILED'],
      ['workflow', `workflowId=${fx.busiestWorkflowId}`],
      ['errorCode (most frequent)', `errorCode=${encodeURIComponent(fx.commonErrorCode)}`],
      ['errorCode (rarest) + status', `status=FAILED&errorCode=${encodeURIComponent(fx.rareErrorCode)}`],
      ['search (business field)', `search=${encodeURIComponent(`${SEARCH_KEY}:${fx.recentMember}`)}`],
      ['workflow + 30 days', `workflowId=${fx.busiestWorkflowId}&window=30d`],
    ];
    for (const [label, query] of opts.only === 'inspector' ? [] : filters) {
      const { cold, warm } = await measure(browser, server.url, storageState, `/runs?${query}`, opts.runs, runsSample);
      emitTimes('runs_first_row', { filter: label, query }, 'cold', cold);
      emitTimes('runs_first_row', { filter: label, query }, 'warm', warm);
    }

    const inspector = `/runs/${fx.longRunId}`;
    if (opts.only !== 'runs') {
      const { cold, warm } = await measure(browser, server.url, storageState, inspector, opts.runs, inspectorSample);
      emitTimes('inspector_tti', { rows: LONG_RUN_ROWS }, 'cold', cold);
      emitTimes('inspector_tti', { rows: LONG_RUN_ROWS }, 'warm', warm);
      if (opts.scroll) await scrollStream(browser, server.url, storageState, inspector);
    }

    emit({ scenario: 'dashboard', figure: 'js_gzip', bytes: jsBytes, target_bytes: TARGET_JS_BYTES, ok: jsBytes <= TARGET_JS_BYTES });
    log(`load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  } finally {
    await browser?.close().catch(() => undefined);
    await server?.stop().catch((err: unknown) => log(`stopping the server: ${String(err)}`));
    if (leased) await releaseMaintenanceLease(db, MAINTENANCE_LEASE, holder).catch(() => undefined);
    await db.close();
    if (scratch && !opts.keep) await scratch.drop().catch((err: unknown) => log(`could not drop ${scratch!.name}: ${String(err)}`));
    else if (scratch) log(`kept ${scratch.name}: rerun with --database ${scratch.name}`);
  }
}
