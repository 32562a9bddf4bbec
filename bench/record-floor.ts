import { ensureStreamPartitions, migrate, PostgresDb, type Db } from '../src/db/index.js';
import { defineWorkflow } from '../src/engine/index.js';
import { completeJobs, createOrganization, LOG_LEVELS, STREAM_KINDS, type StreamRow } from '../src/store/index.js';
import { addStepMetrics, collectStepMetrics } from '../src/store/step-metrics.js';
import { emit, log, now, POLL_MS, resultLine, round, settle, sleep, speedRatio, waitUntil, withScratchDatabase, type BenchOptions, type PeerResult } from './lib.js';
import { runPgBoss } from './peers/pg-boss.js';
import { DEFINITION, describeJobs, enqueue, queueEmpty, STEPWISE_SETTINGS, verifyRecord } from './throughput.js';

/**
 * `record-floor`: how fast this machine can write the record of the
 * `throughput` workload when no engine produces it, beside pg-boss in the
 * same run. Two loops (as two Workers) claim 500 jobs at a time the way
 * the engine does, and each batch's record is written in one transaction:
 * the queue rows deleted, the five stream rows per job built by the server
 * (nothing shipped from Node), the jobs completed with their monthly usage
 * by the engine's own completeJobs, and the step metrics added. Enqueue is
 * the engine's own (`startRuns`). Everything else the engine does (running the steps,
 * rendering the template, shipping rows, its bookkeeping) is missing, so
 * no engine on this schema can beat these figures on this machine.
 *
 * Run twice: as migrated, and with the `execution_metadata` read-model
 * trigger disabled, to show what keeping the read model in the completing
 * transaction costs.
 */

const LOOPS = 2;
const CLAIM_BATCH = 500;
const LEASE_MS = 300_000;

type FloorVariant = 'read-model' | 'no-read-model';

export interface FloorBatch {
  ids: string[];
  organizationIds: string[];
  workflowIds: string[];
}

/**
 * Claim up to 500 runnable jobs as the engine's claim does (store/queue.ts),
 * returning only what the record needs. The workload has one organization,
 * whose share of the engine's fair claim is this one scan of the claim
 * index (organization first, plain rows only), leased by ctid.
 */
export async function claimFloorBatch(db: Db, loopId: string): Promise<FloorBatch> {
  const { rows } = await db.query<{ id: string; organization_id: string; workflow_id: string }>(
    `WITH picked AS (
       SELECT ctid FROM stepwise.job_queue
        WHERE run_at <= now() AND locked_until IS NULL AND concurrency_keys IS NULL
        ORDER BY organization_id, priority DESC, run_at, job_id
        LIMIT $2
        FOR UPDATE SKIP LOCKED
     ), leased AS (
       UPDATE stepwise.job_queue q
          SET locked_by = $1, locked_until = now() + make_interval(secs => $3::double precision / 1000)
        WHERE q.ctid = ANY (ARRAY(SELECT ctid FROM picked))
       RETURNING q.job_id
     )
     SELECT j.id, j.organization_id, j.workflow_id FROM stepwise.jobs j WHERE j.id = ANY (ARRAY(SELECT job_id FROM leased))`,
    [loopId, CLAIM_BATCH, LEASE_MS],
  );
  return { ids: rows.map((r) => r.id), organizationIds: rows.map((r) => r.organization_id), workflowIds: rows.map((r) => r.workflow_id) };
}

/** The batch's record, as the engine's flush writes it (engine/recorder.ts), with every row built by the server. */
export async function recordFloorBatch(db: Db, loopId: string, batch: FloorBatch): Promise<void> {
  const ids = batch.ids;
  await db.transaction(async (tx) => {
    await tx.query(`DELETE FROM stepwise.job_queue WHERE job_id = ANY($1::uuid[]) AND locked_by = $2`, [ids, loopId]);
    // JOB_STARTED, STEP_STARTED, LOG, STEP_COMPLETED, JOB_COMPLETED: the kinds, levels, step
    // indexes, messages and data the engine writes for the workflow's one log step.
    await tx.query(
      `INSERT INTO stepwise.execution_log (organization_id, job_id, ts, seq, step_index, kind, level, message, data)
       SELECT j.organization_id, j.id, clock_timestamp(), r.seq, r.step, r.kind, $2,
              CASE r.seq WHEN 1 THEN 'run ' || j.run_number || ' started'
                         WHEN 3 THEN 'checked eligibility for member ' || (j.input ->> 'member') || ': plan active'
                         WHEN 5 THEN 'run ' || j.run_number || ' completed'
                         ELSE 'note' END,
              CASE WHEN r.seq = 4 THEN jsonb_build_object('durationMs', 0.012) END
         FROM stepwise.jobs j
        CROSS JOIN (VALUES (1, NULL::smallint, $3::smallint), (2, 0, $4), (3, 0, $5), (4, 0, $6), (5, NULL, $7)) AS r(seq, step, kind)
        WHERE j.id = ANY($1::uuid[])`,
      [
        ids,
        LOG_LEVELS.INFO,
        STREAM_KINDS.JOB_STARTED,
        STREAM_KINDS.STEP_STARTED,
        STREAM_KINDS.LOG,
        STREAM_KINDS.STEP_COMPLETED,
        STREAM_KINDS.JOB_COMPLETED,
      ],
    );
    // The engine's own completion statement (outcome and the month's usage); the start travels with it, as in a flush.
    const at = new Date();
    await completeJobs(
      tx,
      ids.map((jobId) => ({
        jobId,
        status: 'COMPLETED',
        completedAt: at,
        result: null,
        errorCode: null,
        errorMessage: null,
        errorStep: null,
        stepsCompleted: 1,
        lastSeq: 5,
        start: { jobId, attempts: 1, startedAt: at, deadlineAt: null },
      })),
    );
    // The step results' DAY and MONTH counts, through the engine's own grouping and upsert.
    const tsMs = at.getTime();
    const results: StreamRow[] = ids.map((jobId, i) => ({
      organizationId: batch.organizationIds[i]!,
      jobId,
      workflowId: batch.workflowIds[i]!,
      tsMs,
      seq: 4,
      stepIndex: 0,
      kind: STREAM_KINDS.STEP_COMPLETED,
      level: LOG_LEVELS.INFO,
      message: 'note',
      data: { durationMs: 0.012 },
    }));
    await addStepMetrics(tx, collectStepMetrics(results));
  });
}

