import { existsSync, mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { isDeepStrictEqual } from 'node:util';
import { join } from 'node:path';
import { FsBlobStore } from '../src/blob/index.js';
import { DEFAULT_CHROMIUM_PATH, loadConfig, type WorkerConfig } from '../src/config/index.js';
import { ensureStreamPartitions, migrate, PgliteDb, PostgresDb, type Db } from '../src/db/index.js';
import { defineWorkflow, startRuns, Worker } from '../src/engine/index.js';
import { createOrganization } from '../src/store/index.js';
import { EgressProxy } from '../src/browser/egress-proxy.js';
import { BrowserPool } from '../src/browser/pool.js';
import { processTreeMemory } from '../src/browser/process-memory.js';
import { WorkerBrowserSessions } from '../src/browser/sessions.js';
import type { BrowserSession, OpenRequest } from '../src/browser/types.js';
import { EgressPolicy } from '../src/net/address-policy.js';
import { generateKeyEntry, parseKeyRing } from '../src/security/crypto.js';
import { keyRingSealer } from '../src/security/sealer.js';
// The tests' fixture payer portal itself (a plain HTTP server, no test framework): the figures are for the flow the tests drive.
import { PORTAL_PASSWORD, PORTAL_USER, startPortal, type Portal } from '../test/helpers/portal.js';
import { BenchCheckError, check, emit, log, now, POLL_MS, round, settle, sleep, stderrLogger, waitUntil, withScratchDatabase, type BenchOptions } from './lib.js';

/**
 * `browser`: runs of one `browser` step that logs in to the fixture portal,
 * searches, extracts the results table and takes a screenshot (twelve
 * Recorder actions), one session per job, on one Worker whose concurrency is
 * the browser pool's context limit (3), on PGlite and on the server.
 * Reports runs/min, p50/p95 per action (from the step outputs' durationsMs)
 * and per run, where a run's time goes besides the actions, the peak memory
 * of the worker process and of the browser's process tree, and the bytes
 * each run leaves: stream rows and screenshot blobs (after sha256 dedupe).
 */

const DEFAULT_RUNS = 200;
/** Untimed runs first (Chromium's launch, JIT, plan caches): two per context. */
const MAX_WARMUP = 6;
const CONTEXTS = 3;
const SAMPLE_MS = 200;
const MIB = 1024 * 1024;

const CHROMIUM = process.env.STEPWISE_CHROMIUM_PATH || DEFAULT_CHROMIUM_PATH;

/** One Worker, as many jobs at once as the pool has contexts: every running job holds one, none waits for a slot. */
const WORKER: Partial<WorkerConfig> = { concurrency: CONTEXTS, claimBatchSize: CONTEXTS, pollIntervalMs: 100, stepTimeoutMs: 60_000 };

const MEMBER = 'M-100';
const EXPECTED_CLAIMS = [
  { Claim: 'C-1', Date: '2024-01-02', Amount: '$10.00', column_4: 'paid' },
  { Claim: 'C-2', Date: '2024-02-03', Amount: '$20.50', column_4: 'open' },
];

/** The flow of test/integration/browser-step.test.ts's two steps, as one step. */
function definition(portalUrl: string) {
  return {
    steps: [
      {
        id: 'portal',
        type: 'browser',
        allowOrigins: [portalUrl],
        actions: [
          { type: 'navigate', url: '{{ input.portal }}/login' },
          { type: 'change', selectors: [['#user']], value: PORTAL_USER },
          { type: 'change', selectors: [['#password']], value: PORTAL_PASSWORD },
          { type: 'click', selectors: [['#sign-in']], assertedEvents: [{ type: 'navigation', title: 'Home' }] },
          { type: 'navigate', url: '{{ input.portal }}/search' },
          { type: 'change', selectors: [['#member']], value: '{{ input.member }}' },
          { type: 'customStep', name: 'stepwise.select', parameters: { selectors: [['#plan']], label: 'PPO Silver' } },
          { type: 'keyDown', key: 'Enter' },
          { type: 'keyUp', key: 'Enter' },
          { type: 'waitForElement', selectors: [['#claims']] },
          { type: 'customStep', name: 'stepwise.extract', parameters: { output: 'claims', selectors: [['#claims']], as: 'table' } },
          { type: 'customStep', name: 'stepwise.screenshot', parameters: {} },
        ],
      },
    ],
  };
}

/** "navigate", "customStep stepwise.extract", … */
function actionLabels(portalUrl: string): string[] {
  return definition(portalUrl).steps[0]!.actions.map((a) => ('name' in a ? `${a.type} ${a.name}` : a.type));
}

/** Nearest-rank percentile of an unsorted list. */
function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
}

