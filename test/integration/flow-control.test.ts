import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defineWorkflow, startRuns, type Worker } from '../../src/engine/index.js';
import { rateLimitService } from '../../src/engine/rate-limits.js';
import { findJob, listStream } from '../../src/store/index.js';
import { client, createTestApp, expectError, type ApiClient } from '../helpers/api.js';
import { createTestDb, type TestDb } from '../helpers/db.js';
import { seedOrg, startWorker, waitForJob } from '../helpers/fixtures.js';
import { callGate, type CallGate } from '../helpers/call-gate.js';
import { startTestServer, type TestServer } from '../helpers/http-server.js';

let t: TestDb;
let srv: TestServer;
let worker: Worker;
let worker2: Worker;
let app: FastifyInstance;
const inFlight = new Map<string, number>();
const peak = new Map<string, number>();
/** Per group: the request ids in the order their calls arrived, and when. */
const arrivals = new Map<string, { id: string; at: number }[]>();
/** Per gated group (`?gate=N&total=M`): its gate. */
const gates = new Map<string, CallGate>();

beforeAll(async () => {
  t = await createTestDb();
  // GET /<group>/<id>?ms=N answers after N ms, counting calls in flight per group.
  srv = await startTestServer((req, res) => {
    const url = new URL(req.url!, 'http://x');
    const [, group, id] = url.pathname.split('/');
    const list = arrivals.get(group!) ?? [];
    list.push({ id: id!, at: Date.now() });
    arrivals.set(group!, list);
    const now = (inFlight.get(group!) ?? 0) + 1;
    inFlight.set(group!, now);
    peak.set(group!, Math.max(peak.get(group!) ?? 0, now));
    const answer = () => {
      inFlight.set(group!, inFlight.get(group!)! - 1);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    };
    const gate = Number(url.searchParams.get('gate') ?? 0);
    if (gate === 0) {
      setTimeout(answer, Number(url.searchParams.get('ms') ?? 0));
      return true;
    }
    // ?gate=N&total=M: held until N are in flight at once or all M have arrived (helpers/call-gate.ts).
    let g = gates.get(group!);
    if (!g) gates.set(group!, (g = callGate(gate, Number(url.searchParams.get('total')))));
    g.hold(answer, now);
    return true;
  });
  // Two workers claim side by side (on the server, concurrently over the pool): limits must hold across them.
  worker = startWorker(t.db, { concurrency: 50, pollIntervalMs: 20 });
  worker2 = startWorker(t.db, { concurrency: 50, pollIntervalMs: 20 });
  app = await createTestApp(t.db);
});

afterAll(async () => {
  await worker?.stop();
  await worker2?.stop();
  await app?.close();
  await srv?.close();
  await t?.close();
});

/** A call of `group` answered after `ms`, or held by `gate` (`gate=N&total=M`, see the server above). */
function call(group: string, ms: number, extra: Record<string, unknown> = {}, gate = '') {
  return { id: 'call', type: 'http', method: 'GET', url: `${srv.url}/${group}/{{ input.n }}?ms=${ms}${gate ? `&${gate}` : ''}`, ...extra };
}

async function waitAll(organizationId: string, ids: string[], timeoutMs = 30_000): Promise<void> {
  for (const id of ids) expect((await waitForJob(t.db, organizationId, id, timeoutMs)).status).toBe('COMPLETED');
}

