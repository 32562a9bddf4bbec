import { pgArray, type Queryable } from '../db/index.js';
import { ConflictError } from '../errors/index.js';
import { uuidv7 } from '../util/ids.js';
import { prepareFlow, type RunFlowPlan } from './flow-enqueue.js';
import { assertPlanAllows } from './plans.js';
import { searchKeysCte, searchRowsOf } from './search-keys.js';
import { notifyChanges } from './change-notify.js';

export const JOB_STATUSES = [
  'PENDING',
  'RUNNING',
  'WAITING',
  'COMPLETED',
  'PARTIAL_SUCCESS',
  'FAILED',
  'CANCELLED',
  'TIMED_OUT',
] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];
export const TERMINAL_STATUSES: readonly JobStatus[] = ['COMPLETED', 'PARTIAL_SUCCESS', 'FAILED', 'CANCELLED', 'TIMED_OUT'];
/** The terminal statuses of a job that succeeded (PARTIAL_SUCCESS: steps failed under continueOnError). */
export const SUCCESSFUL_STATUSES: readonly JobStatus[] = ['COMPLETED', 'PARTIAL_SUCCESS'];

export const INITIATOR_TYPES = ['MANUAL', 'SCHEDULE', 'WEBHOOK', 'API', 'RETRY', 'PARENT'] as const;
export type InitiatorType = (typeof INITIATOR_TYPES)[number];

/** Channel NOTIFY'd (once per enqueue batch) so idle workers wake at once. */
export const JOBS_CHANNEL = 'stepwise_jobs';
/** Channel NOTIFY'd with a job id when its cancellation is requested. */
export const CANCEL_CHANNEL = 'stepwise_cancel';
/** Channel NOTIFY'd when a concurrency limit changes, so workers re-read them at once. */
export const LIMITS_CHANNEL = 'stepwise_limits';

export interface Job {
  id: string;
  organizationId: string;
  workflowId: string;
  workflowVersion: number;
  clientId: string | null;
  runNumber: number;
  status: JobStatus;
  initiatorType: InitiatorType;
  retryOfJobId: string | null;
  priority: number;
  attempts: number;
  idempotencyKey: string | null;
  input: unknown;
  result: unknown;
  errorCode: string | null;
  errorMessage: string | null;
  errorStep: string | null;
  stepsTotal: number;
  stepsCompleted: number;
  lastSeq: number;
  createdAt: Date;
  startedAt: Date | null;
  completedAt: Date | null;
  durationMs: number | null;
  retryCount: number;
  maxRetries: number;
  maxRetriesReached: boolean;
  deadlineAt: Date | null;
  cancelRequestedAt: Date | null;
  /** The user whose key started the run (null for schedules, webhooks and sub-workflows). */
  initiatedBy: string | null;
  /** A sub-workflow's parent job and the parent's step that started it (null for other runs). */
  parentJobId: string | null;
  parentStepPath: string | null;
  /** Parents above this job (0 for a run started any other way). */
  depth: number;
}

/** A jobs row as the driver returns it (exported for the read side's joins). */
export interface JobRow {
  id: string;
  organization_id: string;
  workflow_id: string;
  workflow_version: number;
  client_id: string | null;
  run_number: number;
  status: JobStatus;
  initiator_type: InitiatorType;
  retry_of_job_id: string | null;
  priority: number;
  attempts: number;
  idempotency_key: string | null;
  input: unknown;
  result: unknown;
  error_code: string | null;
  error_message: string | null;
  error_step: string | null;
  steps_total: number;
  steps_completed: number;
  last_seq: number;
  created_at: Date;
  started_at: Date | null;
  completed_at: Date | null;
  duration_ms: number | null;
  retry_count: number;
  max_retries: number;
  max_retries_reached: boolean;
  deadline_at: Date | null;
  cancel_requested_at: Date | null;
  initiated_by: string | null;
  parent_job_id: string | null;
  parent_step_path: string | null;
  depth: number;
}

