import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PlanLimitError } from '../../src/errors/index.js';
import { assertWithinPlan, findConcurrencyLimits, STARTER_LIMITS, updateOrganizationLimits } from '../../src/store/index.js';
import type { Worker } from '../../src/engine/index.js';
import { createTestDb, type TestDb } from '../helpers/db.js';
import { seedOrg, startWorker, waitForJob } from '../helpers/fixtures.js';
import { seedRoleKeys } from '../helpers/roles.js';
import { client, createTestApp, expectError, simpleDefinition, type ApiClient } from '../helpers/api.js';

let t: TestDb;
let app: FastifyInstance;

beforeAll(async () => {
  t = await createTestDb();
  app = await createTestApp(t.db);
});

afterAll(async () => {
  await app?.close();
  await t?.close();
});

async function scalar(sql: string, params: unknown[] = []): Promise<number> {
  const { rows } = await t.db.query<{ n: string | number }>(sql, params);
  return Number(rows[0]?.n ?? 0);
}

describe('plan limits', () => {
  let api: ApiClient;
  let orgId: string;

  beforeAll(async () => {
    const seeded = await seedOrg(t.db, 'Starter Co', 'STARTER');
    api = client(app, seeded.key);
    orgId = seeded.organizationId;
  });

  it('STARTER allows 5 workflows: the 6th is 402 PLAN_LIMIT with limit, current and plan, and nothing is written', async () => {
    const ids: string[] = [];
    for (let i = 0; i < STARTER_LIMITS.workflows!; i++) {
      const res = await api.post('/v1/workflows', { name: `wf ${i}`, definition: simpleDefinition() });
      expect(res.status).toBe(201);
      ids.push(res.body.id);
    }
    const before = await scalar(`SELECT count(*) AS n FROM stepwise.workflows WHERE organization_id = $1`, [orgId]);
    const err = expectError(await api.post('/v1/workflows', { name: 'one too many', definition: simpleDefinition() }), 402, 'PLAN_LIMIT');
    expect(err.details).toEqual({ resource: 'workflows', limit: 5, current: 5, adding: 1, plan: 'STARTER' });
    expect(err.message).toMatch(/STARTER plan allows 5 workflows/);
    expect(await scalar(`SELECT count(*) AS n FROM stepwise.workflows WHERE organization_id = $1`, [orgId])).toBe(before);
    // An archived workflow no longer counts.
    expect((await api.del(`/v1/workflows/${ids[0]}`)).status).toBe(204);
    expect((await api.post('/v1/workflows', { name: 'replacement', definition: simpleDefinition() })).status).toBe(201);
  });

  it('runs beyond the month\'s executions are 402 and create no job; the count is exact per batch', async () => {
    const wf = (await api.get('/v1/workflows?limit=1')).body.items[0];
    // Bring this month's usage to one below the limit instead of running 10,000 jobs.
    await t.db.query(
      `INSERT INTO stepwise.usage_records (organization_id, period_start, executions)
       VALUES ($1, (date_trunc('month', now() AT TIME ZONE 'UTC'))::date, $2)
       ON CONFLICT (organization_id, period_start) DO UPDATE SET executions = excluded.executions`,
      [orgId, STARTER_LIMITS.executionsPerMonth! - 1],
    );
    const jobs = () => scalar(`SELECT count(*) AS n FROM stepwise.jobs WHERE organization_id = $1`, [orgId]);
    const before = await jobs();
    const batch = expectError(await api.post(`/v1/workflows/${wf.id}/runs/batch`, { runs: [{}, {}] }), 402, 'PLAN_LIMIT');
    expect(batch.details).toEqual({ resource: 'executions', limit: 10_000, current: 9_999, adding: 2, plan: 'STARTER' });
    expect(await jobs()).toBe(before);
    expect((await api.post(`/v1/workflows/${wf.id}/runs`, {})).status).toBe(202);
    expectError(await api.post(`/v1/workflows/${wf.id}/runs`, {}), 402, 'PLAN_LIMIT');
    expect(await jobs()).toBe(before + 1);
    const usage = (await api.get('/v1/usage')).body;
    expect(usage.current.executions).toBe(10_000);
    expect(usage.limits).toEqual({ workflows: 5, credentials: 3, executionsPerMonth: 10_000, concurrentRuns: 5, aiTokensPerMonth: 2_000_000 });
  });

  it('assertWithinPlan refuses credentials past the plan (for the credentials API)', async () => {
    await expect(assertWithinPlan(t.db, orgId, 'credentials', 3)).resolves.toBeUndefined();
    const refused = await assertWithinPlan(t.db, orgId, 'credentials', 4).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(PlanLimitError);
    expect((refused as PlanLimitError).details).toMatchObject({ resource: 'credentials', limit: 3, current: 0, adding: 4, plan: 'STARTER' });
  });

  it('the plan caps concurrent runs through the concurrency-limit machinery, with the lower of plan and own limit', async () => {
    const pro = await seedOrg(t.db, 'Pro Co', 'PROFESSIONAL');
    const ent = await seedOrg(t.db, 'Big Co', 'ENTERPRISE');
    let limits = await findConcurrencyLimits(t.db);
    expect(limits.organizations.get(orgId)).toBe(5);
    expect(limits.organizations.get(pro.organizationId)).toBe(25);
    expect(limits.organizations.has(ent.organizationId)).toBe(false);
    await updateOrganizationLimits(t.db, orgId, { maxConcurrentRuns: 3 });
    await updateOrganizationLimits(t.db, pro.organizationId, { maxConcurrentRuns: 100 });
    await updateOrganizationLimits(t.db, ent.organizationId, { maxConcurrentRuns: 7 });
    limits = await findConcurrencyLimits(t.db);
    expect(limits.organizations.get(orgId)).toBe(3);
    expect(limits.organizations.get(pro.organizationId)).toBe(25);
    expect(limits.organizations.get(ent.organizationId)).toBe(7);
  });

  it('only an OWNER changes the plan; a higher plan lifts the limit at once', async () => {
    const roles = await seedRoleKeys(t.db, orgId);
    expectError(await client(app, roles.ADMIN.key).put('/v1/organization/plan', { plan: 'ENTERPRISE' }), 403, 'FORBIDDEN');
    expectError(await api.put('/v1/organization/plan', { plan: 'PLATINUM' }), 400, 'VALIDATION');
    expect((await api.get('/v1/organization')).body.plan).toBe('STARTER');
    const changed = await api.put('/v1/organization/plan', { plan: 'PROFESSIONAL' });
    expect(changed.status).toBe(200);
    expect(changed.body.plan).toBe('PROFESSIONAL');
    expect((await api.post('/v1/workflows', { name: 'sixth', definition: simpleDefinition() })).status).toBe(201);
    expect((await api.get('/v1/usage')).body).toMatchObject({ plan: 'PROFESSIONAL', limits: { workflows: 25, executionsPerMonth: 100_000 } });
  });
});

