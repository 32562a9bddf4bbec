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
import { JOB_LIST_NAMES_JOIN, JOB_LIST_NAMES_SELECT, toJobListItem, type JobListRow } from './job-list-items.js';

/** Keyset position in the newest-first listing: created_at (as epoch microseconds) and run number. */
export interface JobListPosition {
  createdUs: string;
  runNumber: number;
}

/** One search term: runs whose indexed value at `key` (a workflow's search key) is exactly `value`. */
export interface SearchTerm {
  key: string;
  value: string;
}

/** Which jobs match (every condition present must hold). */
export interface JobMatchFilter {
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
  /** Indexed input values (store/search-keys.ts); several must all match. */
  search?: SearchTerm[] | undefined;
}

export interface JobListFilter extends JobMatchFilter {
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
 * The SQL of the jobs matching a filter, newest first, cut to `limit` rows:
 * `(job_id, created_at, run_number)` in keyset order (created_at DESC,
 * run_number DESC). The list, the id pages of bulk actions and the count
 * all read through it, so they agree on what matches.
 *
 * Finished jobs come from the execution_metadata read model (filters and the
 * keyset on its slim rows and (organization, …, created_at DESC) indexes);
 * live jobs (PENDING, RUNNING, WAITING) are the organization's job_queue
 * rows, a few pages however old the organization. Each source is one branch
 * ordered and cut to the limit; a status list becomes one branch per
 * finished status, since a status IN (…) scan of the index comes back
 * unordered and would sort every matching row. A job's children
 * (parentJobId) come from a partial index of the read model that holds
 * children only (migration 0019).
 *
 * With search terms, one branch walks job_search_keys' (organization, key,
 * value, created_at DESC, run_number DESC) range of the first term in keyset
 * order; further terms are probes of the same table's primary key, and the
 * other filters and the status are checked on the job itself (jobs holds
 * both finished and live jobs), so nothing is sorted. The SQL is assembled
 * from fixed fragments for the filters present (values always travel as
 * parameters), so each form gets a plan made for it.
 */
function matchingJobs(
  organizationId: string,
  filter: JobMatchFilter & { after?: JobListPosition | undefined; beforeRunNumber?: number | undefined },
  limit: number,
): { sql: string; params: unknown[]; limit: string } {
  const params: unknown[] = [organizationId];
  const param = (value: unknown): string => {
    params.push(value);
    return `$${params.length}`;
  };
  // Conditions on what a job is (its workflow, client, …) and on where it
  // stands in the keyset order, each written for the alias that holds it.
  const attrs: ((a: string) => string)[] = [];
  const position: ((a: string) => string)[] = [];
  const add = (to: ((a: string) => string)[], sql: (a: string, p: string) => string, value: unknown) => {
    const p = param(value);
    to.push((a) => sql(a, p));
  };
  if (filter.workflowId) add(attrs, (a, p) => `${a}.workflow_id = ${p}::uuid`, filter.workflowId);
  if (filter.clientId) add(attrs, (a, p) => `${a}.client_id = ${p}::uuid`, filter.clientId);
  if (filter.initiatorType) add(attrs, (a, p) => `${a}.initiator_type = ${p}`, filter.initiatorType);
  if (filter.errorCode) add(attrs, (a, p) => `${a}.error_code = ${p}`, filter.errorCode);
  if (filter.parentJobId) add(attrs, (a, p) => `${a}.parent_job_id = ${p}::uuid`, filter.parentJobId);
  if (filter.createdFrom) add(position, (a, p) => `${a}.created_at >= ${p}::timestamptz`, filter.createdFrom.toISOString());
  if (filter.createdTo) add(position, (a, p) => `${a}.created_at < ${p}::timestamptz`, filter.createdTo.toISOString());
  if (filter.after) {
    const us = param(filter.after.createdUs);
    const rn = param(filter.after.runNumber);
    position.push((a) => `(${a}.created_at, ${a}.run_number) < (timestamptz 'epoch' + ${us}::bigint * interval '1 microsecond', ${rn}::bigint)`);
  } else if (filter.beforeRunNumber !== undefined) {
    add(position, (a, p) => `${a}.run_number < ${p}::bigint`, filter.beforeRunNumber);
  }
  const lim = param(limit);
  const where = (a: string, own: string[], at = a) => [...own, ...attrs.map((c) => c(a)), ...position.map((c) => c(at))].join(' AND ');
  const ordered = (a: string) => `ORDER BY ${a}.created_at DESC, ${a}.run_number DESC LIMIT ${lim}`;

  const wanted = filter.statuses && filter.statuses.length > 0 ? new Set(filter.statuses) : null;
  const branches: string[] = [];
  const terms = filter.search ?? [];
  if (terms.length > 0) {
    const [first, ...rest] = terms;
    const own = ['s.organization_id = $1', `s.key = ${param(first!.key)}`, `s.value = ${param(first!.value)}`];
    for (const t of rest) {
      own.push(
        `EXISTS (SELECT 1 FROM stepwise.job_search_keys s2 WHERE s2.organization_id = $1 AND s2.job_id = s.job_id
                    AND s2.key = ${param(t.key)} AND s2.value = ${param(t.value)})`,
      );
    }
    if (wanted) own.push(`j.status = ANY(${param([...wanted])}::text[])`);
    branches.push(
      `SELECT s.job_id, s.created_at, s.run_number
         FROM stepwise.job_search_keys s JOIN stepwise.jobs j ON j.organization_id = $1 AND j.id = s.job_id
        WHERE ${where('j', own, 's')} ${ordered('s')}`,
    );
  } else {
    const finished = `SELECT m.job_id, m.created_at, m.run_number FROM stepwise.execution_metadata m`;
    if (!wanted) {
      branches.push(`${finished} WHERE ${where('m', ['m.organization_id = $1'])} ${ordered('m')}`);
    } else {
      for (const status of TERMINAL_STATUSES.filter((st) => wanted.has(st))) {
        branches.push(`${finished} WHERE ${where('m', ['m.organization_id = $1', `m.status = ${param(status)}`])} ${ordered('m')}`);
      }
    }
    const live = LIVE_STATUSES.filter((st) => !wanted || wanted.has(st));
    if (live.length > 0) {
      branches.push(
        `SELECT j.id AS job_id, j.created_at, j.run_number
           FROM stepwise.job_queue q JOIN stepwise.jobs j ON j.id = q.job_id
          WHERE ${where('j', ['q.organization_id = $1', 'j.organization_id = $1', `j.status = ANY(${param(live)}::text[])`])} ${ordered('j')}`,
      );
    }
  }
  const sql = `SELECT * FROM (${branches.map((b) => `(${b})`).join(' UNION ALL ')}) u
        ORDER BY u.created_at DESC, u.run_number DESC LIMIT ${lim}`;
  return { sql, params, limit: lim };
}

