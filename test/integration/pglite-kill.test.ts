import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { PGlite } from '@electric-sql/pglite';
import { amcheck } from '@electric-sql/pglite/contrib/amcheck';
import { PgliteDb } from '../../src/db/index.js';
import { acquireDataDirLock } from '../../src/db/lockfile.js';
import { STREAM_KINDS } from '../../src/store/stream-codes.js';
import { runCli } from '../helpers/cli.js';
import { backend } from '../helpers/db.js';
import { startTestServer, type TestServer } from '../helpers/http-server.js';
import { LOCAL_TEST_EGRESS } from '../helpers/local-egress.js';
import { rng } from '../helpers/rng.js';

/**
 * kill -9 of a whole embedded `stepwise serve` (API and worker in one
 * process, owning its PGlite data directory) in the middle of a burst of
 * API writes, then a restart on the same directory. crash.test.ts kills a
 * worker alone between two steps; here the process that dies is the one
 * accepting starts and signals, so what is tested is that a 202 means
 * committed and that the directory survives a kill at any write.
 *
 * The kill is not timed: the local side-effect server fires it from inside
 * the handler of a step's request once enough starts were accepted and
 * enough starts and signals are waiting for their answers (so the one
 * PGlite connection has writes queued and running), and never answers that
 * request. So at the kill there is always a side effect in flight (its
 * STEP_STARTED is committed before the request is sent: it must run again,
 * once), and API writes in flight, whose answers (if any came) are lost:
 * they must exist whole or not at all, which retrying them with their
 * idempotency keys shows. The figures of each run are printed at the end.
 */

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Starts accepted (job ids with a 202) before the kill may fire. */
const ACCEPTED_BEFORE_KILL = 150;
/** Request loops driving the API at once, and how many of them must be waiting for an answer at the kill. */
const STARTERS = 6;
const SIGNALLERS = 10;
/** Requests of each kind waiting for an answer when the kill may fire. */
const STARTS_IN_FLIGHT_AT_KILL = 3;
const SIGNALS_IN_FLIGHT_AT_KILL = 3;
const BATCH_SIZE = 8;
/** The burst stops by itself after this many start requests (the kill comes long before). */
const MAX_START_REQUESTS = 3_000;
/** The killed process's leases expire this long after it renewed them; the restarted worker then takes its jobs over. */
const LEASE_MS = 3_000;

/** Indexes of the workflow's steps, as the stream's step_index names them. */
const STEP_INDEX = { a: 0, b: 3 } as const;
type EffectStep = keyof typeof STEP_INDEX;

const definition = (effects: string) => ({
  steps: [
    {
      id: 'a',
      type: 'http',
      method: 'POST',
      url: `${effects}/effect`,
      // The idempotency key a real endpoint would dedupe on: the run's own start key and the step.
      headers: { 'x-effect-key': '{{ input.token }}:a' },
      body: { token: '{{ input.token }}', step: 'a' },
    },
    { id: 'shape', type: 'transform', expression: '{ "token": input.token, "status": steps.a.status }' },
    { id: 'go', type: 'wait', signal: 'go' },
    {
      id: 'b',
      type: 'http',
      method: 'POST',
      url: `${effects}/effect`,
      headers: { 'x-effect-key': '{{ input.token }}:b' },
      body: { token: '{{ steps.shape.token }}', step: 'b', signal: '{{ steps.go.n }}' },
    },
  ],
});

interface Serving {
  base: string;
  ownerKey: string | null;
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  output(): string;
}

const SERVE_ENV = {
  DATABASE_URL: '',
  LOG_LEVEL: 'warn',
  // The steps call the side-effect server on this machine: the egress policy must admit it.
  STEPWISE_EGRESS_ALLOW: LOCAL_TEST_EGRESS,
  STEPWISE_LEASE_MS: String(LEASE_MS),
  STEPWISE_POLL_INTERVAL_MS: '200',
  // The burst is the point: the API's per-key rate limit must not answer it with 429s.
  STEPWISE_RATE_LIMIT_PER_SECOND: '1000000',
  STEPWISE_RATE_LIMIT_BURST: '10000000',
};

