import { pgArray, type Queryable } from '../db/index.js';

/**
 * Where a job stands inside its blocks: a row per nested step (path
 * `inv[17].call`), per iteration or branch (`inv[17]`, `enrich.crm`) and per
 * block for its own state (`inv`: the items of the loop). The job's
 * top-level position stays in execution_checkpoints.
 */
export const STEP_RESULT_STATUSES = { RUNNING: 1, SUSPENDED: 2, COMPLETED: 3, FAILED: 4 } as const;
export type StepResultStatus = keyof typeof STEP_RESULT_STATUSES;

const STATUS_NAMES = new Map<number, StepResultStatus>(Object.entries(STEP_RESULT_STATUSES).map(([name, code]) => [code, name as StepResultStatus]));

export interface StepResult {
  path: string;
  /**
   * RUNNING: a block's own state while it runs; SUSPENDED: a step waiting
   * (its state says for what); COMPLETED: its output; FAILED: it failed and
   * the steps around it went on (continueOnError, a tolerated iteration).
   */
  status: StepResultStatus;
  output: unknown;
  state: Record<string, unknown> | null;
  /** The stream seq when it ended (compensations run in reverse of it). */
  seq: number;
}

export interface StepResultWrite extends StepResult {
  jobId: string;
  organizationId: string;
}

/** Save the newest result of each (job, path) in one statement (the recorder keeps only the newest per flush). */
export async function upsertStepResults(tx: Queryable, writes: StepResultWrite[]): Promise<void> {
  if (writes.length === 0) return;
  await tx.query(
    `INSERT INTO stepwise.execution_step_results (job_id, organization_id, path, status, output, state, seq, updated_at)
     SELECT u.job_id, u.organization_id, u.path, u.status, u.output, u.state, u.seq, now()
       FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::smallint[], $5::jsonb[], $6::jsonb[], $7::int[])
         AS u(job_id, organization_id, path, status, output, state, seq)
     ON CONFLICT (job_id, path) DO UPDATE
        SET status = excluded.status, output = excluded.output, state = excluded.state, seq = excluded.seq, updated_at = now()`,
    [
      pgArray(writes.map((w) => w.jobId)),
      pgArray(writes.map((w) => w.organizationId)),
      pgArray(writes.map((w) => w.path)),
      pgArray(writes.map((w) => STEP_RESULT_STATUSES[w.status])),
      pgArray(writes.map((w) => (w.output === undefined ? null : JSON.stringify(w.output)))),
      pgArray(writes.map((w) => (w.state === null ? null : JSON.stringify(w.state)))),
      pgArray(writes.map((w) => w.seq)),
    ],
  );
}

/** Every result of a job, by path (a resumed job reads them once). */
export async function findStepResults(db: Queryable, organizationId: string, jobId: string): Promise<Map<string, StepResult>> {
  const { rows } = await db.query<{ path: string; status: number; output: unknown; state: Record<string, unknown> | null; seq: number }>(
    `SELECT path, status, output, state, seq FROM stepwise.execution_step_results WHERE organization_id = $1 AND job_id = $2`,
    [organizationId, jobId],
  );
  const out = new Map<string, StepResult>();
  for (const r of rows) out.set(r.path, { path: r.path, status: STATUS_NAMES.get(r.status) ?? 'RUNNING', output: r.output, state: r.state, seq: r.seq });
  return out;
}

/** Drop the results of jobs that succeeded (nothing will resume them). */
export async function deleteStepResults(tx: Queryable, jobIds: string[]): Promise<void> {
  if (jobIds.length === 0) return;
  await tx.query(`DELETE FROM stepwise.execution_step_results WHERE job_id = ANY($1::uuid[])`, [pgArray(jobIds)]);
}

/**
 * A retry from the failed step starts where the old job stopped: copy its
 * completed steps, iterations and branches, and its blocks' own state (the
 * branch taken, the items), not what failed or waited.
 */
export async function copyStepResults(tx: Queryable, organizationId: string, fromJobId: string, toJobId: string): Promise<number> {
  const { rowCount } = await tx.query(
    `INSERT INTO stepwise.execution_step_results (job_id, organization_id, path, status, output, state, seq)
     SELECT $3, organization_id, path, status, output, state, seq FROM stepwise.execution_step_results
      WHERE organization_id = $1 AND job_id = $2 AND status IN ($4, $5)`,
    [organizationId, fromJobId, toJobId, STEP_RESULT_STATUSES.RUNNING, STEP_RESULT_STATUSES.COMPLETED],
  );
  return rowCount;
}
