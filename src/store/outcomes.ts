import { pgArray, type Queryable } from '../db/index.js';
import { SUCCESSFUL_STATUSES, type JobStatus } from './jobs.js';
import { deleteStepResults } from './step-results.js';
import type { JobResultRef } from './job-results.js';

/** What a claim started, written with the job's first flush (see store/queue.ts CLAIM_TAIL). */
export interface JobStart {
  jobId: string;
  attempts: number;
  startedAt: Date;
  deadlineAt: Date | null;
}

/**
 * Mark started jobs RUNNING with their attempt, start time and deadline, in
 * one statement. Called only for jobs the flush has just found still held
 * by this worker (store/record-tx.ts holdLeases), under their row locks.
 */
export async function markJobsRunning(tx: Queryable, starts: JobStart[]): Promise<void> {
  if (starts.length === 0) return;
  await tx.query(
    `UPDATE stepwise.jobs j
        SET status = 'RUNNING', attempts = u.attempts, started_at = coalesce(j.started_at, u.started_at),
            deadline_at = coalesce(j.deadline_at, u.deadline_at)
       FROM (SELECT id, attempts, to_timestamp(started_ms / 1000) AS started_at, to_timestamp(deadline_ms / 1000) AS deadline_at
               FROM unnest($1::uuid[], $2::int[], $3::float8[], $4::float8[]) AS x(id, attempts, started_ms, deadline_ms)) AS u
      WHERE j.id = u.id AND j.id = ANY($1::uuid[])`,
    [
      pgArray(starts.map((s) => s.jobId)),
      pgArray(starts.map((s) => s.attempts)),
      pgArray(starts.map((s) => s.startedAt.getTime())),
      pgArray(starts.map((s) => s.deadlineAt?.getTime() ?? null)),
    ],
  );
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
  /** Job-level retries ran out: the job failed for good (jobs.max_retries_reached). */
  maxRetriesReached?: boolean;
  /** A checkpoint row may exist for this job (it resumed, or one was flushed): delete it on success. */
  hasCheckpoint?: boolean;
  /** Rows of its steps inside blocks may exist (execution_step_results): delete them on success. */
  hasStepResults?: boolean;
  /** A sub-workflow's parent, woken by this outcome to look at its child. */
  parentJobId?: string | null;
  /** Set when the job's start was not flushed yet: recorded together with the outcome. */
  start?: JobStart;
  /** The result is in blob storage (result is null): recorded in job_result_archives with the outcome. */
  resultRef?: JobResultRef;
}

/**
 * Times travel as epoch milliseconds (float8), as in insertStreamRows:
 * formatting two ISO strings per job was a visible part of a flush.
 *
 * Write final outcomes of a batch of jobs in one statement, and take their
 * rows out of the queue in the same statement (a job's queue row lives
 * exactly as long as the job can still run). The recorder calls it only for
 * jobs it has just found still held (store/record-tx.ts holdLeases), in the
 * same transaction. Checkpoints of successful jobs go with them; an
 * unsuccessful job's (FAILED, TIMED_OUT, CANCELLED) stays until it expires,
 * so a retry can resume from the failed step.
 */
export async function completeJobs(tx: Queryable, completions: JobCompletion[]): Promise<void> {
  if (completions.length === 0) return;
  // The same statement adds the jobs' steps and result bytes to their
  // organization's usage for the month each job was created in (one upsert
  // per organization and month in the batch). This is the only statement
  // that ends jobs, and a job ends once (its queue row goes with it, and only
  // a worker holding that row records an outcome), so each counts once.
  // A statement-level trigger over transition tables did the same at +25-30%
  // of the completion time on PGlite (2,000-job micro-benchmark).
  await tx.query(
    `WITH released AS (
       DELETE FROM stepwise.job_queue WHERE job_id = ANY($1::uuid[])
     ), done AS (
     UPDATE stepwise.jobs j
        SET status = u.status, completed_at = u.completed_at, result = u.result,
            error_code = u.error_code, error_message = u.error_message, error_step = u.error_step,
            steps_completed = u.steps_completed, last_seq = u.last_seq, max_retries_reached = u.max_retries_reached,
            attempts = coalesce(u.attempts, j.attempts),
            started_at = coalesce(j.started_at, u.started_at),
            duration_ms = greatest(0, (extract(epoch FROM (u.completed_at - coalesce(j.started_at, u.started_at))) * 1000)::int)
       FROM (SELECT x.*, to_timestamp(x.completed_ms / 1000) AS completed_at, to_timestamp(x.started_ms / 1000) AS started_at
               FROM unnest($1::uuid[], $2::text[], $3::float8[], $4::jsonb[], $5::text[], $6::text[], $7::text[],
                           $8::int[], $9::int[], $10::boolean[], $11::int[], $12::float8[])
                 AS x(id, status, completed_ms, result, error_code, error_message, error_step, steps_completed, last_seq,
                      max_retries_reached, attempts, started_ms)) AS u
      -- The ANY makes the plan a primary-key probe per job: joined alone, a
      -- young table's plan hashed a sequential scan of all of jobs per flush.
      WHERE j.id = u.id AND j.id = ANY($1::uuid[])
     RETURNING j.organization_id, j.created_at, j.steps_completed, pg_column_size(j.result) AS result_bytes
     )
     INSERT INTO stepwise.usage_records AS r (organization_id, period_start, steps, storage_bytes)
     SELECT organization_id, (date_trunc('month', created_at AT TIME ZONE 'UTC'))::date, sum(steps_completed),
            coalesce(sum(result_bytes), 0)
       FROM done GROUP BY 1, 2
      -- Key order: flushes of several workers that end jobs of the same organizations lock these
      -- rows in the same order, so they queue instead of deadlocking (in hash order, once flushes
      -- no longer queued on step_metrics first, one run of bench scale-out lost a flush to a
      -- deadlock: a 1 s wait and a retry).
      ORDER BY 1, 2
     ON CONFLICT (organization_id, period_start) DO UPDATE
        SET steps = r.steps + excluded.steps, storage_bytes = r.storage_bytes + excluded.storage_bytes, updated_at = now()`,
    [
      pgArray(completions.map((c) => c.jobId)),
      pgArray(completions.map((c) => c.status)),
      pgArray(completions.map((c) => c.completedAt.getTime())),
      pgArray(completions.map((c) => (c.result === undefined ? null : JSON.stringify(c.result)))),
      pgArray(completions.map((c) => c.errorCode)),
      pgArray(completions.map((c) => c.errorMessage)),
      pgArray(completions.map((c) => c.errorStep)),
      pgArray(completions.map((c) => c.stepsCompleted)),
      pgArray(completions.map((c) => c.lastSeq)),
      pgArray(completions.map((c) => c.maxRetriesReached ?? false)),
      pgArray(completions.map((c) => c.start?.attempts ?? null)),
      pgArray(completions.map((c) => c.start?.startedAt.getTime() ?? null)),
    ],
  );
  // Most jobs finish inside one flush and never had a checkpoint row: no delete for them.
  const done = completions
    .filter((c) => c.hasCheckpoint && SUCCESSFUL_STATUSES.includes(c.status))
    .map((c) => c.jobId);
  if (done.length > 0) await tx.query(`DELETE FROM stepwise.execution_checkpoints WHERE job_id = ANY($1::uuid[])`, [done]);
  const withResults = completions.filter((c) => c.hasStepResults && SUCCESSFUL_STATUSES.includes(c.status)).map((c) => c.jobId);
  await deleteStepResults(tx, withResults);
}

