import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiTraffic } from '../helpers/api-traffic.js';
import { runCli } from '../helpers/run-cli.js';
import { backend } from '../helpers/db.js';
import { crashRestart, restartFast, terminateStepwiseBackends, type Disruption } from '../helpers/db-disruptions.js';
import { setUpWorkload, type Workload } from '../helpers/outage-workload.js';
import { createCluster, pgClustersUnavailable, type PgCluster } from '../helpers/pg-cluster.js';
import { stepwiseConnections } from '../helpers/pg-connections.js';
import { checkRuns, waitForRunsToEnd } from '../helpers/run-invariants.js';
import { startSideEffectServer, type SideEffectServer } from '../helpers/side-effect-server.js';
import { SseClient } from '../helpers/sse.js';
import { startApi, startWorkerProcess, type StepwiseProcess } from '../helpers/stepwise-process.js';
import { duringDisruption, isCheckoutTimeout, latencyByRoute, recoveries, statusCounts, unavailableWithoutRetryAfter } from '../helpers/traffic-report.js';

/**
 * The database restarts under load, and Stepwise carries on without being
 * restarted itself: `stepwise serve --no-worker` and two `stepwise worker`
 * processes on a PostgreSQL cluster of this test's own, a steady mix of API
 * traffic (starts single and batched, signals, cancels, lists, a job, its
 * stream and timeline, analytics), and during it a fast restart, a crash
 * (immediate stop, recovery at start) and pg_terminate_backend of every
 * Stepwise connection. Afterwards every run the API accepted ended exactly
 * once (its side effect counted by key), no stream has a gap or duplicate,
 * reconcile finds no drift, every request of an outage was answered 503 with
 * Retry-After (none 500, none hung), and the pools and LISTEN connections
 * came back. The 10-minute version with its figures is `npm run bench -- soak`.
 *
 * Server only (the PGlite counterpart is the kill -9 test), and only when the
 * run tests the server backend, so CI runs it once.
 */
const unavailable = backend !== 'postgres' ? 'server backend only (set STEPWISE_TEST_DATABASE_URL)' : pgClustersUnavailable();

/** Requests per second: a third starts, the rest signals, cancels and reads (the 2-core CI machine keeps up with several times this). */
const RATE_PER_SECOND = 30;
/** A request unanswered this long is hung: the API answers 503 within its 5 s connection wait, so this only catches a hang. */
const REQUEST_TIMEOUT_MS = 20_000;
/** Traffic before the first disruption and after each (long enough for work to be in flight across every one). */
const STEADY_MS = 5_000;

const DATABASE = 'postgres';

