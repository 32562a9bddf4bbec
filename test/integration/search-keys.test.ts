import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Worker } from '../../src/engine/index.js';
import { deleteExpiredJobs } from '../../src/store/index.js';
import { createTestDb, type TestDb } from '../helpers/db.js';
import { seedOrg, startWorker, waitForJob } from '../helpers/fixtures.js';
import { client, collectPages, createTestApp, expectError, type ApiClient, type Json } from '../helpers/api.js';

/**
 * Search keys: a workflow names input paths; each run's scalar values there
 * are indexed when it starts, and GET /v1/jobs?search=path:value finds runs
 * by them, keyset-paged, combined with the other filters, never across
 * organizations.
 */
let t: TestDb;
let app: FastifyInstance;
let a: ApiClient;
let b: ApiClient;
let orgA: string;
let orgB: string;
let worker: Worker;
let claims: string;
let batchIds: string[];

const KEYS = ['input.memberId', 'input.claim.id', 'input.amount', 'input.urgent', 'input.note'];
// Fails when input.ok is false, so runs end COMPLETED or FAILED by their input.
const STEP = { id: 't', type: 'transform', expression: 'input.ok ? { "ok": true } : $error("not ok")' };

async function workflow(api: ApiClient, definition: Json): Promise<string> {
  const res = await api.post('/v1/workflows', { name: `wf-${Math.random().toString(36).slice(2)}`, definition });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.id;
}

async function indexed(jobId: string): Promise<Record<string, string>> {
  const { rows } = await t.db.query<{ key: string; value: string }>(
    `SELECT key, value FROM stepwise.job_search_keys WHERE job_id = $1 ORDER BY key`,
    [jobId],
  );
  return Object.fromEntries(rows.map((r) => [r.key, r.value]));
}

function search(...terms: string[]): string {
  return terms.map((term) => `search=${encodeURIComponent(term)}`).join('&');
}

beforeAll(async () => {
  t = await createTestDb();
  app = await createTestApp(t.db);
  const sa = await seedOrg(t.db, 'Search A');
  const sb = await seedOrg(t.db, 'Search B');
  orgA = sa.organizationId;
  orgB = sb.organizationId;
  a = client(app, sa.key);
  b = client(app, sb.key);
  worker = startWorker(t.db);
  claims = await workflow(a, { searchKeys: KEYS, steps: [STEP] });
  // 25 runs in one batch: one member, claims alternating C-A / C-B, every third one failing.
  const batch = await a.post(`/v1/workflows/${claims}/runs/batch`, {
    runs: Array.from({ length: 25 }, (_, i) => ({ input: { memberId: 'M-batch', claim: { id: i % 2 === 0 ? 'C-A' : 'C-B' }, ok: i % 3 !== 0 } })),
  });
  expect(batch.status, JSON.stringify(batch.body)).toBe(202);
  batchIds = batch.body.jobs.map((j: Json) => j.jobId);
  for (const id of batchIds) await waitForJob(t.db, orgA, id);
});

afterAll(async () => {
  await worker?.stop();
  await app?.close();
  await t?.close();
});

describe('searchKeys in a definition', () => {
  const steps = [{ id: 'n', type: 'noop' }];
  it.each([
    ['a path outside input', ['result.x'], '/definition/searchKeys/0'],
    ['input alone', ['input'], '/definition/searchKeys/0'],
    ['a segment with a space', ['input.member id'], '/definition/searchKeys/0'],
    ['a duplicate', ['input.a', 'input.a'], '/definition/searchKeys/1'],
    ['an eleventh key', Array.from({ length: 11 }, (_, i) => `input.k${i}`), '/definition/searchKeys/10'],
  ])('refuses %s with 400 naming the entry', async (_name, searchKeys, path) => {
    const res = await a.post('/v1/workflows', { name: 'bad', definition: { searchKeys, steps } });
    const err = expectError(res, 400, 'VALIDATION');
    expect(err.details.path).toBe(path);
    if (searchKeys.length > 10) expect(err.details.limit).toBe(10);
  });

  it('refuses a key that is, holds or lies inside a PHI path (a search is not audited), naming it', async () => {
    for (const [phi, key] of [['input.ssn', 'input.ssn'], ['input.member', 'input.member.id'], ['input.member.ssn', 'input.member']]) {
      const res = await a.post('/v1/workflows', { name: 'phi', definition: { phi: [phi], searchKeys: ['input.claimId', key], steps } });
      const err = expectError(res, 400, 'VALIDATION');
      expect(err.details).toMatchObject({ path: '/definition/searchKeys/1', phi });
    }
    const fine = await a.post('/v1/workflows', { name: 'phi ok', definition: { phi: ['input.ssn'], searchKeys: ['input.ssnLast4Hash'], steps } });
    expect(fine.status, JSON.stringify(fine.body)).toBe(201);
  });

  it('accepts ten keys with nested segments, digits, - and _', async () => {
    const searchKeys = Array.from({ length: 10 }, (_, i) => `input.a-b_${i}.c${i}`);
    const res = await a.post('/v1/workflows', { name: 'ok', definition: { searchKeys, steps } });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body.definition.searchKeys).toEqual(searchKeys);
  });
});