/** A job put back in the queue by its worker: handed back, waiting, or scheduled for a job-level retry. */
export interface JobSuspension {
  jobId: string;
  /** PENDING (hand-back, retry) or WAITING (delay, wait for a signal). */
  status: 'PENDING' | 'WAITING';
  runAt: Date;
  lastSeq: number;
  /** Set for a job-level retry: counts it and keeps the failure visible meanwhile. */
  retry?: { errorCode: string; errorMessage: string; errorStep: string | null };
  /** Set when the job's start was not flushed yet: recorded together with the suspension. */
  start?: JobStart;
}

/**
 * Unlock this worker's queue rows for the given jobs with a new run_at, and
 * set the jobs' status; rows another worker has taken over are left alone.
 */
export async function suspendJobs(tx: Queryable, workerId: string, suspensions: JobSuspension[]): Promise<number> {
  if (suspensions.length === 0) return 0;
  const { rowCount } = await tx.query(
    `WITH u AS (
       SELECT * FROM unnest($2::uuid[], $3::text[], $4::timestamptz[], $5::int[], $6::boolean[], $7::text[], $8::text[], $9::text[],
                            $10::int[], $11::timestamptz[], $12::timestamptz[])
         AS u(id, status, run_at, last_seq, retry, error_code, error_message, error_step, attempts, started_at, deadline_at)
     ), back AS (
       UPDATE stepwise.job_queue q
          SET locked_by = NULL, locked_until = NULL, wake_requested = false,
              run_at = CASE WHEN q.wake_requested THEN now() ELSE u.run_at END
         FROM u WHERE q.job_id = u.id AND q.locked_by = $1
       RETURNING q.job_id
     )
     UPDATE stepwise.jobs j
        SET status = u.status, last_seq = u.last_seq,
            attempts = coalesce(u.attempts, j.attempts),
            started_at = coalesce(j.started_at, u.started_at),
            deadline_at = coalesce(j.deadline_at, u.deadline_at),
            retry_count = j.retry_count + CASE WHEN u.retry THEN 1 ELSE 0 END,
            error_code = CASE WHEN u.retry THEN u.error_code ELSE j.error_code END,
            error_message = CASE WHEN u.retry THEN u.error_message ELSE j.error_message END,
            error_step = CASE WHEN u.retry THEN u.error_step ELSE j.error_step END
       FROM back JOIN u ON u.id = back.job_id
      WHERE j.id = back.job_id`,
    [
      workerId,
      pgArray(suspensions.map((s) => s.jobId)),
      pgArray(suspensions.map((s) => s.status)),
      pgArray(suspensions.map((s) => s.runAt.toISOString())),
      pgArray(suspensions.map((s) => s.lastSeq)),
      pgArray(suspensions.map((s) => s.retry !== undefined)),
      pgArray(suspensions.map((s) => s.retry?.errorCode ?? null)),
      pgArray(suspensions.map((s) => s.retry?.errorMessage ?? null)),
      pgArray(suspensions.map((s) => s.retry?.errorStep ?? null)),
      pgArray(suspensions.map((s) => s.start?.attempts ?? null)),
      pgArray(suspensions.map((s) => s.start?.startedAt.toISOString() ?? null)),
      pgArray(suspensions.map((s) => s.start?.deadlineAt?.toISOString() ?? null)),
    ],
  );
  return rowCount;
}