/** `stepwise serve` on `dataDir` as a process of its own; resolves once it listens. */
async function serve(dataDir: string): Promise<Serving> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'serve', '--port', '0', '--data-dir', dataDir], {
    cwd: ROOT,
    env: { ...process.env, ...SERVE_ENV },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once('exit', (code, signal) => r({ code, signal })));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const base = await new Promise<string>((resolve, reject) => {
    // A bound for a hang only (a fresh directory's initdb and migrations take ~10 s on 2 cores).
    const timer = setTimeout(() => reject(new Error(`serve did not listen within 60 s:\n${out}`)), 60_000);
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /listening on (http:\/\/[\d.]+:\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`serve exited (${code ?? signal}) before listening:\n${out}`));
    });
  });
  return { base, ownerKey: /^\s+(sw_[a-z0-9]{12}_[A-Za-z0-9_-]{43})\s*$/m.exec(out)?.[1] ?? null, child, exited, output: () => out };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

interface Answer {
  status: number;
  body: Json;
}

/** One start request: a single start (key in the Idempotency-Key header) or a batch (a key per run). */
interface StartRequest {
  kind: 'single' | 'batch';
  keys: string[];
  /** null: no answer (in flight at the kill, or refused because the process was gone). */
  answer: Answer | null;
}

interface Delivery {
  key: string;
  /** Sent to the killed process's worker (before the kill) or to the restarted one's. */
  phase: 'before' | 'after';
  answered: boolean;
}