describe('values are indexed when a run starts', () => {
  it('scalars at the declared paths: strings, numbers and booleans as their JSON text; long strings, objects and nulls are not', async () => {
    const res = await a.post(`/v1/workflows/${claims}/runs`, {
      input: { memberId: 'M-1', claim: { id: 77 }, amount: 12.5, urgent: false, note: 'x'.repeat(201), ok: true, other: 'z' },
    });
    expect(res.status).toBe(202);
    expect(await indexed(res.body.jobId)).toEqual({ 'input.memberId': 'M-1', 'input.claim.id': '77', 'input.amount': '12.5', 'input.urgent': 'false' });
    const odd = await a.post(`/v1/workflows/${claims}/runs`, { input: { memberId: { nested: 1 }, claim: null, note: 'short', ok: true } });
    expect(await indexed(odd.body.jobId)).toEqual({ 'input.note': 'short' });
    await waitForJob(t.db, orgA, res.body.jobId);
    await waitForJob(t.db, orgA, odd.body.jobId);
  });

  it('a batch start indexes every run (with its own run number and creation time)', async () => {
    const { rows } = await t.db.query<{ n: number; bad: number }>(
      `SELECT count(*)::int AS n,
              count(*) FILTER (WHERE s.created_at <> j.created_at OR s.run_number <> j.run_number)::int AS bad
         FROM stepwise.job_search_keys s JOIN stepwise.jobs j ON j.id = s.job_id
        WHERE s.job_id = ANY($1::uuid[])`,
      [batchIds],
    );
    expect(rows[0]).toEqual({ n: 50, bad: 0 });
  });

  it('a workflow without searchKeys writes nothing', async () => {
    const plain = await workflow(a, { steps: [{ id: 'n', type: 'noop' }] });
    const res = await a.post(`/v1/workflows/${plain}/runs`, { input: { memberId: 'M-1' } });
    expect(await indexed(res.body.jobId)).toEqual({});
    await waitForJob(t.db, orgA, res.body.jobId);
  });

  it('a debounced start that replaces a waiting run\'s input rewrites its keys', async () => {
    const wf = await workflow(a, {
      searchKeys: ['input.memberId'],
      debounce: { key: 'input.account', delayMs: 600_000, maxDelayMs: 1_200_000 },
      steps: [{ id: 'n', type: 'noop' }],
    });
    const first = await a.post(`/v1/workflows/${wf}/runs`, { input: { account: 'acc', memberId: 'M-old' } });
    const second = await a.post(`/v1/workflows/${wf}/runs`, { input: { account: 'acc', memberId: 'M-new' } });
    expect(second.body.jobId).toBe(first.body.jobId);
    expect(await indexed(first.body.jobId)).toEqual({ 'input.memberId': 'M-new' });
    expect((await a.get(`/v1/jobs?${search('input.memberId:M-old')}`)).body.items).toEqual([]);
    const found = await a.get(`/v1/jobs?${search('input.memberId:M-new')}&status=PENDING`);
    expect(found.body.items.map((j: Json) => j.id)).toEqual([first.body.jobId]);
    // A burst inside one batch becomes one run with the last input, indexed once.
    const burst = await a.post(`/v1/workflows/${wf}/runs/batch`, {
      runs: [{ input: { account: 'b2', memberId: 'M-b1' } }, { input: { account: 'b2', memberId: 'M-b2' } }],
    });
    const id = burst.body.jobs[0].jobId;
    expect(burst.body.jobs[1].jobId).toBe(id);
    expect(await indexed(id)).toEqual({ 'input.memberId': 'M-b2' });
  });
});

