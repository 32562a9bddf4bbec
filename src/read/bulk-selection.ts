import type { Queryable } from '../db/index.js';
import type { BulkJobFilter, JobPagePosition } from '../store/index.js';
import { countJobs, listJobIds, type JobMatchFilter } from './dashboard.js';
import { parseSearchTerms } from './search-terms.js';

/**
 * The job selection of bulk operations by filter (engine/bulk.ts
 * BulkJobSelector): the job list's own matching SQL (read/dashboard.ts
 * listJobIds), so a bulk action touches exactly the runs the list shows for
 * the same filter.
 */

/** A stored filter as the list's filter. Its search terms were checked when the operation was created. */
export function toJobMatchFilter(filter: BulkJobFilter): JobMatchFilter {
  return {
    statuses: filter.statuses,
    workflowId: filter.workflowId,
    clientId: filter.clientId,
    initiatorType: filter.initiatorType,
    createdFrom: filter.createdFrom !== undefined ? new Date(filter.createdFrom) : undefined,
    createdTo: filter.createdTo !== undefined ? new Date(filter.createdTo) : undefined,
    errorCode: filter.errorCode,
    search: parseSearchTerms(filter.search, '/body/filter/search'),
  };
}

export const bulkJobSelector = {
  async page(db: Queryable, organizationId: string, filter: BulkJobFilter, after: JobPagePosition | null, limit: number) {
    return listJobIds(db, organizationId, toJobMatchFilter(filter), after, limit);
  },

  /** How many match, at most `cap` (a bulk action may select up to 100,000; the list's count stops at 10,000). */
  async count(db: Queryable, organizationId: string, filter: BulkJobFilter, cap: number): Promise<number> {
    return (await countJobs(db, organizationId, toJobMatchFilter(filter), cap)).count;
  },
};
