import { pgArray, type Queryable } from '../db/index.js';
import type { Checkpoint } from './queue.js';

export interface CheckpointWrite {
  jobId: string;
  organizationId: string;
  /** `carried` left out: the row's carried values stay as they are (a job that never carried any). */
  checkpoint: Omit<Checkpoint, 'carried'> & { carried?: Record<string, unknown> | undefined };
  expiresAt: Date;
}

/**
 * Save the latest checkpoint of each job (the recorder keeps only the newest
 * per job): one statement for the jobs that carry nothing across steps — all
 * but browser jobs — and one that also writes `carried` for the rest.
 * Leaving the column out of the common statement was measured: writing it
 * (as NULL) cost the 10-step `steps` benchmark ~3% (22,475 against 23,158
 * steps/s, medians of three interleaved runs).
 */
export async function upsertCheckpoints(tx: Queryable, writes: CheckpointWrite[]): Promise<void> {
  const plain = writes.filter((w) => w.checkpoint.carried === undefined);
  const carrying = writes.filter((w) => w.checkpoint.carried !== undefined);
  if (plain.length > 0) await upsert(tx, plain, false);
  if (carrying.length > 0) await upsert(tx, carrying, true);
}

async function upsert(tx: Queryable, writes: CheckpointWrite[], withCarried: boolean): Promise<void> {
  const c = withCarried ? ', carried' : '';
  await tx.query(
    `INSERT INTO stepwise.execution_checkpoints (job_id, organization_id, next_step, outputs, failed_steps, state, expires_at${c}, updated_at)
     SELECT u.job_id, u.organization_id, u.next_step, u.outputs, u.failed_steps, u.state, u.expires_at${withCarried ? ', u.carried' : ''}, now()
       FROM unnest($1::uuid[], $2::uuid[], $3::int[], $4::jsonb[], $5::jsonb[], $6::jsonb[], $7::timestamptz[]${withCarried ? ', $8::jsonb[]' : ''})
         AS u(job_id, organization_id, next_step, outputs, failed_steps, state, expires_at${c})
     ON CONFLICT (job_id) DO UPDATE
        SET next_step = excluded.next_step, outputs = excluded.outputs, failed_steps = excluded.failed_steps,
            state = excluded.state, expires_at = excluded.expires_at${withCarried ? ', carried = excluded.carried' : ''}, updated_at = now()`,
    [
      pgArray(writes.map((w) => w.jobId)),
      pgArray(writes.map((w) => w.organizationId)),
      pgArray(writes.map((w) => w.checkpoint.nextStep)),
      pgArray(writes.map((w) => JSON.stringify(w.checkpoint.outputs))),
      pgArray(writes.map((w) => JSON.stringify(w.checkpoint.failedSteps))),
      pgArray(writes.map((w) => JSON.stringify(w.checkpoint.state))),
      pgArray(writes.map((w) => w.expiresAt.toISOString())),
      // Carried values all deleted: NULL, as for a job that never carried any.
      ...(withCarried ? [pgArray(writes.map((w) => (Object.keys(w.checkpoint.carried!).length === 0 ? null : JSON.stringify(w.checkpoint.carried))))] : []),
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
