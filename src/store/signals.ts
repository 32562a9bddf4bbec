import { pgArray, type Queryable } from '../db/index.js';
import { uuidv7 } from '../util/ids.js';
import { CANCEL_CHANNEL, JOBS_CHANNEL, TERMINAL_STATUSES } from './jobs.js';

/**
 * Store a signal for a job and, if the job sleeps in the queue (WAITING),
 * make it runnable now so its wait step sees the signal at once.
 */
export async function createSignal(
  tx: Queryable,
  organizationId: string,
  jobId: string,
  name: string,
  payload: unknown,
): Promise<{ id: string }> {
  const id = uuidv7();
  await tx.query(
    `INSERT INTO stepwise.job_signals (id, organization_id, job_id, name, payload) VALUES ($1, $2, $3, $4, $5)`,
    [id, organizationId, jobId, name, payload === undefined ? null : JSON.stringify(payload)],
  );
  await wakeJob(tx, jobId);
  return { id };
}

/**
 * wakeJob for several jobs in one statement (parents of sub-workflows that
 * just ended), with one NOTIFY.
 */
export async function wakeJobs(tx: Queryable, jobIds: string[]): Promise<void> {
  if (jobIds.length === 0) return;
  await tx.query(
    `UPDATE stepwise.job_queue
        SET wake_requested = true, run_at = CASE WHEN locked_by IS NULL THEN now() ELSE run_at END
      WHERE job_id = ANY($1::uuid[])`,
    [pgArray(jobIds)],
  );
  await tx.query(`SELECT pg_notify($1, '')`, [JOBS_CHANNEL]);
}

/**
 * Make a queued job look at its state again now: runnable at once if no
 * worker holds it; if one does, `wake_requested` makes its suspend (delay,
 * wait) come straight back instead of sleeping past the news.
 */
export async function wakeJob(tx: Queryable, jobId: string): Promise<void> {
  await tx.query(
    `UPDATE stepwise.job_queue
        SET wake_requested = true, run_at = CASE WHEN locked_by IS NULL THEN now() ELSE run_at END
      WHERE job_id = $1`,
    [jobId],
  );
  await tx.query(`SELECT pg_notify($1, '')`, [JOBS_CHANNEL]);
}

/**
 * The oldest unconsumed signal of this name for the job, or null. Reading
 * does not consume: the worker marks it consumed (markSignalsConsumed) in the
 * same transaction as the wait step's checkpoint, so a crash in between
 * (or a lost lease) leaves the signal for the job's next run.
 */
export async function findPendingSignal(
  db: Queryable,
  organizationId: string,
  jobId: string,
  name: string,
  /** Signals this run already took but has not recorded yet (two waits of one job must not take the same one). */
  excluding: readonly string[] = [],
): Promise<{ id: string; payload: unknown } | null> {
  const { rows } = await db.query<{ id: string; payload: unknown }>(
    `SELECT id, payload FROM stepwise.job_signals
      WHERE organization_id = $1 AND job_id = $2 AND name = $3 AND consumed_at IS NULL AND id <> ALL ($4::uuid[])
      ORDER BY created_at, id LIMIT 1`,
    [organizationId, jobId, name, pgArray(excluding)],
  );
  return rows[0] ?? null;
}

/** A signal a job's wait step consumed: the job travels with it, so the recorder can fence it by the job's lease. */
export interface SignalConsumption {
  jobId: string;
  signalId: string;
}

/** Mark signals consumed (each only for the job it was sent to, and only once). */
export async function markSignalsConsumed(tx: Queryable, consumed: SignalConsumption[]): Promise<void> {
  if (consumed.length === 0) return;
  await tx.query(
    `UPDATE stepwise.job_signals s SET consumed_at = now()
       FROM unnest($1::uuid[], $2::uuid[]) AS u(id, job_id)
      WHERE s.id = u.id AND s.job_id = u.job_id AND s.consumed_at IS NULL`,
    [pgArray(consumed.map((c) => c.signalId)), pgArray(consumed.map((c) => c.jobId))],
  );
}

/**
 * Mark a job's cancellation as requested (first request wins the time).
 * False when it ended meanwhile: a terminal job cannot be cancelled.
 */
export async function requestCancel(tx: Queryable, organizationId: string, jobId: string): Promise<boolean> {
  const { rowCount } = await tx.query(
    `UPDATE stepwise.jobs SET cancel_requested_at = coalesce(cancel_requested_at, now())
      WHERE organization_id = $1 AND id = $2 AND status <> ALL ($3::text[])`,
    [organizationId, jobId, TERMINAL_STATUSES],
  );
  if (rowCount > 0) await tx.query(`SELECT pg_notify($1, $2)`, [CANCEL_CHANNEL, jobId]);
  return rowCount > 0;
}

/**
 * Request the cancellation of a job's sub-workflows and theirs (parent
 * links, at most a few levels deep), those not ended yet, and tell their
 * workers. Returns their ids (to wake those waiting).
 */
export async function requestCancelDescendants(tx: Queryable, organizationId: string, jobId: string): Promise<string[]> {
  const { rows } = await tx.query<{ id: string }>(
    `WITH RECURSIVE tree(id) AS (
       SELECT id FROM stepwise.jobs WHERE organization_id = $1 AND parent_job_id = $2
       UNION ALL
       SELECT j.id FROM stepwise.jobs j JOIN tree t ON j.parent_job_id = t.id WHERE j.organization_id = $1
     )
     UPDATE stepwise.jobs j SET cancel_requested_at = coalesce(j.cancel_requested_at, now())
       FROM tree WHERE j.id = tree.id AND j.status <> ALL ($3::text[])
     RETURNING j.id`,
    [organizationId, jobId, TERMINAL_STATUSES],
  );
  for (const r of rows) await tx.query(`SELECT pg_notify($1, $2)`, [CANCEL_CHANNEL, r.id]);
  return rows.map((r) => r.id);
}