/** `fn` over `items`, at most `n` at a time. */
async function eachAtOnce<T>(items: readonly T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

const skipMessage = 'pglite-kill test SKIPPED: it kills the process that owns an embedded PGlite data directory; this run tests the PostgreSQL server backend';
if (backend !== 'pglite') console.warn(skipMessage);

describe.skipIf(backend !== 'pglite')('PGlite: kill -9 of stepwise serve during a burst of writes, then restart', () => {
  let dir: string;
  let effects: TestServer;
  let first: Serving | undefined;
  let second: Serving | undefined;
  const deliveries: Delivery[] = [];
  let effectsReadAfterKill = 0;
  /** Set from the effect server's handler: the burst is over from that moment. */
  let phase: 'burst' | 'killed' | 'restarted' = 'burst';
  let killTrigger: () => boolean = () => false;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'stepwise-pglite-kill-'));
    effects = await startTestServer((req, res) => {
      const key = String(req.headers['x-effect-key'] ?? '');
      const delivery: Delivery = { key, phase: phase === 'restarted' ? 'after' : 'before', answered: false };
      deliveries.push(delivery);
      // Answered while its worker still lived (a response written after the kill reaches nobody).
      res.on('finish', () => (delivery.answered ||= phase === 'burst'));
      // This request stays unanswered: its worker dies while it is in flight.
      if (phase === 'burst' && killTrigger()) return true;
      // Sent by the killed process before it died, read from the socket after: in flight at the kill too.
      if (phase === 'killed') effectsReadAfterKill++;
      return false;
    });
  }, 30_000);

  afterAll(async () => {
    for (const s of [first, second]) {
      if (s && s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGKILL');
      await s?.exited;
    }
    await effects?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('every 202 survives and completes once, unanswered writes are whole or absent, streams have no gap, reconcile is clean', async () => {
    const dataDir = join(dir, 'data');
    const clock = performance.now();
    const ms: Record<string, number> = {};
    const lap = (name: string) => (ms[name] = Math.round(performance.now() - clock - Object.values(ms).reduce((a, b) => a + b, 0)));
    // A fresh directory, cloned from the run's migrated template as every PGlite test's database is (initdb
    // and the migrations would add ~10 s); serve finds no organization in it and does its first start.
    const seed = await PgliteDb.open({ dataDir, loadDataDir: new Blob([await readFile(inject('pgliteTemplatePath'))]) });
    await seed.close();
    first = await serve(dataDir);
    lap('firstStart');
    const ownerKey = first.ownerKey;
    expect(ownerKey, first.output()).toBeTruthy();
    const auth = { authorization: `Bearer ${ownerKey}` };

    /** A request to `base`; null when it got no answer (connection reset or refused). */
    const call = async (base: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer | null> => {
      try {
        const res = await fetch(`${base}${path}`, {
          method,
          headers: { ...auth, ...headers, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
          ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        });
        const text = await res.text();
        return { status: res.status, body: text ? JSON.parse(text) : null };
      } catch {
        return null;
      }
    };

    const created = await call(first.base, 'POST', '/v1/workflows', { name: 'kill-burst', definition: definition(effects.url) });
    expect(created?.status, JSON.stringify(created?.body)).toBe(201);
    const workflowId: string = created!.body.id;

    // ---- the burst -------------------------------------------------------
    const starts: StartRequest[] = [];
    /** Idempotency key (= the run's token) → job id, from every 202 before the kill. */
    const accepted = new Map<string, string>();
    /** Jobs whose "go" signal got its 202, and the signal ids those 202s named. */
    const signalled = new Set<string>();
    const signalIds: string[] = [];
    const unexpected: string[] = [];
    let signalsSent = 0;
    let signalsUnanswered = 0;
    let keySeq = 0;
    let kill: { acceptedJobs: number; startsInFlight: number; signalsInFlight: number; pid: number } | undefined;
    let startsInFlight = 0;
    let signalsInFlight = 0;

    const firstChild = first.child;
    killTrigger = () => {
      if (accepted.size < ACCEPTED_BEFORE_KILL || startsInFlight < STARTS_IN_FLIGHT_AT_KILL || signalsInFlight < SIGNALS_IN_FLIGHT_AT_KILL) return false;
      phase = 'killed';
      kill = { acceptedJobs: accepted.size, startsInFlight, signalsInFlight, pid: firstChild.pid! };
      firstChild.kill('SIGKILL');
      wakeAll();
      return true;
    };

    const random = rng(20);
    /** Accepted jobs waiting for their "go" signal to be sent, and signallers waiting for one. */
    const toSignal: string[] = [];
    const idle: (() => void)[] = [];
    let startersDone = 0;
    const wakeAll = () => idle.splice(0).forEach((wake) => wake());

    const starter = async (): Promise<void> => {
      while (phase === 'burst' && starts.length < MAX_START_REQUESTS) {
        const batch = random() < 0.3;
        const keys = Array.from({ length: batch ? BATCH_SIZE : 1 }, () => `run-${++keySeq}`);
        const req: StartRequest = { kind: batch ? 'batch' : 'single', keys, answer: null };
        starts.push(req);
        startsInFlight++;
        req.answer = batch
          ? await call(first!.base, 'POST', `/v1/workflows/${workflowId}/runs/batch`, {
              runs: keys.map((k) => ({ input: { token: k }, idempotencyKey: k })),
            })
          : await call(first!.base, 'POST', `/v1/workflows/${workflowId}/runs`, { input: { token: keys[0] } }, { 'idempotency-key': keys[0]! });
        startsInFlight--;
        if (!req.answer) break; // the process is gone
        if (req.answer.status !== 202) {
          unexpected.push(`start ${req.kind} → ${req.answer.status} ${JSON.stringify(req.answer.body)}`);
          continue;
        }
        const jobs: { jobId: string; created?: boolean }[] = batch ? req.answer.body.jobs : [req.answer.body];
        jobs.forEach((j, i) => {
          if (batch && j.created !== true) unexpected.push(`batch run ${keys[i]} not created: ${JSON.stringify(j)}`);
          accepted.set(keys[i]!, j.jobId);
          toSignal.push(j.jobId);
          idle.shift()?.();
        });
      }
      if (++startersDone === STARTERS) wakeAll();
    };
    // Each job waits for "go" after its first side effect; signals are stored, so one may come before the job waits.
    const signaller = async (): Promise<void> => {
      while (phase === 'burst' && startersDone < STARTERS) {
        const jobId = toSignal.shift();
        if (jobId === undefined) {
          await new Promise<void>((r) => idle.push(r));
          continue;
        }
        signalsSent++;
        signalsInFlight++;
        const sig = await call(first!.base, 'POST', `/v1/jobs/${jobId}/signals/go`, { payload: { n: signalsSent } });
        signalsInFlight--;
        if (!sig) {
          signalsUnanswered++;
          break;
        }
        if (sig.status === 202) {
          signalled.add(jobId);
          signalIds.push(sig.body.signalId);
        } else unexpected.push(`signal → ${sig.status} ${JSON.stringify(sig.body)}`);
      }
    };
    await Promise.all([...Array.from({ length: STARTERS }, starter), ...Array.from({ length: SIGNALLERS }, signaller)]);
    if (!kill) first.child.kill('SIGKILL'); // the burst ran out first: fail below rather than wait
    const died = await first.exited;
    lap('burst');

    expect(kill, `the kill never fired: ${accepted.size} accepted, ${deliveries.length} side effects, ${starts.length} start requests`).toBeDefined();
    expect(died.signal).toBe('SIGKILL');
    expect(unexpected).toEqual([]);
    // The dead process's lock is still there: the restart must take it over.
    expect((await readFile(join(dataDir, 'stepwise.lock'), 'utf8')).trim()).toBe(String(kill!.pid));

    // ---- restart on the same directory -------------------------------------
    phase = 'restarted';
    const reopenStarted = performance.now();
    second = await serve(dataDir);
    const reopenMs = Math.round(performance.now() - reopenStarted);
    lap('reopen');
    expect(second.ownerKey).toBeNull(); // the organization survived: no second first start
    expect((await readFile(join(dataDir, 'stepwise.lock'), 'utf8')).trim()).toBe(String(second.child.pid));
    const base = second.base;
    // Ready: the database answers, every migration is applied, the worker went round its loop.
    await vi.waitFor(
      async () => {
        const ready = await call(base, 'GET', '/health/ready');
        if (ready?.status !== 200) throw new Error(`not ready: ${JSON.stringify(ready)}`);
      },
      { timeout: 20_000, interval: 100 },
    );

    // Every 202 before the kill is there, with the job id it was answered with.
    const jobsByKey = new Map(accepted);
    const missing: string[] = [];
    await eachAtOnce([...accepted], 8, async ([key, jobId]) => {
      const job = await call(base, 'GET', `/v1/jobs/${jobId}?phi=mask`);
      if (job?.status !== 200) missing.push(`${key} (${jobId}): ${JSON.stringify(job)}`);
    });
    expect(missing).toEqual([]);

    // Starts without an answer: the retry with the same keys finds them whole (200 / created: false)
    // or creates them now (202 / created: true), and a batch is all one or all the other.
    const unanswered = starts.filter((s) => s.answer === null);
    let unansweredThatExisted = 0;
    for (const s of unanswered) {
      if (s.kind === 'single') {
        const again = await call(base, 'POST', `/v1/workflows/${workflowId}/runs`, { input: { token: s.keys[0] } }, { 'idempotency-key': s.keys[0]! });
        expect([200, 202], JSON.stringify(again)).toContain(again?.status);
        if (again!.status === 200) unansweredThatExisted++;
        jobsByKey.set(s.keys[0]!, again!.body.jobId);
      } else {
        const again = await call(base, 'POST', `/v1/workflows/${workflowId}/runs/batch`, {
          runs: s.keys.map((k) => ({ input: { token: k }, idempotencyKey: k })),
        });
        expect(again?.status, JSON.stringify(again)).toBe(202);
        const jobs: { jobId: string; created: boolean }[] = again!.body.jobs;
        expect(new Set(jobs.map((j) => j.created)).size, `batch ${s.keys[0]}… came back in part: ${JSON.stringify(jobs)}`).toBe(1);
        if (!jobs[0]!.created) unansweredThatExisted++;
        jobs.forEach((j, i) => jobsByKey.set(s.keys[i]!, j.jobId));
      }
    }
    // A retry of an answered start returns the same job, not a second one.
    const [someKey, someJob] = [...accepted][0]!;
    const replay = await call(base, 'POST', `/v1/workflows/${workflowId}/runs`, { input: { token: someKey } }, { 'idempotency-key': someKey });
    expect(replay).toMatchObject({ status: 200, body: { jobId: someJob } });

    // Signals that got no 202 (in flight, or never sent) are sent now; a second one beside one that did commit is
    // left unconsumed. A job whose unanswered signal had committed may have finished already: 409, ended COMPLETED.
    let resignalled = 0;
    let signalFoundCommitted = 0;
    const signalFaults: string[] = [];
    await eachAtOnce([...jobsByKey.values()].filter((id) => !signalled.has(id)), 8, async (jobId) => {
      const sig = await call(base, 'POST', `/v1/jobs/${jobId}/signals/go`, { payload: { n: 0 } });
      if (sig?.status === 409 && sig.body?.error?.details?.status === 'COMPLETED') signalFoundCommitted++;
      else if (sig?.status === 202) resignalled++;
      else signalFaults.push(`${jobId}: ${JSON.stringify(sig)}`);
    });
    expect(signalFaults).toEqual([]);

    // Every job completes (the bound only catches a hang: the dead worker's leases expire after LEASE_MS).
    const expected = jobsByKey.size;
    await vi.waitFor(
      async () => {
        const done = await call(base, 'GET', '/v1/jobs/count?status=COMPLETED');
        if (done?.body?.count !== expected) throw new Error(`${JSON.stringify(done?.body)} of ${expected} completed`);
      },
      { timeout: 60_000, interval: 200 },
    );
    lap('retryAndComplete');
    const all = await call(base, 'GET', '/v1/jobs/count');
    expect(all?.body).toMatchObject({ count: expected, capped: false });

    second.child.kill('SIGTERM');
    expect(await second.exited).toEqual({ code: 0, signal: null });

    // ---- the record, read from the directory itself ------------------------
    // PGlite itself (PgliteDb takes no extensions) with amcheck, under the data directory's lock like any opener.
    const releaseLock = acquireDataDirLock(dataDir);
    const db = new PGlite({ dataDir, extensions: { amcheck } });
    let corrupt: unknown[];
    let indexesChecked: number;
    let jobs: { id: string; status: string; idempotency_key: string; token: string; last_seq: number; attempts: number; consumed: number }[];
    let rows: { job_id: string; seq: number; kind: number; step_index: number | null }[];
    let queued: number;
    let storedSignalIds: Set<string>;
    try {
      // No corruption: every B-tree index of the schema agrees with its table (heapallindexed), and every table's
      // pages and tuples are sound. The extension goes again afterwards: the schema stays as the migrations left it.
      await db.exec('CREATE EXTENSION amcheck');
      const indexes = await db.query<{ name: string }>(
        `SELECT c.oid::regclass::text AS name, bt_index_check(c.oid, true)
           FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE a.amname = 'btree' AND n.nspname = 'stepwise' AND c.relkind = 'i' AND i.indisvalid`,
      );
      indexesChecked = indexes.rows.length;
      corrupt = (
        await db.query(
          `SELECT c.oid::regclass::text AS name, v.*
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace, LATERAL verify_heapam(c.oid) v
            WHERE n.nspname = 'stepwise' AND c.relkind IN ('r', 'm')`,
        )
      ).rows;
      await db.exec('DROP EXTENSION amcheck');
      jobs = (
        await db.query<(typeof jobs)[number]>(
          `SELECT id, status, idempotency_key, input->>'token' AS token, last_seq, attempts,
                  (SELECT count(*)::int FROM stepwise.job_signals s WHERE s.job_id = j.id AND s.consumed_at IS NOT NULL) AS consumed
             FROM stepwise.jobs j`,
        )
      ).rows;
      storedSignalIds = new Set((await db.query<{ id: string }>(`SELECT id FROM stepwise.job_signals`)).rows.map((r) => r.id));
      rows = (await db.query<(typeof rows)[number]>(`SELECT job_id, seq, kind, step_index FROM stepwise.execution_log ORDER BY job_id, seq`)).rows;
      queued = (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM stepwise.job_queue`)).rows[0]!.n;
    } finally {
      await db.close();
      releaseLock();
    }
    expect(corrupt).toEqual([]);
    expect(indexesChecked).toBeGreaterThan(50);

    // One job per key, the one its 202 named; nothing else.
    expect(jobs).toHaveLength(expected);
    const jobByKey = new Map(jobs.map((j) => [j.idempotency_key, j]));
    expect(jobByKey.size).toBe(expected);
    for (const [key, jobId] of jobsByKey) expect(jobByKey.get(key)?.id, key).toBe(jobId);
    expect(jobs.filter((j) => j.status !== 'COMPLETED' || j.token !== j.idempotency_key || j.consumed !== 1)).toEqual([]);
    expect(queued).toBe(0);
    // Every signal answered 202 before the kill is stored.
    expect(signalIds.filter((id) => !storedSignalIds.has(id))).toEqual([]);

    // Streams: seq 1..n with no gap or duplicate, n = last_seq, and exactly one terminal row, JOB_COMPLETED.
    const TERMINAL = new Set<number>([
      STREAM_KINDS.JOB_COMPLETED,
      STREAM_KINDS.JOB_FAILED,
      STREAM_KINDS.JOB_CANCELLED,
      STREAM_KINDS.JOB_TIMED_OUT,
      STREAM_KINDS.JOB_PARTIAL_SUCCESS,
    ]);
    const streams = new Map<string, typeof rows>();
    for (const r of rows) (streams.get(r.job_id) ?? streams.set(r.job_id, []).get(r.job_id)!).push(r);
    const streamFaults: string[] = [];
    for (const j of jobs) {
      const s = streams.get(j.id) ?? [];
      if (s.some((r, i) => r.seq !== i + 1) || s.length !== j.last_seq) streamFaults.push(`${j.id}: seqs ${s.map((r) => r.seq).join(',')} last_seq ${j.last_seq}`);
      const ends = s.filter((r) => TERMINAL.has(r.kind)).map((r) => r.kind);
      if (ends.length !== 1 || ends[0] !== STREAM_KINDS.JOB_COMPLETED) streamFaults.push(`${j.id}: terminal rows ${ends.join(',')}`);
    }
    expect(streamFaults).toEqual([]);

    // Side effects: every run's two keys arrived; a key arrived twice only when its first delivery went to the
    // killed worker (the documented at-least-once window: STEP_STARTED committed, outcome not), and then the
    // step's stream shows it started twice.
    const byKey = new Map<string, Delivery[]>();
    for (const d of deliveries) (byKey.get(d.key) ?? byKey.set(d.key, []).get(d.key)!).push(d);
    const effectFaults: string[] = [];
    let redelivered = 0;
    let redeliveredAnswered = 0;
    for (const j of jobs) {
      for (const step of Object.keys(STEP_INDEX) as EffectStep[]) {
        const key = `${j.idempotency_key}:${step}`;
        const ds = byKey.get(key) ?? [];
        const started = (streams.get(j.id) ?? []).filter((r) => r.kind === STREAM_KINDS.STEP_STARTED && r.step_index === STEP_INDEX[step]).length;
        const completed = (streams.get(j.id) ?? []).filter((r) => r.kind === STREAM_KINDS.STEP_COMPLETED && r.step_index === STEP_INDEX[step]).length;
        const before = ds.filter((d) => d.phase === 'before').length;
        const after = ds.filter((d) => d.phase === 'after').length;
        if (ds.length === 0) effectFaults.push(`${key}: never delivered`);
        if (before > 1 || after > 1) effectFaults.push(`${key}: delivered ${before}× before and ${after}× after the kill`);
        if (ds.length > started) effectFaults.push(`${key}: delivered ${ds.length}× but started ${started}×`);
        if (completed !== 1) effectFaults.push(`${key}: ${completed} STEP_COMPLETED rows`);
        if (ds.length === 2) {
          redelivered++;
          if (ds[0]!.answered) redeliveredAnswered++;
        }
      }
    }
    expect(effectFaults).toEqual([]);
    // Counted once by key, as an idempotent endpoint counts them: exactly two effects per run.
    expect(byKey.size).toBe(2 * expected);
    // The request the kill landed in was in flight; it ran again after the restart.
    expect(redelivered).toBeGreaterThanOrEqual(1);

    lap('stopAndVerify');

    // The read model agrees with the jobs (dashboard rows and aggregates).
    const reconcile = await runCli(['reconcile', '--data-dir', dataDir], { LOG_LEVEL: 'silent' });
    expect(reconcile.code, reconcile.stderr).toBe(0);
    expect(JSON.parse(reconcile.stdout)).toMatchObject({ clean: true });
    lap('reconcile');

    const report = {
      acceptedJobsAtKill: kill!.acceptedJobs,
      jobs202BeforeKill: accepted.size,
      startRequests: starts.length,
      batches: starts.filter((s) => s.kind === 'batch').length,
      startsInFlightAtKill: kill!.startsInFlight,
      signalsInFlightAtKill: kill!.signalsInFlight,
      startsUnanswered: unanswered.length,
      unansweredThatHadCommitted: unansweredThatExisted,
      signalsSent,
      signalsUnanswered,
      resignalledAfterRestart: resignalled,
      unansweredSignalsFoundCommitted: signalFoundCommitted,
      jobsTotal: expected,
      indexesChecked,
      sideEffectDeliveries: deliveries.length,
      sideEffectsInFlightAtKill: 1 + effectsReadAfterKill,
      redelivered,
      redeliveredWhoseFirstWasAnswered: redeliveredAnswered,
      resumedJobs: jobs.filter((j) => j.attempts > 1).length,
      reopenMs,
      ms,
    };
    console.info(`pglite-kill: ${JSON.stringify(report)}`);
  }, 150_000);
});
