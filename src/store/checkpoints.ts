import { pgArray, type Queryable } from '../db/index.js';
import type { Checkpoint } from './queue.js';

export interface CheckpointWrite {
  jobId: string;
  organizationId: string;
  checkpoint: Checkpoint;
  expiresAt: Date;
}

/** Save the latest checkpoint of each job in one statement (the recorder keeps only the newest per job). */
export async function upsertCheckpoints(tx: Queryable, writes: CheckpointWrite[]): Promise<void> {
  if (writes.length === 0) return;
  await tx.query(
    `INSERT INTO stepwise.execution_checkpoints (job_id, organization_id, next_step, outputs, failed_steps, state, carried, expires_at, updated_at)
     SELECT u.job_id, u.organization_id, u.next_step, u.outputs, u.failed_steps, u.state, u.carried, u.expires_at, now()
       FROM unnest($1::uuid[], $2::uuid[], $3::int[], $4::jsonb[], $5::jsonb[], $6::jsonb[], $7::jsonb[], $8::timestamptz[])
         AS u(job_id, organization_id, next_step, outputs, failed_steps, state, carried, expires_at)
     ON CONFLICT (job_id) DO UPDATE
        SET next_step = excluded.next_step, outputs = excluded.outputs, failed_steps = excluded.failed_steps,
            state = excluded.state, carried = excluded.carried, expires_at = excluded.expires_at, updated_at = now()`,
    [
      pgArray(writes.map((w) => w.jobId)),
      pgArray(writes.map((w) => w.organizationId)),
      pgArray(writes.map((w) => w.checkpoint.nextStep)),
      pgArray(writes.map((w) => JSON.stringify(w.checkpoint.outputs))),
      pgArray(writes.map((w) => JSON.stringify(w.checkpoint.failedSteps))),
      pgArray(writes.map((w) => JSON.stringify(w.checkpoint.state))),
      // Most jobs carry nothing: NULL, not '{}', keeps their rows as they were.
      pgArray(writes.map((w) => (Object.keys(w.checkpoint.carried).length === 0 ? null : JSON.stringify(w.checkpoint.carried)))),
      pgArray(writes.map((w) => w.expiresAt.toISOString())),
    ],
  );
}

/** A job's checkpoint (retry from the failed step reads the failed job's). */
export async function findCheckpoint(db: Queryable, organizationId: string, jobId: string): Promise<Checkpoint | null> {
  const { rows } = await db.query<{ next_step: number; outputs: Record<string, unknown>; failed_steps: string[]; state: Record<string, unknown>; carried: Record<string, unknown> | null }>(
    `SELECT next_step, outputs, failed_steps, state, carried FROM stepwise.execution_checkpoints
      WHERE organization_id = $1 AND job_id = $2 AND expires_at > now()`,
    [organizationId, jobId],
  );
  const r = rows[0];
  return r ? { nextStep: r.next_step, outputs: r.outputs, failedSteps: r.failed_steps, state: r.state, carried: r.carried ?? {} } : null;
}

/**
 * Delete expired checkpoints, and the results of the steps inside blocks of
 * the same jobs (a job resumes from both or from neither). Maintenance.
 * Returns how many checkpoints went.
 */
export async function deleteExpiredCheckpoints(db: Queryable, now: Date = new Date()): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    `WITH gone AS (
       DELETE FROM stepwise.execution_checkpoints WHERE expires_at <= $1 RETURNING job_id
     ), results AS (
       DELETE FROM stepwise.execution_step_results r USING gone WHERE r.job_id = gone.job_id
     )
     SELECT count(*)::int AS n FROM gone`,
    [now.toISOString()],
  );
  return rows[0]!.n;
}
