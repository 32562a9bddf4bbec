import type { Queryable } from '../db/index.js';
import { jobColumns, jobStreamBounds, toJob, toStreamEntry, type InitiatorType, type Job, type JobRow, type JobStatus, type StreamDbRow } from '../store/index.js';
import { replayJobEvents, type JobEvent, type JobState, type StepState } from './job-state.js';

/** Keyset position in the newest-first listing: created_at (as epoch microseconds) and run number. */
export interface JobListPosition {
  createdUs: string;
  runNumber: number;
}

export interface JobListFilter {
  statuses?: JobStatus[] | undefined;
  workflowId?: string | undefined;
  clientId?: string | undefined;
  initiatorType?: InitiatorType | undefined;
  createdFrom?: Date | undefined;
  /** Exclusive. */
  createdTo?: Date | undefined;
  errorCode?: string | undefined;
  /** Return jobs after this position (a cursor from the previous page). */
  after?: JobListPosition | undefined;
  /** Older cursors carried the run number only. */
  beforeRunNumber?: number | undefined;
  limit: number;
}

export interface JobListItem extends Job {
  workflowName: string | null;
  clientName: string | null;
}

export interface JobListPage {
  items: JobListItem[];
  next: JobListPosition | null;
}

/**
 * The dashboard's job list, served from the execution_metadata read model:
 * filters and the keyset (created_at DESC, run_number DESC) run on the slim
 * rows and their (organization, …, created_at DESC) indexes; only the page
 * (≤ limit rows) is joined to jobs, workflows and clients for the full row
 * and the names. The SQL is assembled from fixed fragments for the filters
 * present (values always travel as parameters), so each form gets a plan
 * made for it.
 */
export async function listJobSummaries(db: Queryable, organizationId: string, filter: JobListFilter): Promise<JobListPage> {
  const params: unknown[] = [organizationId];
  const where = ['m.organization_id = $1'];
  const add = (sql: (p: string) => string, value: unknown) => {
    params.push(value);
    where.push(sql(`$${params.length}`));
  };
  if (filter.statuses && filter.statuses.length > 0) add((p) => `m.status = ANY(${p}::text[])`, filter.statuses);
  if (filter.workflowId) add((p) => `m.workflow_id = ${p}::uuid`, filter.workflowId);
  if (filter.clientId) add((p) => `m.client_id = ${p}::uuid`, filter.clientId);
  if (filter.initiatorType) add((p) => `m.initiator_type = ${p}`, filter.initiatorType);
  if (filter.createdFrom) add((p) => `m.created_at >= ${p}::timestamptz`, filter.createdFrom.toISOString());
  if (filter.createdTo) add((p) => `m.created_at < ${p}::timestamptz`, filter.createdTo.toISOString());
  if (filter.errorCode) add((p) => `m.error_code = ${p}`, filter.errorCode);
  if (filter.after) {
    params.push(filter.after.createdUs, filter.after.runNumber);
    where.push(`(m.created_at, m.run_number) < (timestamptz 'epoch' + $${params.length - 1}::bigint * interval '1 microsecond', $${params.length}::bigint)`);
  } else if (filter.beforeRunNumber !== undefined) {
    add((p) => `m.run_number < ${p}::bigint`, filter.beforeRunNumber);
  }
  params.push(filter.limit + 1);
  const { rows } = await db.query<JobRow & { workflow_name: string | null; client_name: string | null; created_us: string }>(
    `WITH page AS (
       SELECT m.job_id, m.created_at, m.run_number FROM stepwise.execution_metadata m
        WHERE ${where.join(' AND ')}
        ORDER BY m.created_at DESC, m.run_number DESC
        LIMIT $${params.length}
     )
     SELECT ${jobColumns('j')}, w.name AS workflow_name, c.name AS client_name,
            (extract(epoch FROM page.created_at) * 1000000)::bigint::text AS created_us
       FROM page
       JOIN stepwise.jobs j ON j.id = page.job_id AND j.organization_id = $1
       LEFT JOIN stepwise.workflows w ON w.organization_id = $1 AND w.id = j.workflow_id
       LEFT JOIN stepwise.clients c ON c.organization_id = $1 AND c.id = j.client_id
      ORDER BY page.created_at DESC, page.run_number DESC`,
    params,
  );
  const items = rows.slice(0, filter.limit).map((r) => ({ ...toJob(r), workflowName: r.workflow_name, clientName: r.client_name }));
  const last = rows.length > filter.limit ? rows[filter.limit - 1]! : null;
  return { items, next: last ? { createdUs: last.created_us, runNumber: Number(last.run_number) } : null };
}

/** The job times that bound its stream rows. */
export interface JobTimes {
  id: string;
  createdAt: Date;
  completedAt: Date | null;
}

/**
 * A job's events (stream rows other than log lines) up to a sequence
 * number, in order. Bounded by the job's time range so only its partitions
 * are read; served by the (job_id, level) index, sorted by seq in memory.
 */
export async function listJobEvents(db: Queryable, organizationId: string, job: JobTimes, upToSeq?: number): Promise<JobEvent[]> {
  const [from, to] = jobStreamBounds(job);
  const { rows } = await db.query<StreamDbRow>(
    `SELECT seq, ts, kind, level, step_index, message, data
       FROM stepwise.execution_log
      WHERE organization_id = $1 AND job_id = $2 AND ts >= $3 AND ts < $4 AND kind <> 0 AND seq <= $5
      ORDER BY seq`,
    [organizationId, job.id, from, to, upToSeq ?? 2_147_483_647],
  );
  return rows.map(toStreamEntry);
}

/** The step-by-step view of a job: per step its attempts, start, end, duration, status and error. */
export async function getJobTimeline(db: Queryable, organizationId: string, job: JobTimes): Promise<StepState[]> {
  return replayJobEvents(await listJobEvents(db, organizationId, job)).steps;
}

/** The job's state rebuilt from its stream events up to and including `atSeq`. */
export async function getJobStateAt(db: Queryable, organizationId: string, job: JobTimes, atSeq: number): Promise<JobState> {
  return replayJobEvents(await listJobEvents(db, organizationId, job, atSeq));
}