function mean(values: readonly number[]): number {
  return values.length === 0 ? 0 : values.reduce((s, v) => s + v, 0) / values.length;
}

/** Times of the runtime calls the step makes around its actions, from a pool whose `open` and sessions are wrapped. */
interface RuntimeTimings {
  /** BrowserPool.open: a slot, a context (its proxy set up) and a page. */
  open: number[];
  /** session.state(): cookies, storage (IndexedDB included) and sessionStorage, read after every action. */
  state: number[];
  /** The same by the call's place in its session: the step reads the state after action k in call k. */
  stateByCall: number[][];
  /** session.close(): the context closed when the job's run ends. */
  close: number[];
}

function instrument(pool: BrowserPool): RuntimeTimings {
  const t: RuntimeTimings = { open: [], state: [], stateByCall: [], close: [] };
  const open = pool.open.bind(pool);
  pool.open = async (request: OpenRequest): Promise<BrowserSession> => {
    const t0 = now();
    const session = await open(request);
    t.open.push(now() - t0);
    const state = session.state.bind(session);
    let calls = 0;
    session.state = async () => {
      const k = calls++;
      const s0 = now();
      try {
        return await state();
      } finally {
        const ms = now() - s0;
        t.state.push(ms);
        (t.stateByCall[k] ??= []).push(ms);
      }
    };
    const close = session.close.bind(session);
    session.close = async () => {
      const c0 = now();
      try {
        return await close();
      } finally {
        t.close.push(now() - c0);
      }
    };
    return session;
  };
  return t;
}

interface MemoryPeaks {
  samples: number;
  samplesAtLimit: number;
  nodeRss: number;
  browserPss: number;
  sum: number;
  sampleMs: number[];
}

/**
 * Every ~200 ms: the Node process's RSS and the PSS of every browser's
 * process tree (processTreeMemory of each browser pid the pool has had: a
 * browser replaced after 50 contexts keeps running until its last session
 * closes, so for a moment there are two). Peaks of each and of their sum in
 * one sample.
 */
function sampleMemory(pool: BrowserPool): { stop(): Promise<MemoryPeaks> } {
  const peaks: MemoryPeaks = { samples: 0, samplesAtLimit: 0, nodeRss: 0, browserPss: 0, sum: 0, sampleMs: [] };
  const pids = new Set<number>();
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const t0 = now();
      const rss = process.memoryUsage.rss();
      const stats = pool.stats();
      if (stats.pid !== null) pids.add(stats.pid);
      let pss = 0;
      for (const pid of [...pids]) {
        const bytes = await processTreeMemory(pid);
        if (bytes === null) pids.delete(pid);
        else pss += bytes;
      }
      peaks.samples++;
      if (stats.contexts >= CONTEXTS) peaks.samplesAtLimit++;
      peaks.nodeRss = Math.max(peaks.nodeRss, rss);
      peaks.browserPss = Math.max(peaks.browserPss, pss);
      peaks.sum = Math.max(peaks.sum, rss + pss);
      const took = now() - t0;
      peaks.sampleMs.push(took);
      await sleep(Math.max(0, SAMPLE_MS - took));
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      return peaks;
    },
  };
}

async function queueEmpty(db: Db): Promise<boolean> {
  const { rows } = await db.query<{ busy: boolean }>(`SELECT EXISTS (SELECT 1 FROM stepwise.job_queue) AS busy`);
  return !rows[0]!.busy;
}

async function describeJobs(db: Db, orgId: string): Promise<string> {
  const { rows } = await db.query<{ status: string; n: number }>(
    `SELECT status, count(*)::int AS n FROM stepwise.jobs WHERE organization_id = $1 GROUP BY status ORDER BY status`,
    [orgId],
  );
  return rows.map((r) => `${r.status}=${r.n}`).join(' ');
}

interface StepOutput {
  url: string | null;
  title: string | null;
  extracted: { claims?: unknown };
  screenshots: string[];
  durationsMs: (number | null)[];
}

