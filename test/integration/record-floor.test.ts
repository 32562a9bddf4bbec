import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { claimFloorBatch, recordFloorBatch } from '../../bench/record-floor.js';
import { DEFINITION } from '../../bench/throughput.js';
import { defineWorkflow, startRuns } from '../../src/engine/index.js';
import { rollUpAggregates } from '../../src/store/index.js';
import { createTestDb, type TestDb } from '../helpers/db.js';
import { seedOrg, startWorker, waitForJob } from '../helpers/fixtures.js';

/**
 * `bench record-floor` claims to write the very record the engine writes for
 * the throughput workload, only without an engine. Same runs in two
 * organizations, one run by a Worker and one by the floor: every table the
 * record touches must come out the same (times and durations aside).
 */
const RUNS = 3;

let t: TestDb;
let engineOrg: string;
let floorOrg: string;

async function enqueueRuns(organizationId: string): Promise<string[]> {
  const wf = await defineWorkflow(t.db, organizationId, { name: 'eligibility-note', definition: DEFINITION });
  const runs = await startRuns(
    t.db,
    organizationId,
    wf.id,
    Array.from({ length: RUNS }, (_, i) => ({ input: { member: `M-${String(i).padStart(6, '0')}` } })),
  );
  return runs.map((r) => r.id);
}

beforeAll(async () => {
  t = await createTestDb();
  engineOrg = (await seedOrg(t.db, 'Engine')).organizationId;
  floorOrg = (await seedOrg(t.db, 'Floor')).organizationId;

  const engineJobs = await enqueueRuns(engineOrg);
  const worker = startWorker(t.db);
  try {
    for (const id of engineJobs) await waitForJob(t.db, engineOrg, id);
  } finally {
    await worker.stop();
  }

  await enqueueRuns(floorOrg);
  const batch = await claimFloorBatch(t.db, 'floor-test');
  expect(batch.ids).toHaveLength(RUNS);
  await recordFloorBatch(t.db, 'floor-test', batch);
});
afterAll(() => t?.close());

/** One organization's rows of a query, as comparable values. */
async function rowsOf(sql: string, organizationId: string): Promise<unknown[]> {
  return (await t.db.query(sql, [organizationId])).rows;
}

describe('bench record-floor', () => {
  it('leaves the queue empty', async () => {
    const { rows } = await t.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM stepwise.job_queue`);
    expect(rows[0]!.n).toBe(0);
  });

  it('writes the stream rows the engine writes: seq, step, kind, level, message and data keys', async () => {
    const sql = `SELECT j.run_number, l.seq, l.step_index, l.kind, l.level, l.message,
                        (SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(l.data) k) AS data_keys
                   FROM stepwise.execution_log l JOIN stepwise.jobs j ON j.id = l.job_id
                  WHERE l.organization_id = $1 ORDER BY j.run_number, l.seq`;
    const engine = await rowsOf(sql, engineOrg);
    expect(engine).toHaveLength(RUNS * 5);
    expect(await rowsOf(sql, floorOrg)).toEqual(engine);
  });

  it('completes the jobs as the engine does', async () => {
    const sql = `SELECT run_number, status, attempts, steps_completed, last_seq, result, error_code,
                        started_at IS NOT NULL AS started, completed_at IS NOT NULL AS completed, duration_ms IS NOT NULL AS timed
                   FROM stepwise.jobs WHERE organization_id = $1 ORDER BY run_number`;
    expect(await rowsOf(sql, floorOrg)).toEqual(await rowsOf(sql, engineOrg));
  });

  it('counts the same usage, step metrics, read-model rows and aggregates', async () => {
    const usage = `SELECT executions, steps, storage_bytes FROM stepwise.usage_records WHERE organization_id = $1`;
    const steps = `SELECT period, step_index, step_name, executions, successes, failures, top_errors
                     FROM stepwise.step_metrics WHERE organization_id = $1 ORDER BY period`;
    const metadata = `SELECT run_number, status, steps_completed, attempts FROM stepwise.execution_metadata
                       WHERE organization_id = $1 ORDER BY run_number`;
    const aggregates = `SELECT period, workflow_id = '00000000-0000-0000-0000-000000000000' AS all_workflows, initiator_type,
                               total_count, completed_count, duration_count
                          FROM stepwise.aggregate_metrics WHERE organization_id = $1
                         ORDER BY period, all_workflows, initiator_type, client_id`;
    // Both orgs' finished jobs rolled up from the outbox first (the engine's worker rolls up on a timer).
    await rollUpAggregates(t.db, { wait: true });
    for (const sql of [usage, steps, metadata, aggregates]) {
      const engine = await rowsOf(sql, engineOrg);
      expect(engine.length).toBeGreaterThan(0);
      expect(await rowsOf(sql, floorOrg)).toEqual(engine);
    }
  });
});
