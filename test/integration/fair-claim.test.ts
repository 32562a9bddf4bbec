import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { defineWorkflow, startRuns } from '../../src/engine/index.js';
import { claimJobs, claimJobsLimited, findConcurrencyLimits, NIL_UUID, nextClaimCursor } from '../../src/store/index.js';
import { createTestDb, type TestDb } from '../helpers/db.js';
import { seedOrg } from '../helpers/fixtures.js';

/** Claims here are made by hand: no worker runs in this file. */
let t: TestDb;
const noop = { steps: [{ id: 'n', type: 'noop' }] };

beforeAll(async () => {
  t = await createTestDb();
});

afterAll(async () => {
  await t?.close();
});

beforeEach(async () => {
  await t.db.query('DELETE FROM stepwise.job_queue');
});

/** `count` pending runs of a workflow, written set-based (older than anything started by the API). */
async function backlog(organizationId: string, workflowId: string, count: number, idPrefix: string): Promise<void> {
  await t.db.query(
    `INSERT INTO stepwise.jobs (id, organization_id, workflow_id, workflow_version, run_number, steps_total, created_at)
     SELECT ($4 || lpad(to_hex(g), 12, '0'))::uuid, $1, $2, 1, g, 1, now() - interval '1 hour'
       FROM generate_series(1, $3::int) g`,
    [organizationId, workflowId, count, idPrefix],
  );
  await t.db.query(
    `INSERT INTO stepwise.job_queue (job_id, organization_id, workflow_id, run_at)
     SELECT ($4 || lpad(to_hex(g), 12, '0'))::uuid, $1, $2, now() - interval '1 hour' + g * interval '1 ms'
       FROM generate_series(1, $3::int) g`,
    [organizationId, workflowId, count, idPrefix],
  );
  await t.db.query('UPDATE stepwise.organizations SET run_counter = $2 WHERE id = $1', [organizationId, count]);
  await t.db.query('ANALYZE stepwise.job_queue');
}

describe('fair claim', () => {
  it("one organization's 100,000 pending runs do not delay another organization's single run past one claim round", async () => {
    const big = await seedOrg(t.db, 'big backlog');
    const small = await seedOrg(t.db, 'one run');
    const bigWf = await defineWorkflow(t.db, big.organizationId, { name: 'bulk', definition: noop });
    const smallWf = await defineWorkflow(t.db, small.organizationId, { name: 'single', definition: noop });
    await backlog(big.organizationId, bigWf.id, 100_000, '01000000-0000-7000-8000-');
    const [single] = await startRuns(t.db, small.organizationId, smallWf.id, [{}]);

    // One round of the default batch (STEPWISE_CLAIM_BATCH_SIZE 100).
    const round = await claimJobs(t.db, 'w-fair', 100, 30_000);
    expect(round).toHaveLength(100);
    expect(round.map((j) => j.id)).toContain(single!.id);
    // The rest of the batch is the backlog, oldest first.
    const bigIds = round.filter((j) => j.organizationId === big.organizationId).map((j) => j.id).sort();
    expect(bigIds).toHaveLength(99);
    expect(bigIds[0]).toBe('01000000-0000-7000-8000-000000000001');
    expect(bigIds[98]).toBe('01000000-0000-7000-8000-000000000063');

    // The same with limits in force (the counting claim), and with the small organization's run queued behind the backlog again.
    await t.db.query('UPDATE stepwise.workflows SET max_concurrent_runs = 50000 WHERE id = $1', [bigWf.id]);
    const [second] = await startRuns(t.db, small.organizationId, smallWf.id, [{}]);
    const limited = await claimJobsLimited(t.db, 'w-fair', 100, 30_000, await findConcurrencyLimits(t.db));
    expect(limited).toHaveLength(100);
    expect(limited.map((j) => j.id)).toContain(second!.id);
  });

  it('with more organizations than a batch holds, consecutive claims go round them', async () => {
    const orgs = await Promise.all(['r1', 'r2', 'r3'].map((n) => seedOrg(t.db, n)));
    for (const o of orgs) {
      const wf = await defineWorkflow(t.db, o.organizationId, { name: 'w', definition: noop });
      await startRuns(t.db, o.organizationId, wf.id, [{}, {}]);
    }
    let after = NIL_UUID;
    const served: string[][] = [];
    for (let i = 0; i < 3; i++) {
      const jobs = await claimJobs(t.db, 'w-round', 2, 30_000, after);
      served.push(jobs.map((j) => j.organizationId));
      after = nextClaimCursor(served[i]!, after);
    }
    // Each claim serves two different organizations, and no organization waits two claims in a row.
    for (const s of served) expect(new Set(s).size).toBe(2);
    expect(new Set([...served[0]!, ...served[1]!]).size).toBe(3);
    expect(new Set([...served[1]!, ...served[2]!]).size).toBe(3);
  });

  it("a priority expression orders runs within the organization, lower first", async () => {
    const { organizationId } = await seedOrg(t.db, 'tiers');
    const wf = await defineWorkflow(t.db, organizationId, { name: 'tiers', definition: { ...noop, priority: "input.tier = 'enterprise' ? 1 : 3" } });
    const [s1, s2, e] = await startRuns(t.db, organizationId, wf.id, [{ input: { tier: 'standard' } }, { input: { tier: 'standard' } }, { input: { tier: 'enterprise' } }]);
    const order: string[] = [];
    for (let i = 0; i < 3; i++) order.push(...(await claimJobs(t.db, 'w-prio', 1, 30_000)).map((j) => j.id));
    expect(order).toEqual([e!.id, s1!.id, s2!.id]);
  });
});

describe('keyed claim', () => {
  it("runs of a key start one at a time in order; a long line is parked so another key's run is claimed next round", async () => {
    const { organizationId } = await seedOrg(t.db, 'keyed');
    const wf = await defineWorkflow(t.db, organizationId, { name: 'keyed', definition: { ...noop, concurrency: [{ key: 'input.customer', limit: 1 }] } });
    const line = await startRuns(t.db, organizationId, wf.id, Array.from({ length: 30 }, (_, i) => ({ input: { customer: 'A', i } })));
    const [other] = await startRuns(t.db, organizationId, wf.id, [{ input: { customer: 'B' } }]);
    const limits = await findConcurrencyLimits(t.db);
    expect(limits.keyed).toBe(true);
    const claim = async () => (await claimJobsLimited(t.db, 'w-keyed', 2, 30_000, limits, { keyed: true })).map((j) => j.id);

    // A window of 8 candidates, all of A: A's first starts, the rest of its line is parked.
    expect(await claim()).toEqual([line[0]!.id]);
    const { rows: parked } = await t.db.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM stepwise.job_queue WHERE run_at = parked_until AND run_at > now()',
    );
    expect(parked[0]!.n).toBe(28); // all but A's first two (the running one and the next in line)
    // Next round: B (A's next waits for A's first).
    expect(await claim()).toEqual([other!.id]);
    expect(await claim()).toEqual([]);
    // A's first ends (its queue row goes with its outcome): the next one starts, and the one after it is brought back.
    await t.db.query('DELETE FROM stepwise.job_queue WHERE job_id = $1', [line[0]!.id]);
    expect(await claim()).toEqual([line[1]!.id]);
    const { rows: due } = await t.db.query<{ job_id: string }>(
      'SELECT job_id FROM stepwise.job_queue WHERE organization_id = $1 AND run_at <= now() AND locked_by IS NULL',
      [organizationId],
    );
    expect(due.map((r) => r.job_id)).toEqual([line[2]!.id]);
  });
});