async function runOn(db: Db, backend: 'pglite' | 'postgres', portal: Portal, opts: BenchOptions): Promise<void> {
  const runs = opts.runs ?? DEFAULT_RUNS;
  const warmup = Math.min(opts.warmup, MAX_WARMUP);
  const labels = actionLabels(portal.url);
  await migrate(db);
  await ensureStreamPartitions(db);
  // Warm-up runs belong to their own organization: the timed organization's rows, screenshots and blobs are the timed runs'.
  const warmOrg = await createOrganization(db, { name: 'bench warm-up', plan: 'ENTERPRISE' });
  const org = await createOrganization(db, { name: 'bench', plan: 'ENTERPRISE' });
  const warmWf = await defineWorkflow(db, warmOrg.id, { name: 'portal claims', definition: definition(portal.url) });
  const wf = await defineWorkflow(db, org.id, { name: 'portal claims', definition: definition(portal.url) });

  const blobDir = mkdtempSync(join(tmpdir(), 'stepwise-bench-blobs-'));
  const blobs = new FsBlobStore(blobDir);
  const logger = stderrLogger();
  const pool = new BrowserPool({ executablePath: CHROMIUM, maxContexts: CONTEXTS, logger });
  const timings = instrument(pool);
  const sessions = new WorkerBrowserSessions({
    runtime: () => Promise.resolve(pool),
    proxy: () => EgressProxy.start({ policy: new EgressPolicy(`127.0.0.1:${new URL(portal.url).port}`) }),
  });
  const worker = new Worker(db, { ...loadConfig({}).worker, ...WORKER }, logger, `bench-browser-${backend}`, {
    blobs,
    sealer: keyRingSealer(parseKeyRing(generateKeyEntry())),
    browser: sessions,
  });
  const input = { portal: portal.url, member: MEMBER };
  const runBudgetMs = (n: number) => 120_000 + n * 10_000;
  try {
    await worker.start();
    if (warmup > 0) {
      await startRuns(db, warmOrg.id, warmWf.id, Array.from({ length: warmup }, () => ({ input })));
      await waitUntil(() => queueEmpty(db), { intervalMs: POLL_MS, timeoutMs: runBudgetMs(warmup), what: 'the warm-up runs', describe: () => describeJobs(db, warmOrg.id) });
    }
    await settle((sql) => db.query(sql), opts.stats);
    for (const k of Object.keys(timings) as (keyof RuntimeTimings)[]) timings[k].length = 0;
    const launchesBefore = pool.stats().launches;
    log(`${backend}: ${runs} runs, ${CONTEXTS} at a time (load average now ${loadavg().map((l) => l.toFixed(2)).join(' ')})`);

    const sampler = sampleMemory(pool);
    const t0 = now();
    let seconds: number;
    let memory: MemoryPeaks;
    try {
      await startRuns(db, org.id, wf.id, Array.from({ length: runs }, () => ({ input })));
      await waitUntil(() => queueEmpty(db), {
        intervalMs: POLL_MS,
        timeoutMs: runBudgetMs(runs),
        what: `${runs} browser runs`,
        describe: () => describeJobs(db, org.id),
      });
      seconds = (now() - t0) / 1000;
    } finally {
      memory = await sampler.stop();
    }
    const launches = pool.stats().launches - launchesBefore;

    // Outcomes and outputs.
    const { rows: jobs } = await db.query<{ id: string; status: string; error: string | null; ms: number; output: StepOutput | null }>(
      `SELECT j.id, j.status, j.error_message AS error,
              extract(epoch FROM j.completed_at - j.started_at) * 1000 AS ms,
              (SELECT l.data -> 'output' FROM stepwise.execution_log l
                WHERE l.job_id = j.id AND l.kind = 11 ORDER BY l.seq DESC LIMIT 1) AS output
         FROM stepwise.jobs j WHERE j.organization_id = $1`,
      [org.id],
    );
    const failed = jobs.filter((j) => j.status !== 'COMPLETED');
    const wrong: string[] = [];
    for (const j of jobs) {
      if (j.status !== 'COMPLETED') continue;
      const o = j.output;
      if (!o) wrong.push(`${j.id}: no STEP_COMPLETED output`);
      else if (o.title !== 'Results') wrong.push(`${j.id}: title ${JSON.stringify(o.title)}`);
      else if (!isDeepStrictEqual(o.extracted.claims, EXPECTED_CLAIMS)) wrong.push(`${j.id}: extracted ${JSON.stringify(o.extracted.claims)}`);
      else if (o.screenshots.length !== 1) wrong.push(`${j.id}: ${o.screenshots.length} screenshots`);
      else if (o.durationsMs.length !== labels.length || o.durationsMs.some((d) => typeof d !== 'number')) wrong.push(`${j.id}: durationsMs ${JSON.stringify(o.durationsMs)}`);
    }
    const completed = jobs.length - failed.length;
    const runMs = jobs.filter((j) => j.status === 'COMPLETED').map((j) => Number(j.ms));
    emit({
      scenario: 'browser',
      backend,
      measure: 'runs',
      runs,
      completed,
      failures: failed.length + wrong.length,
      seconds: round(seconds, 3),
      runs_per_min: round((completed / seconds) * 60, 1),
      run_p50_ms: round(percentile(runMs, 0.5), 1),
      run_p95_ms: round(percentile(runMs, 0.95), 1),
      browser_launches: launches,
      // The machine's 1-minute load average at the end (2 cores): above ~2.5, something else was running.
      load_1m: round(loadavg()[0]!, 2),
    });
    for (const f of failed.slice(0, 5)) log(`${backend}: job ${f.id} ${f.status}: ${f.error ?? ''}`);
    for (const w of wrong.slice(0, 5)) log(`${backend}: wrong output, job ${w}`);
    check(jobs.length === runs, `${backend}: ${jobs.length} jobs exist, expected ${runs}`);
    check(failed.length === 0, `${backend}: ${failed.length} of ${runs} runs did not complete (${await describeJobs(db, org.id)})`);
    check(wrong.length === 0, `${backend}: ${wrong.length} runs completed with a wrong output`);

    // Per action, from the outputs' durationsMs.
    const outputs = jobs.map((j) => j.output!);
    const actionSums = outputs.map((o) => o.durationsMs.reduce<number>((s, d) => s + (d ?? 0), 0));
    labels.forEach((type, i) => {
      const ms = outputs.map((o) => o.durationsMs[i]!);
      // The state read after it (not in durationsMs): what keeping the session for a resume costs per action.
      const after = timings.stateByCall[i] ?? [];
      emit({
        scenario: 'browser',
        backend,
        measure: 'action',
        action: i,
        type,
        p50_ms: percentile(ms, 0.5),
        p95_ms: percentile(ms, 0.95),
        state_after_p50_ms: round(percentile(after, 0.5), 1),
        state_after_p95_ms: round(percentile(after, 0.95), 1),
      });
    });

    // Where a run's time goes, in means per run: the step's actions, the runtime calls around them, and the rest
    // (claim to step start, sealing and checkpointing after each action, storing the screenshot, completion).
    check(timings.open.length === runs, `${backend}: ${timings.open.length} contexts opened in the timed part, expected ${runs}`);
    const runMean = mean(runMs);
    const openMean = mean(timings.open);
    const actionsMean = mean(actionSums);
    const stateMean = (timings.state.reduce((s, v) => s + v, 0)) / runs;
    emit({
      scenario: 'browser',
      backend,
      measure: 'breakdown',
      run_mean_ms: round(runMean, 1),
      actions_mean_ms: round(actionsMean, 1),
      open_context_mean_ms: round(openMean, 1),
      open_context_p95_ms: round(percentile(timings.open, 0.95), 1),
      state_capture_calls_per_run: round(timings.state.length / runs, 2),
      state_capture_p50_ms: round(percentile(timings.state, 0.5), 1),
      state_capture_mean_ms_per_run: round(stateMean, 1),
      rest_mean_ms: round(runMean - actionsMean - openMean - stateMean, 1),
      close_context_p50_ms: round(percentile(timings.close, 0.5), 1),
    });

    emit({
      scenario: 'browser',
      backend,
      measure: 'memory',
      contexts: CONTEXTS,
      samples: memory.samples,
      samples_at_limit: memory.samplesAtLimit,
      peak_node_rss_mib: round(memory.nodeRss / MIB, 1),
      peak_browser_pss_mib: round(memory.browserPss / MIB, 1),
      peak_sum_mib: round(memory.sum / MIB, 1),
      sample_p50_ms: round(percentile(memory.sampleMs, 0.5), 1),
    });

    // Bytes each run leaves.
    const { rows: stream } = await db.query<{ n: number; bytes: string; data_bytes: string }>(
      `SELECT count(*)::int AS n, coalesce(sum(pg_column_size(l.*)), 0)::bigint AS bytes, coalesce(sum(pg_column_size(l.data)), 0)::bigint AS data_bytes
         FROM stepwise.execution_log l WHERE l.organization_id = $1`,
      [org.id],
    );
    const { rows: shots } = await db.query<{ n: number; hashes: number; bytes: string; row_bytes: string }>(
      `SELECT count(*)::int AS n, count(DISTINCT sha256)::int AS hashes, coalesce(sum(bytes), 0)::bigint AS bytes,
              coalesce(sum(pg_column_size(s.*)), 0)::bigint AS row_bytes
         FROM stepwise.execution_screenshots s WHERE s.organization_id = $1`,
      [org.id],
    );
    const { rows: stored } = await db.query<{ n: number; bytes: string; refs: string }>(
      `SELECT count(*)::int AS n, coalesce(sum(bytes), 0)::bigint AS bytes, coalesce(sum(ref_count), 0)::bigint AS refs
         FROM stepwise.screenshot_blobs WHERE organization_id = $1 AND stored`,
      [org.id],
    );
    const { rows: kinds } = await db.query<{ name: string; n: number }>(
      `SELECT k.name, count(*)::int AS n FROM stepwise.execution_log l JOIN stepwise.stream_kinds k USING (kind)
        WHERE l.organization_id = $1 GROUP BY k.name ORDER BY n DESC`,
      [org.id],
    );
    const { rows: logs } = await db.query<{ level: number; message: string; n: number }>(
      `SELECT level, left(message, 160) AS message, count(*)::int AS n FROM stepwise.execution_log
        WHERE organization_id = $1 AND kind = 0 GROUP BY 1, 2 ORDER BY n DESC LIMIT 5`,
      [org.id],
    );
    log(`${backend}: stream rows by kind: ${kinds.map((k) => `${k.name} ${k.n}`).join(', ')}`);
    for (const l of logs) log(`${backend}:   log level ${l.level} ×${l.n}: ${l.message}`);
    const files = await blobs.list(`screenshots/${org.id}/`);
    const fileBytes = files.reduce((s, f) => s + f.size, 0);
    const s = shots[0]!;
    const b = stored[0]!;
    check(s.n === runs, `${backend}: ${s.n} screenshot rows, expected ${runs}`);
    check(files.length === b.n, `${backend}: ${files.length} blob files, but ${b.n} stored screenshot_blobs rows`);
    check(Number(b.refs) === s.n, `${backend}: screenshot_blobs count ${b.refs} references for ${s.n} screenshot rows`);
    const st = stream[0]!;
    emit({
      scenario: 'browser',
      backend,
      measure: 'storage',
      stream_rows_per_run: round(st.n / runs, 2),
      stream_bytes_per_run: round(Number(st.bytes) / runs, 1),
      bytes_per_stream_row: round(Number(st.bytes) / st.n, 1),
      stream_data_bytes_per_run: round(Number(st.data_bytes) / runs, 1),
      screenshot_rows: s.n,
      screenshot_distinct_sha256: s.hashes,
      screenshot_blobs_stored: b.n,
      screenshot_bytes_captured_per_run: round(Number(s.bytes) / runs, 1),
      screenshot_bytes_stored_per_run: round(fileBytes / runs, 1),
      screenshot_row_bytes_per_run: round(Number(s.row_bytes) / runs, 1),
    });
  } finally {
    await worker.stop();
    await sessions.close();
    await blobs.close();
    await rm(blobDir, { recursive: true, force: true });
  }
}

export async function browser(opts: BenchOptions): Promise<void> {
  if (!existsSync(CHROMIUM)) throw new BenchCheckError(`no Chromium at ${CHROMIUM} (apt-get install chromium, or set STEPWISE_CHROMIUM_PATH)`);
  const runs = opts.runs ?? DEFAULT_RUNS;
  log(`browser: ${runs} runs of login → search → extract → screenshot per backend (+${Math.min(opts.warmup, MAX_WARMUP)} warm-up), ${CONTEXTS} contexts`);
  const portal = await startPortal();
  try {
    log('stepwise on postgres…');
    await withScratchDatabase('stepwise_browser', async (scratch) => {
      const db = new PostgresDb(scratch.url, { poolSize: 4, role: 'bench' });
      try {
        await runOn(db, 'postgres', portal, opts);
      } finally {
        await db.close();
      }
    });
    log('stepwise on pglite…');
    const db = await PgliteDb.open(); // in memory
    try {
      await runOn(db, 'pglite', portal, opts);
    } finally {
      await db.close();
    }
  } finally {
    await portal.close();
  }
}