describe('GET /v1/jobs?search=', () => {
  it('one term, across pages, newest first without duplicates', async () => {
    const { items, pages } = await collectPages(a, `/v1/jobs?${search('input.memberId:M-batch')}`, 4);
    expect(pages).toBe(7);
    expect(items.map((j: Json) => j.id).sort()).toEqual([...batchIds].sort());
    for (let i = 1; i < items.length; i++) {
      const [prev, cur] = [items[i - 1], items[i]];
      const order = Date.parse(prev.createdAt) - Date.parse(cur.createdAt) || prev.runNumber - cur.runNumber;
      expect(order).toBeGreaterThan(0);
    }
  });

  it('two terms must both match', async () => {
    const { items } = await collectPages(a, `/v1/jobs?${search('input.memberId:M-batch', 'input.claim.id:C-A')}`, 5);
    const expected = batchIds.filter((_, i) => i % 2 === 0);
    expect(items.map((j: Json) => j.id).sort()).toEqual(expected.sort());
    expect(items.every((j: Json) => j.input.claim.id === 'C-A')).toBe(true);
  });

  it('a value is matched exactly, as text (a number by its JSON text)', async () => {
    expect((await a.get(`/v1/jobs?${search('input.claim.id:77')}`)).body.items).toHaveLength(1);
    expect((await a.get(`/v1/jobs?${search('input.claim.id:077')}`)).body.items).toEqual([]);
    expect((await a.get(`/v1/jobs?${search('input.memberId:m-batch')}`)).body.items).toEqual([]);
  });

  it('combines with status, workflow and time filters', async () => {
    const failed = batchIds.filter((_, i) => i % 3 === 0);
    const byStatus = await collectPages(a, `/v1/jobs?${search('input.memberId:M-batch')}&status=FAILED`, 3);
    expect(byStatus.items.map((j: Json) => j.id).sort()).toEqual([...failed].sort());
    expect(byStatus.items.every((j: Json) => j.status === 'FAILED')).toBe(true);
    const both = await a.get(`/v1/jobs?${search('input.memberId:M-batch', 'input.claim.id:C-B')}&status=COMPLETED,PARTIAL_SUCCESS&limit=100`);
    expect(both.body.items.map((j: Json) => j.id).sort()).toEqual(batchIds.filter((_, i) => i % 2 === 1 && i % 3 !== 0).sort());
    expect((await a.get(`/v1/jobs?${search('input.memberId:M-batch')}&workflowId=${claims}&limit=100`)).body.items).toHaveLength(25);
    const other = await workflow(a, { searchKeys: ['input.memberId'], steps: [{ id: 'n', type: 'noop' }] });
    expect((await a.get(`/v1/jobs?${search('input.memberId:M-batch')}&workflowId=${other}`)).body.items).toEqual([]);
    expect((await a.get(`/v1/jobs?${search('input.memberId:M-batch')}&createdTo=2000-01-01T00:00:00Z`)).body.items).toEqual([]);
    expect((await a.get(`/v1/jobs?${search('input.memberId:M-batch')}&status=RUNNING`)).body.items).toEqual([]);
  });

  it('an unknown key or value answers an empty list', async () => {
    expect((await a.get(`/v1/jobs?${search('input.nobody:M-batch')}`)).body).toEqual({ items: [], nextCursor: null });
    expect((await a.get(`/v1/jobs?${search('input.memberId:M-none')}`)).body).toEqual({ items: [], nextCursor: null });
  });

  it("another organization's runs never match, even with the same key and value", async () => {
    const wfB = await workflow(b, { searchKeys: ['input.memberId'], steps: [{ id: 'n', type: 'noop' }] });
    const runB = await b.post(`/v1/workflows/${wfB}/runs`, { input: { memberId: 'M-batch' } });
    await waitForJob(t.db, orgB, runB.body.jobId);
    const inB = await b.get(`/v1/jobs?${search('input.memberId:M-batch')}`);
    expect(inB.body.items.map((j: Json) => j.id)).toEqual([runB.body.jobId]);
    const inA = await collectPages(a, `/v1/jobs?${search('input.memberId:M-batch')}`, 100);
    expect(inA.items.map((j: Json) => j.id)).not.toContain(runB.body.jobId);
    expect(inA.items).toHaveLength(25);
  });

  it.each([
    ['no colon', ['input.memberId'], '/querystring/search/0'],
    ['a key that is not a search key', ['memberId:M-1'], '/querystring/search/0'],
    ['an empty value', ['input.memberId:'], '/querystring/search/0'],
    ['a value past 200 characters', [`input.memberId:${'x'.repeat(201)}`], '/querystring/search/0'],
    ['a bad second term', ['input.memberId:M-1', 'input..x:1'], '/querystring/search/1'],
    ['six terms', Array.from({ length: 6 }, (_, i) => `input.k${i}:v`), '/querystring/search'],
  ])('refuses %s with 400 naming it', async (_name, terms, path) => {
    const err = expectError(await a.get(`/v1/jobs?${search(...terms)}`), 400, 'VALIDATION');
    expect(err.details.path).toBe(path);
  });

  it('a value may hold colons and commas (split at the first colon only)', async () => {
    const res = await a.post(`/v1/workflows/${claims}/runs`, { input: { memberId: 'a:b,c', ok: true } });
    await waitForJob(t.db, orgA, res.body.jobId);
    const found = await a.get(`/v1/jobs?${search('input.memberId:a:b,c')}`);
    expect(found.body.items.map((j: Json) => j.id)).toEqual([res.body.jobId]);
  });
});

describe('expiry', () => {
  it("deletes a job's search keys with the job", async () => {
    const sc = await seedOrg(t.db, 'Search C');
    const c = client(app, sc.key);
    const wf = await workflow(c, { searchKeys: ['input.memberId'], steps: [{ id: 'n', type: 'noop' }] });
    const run = await c.post(`/v1/workflows/${wf}/runs`, { input: { memberId: 'M-expire' } });
    await waitForJob(t.db, sc.organizationId, run.body.jobId);
    expect(await indexed(run.body.jobId)).toEqual({ 'input.memberId': 'M-expire' });
    const deleted = await t.db.transaction((tx) => deleteExpiredJobs(tx, sc.organizationId, new Date(Date.now() + 86_400_000), new Date(), 100));
    expect(deleted.jobs).toBe(1);
    expect(await indexed(run.body.jobId)).toEqual({});
  });
});
