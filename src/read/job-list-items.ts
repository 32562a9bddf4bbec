import type { Queryable } from '../db/index.js';
import { jobColumns, toJob, type JobRow } from '../store/index.js';
import type { JobListItem } from './dashboard.js';

/**
 * What turns jobs rows (alias `j`) into list items: the names of their
 * workflow and client. Shared by the dashboard's list (read/dashboard.ts)
 * and the live views' re-read of changed jobs, so both show the same item.
 * `$1` is the organization.
 */
export const JOB_LIST_NAMES_SELECT = 'w.name AS workflow_name, c.name AS client_name';
export const JOB_LIST_NAMES_JOIN = `LEFT JOIN stepwise.workflows w ON w.organization_id = $1 AND w.id = j.workflow_id
       LEFT JOIN stepwise.clients c ON c.organization_id = $1 AND c.id = j.client_id`;

export type JobListRow = JobRow & { workflow_name: string | null; client_name: string | null };

export function toJobListItem(r: JobListRow): JobListItem {
  return { ...toJob(r), workflowName: r.workflow_name, clientName: r.client_name };
}

/**
 * The list items of these jobs of the organization, in one query (primary
 * key probes): what a live view sends for jobs it was told changed. Ids
 * of another organization's jobs, or of jobs gone, are left out.
 */
export async function findJobListItems(db: Queryable, organizationId: string, jobIds: readonly string[]): Promise<JobListItem[]> {
  if (jobIds.length === 0) return [];
  const { rows } = await db.query<JobListRow>(
    `SELECT ${jobColumns('j')}, ${JOB_LIST_NAMES_SELECT}
       FROM stepwise.jobs j
       ${JOB_LIST_NAMES_JOIN}
      WHERE j.organization_id = $1 AND j.id = ANY($2::uuid[])`,
    [organizationId, jobIds],
  );
  return rows.map(toJobListItem);
}