describe.skipIf(unavailable !== null)(`the database restarted under load${unavailable ? ` (skipped: ${unavailable})` : ''}`, () => {
  let cluster: PgCluster;
  let effects: SideEffectServer;
  let api: StepwiseProcess & { url: string };
  let workers: StepwiseProcess[] = [];
  let workload: Workload;

  beforeAll(async () => {
    cluster = await createCluster({ name: 'restart' });
    effects = await startSideEffectServer();
    const env = {
      // The http steps call the side-effect server on loopback, which the egress policy refuses unless named.
      STEPWISE_EGRESS_ALLOW: '127.0.0.1',
      // A claim whose answer a restart lost is taken again when its lease expires: 10 s keeps the test short
      // while the heartbeat (every 3.3 s) still renews across any of the outages here.
      STEPWISE_LEASE_MS: '10000',
      STEPWISE_POLL_INTERVAL_MS: '500',
      STEPWISE_DB_POOL_SIZE: '5',
    };
    api = await startApi({ name: 'api', databaseUrl: cluster.url(DATABASE), env });
    [workload, ...workers] = await Promise.all([
      setUpWorkload({ databaseUrl: cluster.url(DATABASE), apiUrl: api.url, sideEffectUrl: effects.url }),
      startWorkerProcess({ name: 'worker-1', databaseUrl: cluster.url(DATABASE), env }),
      startWorkerProcess({ name: 'worker-2', databaseUrl: cluster.url(DATABASE), env }),
    ]) as [Workload, StepwiseProcess, StepwiseProcess];
  });

  afterAll(async () => {
    await Promise.all([api?.stop(), ...workers.map((w) => w.stop())]);
    await effects?.close();
    await cluster?.destroy();
  });

  it('every accepted run ends exactly once, streams are whole, outages answer 503 with Retry-After, and connections come back', async () => {
    const traffic = new ApiTraffic({ apiUrl: api.url, workload, ratePerSecond: RATE_PER_SECOND, requestTimeoutMs: REQUEST_TIMEOUT_MS });
    const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
    const disruptions: Disruption[] = [];
    // A dashboard watching live changes: it holds the API's LISTEN connection, and must keep receiving through it all.
    const live = await SseClient.open(`${api.url}/v1/events`, { authorization: `Bearer ${workload.apiKey}` });
    expect(live.status).toBe(200);
    traffic.start();
    await pause(STEADY_MS);
    const connectionsBefore = await stepwiseConnections(cluster);
    let liveBeforeLast = 0;
    for (const disrupt of [restartFast, crashRestart, terminateStepwiseBackends]) {
      liveBeforeLast = live.messages.length;
      disruptions.push(await disrupt(cluster));
      await pause(STEADY_MS);
    }
    await traffic.stop();
    const owed = await traffic.settle(60_000);
    const open = await waitForRunsToEnd(cluster, DATABASE, traffic.runs.values(), 60_000);
    const runs = await checkRuns(cluster, DATABASE, traffic.runs.values(), effects);
    const counts = statusCounts(traffic.samples, disruptions);
    const recovered = await recoveries(traffic.samples, disruptions, cluster, DATABASE);
    // Shown with every run, failing or not: what happened, for whoever reads the CI log.
    console.info(
      JSON.stringify({
        requests: traffic.samples.length,
        skipped: traffic.skipped,
        owed,
        open,
        counts,
        latency: latencyByRoute(traffic.samples, disruptions),
        recovered,
        runs: { ...runs, streamFaults: runs.streamFaults.slice(0, 3) },
        disruptions,
        logged: Object.fromEntries([api, ...workers].map((p) => [p.name, Object.fromEntries(p.messages)])),
      }),
    );

    // Nothing died: the processes ran through all three without a restart of their own.
    for (const p of [api, ...workers]) expect(p.exit, `${p.name} exited:\n${p.text()}`).toBeNull();

    // Every run the API accepted ended once, as expected, its side effect made exactly once.
    expect(owed).toEqual({ unacknowledgedStarts: 0, gatedNotActedOn: 0 });
    expect(runs, JSON.stringify(runs)).toMatchObject({
      notEnded: [],
      wrongOutcome: [],
      duplicateEffectCount: 0,
      missingEffects: [],
      effectsOfCancelled: [],
      unknownJobs: 0,
      neverAccepted: 0,
      streamFaultCount: 0,
      ok: true,
    });
    expect(runs.completed).toBeGreaterThan(0);
    expect(runs.cancelled).toBeGreaterThan(0);

    // Outages answered 503 with Retry-After; nothing answered 500, nothing hung or was cut off.
    const all = { ...counts.during };
    for (const [status, n] of Object.entries(counts.outside)) all[status] = (all[status] ?? 0) + n;
    for (const status of Object.keys(all)) {
      const code = Number(status);
      expect(Number.isInteger(code) && (code < 500 || code === 503), `answers ${status}: ${JSON.stringify(counts)}`).toBe(true);
    }
    expect(all['503'] ?? 0, 'the restarts were seen by the API').toBeGreaterThan(0);
    expect(unavailableWithoutRetryAfter(traffic.samples)).toBe(0);
    // Outside the disruptions a 503 can only be the API shedding load (no pooled connection within 5 s) on a
    // starved machine; one that blames the database there would be a failure not passing with the restart.
    const strayUnavailable = traffic.samples.filter((s) => s.status === 503 && !duringDisruption(s, disruptions) && !isCheckoutTimeout(s));
    expect(strayUnavailable, `503s outside the disruptions: ${JSON.stringify(strayUnavailable.slice(0, 5))}`).toEqual([]);
    for (const r of recovered) expect(r.firstOkMs, `${r.kind}: no request answered 2xx afterwards`).not.toBeNull();

    // Reconcile finds the read model in step with the jobs.
    const reconcile = await runCli(['reconcile', '--database-url', cluster.url(DATABASE)], { LOG_LEVEL: 'silent' });
    expect(reconcile.code, reconcile.stdout + reconcile.stderr).toBe(0);
    expect(JSON.parse(reconcile.stdout)).toMatchObject({ clean: true });

    // The live view went on: still open, and told of changes made after the last disruption.
    expect(live.messages.length).toBeGreaterThan(liveBeforeLast);
    const liveEnded = await Promise.race([live.ended, pause(0).then(() => 'open')]);
    expect(liveEnded).toBe('open');
    live.close();

    // The LISTEN connections came back (one per process), and the pools hold no more than before the first disruption.
    let after: Record<string, number> = {};
    const deadline = Date.now() + 45_000;
    for (;;) {
      after = await stepwiseConnections(cluster);
      const listening = after['stepwise-api-listen'] === 1 && after['stepwise-worker-listen'] === 2;
      const pooled = (after['stepwise-api'] ?? 0) <= 5 && (after['stepwise-worker'] ?? 0) <= 10;
      if ((listening && pooled) || Date.now() > deadline) break;
      await pause(250);
    }
    expect({ before: connectionsBefore, after }).toMatchObject({
      before: { 'stepwise-api-listen': 1, 'stepwise-worker-listen': 2 },
      after: { 'stepwise-api-listen': 1, 'stepwise-worker-listen': 2 },
    });
    expect(after['stepwise-api'] ?? 0).toBeLessThanOrEqual(5);
    expect(after['stepwise-worker'] ?? 0).toBeLessThanOrEqual(10);
    console.info(JSON.stringify({ connections: { before: connectionsBefore, after } }));
  }, 150_000);
});