const JOB_COLUMNS = `id, organization_id, workflow_id, workflow_version, client_id, run_number, status,
  initiator_type, retry_of_job_id, priority, attempts, idempotency_key, input, result, error_code,
  error_message, error_step, steps_total, steps_completed, last_seq, created_at, started_at,
  completed_at, duration_ms, retry_count, max_retries, max_retries_reached, deadline_at, cancel_requested_at,
  initiated_by, parent_job_id, parent_step_path, depth`;

/** The job columns, qualified by a table alias, for queries that join jobs to other tables. */
export function jobColumns(alias: string): string {
  return JOB_COLUMNS.split(',').map((c) => `${alias}.${c.trim()}`).join(', ');
}

export function toJob(row: JobRow): Job {
  return {
    id: row.id,
    organizationId: row.organization_id,
    workflowId: row.workflow_id,
    workflowVersion: row.workflow_version,
    clientId: row.client_id,
    runNumber: row.run_number,
    status: row.status,
    initiatorType: row.initiator_type,
    retryOfJobId: row.retry_of_job_id,
    priority: row.priority,
    attempts: row.attempts,
    idempotencyKey: row.idempotency_key,
    input: row.input,
    result: row.result,
    errorCode: row.error_code,
    errorMessage: row.error_message,
    errorStep: row.error_step,
    stepsTotal: row.steps_total,
    stepsCompleted: row.steps_completed,
    lastSeq: row.last_seq,
    createdAt: row.created_at,
    startedAt: row.started_at,
    completedAt: row.completed_at,
    durationMs: row.duration_ms,
    retryCount: row.retry_count,
    maxRetries: row.max_retries,
    maxRetriesReached: row.max_retries_reached,
    deadlineAt: row.deadline_at,
    cancelRequestedAt: row.cancel_requested_at,
    initiatedBy: row.initiated_by,
    parentJobId: row.parent_job_id,
    parentStepPath: row.parent_step_path,
    depth: row.depth,
  };
}

export interface NewJob {
  input?: unknown;
  clientId?: string | null | undefined;
  idempotencyKey?: string | null | undefined;
  priority?: number | undefined;
  initiatorType?: InitiatorType | undefined;
  retryOfJobId?: string | null | undefined;
  runAt?: Date | undefined;
  /** The user whose key started the run. */
  initiatedBy?: string | null | undefined;
  /** A sub-workflow's parent: its job, the step path that starts the child, and the child's depth. */
  parent?: { jobId: string; stepPath: string; depth: number } | undefined;
}

export interface EnqueuedJob {
  id: string;
  runNumber: number;
  status: JobStatus;
  /** False when an idempotency key matched an existing job, which is returned instead. */
  created: boolean;
}

export interface KeyedJob {
  id: string;
  workflowId: string;
  runNumber: number;
  status: JobStatus;
}

/** Jobs already created under these idempotency keys, by key. */
export async function findJobsByIdempotencyKeys(
  db: Queryable,
  organizationId: string,
  keys: string[],
): Promise<Map<string, KeyedJob>> {
  const out = new Map<string, KeyedJob>();
  if (keys.length === 0) return out;
  const { rows } = await db.query<{ id: string; workflow_id: string; run_number: number; status: JobStatus; idempotency_key: string }>(
    `SELECT id, workflow_id, run_number, status, idempotency_key FROM stepwise.jobs
      WHERE organization_id = $1 AND idempotency_key = ANY($2::text[])`,
    [organizationId, keys],
  );
  for (const r of rows) out.set(r.idempotency_key, { id: r.id, workflowId: r.workflow_id, runNumber: r.run_number, status: r.status });
  return out;
}

/**
 * Enqueue a batch of runs of one workflow version in one transaction: one
 * UPDATE hands out the run numbers, one INSERT writes the jobs and their queue
 * rows (unnest arrays), one NOTIFY wakes the workers. A run whose idempotency
 * key already exists is not inserted; the existing job is returned.
 */