describe('concurrency keys', () => {
  it('at most `limit` runs of a key run at once, in the order they were started; other keys run meanwhile', async () => {
    const { organizationId } = await seedOrg(t.db, 'keys');
    const wf = await defineWorkflow(t.db, organizationId, {
      name: 'per-customer',
      definition: { concurrency: [{ key: 'input.customer', limit: 1 }], steps: [call('{{ input.customer }}', 60)] },
    });
    const runs = await startRuns(
      t.db,
      organizationId,
      wf.id,
      [1, 2, 3, 4].flatMap((n) => [{ input: { customer: 'ckA', n: `a${n}` } }, { input: { customer: 'ckB', n: `b${n}` } }]),
    );
    await waitAll(organizationId, runs.map((r) => r.id));
    expect(peak.get('ckA')).toBe(1);
    expect(peak.get('ckB')).toBe(1);
    expect(arrivals.get('ckA')!.map((a) => a.id)).toEqual(['a1', 'a2', 'a3', 'a4']);
    expect(arrivals.get('ckB')!.map((a) => a.id)).toEqual(['b1', 'b2', 'b3', 'b4']);
    // The two customers were served side by side, not one after the other.
    expect(arrivals.get('ckB')![0]!.at).toBeLessThan(arrivals.get('ckA')![2]!.at);
  });

  it('a limit of 2 runs two at a time; runs without a key value are not limited', async () => {
    const { organizationId } = await seedOrg(t.db, 'keys-2');
    const wf = await defineWorkflow(t.db, organizationId, {
      name: 'two-at-a-time',
      definition: { concurrency: [{ key: 'input.customer', limit: 2 }], steps: [call('{{ input.group }}', 60, {}, '{{ input.gate }}')] },
    });
    const runs = await startRuns(t.db, organizationId, wf.id, [
      ...Array.from({ length: 6 }, (_, i) => ({ input: { customer: 'c', group: 'ck2', n: `x${i}`, gate: 'gate=2&total=6' } })),
      ...Array.from({ length: 4 }, (_, i) => ({ input: { group: 'cknone', n: `y${i}`, gate: 'gate=3&total=4' } })),
    ]);
    await waitAll(organizationId, runs.map((r) => r.id));
    expect(peak.get('ck2')).toBe(2);
    expect(peak.get('cknone')).toBeGreaterThanOrEqual(3);
  });

  it("a long line on one key does not hold up another key's run", async () => {
    const { organizationId } = await seedOrg(t.db, 'keys-line');
    const wf = await defineWorkflow(t.db, organizationId, {
      name: 'line',
      definition: { concurrency: [{ key: 'input.customer', limit: 1 }], steps: [call('{{ input.customer }}', 15)] },
    });
    // More runs of one key than a claim looks at (the worker wants at most 50: the keyed claim half of it, 4 candidates each).
    const line = await startRuns(t.db, organizationId, wf.id, Array.from({ length: 130 }, (_, i) => ({ input: { customer: 'lineA', n: `a${i}` } })));
    const [other] = await startRuns(t.db, organizationId, wf.id, [{ input: { customer: 'lineB', n: 'b' } }]);
    await waitAll(organizationId, [other!.id]);
    // B ran long before A's line was through, and A's line kept its order.
    expect(arrivals.get('lineA')!.length).toBeLessThan(60);
    await waitAll(organizationId, line.map((r) => r.id), 60_000);
    expect(peak.get('lineA')).toBe(1);
    expect(arrivals.get('lineA')!.map((a) => a.id)).toEqual(line.map((_, i) => `a${i}`));
  });
});

