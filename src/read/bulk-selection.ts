import type { Queryable } from '../db/index.js';
import type { BulkJobFilter, JobPagePosition } from '../store/index.js';
import { listJobIds, type JobMatchFilter } from './dashboard.js';
import { parseSearchTerms } from './search-terms.js';

/**
 * The job selection of bulk operations by filter (engine/bulk.ts
 * BulkJobSelector): the job list's own matching SQL (read/dashboard.ts
 * listJobIds), so a bulk action touches exactly the runs the list shows for
 * the same filter.
 */

/** Ids per page when counting. */
const COUNT_PAGE = 5_000;

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

  /** Pages of ids up to `cap` (the list's count stops at 10,000; a bulk action may select up to 100,000). */
  async count(db: Queryable, organizationId: string, filter: BulkJobFilter, cap: number): Promise<number> {
    const match = toJobMatchFilter(filter);
    let n = 0;
    let after: JobPagePosition | null = null;
    while (n < cap) {
      const page = await listJobIds(db, organizationId, match, after, Math.min(COUNT_PAGE, cap - n));
      n += page.ids.length;
      if (!page.next) break;
      after = page.next;
    }
    return n;
  },
};