export async function enqueueJobs(
  tx: Queryable,
  organizationId: string,
  workflow: {
    id: string;
    version: number;
    stepsTotal: number;
    maxRetries?: number;
    timeoutMs?: number;
    flow?: RunFlowPlan | undefined;
    /** Input paths whose values are indexed for the runs list's search (store/search-keys.ts). */
    searchKeys?: readonly string[] | undefined;
  },
  jobs: NewJob[],
): Promise<EnqueuedJob[]> {
  if (jobs.length === 0) return [];
  const keys = jobs.map((j) => j.idempotencyKey ?? null);
  const existing = new Map<string, EnqueuedJob>();
  const found = await findJobsByIdempotencyKeys(tx, organizationId, keys.filter((k): k is string => k !== null));
  for (const [key, job] of found) {
    if (job.workflowId !== workflow.id) {
      throw new ConflictError(`idempotency key "${key}" was already used for a run of workflow ${job.workflowId}`, {
        path: 'idempotencyKey',
        jobId: job.id,
      });
    }
    existing.set(key, { id: job.id, runNumber: job.runNumber, status: job.status, created: false });
  }
  // A key repeated inside the batch also runs once.
  let fresh: { job: NewJob; index: number }[] = [];
  const firstIndexOfKey = new Map<string, number>();
  jobs.forEach((job, index) => {
    const key = keys[index];
    if (key !== null && key !== undefined) {
      if (existing.has(key) || firstIndexOfKey.has(key)) return;
      firstIndexOfKey.set(key, index);
    }
    fresh.push({ job, index });
  });
  // Flow control (dedupe, debounce, priority, concurrency keys; store/flow-enqueue.ts): only workflows that declare it pay for it.
  const searchKeys = workflow.searchKeys && workflow.searchKeys.length > 0 ? workflow.searchKeys : undefined;
  const flow =
    workflow.flow && fresh.length > 0
      ? await prepareFlow(tx, organizationId, workflow.id, workflow.flow, fresh, jobs.length, searchKeys)
      : undefined;
  if (flow) fresh = flow.fresh;

  const results: (EnqueuedJob | undefined)[] = new Array(jobs.length);
  if (fresh.length > 0) {
    const { rows: counter } = await tx.query<{ run_counter: number; plan: string }>(
      `UPDATE stepwise.organizations SET run_counter = run_counter + $2 WHERE id = $1 RETURNING run_counter, plan`,
      [organizationId, fresh.length],
    );
    // The row lock just taken serialises this organization's enqueues, so the
    // monthly count read here is exact (the INSERT below adds this batch to
    // it in the same statement). Unlimited plans read nothing more.
    await assertPlanAllows(tx, organizationId, counter[0]!.plan, 'executions', fresh.length);
    const last = counter[0]!.run_counter;
    const first = last - fresh.length + 1;
    const ids = fresh.map(() => uuidv7());
    // Search keys ride in the same statement, and only for workflows that declare them
    // (the statement of every other workflow is unchanged).
    const search = searchKeys ? searchRowsOf(fresh.map((f, i) => ({ jobId: ids[i]!, input: f.job.input })), searchKeys) : undefined;
    const indexed = search !== undefined && search.jobIds.length > 0;
    await tx.query(
      `WITH ins AS (
         INSERT INTO stepwise.jobs (id, organization_id, workflow_id, workflow_version, client_id, run_number,
                                    initiator_type, retry_of_job_id, priority, idempotency_key, input, steps_total,
                                    max_retries, timeout_ms, parent_job_id, parent_step_path, depth, initiated_by)
         SELECT u.id, $1, $2, $3, u.client_id, u.run_number, u.initiator_type, u.retry_of_job_id, u.priority,
                u.idempotency_key, u.input, $4, $14, $15, u.parent_job_id, u.parent_step_path, coalesce(u.depth, 0), u.initiated_by
           FROM unnest($5::uuid[], $6::uuid[], $7::bigint[], $8::text[], $9::uuid[], $10::smallint[], $11::text[],
                       $12::jsonb[], $13::timestamptz[], $16::uuid[], $17::text[], $18::smallint[], $19::uuid[])
             AS u(id, client_id, run_number, initiator_type, retry_of_job_id, priority, idempotency_key, input, run_at,
                  parent_job_id, parent_step_path, depth, initiated_by)
         RETURNING id, priority, pg_column_size(input) AS input_bytes${indexed ? ', created_at, run_number' : ''}
       ),${indexed ? `\n       ${searchKeysCte(22)},` : ''}
       -- This month's executions and input bytes, one upsert for the batch.
       usage AS (
         INSERT INTO stepwise.usage_records AS r (organization_id, period_start, executions, storage_bytes)
         SELECT $1, (date_trunc('month', now() AT TIME ZONE 'UTC'))::date, count(*), coalesce(sum(input_bytes), 0) FROM ins
         ON CONFLICT (organization_id, period_start) DO UPDATE
            SET executions = r.executions + excluded.executions, storage_bytes = r.storage_bytes + excluded.storage_bytes,
                updated_at = now()
       )
       INSERT INTO stepwise.job_queue (job_id, organization_id, workflow_id, priority, run_at, concurrency_keys, concurrency_limits)
       SELECT ins.id, $1, $2, ins.priority, coalesce(u.run_at, now()), u.ck::bigint[], u.cl::integer[]
         FROM ins JOIN unnest($5::uuid[], $13::timestamptz[], $20::text[], $21::text[]) AS u(id, run_at, ck, cl) ON u.id = ins.id`,
      [
        organizationId,
        workflow.id,
        workflow.version,
        workflow.stepsTotal,
        pgArray(ids),
        pgArray(fresh.map((f) => f.job.clientId ?? null)),
        pgArray(fresh.map((_, i) => first + i)),
        pgArray(fresh.map((f) => f.job.initiatorType ?? 'API')),
        pgArray(fresh.map((f) => f.job.retryOfJobId ?? null)),
        pgArray(fresh.map((f) => f.job.priority ?? 0)),
        pgArray(fresh.map((f) => f.job.idempotencyKey ?? null)),
        pgArray(fresh.map((f) => (f.job.input === undefined ? null : JSON.stringify(f.job.input)))),
        pgArray(fresh.map((f) => (f.job.runAt ? f.job.runAt.toISOString() : null))),
        workflow.maxRetries ?? 0,
        workflow.timeoutMs ?? null,
        pgArray(fresh.map((f) => f.job.parent?.jobId ?? null)),
        pgArray(fresh.map((f) => f.job.parent?.stepPath ?? null)),
        pgArray(fresh.map((f) => f.job.parent?.depth ?? null)),
        pgArray(fresh.map((f) => f.job.initiatedBy ?? null)),
        // Concurrency keys and limits: NULL arrays (so NULL columns) unless the workflow declares rules.
        flow?.concurrencyKeys ?? null,
        flow?.concurrencyLimits ?? null,
        ...(indexed ? [pgArray(search.jobIds), pgArray(search.keys), pgArray(search.values)] : []),
      ],
    );
    // Wakes idle workers, and tells live views (api/live/) the runs exist: one statement for both.
    await notifyChanges(tx, [[organizationId, ids]], [{ channel: JOBS_CHANNEL, payload: '' }]);
    fresh.forEach((f, i) => {
      const enqueued: EnqueuedJob = { id: ids[i]!, runNumber: first + i, status: 'PENDING', created: true };
      results[f.index] = enqueued;
      const key = keys[f.index];
      if (key) existing.set(key, { ...enqueued, created: false });
    });
  }
  if (flow) await flow.finish(tx, results);
  return jobs.map((_, i) => results[i] ?? existing.get(keys[i]!)!);
}

export async function findJob(db: Queryable, organizationId: string, jobId: string): Promise<Job | null> {
  const { rows } = await db.query<JobRow>(
    `SELECT ${JOB_COLUMNS} FROM stepwise.jobs WHERE organization_id = $1 AND id = $2`,
    [organizationId, jobId],
  );
  return rows[0] ? toJob(rows[0]) : null;
}


/** The child job a parent's step started (sub-workflows: one per parent job and step path), or null. */
export async function findChildJob(db: Queryable, organizationId: string, parentJobId: string, parentStepPath: string): Promise<Job | null> {
  const { rows } = await db.query<JobRow>(
    `SELECT ${JOB_COLUMNS} FROM stepwise.jobs WHERE organization_id = $1 AND parent_job_id = $2 AND parent_step_path = $3`,
    [organizationId, parentJobId, parentStepPath],
  );
  return rows[0] ? toJob(rows[0]) : null;
}
