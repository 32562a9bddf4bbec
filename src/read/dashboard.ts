import type { Queryable } from '../db/index.js';
import {
  JOB_STATUSES,
  jobColumns,
  TERMINAL_STATUSES,
  toJob,
  type InitiatorType,
  type Job,
  type JobRow,
  type JobStatus,
} from '../store/index.js';

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
  /** A job's children: the jobs its workflow steps started. */
  parentJobId?: string | undefined;
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

const LIVE_STATUSES: readonly JobStatus[] = JOB_STATUSES.filter((s) => !TERMINAL_STATUSES.includes(s));

/**
 * The dashboard's job list. Finished jobs come from the execution_metadata
 * read model (filters and the keyset (created_at DESC, run_number DESC) on
 * its slim rows and (organization, …, created_at DESC) indexes); live jobs
 * (PENDING, RUNNING, WAITING) are the organization's job_queue rows, a few
 * pages however old the organization. Each source is one branch ordered and
 * cut to the page size; a status list becomes one branch per finished
 * status, since a status IN (…) scan of the index comes back unordered and
 * would sort every matching row. A job's children (parentJobId) come from
 * a partial index of the read model that holds children only (migration
 * 0019). Only the page (≤ limit rows) is joined to
 * jobs, workflows and clients for the full row and the names. The SQL is
 * assembled from fixed fragments for the filters present (values always
 * travel as parameters), so each form gets a plan made for it.
 */
export async function listJobSummaries(db: Queryable, organizationId: string, filter: JobListFilter): Promise<JobListPage> {
  const params: unknown[] = [organizationId];
  const param = (value: unknown): string => {
    params.push(value);
    return `$${params.length}`;
  };
  // Conditions shared by every branch, written for the branch's alias.
  const shared: ((a: string) => string)[] = [];
  const add = (sql: (a: string, p: string) => string, value: unknown) => {
    const p = param(value);
    shared.push((a) => sql(a, p));
  };
  if (filter.workflowId) add((a, p) => `${a}.workflow_id = ${p}::uuid`, filter.workflowId);
  if (filter.clientId) add((a, p) => `${a}.client_id = ${p}::uuid`, filter.clientId);
  if (filter.initiatorType) add((a, p) => `${a}.initiator_type = ${p}`, filter.initiatorType);
  if (filter.createdFrom) add((a, p) => `${a}.created_at >= ${p}::timestamptz`, filter.createdFrom.toISOString());
  if (filter.createdTo) add((a, p) => `${a}.created_at < ${p}::timestamptz`, filter.createdTo.toISOString());
  if (filter.errorCode) add((a, p) => `${a}.error_code = ${p}`, filter.errorCode);
  if (filter.parentJobId) add((a, p) => `${a}.parent_job_id = ${p}::uuid`, filter.parentJobId);
  if (filter.after) {
    const us = param(filter.after.createdUs);
    const rn = param(filter.after.runNumber);
    shared.push((a) => `(${a}.created_at, ${a}.run_number) < (timestamptz 'epoch' + ${us}::bigint * interval '1 microsecond', ${rn}::bigint)`);
  } else if (filter.beforeRunNumber !== undefined) {
    add((a, p) => `${a}.run_number < ${p}::bigint`, filter.beforeRunNumber);
  }
  const limit = param(filter.limit + 1);
  const where = (a: string, own: string[]) => [...own, ...shared.map((c) => c(a))].join(' AND ');
  const ordered = (a: string) => `ORDER BY ${a}.created_at DESC, ${a}.run_number DESC LIMIT ${limit}`;

  const wanted = filter.statuses && filter.statuses.length > 0 ? new Set(filter.statuses) : null;
  const branches: string[] = [];
  const finished = `SELECT m.job_id, m.created_at, m.run_number FROM stepwise.execution_metadata m`;
  if (!wanted) {
    branches.push(`${finished} WHERE ${where('m', ['m.organization_id = $1'])} ${ordered('m')}`);
  } else {
    for (const status of TERMINAL_STATUSES.filter((s) => wanted.has(s))) {
      branches.push(`${finished} WHERE ${where('m', ['m.organization_id = $1', `m.status = ${param(status)}`])} ${ordered('m')}`);
    }
  }
  const live = LIVE_STATUSES.filter((s) => !wanted || wanted.has(s));
  if (live.length > 0) {
    branches.push(
      `SELECT j.id AS job_id, j.created_at, j.run_number
         FROM stepwise.job_queue q JOIN stepwise.jobs j ON j.id = q.job_id
        WHERE ${where('j', ['q.organization_id = $1', 'j.organization_id = $1', `j.status = ANY(${param(live)}::text[])`])} ${ordered('j')}`,
    );
  }
  const { rows } = await db.query<JobRow & { workflow_name: string | null; client_name: string | null; created_us: string }>(
    `WITH page AS (
       SELECT * FROM (${branches.map((b) => `(${b})`).join(' UNION ALL ')}) u
        ORDER BY u.created_at DESC, u.run_number DESC LIMIT ${limit}
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
