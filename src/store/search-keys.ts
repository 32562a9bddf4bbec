import { pgArray, type Queryable } from '../db/index.js';
import { MAX_SEARCH_VALUE_LENGTH } from '../model/definition.js';

/**
 * Search keys of runs (migration 0022): the scalar values at the input paths
 * a workflow declares in `searchKeys`, one row per run and key, written when
 * the run starts so the runs list can find runs by them
 * (read/dashboard.ts). The enqueue writes them in its own statement
 * (store/jobs.ts, `searchKeysCte`); a debounced start that replaces a waiting
 * run's input rewrites them (store/flow-enqueue.ts).
 */

/** One indexed value of one run. */
export interface SearchKeyValue {
  key: string;
  value: string;
}

const own = (o: object, k: string): boolean => Object.prototype.hasOwnProperty.call(o, k);

/** The value at `input.a.b…` (array elements by index), or undefined. */
function valueAt(input: unknown, key: string): unknown {
  let cur: unknown = input;
  for (const seg of key.split('.').slice(1)) {
    if (Array.isArray(cur)) {
      if (!/^\d+$/.test(seg)) return undefined;
      cur = cur[Number(seg)];
    } else if (typeof cur === 'object' && cur !== null && own(cur, seg)) {
      cur = (cur as Record<string, unknown>)[seg];
    } else {
      return undefined;
    }
  }
  return cur;
}

/**
 * The text a value is indexed as: a string as itself (1–200 characters;
 * longer or empty ones, and ones with U+0000 that text cannot hold, are not
 * indexed), a number or boolean as its JSON text; objects, arrays and null
 * are not indexed.
 */
export function searchText(value: unknown): string | undefined {
  if (typeof value === 'string') {
    if (value.length === 0 || value.length > MAX_SEARCH_VALUE_LENGTH || value.includes('\u0000')) return undefined;
    return value;
  }
  if (typeof value === 'number') return Number.isFinite(value) ? JSON.stringify(value) : undefined;
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  return undefined;
}

/** The indexed values of one run's input for a workflow's search keys. */
export function searchValuesOf(input: unknown, keys: readonly string[]): SearchKeyValue[] {
  const out: SearchKeyValue[] = [];
  for (const key of keys) {
    const text = searchText(valueAt(input, key));
    if (text !== undefined) out.push({ key, value: text });
  }
  return out;
}

/** Parallel arrays (job id, key, value) of a batch's search rows, for unnest. */
export interface SearchRows {
  jobIds: string[];
  keys: string[];
  values: string[];
}

export function searchRowsOf(runs: readonly { jobId: string; input: unknown }[], keys: readonly string[]): SearchRows {
  const rows: SearchRows = { jobIds: [], keys: [], values: [] };
  for (const run of runs) {
    for (const v of searchValuesOf(run.input, keys)) {
      rows.jobIds.push(run.jobId);
      rows.keys.push(v.key);
      rows.values.push(v.value);
    }
  }
  return rows;
}

/**
 * A CTE for the enqueue's statement: the search rows of the jobs `ins`
 * (an INSERT … RETURNING id, created_at, run_number) just wrote, from three
 * parallel arrays at parameters `first`, `first + 1`, `first + 2`; $1 is
 * the organization.
 */
export function searchKeysCte(first: number): string {
  return `search_keys AS (
         INSERT INTO stepwise.job_search_keys (organization_id, job_id, key, value, created_at, run_number)
         SELECT $1, ins.id, s.key, s.value, ins.created_at, ins.run_number
           FROM unnest($${first}::uuid[], $${first + 1}::text[], $${first + 2}::text[]) AS s(job_id, key, value)
           JOIN ins ON ins.id = s.job_id
       )`;
}

/**
 * Replace the search rows of waiting runs whose input a debounced start
 * replaced: the old rows go, the new input's values come in with the job's
 * own created_at and run number.
 */
export async function rewriteSearchKeys(
  tx: Queryable,
  organizationId: string,
  keys: readonly string[],
  runs: readonly { jobId: string; input: unknown }[],
): Promise<void> {
  if (runs.length === 0) return;
  await tx.query(`DELETE FROM stepwise.job_search_keys WHERE organization_id = $1 AND job_id = ANY($2::uuid[])`, [
    organizationId,
    pgArray(runs.map((r) => r.jobId)),
  ]);
  const rows = searchRowsOf(runs, keys);
  if (rows.jobIds.length === 0) return;
  await tx.query(
    `INSERT INTO stepwise.job_search_keys (organization_id, job_id, key, value, created_at, run_number)
     SELECT $1, j.id, s.key, s.value, j.created_at, j.run_number
       FROM unnest($2::uuid[], $3::text[], $4::text[]) AS s(job_id, key, value)
       JOIN stepwise.jobs j ON j.organization_id = $1 AND j.id = s.job_id`,
    [organizationId, pgArray(rows.jobIds), pgArray(rows.keys), pgArray(rows.values)],
  );
}

/** Delete the search rows of jobs being deleted (expiry's batch). */
export async function deleteSearchKeysOf(tx: Queryable, organizationId: string, jobIds: readonly string[]): Promise<number> {
  const { rowCount } = await tx.query(`DELETE FROM stepwise.job_search_keys WHERE organization_id = $1 AND job_id = ANY($2::uuid[])`, [
    organizationId,
    jobIds,
  ]);
  return rowCount;
}