describe('rate limits', () => {
  it('a bucket shared by two workflows gates their steps: throttled steps wait (THROTTLED) without running early', async () => {
    const { organizationId } = await seedOrg(t.db, 'rates');
    const bucket = { bucket: 'payer-portal', key: 'input.payer', limit: 2, perMs: 1000 };
    const a = await defineWorkflow(t.db, organizationId, { name: 'a', definition: { rateLimits: [bucket], steps: [call('rl', 0, { rateLimit: 'payer-portal' })] } });
    const b = await defineWorkflow(t.db, organizationId, { name: 'b', definition: { rateLimits: [bucket], steps: [call('rl', 0)] } });
    const runs = [
      ...(await startRuns(t.db, organizationId, a.id, [1, 2, 3].map((n) => ({ input: { payer: 'P1', n: `a${n}` } })))),
      ...(await startRuns(t.db, organizationId, b.id, [1, 2, 3].map((n) => ({ input: { payer: 'P1', n: `b${n}` } })))),
    ];
    // Another payer has its own bucket.
    const [other] = await startRuns(t.db, organizationId, a.id, [{ input: { payer: 'P2', n: 'p2' } }]);
    await waitAll(organizationId, [...runs, other!].map((r) => r.id));
    expect(arrivals.get('rl')!.filter((x) => x.id !== 'p2')).toHaveLength(6);
    // When each step took its token: its STEP_STARTED follows the take at once (the request comes after that row's commit).
    let throttled = 0;
    const taken: number[] = [];
    for (const r of runs) {
      const job = (await findJob(t.db, organizationId, r.id))!;
      const stream = await listStream(t.db, organizationId, job, { limit: 100 });
      if (stream.some((e) => e.kind === 'THROTTLED')) throttled++;
      taken.push(stream.filter((e) => e.kind === 'STEP_STARTED').at(-1)!.ts.getTime());
    }
    taken.sort((x, y) => x - y);
    // Two at once (the burst), then one token every 500 ms: never sooner (30 ms for the worker clock against the database clock).
    for (let k = 2; k < 6; k++) expect(taken[k]! - taken[0]!).toBeGreaterThanOrEqual((k - 1) * 500 - 30);
    expect(throttled).toBeGreaterThanOrEqual(3);
  });

  it('concurrent takes never overdraw a bucket', async () => {
    const { organizationId } = await seedOrg(t.db, 'rates-race');
    const service = rateLimitService(t.db);
    const take = { bucket: 'race', key: 'k', limit: 5, perMs: 3_600_000 };
    const results = await Promise.all(Array.from({ length: 20 }, () => service.take(organizationId, [take])));
    expect(results.filter((w) => w === 0)).toHaveLength(5);
    // The sixth token comes after a 720 s refill.
    for (const w of results.filter((w) => w > 0)) expect(w).toBeGreaterThan(700_000);
    // All or none: with one bucket empty, a take of two buckets takes from neither.
    expect(await service.take(organizationId, [take, { ...take, bucket: 'other' }])).toBeGreaterThan(0);
    expect(await service.take(organizationId, [{ ...take, bucket: 'other', limit: 1 }])).toBe(0);
  });
});