describe('usage records', () => {
  let worker: Worker;
  afterAll(async () => {
    await worker?.stop();
  });

  it('counts executions per enqueue, steps and result bytes when jobs end, once per job', async () => {
    const { organizationId, key } = await seedOrg(t.db, 'Usage Co');
    const api = client(app, key);
    const definition = { steps: [{ id: 'a', type: 'noop' }, { id: 'b', type: 'transform', expression: '{"ok": true}' }] };
    const wf = (await api.post('/v1/workflows', { name: 'two steps', definition })).body;
    const empty = (await api.get('/v1/usage')).body;
    expect(empty.current).toMatchObject({ executions: 0, steps: 0, storageBytes: 0, workflows: 1 });
    expect(empty.current.period).toMatch(/^\d{4}-\d{2}-01$/);
    expect(empty.history).toEqual([]);

    const batch = await api.post(`/v1/workflows/${wf.id}/runs/batch`, { runs: [{ input: { n: 1 } }, { input: { n: 2 } }, { input: { n: 3 } }] });
    expect(batch.status).toBe(202);
    const afterEnqueue = (await api.get('/v1/usage')).body.current;
    expect(afterEnqueue.executions).toBe(3);
    expect(afterEnqueue.steps).toBe(0);
    expect(afterEnqueue.storageBytes).toBeGreaterThan(0);

    worker = startWorker(t.db);
    for (const j of batch.body.jobs) expect((await waitForJob(t.db, organizationId, j.jobId)).status).toBe('COMPLETED');
    const done = (await api.get('/v1/usage')).body;
    expect(done.current.executions).toBe(3);
    expect(done.current.steps).toBe(6);
    expect(done.current.storageBytes).toBeGreaterThan(afterEnqueue.storageBytes);
    expect(done.history).toEqual([
      { period: done.current.period, executions: 3, steps: 6, storageBytes: done.current.storageBytes, aiInputTokens: 0, aiOutputTokens: 0, aiCostUsd: 0 },
    ]);

    // A further update of an ended job counts nothing again.
    await t.db.query(`UPDATE stepwise.jobs SET error_message = 'x' WHERE organization_id = $1`, [organizationId]);
    expect((await api.get('/v1/usage')).body.current.steps).toBe(6);
    // Another organization's usage is its own.
    const other = client(app, (await seedOrg(t.db, 'Idle Co')).key);
    expect((await other.get('/v1/usage')).body.current.executions).toBe(0);
  });

  it('rejects a bad months parameter', async () => {
    const api = client(app, (await seedOrg(t.db, 'Q Co')).key);
    expectError(await api.get('/v1/usage?months=0'), 400, 'VALIDATION');
    expectError(await api.get('/v1/usage?months=abc'), 400, 'VALIDATION');
  });
});