/**
 * The dashboard's job list: a page of matchingJobs (limit + 1 rows, to know
 * whether a next page exists). Only the page (≤ limit rows) is joined to
 * jobs, workflows and clients for the full row and the names.
 */
export async function listJobSummaries(db: Queryable, organizationId: string, filter: JobListFilter): Promise<JobListPage> {
  const { sql, params } = matchingJobs(organizationId, filter, filter.limit + 1);
  const { rows } = await db.query<JobListRow & { created_us: string }>(
    `WITH page AS (${sql})
     SELECT ${jobColumns('j')}, ${JOB_LIST_NAMES_SELECT},
            (extract(epoch FROM page.created_at) * 1000000)::bigint::text AS created_us
       FROM page
       JOIN stepwise.jobs j ON j.id = page.job_id AND j.organization_id = $1
       ${JOB_LIST_NAMES_JOIN}
      ORDER BY page.created_at DESC, page.run_number DESC`,
    params,
  );
  const items = rows.slice(0, filter.limit).map(toJobListItem);
  const last = rows.length > filter.limit ? rows[filter.limit - 1]! : null;
  return { items, next: last ? { createdUs: last.created_us, runNumber: Number(last.run_number) } : null };
}

/** A page of matching job ids and where the next page starts (null after the last). */
export interface JobIdPage {
  ids: string[];
  next: JobListPosition | null;
}

/**
 * Every job id matching `filter`, a keyset page at a time, newest first
 * (bulk actions by filter page through it with `after` = the previous
 * page's `next`). The same SQL as the list, without the join to full rows.
 */
export async function listJobIds(
  db: Queryable,
  organizationId: string,
  filter: JobMatchFilter,
  after: JobListPosition | null,
  limit: number,
): Promise<JobIdPage> {
  const { sql, params } = matchingJobs(organizationId, { ...filter, after: after ?? undefined }, limit + 1);
  const { rows } = await db.query<{ job_id: string; created_us: string; run_number: string | number }>(
    `SELECT m.job_id, (extract(epoch FROM m.created_at) * 1000000)::bigint::text AS created_us, m.run_number
       FROM (${sql}) m ORDER BY m.created_at DESC, m.run_number DESC`,
    params,
  );
  const ids = rows.slice(0, limit).map((r) => r.job_id);
  const last = rows.length > limit ? rows[limit - 1]! : null;
  return { ids, next: last ? { createdUs: last.created_us, runNumber: Number(last.run_number) } : null };
}

/** The count stops here: past it the answer is "this many or more" (capped). */
export const JOB_COUNT_CAP = 10_000;

export interface JobCount {
  count: number;
  /** True when at least JOB_COUNT_CAP jobs match (count is then the cap). */
  capped: boolean;
}

/**
 * How many jobs match, counting at most `cap` (one row past it says whether
 * there are more): JOB_COUNT_CAP for the runs list, more for a bulk action.
 */
export async function countJobs(db: Queryable, organizationId: string, filter: JobMatchFilter, cap = JOB_COUNT_CAP): Promise<JobCount> {
  const { sql, params } = matchingJobs(organizationId, filter, cap + 1);
  const { rows } = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM (${sql}) c`, params);
  const n = rows[0]!.n;
  return n > cap ? { count: cap, capped: true } : { count: n, capped: false };
}
