import type { Queryable } from '../db/index.js';
import type { JobStatus } from './jobs.js';

/** A job as a worker receives it from a claim. */
export interface ClaimedJob {
  id: string;
  organizationId: string;
  workflowId: string;
  workflowVersion: number;
  clientId: string | null;
  runNumber: number;
  attempts: number;
  lastSeq: number;
  input: unknown;
  createdAt: Date;
}

interface ClaimedRow {
  id: string;
  organization_id: string;
  workflow_id: string;
  workflow_version: number;
  client_id: string | null;
  run_number: number;
  attempts: number;
  last_seq: number;
  input: unknown;
  created_at: Date;
}

/**
 * Claim up to `limit` runnable jobs in one statement: pick from the small
 * queue table with FOR UPDATE SKIP LOCKED (concurrent claimers skip each
 * other's rows instead of waiting), stamp the lease, and flip the jobs to
 * RUNNING. A row whose lease expired (its worker died) is runnable again.
 */
export async function claimJobs(db: Queryable, workerId: string, limit: number, leaseMs: number): Promise<ClaimedJob[]> {
  const { rows } = await db.query<ClaimedRow>(
    `WITH picked AS (
       SELECT job_id FROM stepwise.job_queue
        WHERE run_at <= now() AND (locked_until IS NULL OR locked_until < now())
        ORDER BY priority DESC, run_at, job_id
        LIMIT $2
        FOR UPDATE SKIP LOCKED
     ), leased AS (
       UPDATE stepwise.job_queue q
          SET locked_by = $1, locked_until = now() + make_interval(secs => $3::double precision / 1000)
         FROM picked WHERE q.job_id = picked.job_id
       RETURNING q.job_id
     )
     UPDATE stepwise.jobs j
        SET status = 'RUNNING', started_at = coalesce(j.started_at, now()), attempts = j.attempts + 1
       FROM leased WHERE j.id = leased.job_id
     RETURNING j.id, j.organization_id, j.workflow_id, j.workflow_version, j.client_id, j.run_number,
               j.attempts, j.last_seq, j.input, j.created_at`,
    [workerId, limit, leaseMs],
  );
  return rows.map((r) => ({
    id: r.id,
    organizationId: r.organization_id,
    workflowId: r.workflow_id,
    workflowVersion: r.workflow_version,
    clientId: r.client_id,
    runNumber: r.run_number,
    attempts: r.attempts,
    lastSeq: r.last_seq,
    input: r.input,
    createdAt: r.created_at,
  }));
}

/** Heartbeat: extend the leases this worker still holds, in one statement. Returns the ids still held. */
export async function renewLeases(db: Queryable, workerId: string, jobIds: string[], leaseMs: number): Promise<string[]> {
  if (jobIds.length === 0) return [];
  const { rows } = await db.query<{ job_id: string }>(
    `UPDATE stepwise.job_queue
        SET locked_until = now() + make_interval(secs => $3::double precision / 1000)
      WHERE job_id = ANY($2::uuid[]) AND locked_by = $1
      RETURNING job_id`,
    [workerId, jobIds, leaseMs],
  );
  return rows.map((r) => r.job_id);
}

/** Highest sequence number already in the stream per job (for jobs taken over after a crash). */
export async function findLastSeqs(db: Queryable, jobIds: string[]): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  if (jobIds.length === 0) return out;
  const { rows } = await db.query<{ job_id: string; seq: number }>(
    `SELECT job_id, max(seq) AS seq FROM stepwise.execution_log WHERE job_id = ANY($1::uuid[]) GROUP BY job_id`,
    [jobIds],
  );
  for (const r of rows) out.set(r.job_id, r.seq);
  return out;
}

export interface JobCompletion {
  jobId: string;
  status: JobStatus;
  completedAt: Date;
  result: unknown;
  errorCode: string | null;
  errorMessage: string | null;
  errorStep: string | null;
  stepsCompleted: number;
  lastSeq: number;
}

/**
 * Release this worker's queue rows for the given jobs. Only rows it still
 * holds are released, so a worker whose lease was taken over cannot finish a
 * job twice. Returns the ids it held.
 */
export async function releaseOwned(tx: Queryable, workerId: string, jobIds: string[]): Promise<Set<string>> {
  if (jobIds.length === 0) return new Set();
  const { rows } = await tx.query<{ job_id: string }>(
    `DELETE FROM stepwise.job_queue WHERE job_id = ANY($2::uuid[]) AND locked_by = $1 RETURNING job_id`,
    [workerId, jobIds],
  );
  return new Set(rows.map((r) => r.job_id));
}

/** Write final outcomes of a batch of jobs in one statement (after releaseOwned, same transaction). */
export async function completeJobs(tx: Queryable, completions: JobCompletion[]): Promise<void> {
  if (completions.length === 0) return;
  await tx.query(
    `UPDATE stepwise.jobs j
        SET status = u.status, completed_at = u.completed_at, result = u.result,
            error_code = u.error_code, error_message = u.error_message, error_step = u.error_step,
            steps_completed = u.steps_completed, last_seq = u.last_seq,
            duration_ms = greatest(0, (extract(epoch FROM (u.completed_at - j.started_at)) * 1000)::int)
       FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::jsonb[], $5::text[], $6::text[], $7::text[],
                   $8::int[], $9::int[])
         AS u(id, status, completed_at, result, error_code, error_message, error_step, steps_completed, last_seq)
      WHERE j.id = u.id`,
    [
      completions.map((c) => c.jobId),
      completions.map((c) => c.status),
      completions.map((c) => c.completedAt.toISOString()),
      completions.map((c) => (c.result === undefined ? null : JSON.stringify(c.result))),
      completions.map((c) => c.errorCode),
      completions.map((c) => c.errorMessage),
      completions.map((c) => c.errorStep),
      completions.map((c) => c.stepsCompleted),
      completions.map((c) => c.lastSeq),
    ],
  );
}

/**
 * Hand jobs back to the queue (graceful shutdown): unlock the queue rows this
 * worker holds and set the jobs PENDING so any worker can take them at once.
 */
export async function handBackJobs(
  tx: Queryable,
  workerId: string,
  jobs: { jobId: string; lastSeq: number }[],
): Promise<number> {
  if (jobs.length === 0) return 0;
  const { rowCount } = await tx.query(
    `WITH back AS (
       UPDATE stepwise.job_queue SET locked_by = NULL, locked_until = NULL, run_at = now()
        WHERE job_id = ANY($2::uuid[]) AND locked_by = $1
       RETURNING job_id
     )
     UPDATE stepwise.jobs j SET status = 'PENDING', last_seq = u.last_seq
       FROM back JOIN unnest($2::uuid[], $3::int[]) AS u(id, last_seq) ON u.id = back.job_id
      WHERE j.id = back.job_id`,
    [workerId, jobs.map((j) => j.jobId), jobs.map((j) => j.lastSeq)],
  );
  return rowCount;
}