async function floorLoop(db: Db, loopId: string, stopped: () => boolean): Promise<void> {
  while (!stopped()) {
    const batch = await claimFloorBatch(db, loopId);
    if (batch.ids.length === 0) {
      await sleep(5);
      continue;
    }
    await recordFloorBatch(db, loopId, batch);
  }
}

async function runFloor(opts: BenchOptions, variant: FloorVariant): Promise<PeerResult> {
  return withScratchDatabase('floor', async (scratch) => {
    const db = new PostgresDb(scratch.url, { poolSize: STEPWISE_SETTINGS.postgres.poolSize, role: 'bench' });
    let stop = false;
    const loops: Promise<void>[] = [];
    try {
      await migrate(db);
      await ensureStreamPartitions(db);
      if (variant === 'no-read-model') await db.exec('ALTER TABLE stepwise.jobs DISABLE TRIGGER jobs_read_model_update');
      const warmOrg = await createOrganization(db, { name: 'floor warm-up', plan: 'ENTERPRISE' });
      const org = await createOrganization(db, { name: 'floor', plan: 'ENTERPRISE' });
      const warmWf = await defineWorkflow(db, warmOrg.id, { name: 'eligibility-note', definition: DEFINITION });
      const wf = await defineWorkflow(db, org.id, { name: 'eligibility-note', definition: DEFINITION });
      // A loop that fails ends the run at its next poll, with its error, instead of a queue that never empties.
      let failure: unknown;
      const done = async () => {
        if (failure !== undefined) throw failure;
        return queueEmpty(db);
      };
      const waitDone = (what: string) =>
        waitUntil(done, { intervalMs: POLL_MS, timeoutMs: 240_000, what, describe: () => describeJobs(db) });
      const batchSize = STEPWISE_SETTINGS.postgres.enqueueBatch;

      for (let i = 0; i < LOOPS; i++) {
        loops.push(
          floorLoop(db, `floor-${i}`, () => stop).catch((err: unknown) => {
            failure ??= err;
            stop = true;
          }),
        );
      }
      if (opts.warmup > 0) {
        await enqueue(db, warmOrg.id, warmWf.id, opts.warmup, batchSize);
        await waitDone('the floor warm-up jobs');
      }
      await settle((sql) => db.exec(sql), opts.stats);
      const t0 = now();
      await enqueue(db, org.id, wf.id, opts.jobs, batchSize);
      await waitDone(`${opts.jobs} floor jobs`);
      const seconds = (now() - t0) / 1000;
      stop = true;
      await Promise.all(loops);
      if (failure !== undefined) throw failure;
      await verifyRecord(db, org.id, opts.jobs);
      log(`floor (${variant}): all done in ${round(seconds, 3)} s`);
      return { jobs: opts.jobs, seconds };
    } finally {
      stop = true;
      await Promise.allSettled(loops);
      await db.close();
    }
  });
}

const line = (system: string, r: PeerResult, extra?: Record<string, unknown>) => resultLine('record-floor', system, 'postgres', r, extra);

/** `record-floor`: the floor with and without the read model, then pg-boss, one after another. */
export async function recordFloor(opts: BenchOptions): Promise<void> {
  log(`record-floor: ${opts.jobs} jobs per system (+${opts.warmup} warm-up)`);
  log('floor, read model as migrated…');
  const withReadModel = await runFloor(opts, 'read-model');
  emit(line('stepwise-record-floor', withReadModel));
  log('floor, read-model trigger disabled…');
  const noReadModel = await runFloor(opts, 'no-read-model');
  emit(line('stepwise-record-floor', noReadModel, { read_model: false }));
  log('pg-boss…');
  const boss = await runPgBoss(opts);
  emit(line('pg-boss', boss));
  emit({
    scenario: 'record-floor',
    ratios: {
      floor_vs_pg_boss: speedRatio(withReadModel, boss),
      floor_without_read_model_vs_pg_boss: speedRatio(noReadModel, boss),
    },
  });
}