describe('dedupe, debounce and priority through the API', () => {
  let api: ApiClient;
  let organizationId: string;
  beforeAll(async () => {
    const seeded = await seedOrg(t.db, 'api-flow');
    organizationId = seeded.organizationId;
    api = client(app, seeded.key);
  });

  async function workflow(definition: Record<string, unknown>): Promise<string> {
    const res = await api.post('/v1/workflows', { name: 'wf', definition });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return res.body.id;
  }

  const echo = { id: 'out', type: 'transform', expression: 'input' };

  it('dedupe: a second start with the key within the ttl returns the first job with 200; after the ttl a new one', async () => {
    const wf = await workflow({ dedupe: { key: 'input.eventId', ttlMs: 1_500 }, steps: [echo] });
    const first = await api.post(`/v1/workflows/${wf}/runs`, { input: { eventId: 'e1', v: 1 } });
    expect(first.status).toBe(202);
    const again = await api.post(`/v1/workflows/${wf}/runs`, { input: { eventId: 'e1', v: 2 } });
    expect(again.status).toBe(200);
    expect(again.body.jobId).toBe(first.body.jobId);
    const other = await api.post(`/v1/workflows/${wf}/runs`, { input: { eventId: 'e2' } });
    expect(other.status).toBe(202);
    const batch = await api.post(`/v1/workflows/${wf}/runs/batch`, { runs: [{ input: { eventId: 'e3' } }, { input: { eventId: 'e3' } }, { input: { eventId: 'e1' } }] });
    expect(batch.status).toBe(202);
    const [b0, b1, b2] = batch.body.jobs;
    expect(b0.created).toBe(true);
    expect(b1).toMatchObject({ jobId: b0.jobId, created: false });
    expect(b2).toMatchObject({ jobId: first.body.jobId, created: false });
    // The first job ran with its own input.
    expect((await waitForJob(t.db, organizationId, first.body.jobId)).result).toEqual({ eventId: 'e1', v: 1 });
    await new Promise((r) => setTimeout(r, 1_600));
    const later = await api.post(`/v1/workflows/${wf}/runs`, { input: { eventId: 'e1' } });
    expect(later.status).toBe(202);
    expect(later.body.jobId).not.toBe(first.body.jobId);
  });

  it('debounce: starts while the run waits replace its input and push its start back, never past maxDelayMs', async () => {
    const wf = await workflow({ debounce: { key: 'input.account', delayMs: 400, maxDelayMs: 1_200 }, steps: [echo] });
    const first = await api.post(`/v1/workflows/${wf}/runs`, { input: { account: 'acc1', v: 1 } });
    expect(first.status).toBe(202);
    const second = await api.post(`/v1/workflows/${wf}/runs`, { input: { account: 'acc1', v: 2 } });
    const third = await api.post(`/v1/workflows/${wf}/runs`, { input: { account: 'acc1', v: 3 } });
    expect([second.status, third.status]).toEqual([200, 200]);
    expect(second.body.jobId).toBe(first.body.jobId);
    expect(third.body.jobId).toBe(first.body.jobId);
    const done = await waitForJob(t.db, organizationId, first.body.jobId);
    expect(done.result).toEqual({ account: 'acc1', v: 3 });
    expect(done.startedAt!.getTime() - done.createdAt.getTime()).toBeGreaterThanOrEqual(350);

    // A start every 100 ms for 2.2 s: the waiting run starts at its deadline (1.2 s after the first start); later starts make a new run.
    const ids = new Set<string>();
    const t0 = Date.now();
    while (Date.now() - t0 < 2_200) {
      const res = await api.post(`/v1/workflows/${wf}/runs`, { input: { account: 'acc2', at: Date.now() - t0 } });
      expect([200, 202]).toContain(res.status);
      ids.add(res.body.jobId);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(ids.size).toBeGreaterThanOrEqual(2);
    const firstBurst = await waitForJob(t.db, organizationId, [...ids][0]!);
    const waited = firstBurst.startedAt!.getTime() - firstBurst.createdAt.getTime();
    expect(waited).toBeGreaterThanOrEqual(1_150);
    expect(waited).toBeLessThan(1_200 + 1_500);
    for (const id of ids) await waitForJob(t.db, organizationId, id);
  });

  it('priority: the expression means lower first, stored as the API priority (higher first); an explicit priority wins', async () => {
    const wf = await workflow({ priority: "input.tier = 'enterprise' ? 1 : 3", steps: [echo] });
    const std = await api.post(`/v1/workflows/${wf}/runs`, { input: { tier: 'standard' } });
    const ent = await api.post(`/v1/workflows/${wf}/runs`, { input: { tier: 'enterprise' } });
    const explicit = await api.post(`/v1/workflows/${wf}/runs`, { input: { tier: 'enterprise' }, priority: 9 });
    const job = async (id: string) => (await api.get(`/v1/jobs/${id}`)).body;
    expect((await job(std.body.jobId)).priority).toBe(-3);
    expect((await job(ent.body.jobId)).priority).toBe(-1);
    expect((await job(explicit.body.jobId)).priority).toBe(9);
  });

  it('a run whose input the priority or a key cannot be evaluated for is refused with 400 naming its input', async () => {
    const wf = await workflow({ priority: 'input.tier', concurrency: [{ key: '$number(input.n)', limit: 1 }], steps: [echo] });
    const bad = expectError(await api.post(`/v1/workflows/${wf}/runs`, { input: { tier: 'gold', n: 1 } }), 400, 'VALIDATION');
    expect(bad.details).toMatchObject({ path: 'input', expression: '/definition/priority' });
    const batch = expectError(await api.post(`/v1/workflows/${wf}/runs/batch`, { runs: [{ input: { tier: 1, n: 1 } }, { input: { tier: 1, n: 'x' } }] }), 400, 'VALIDATION');
    expect(batch.details).toMatchObject({ path: 'runs/1/input', expression: '/definition/concurrency/0/key' });
  });
});
