/**
 * The fair pick shared by the claims (store/queue.ts claimJobs,
 * store/flow-claim.ts claimJobsLimited): CTEs that choose the runnable queue
 * rows a claim takes so that every organization with runnable work gets a
 * share of the batch, however long another organization's backlog is.
 *
 * - `orgs`: the organizations with rows due, found by a loose index scan of
 *   the claim index (organization_id first): one probe per organization
 *   (`organization_id > previous … LIMIT 1`), never a scan of a backlog.
 *   It starts after the organization the claimer served last (`after`) and
 *   wraps around, and stops after `want` organizations, so with more
 *   organizations than a batch holds, consecutive claims go round them.
 *   A probe does not read the lock columns (that would visit every running
 *   row's heap tuple); an organization whose due rows are all running is
 *   still listed, its share comes back empty and `fill` hands it on.
 * - `first`: `want` split into exact shares (the first `want mod k`
 *   organizations get one more), each taken in queue order (priority DESC,
 *   run_at, job_id) with FOR UPDATE SKIP LOCKED, so concurrent claimers
 *   skip each other's rows as before. With one organization this is the
 *   claim's old single index scan.
 * - `fill` (optional): when some organization had fewer runnable rows than
 *   its share, the rest of the batch from the organizations that filled
 *   theirs (OFFSET their share: those rows are already ours). Not run with
 *   one organization.
 *
 * With one organization (the throughput benchmark) the pick costs three
 * index probes more than a single scan (about 0.1 ms) and `fill` does not
 * run. A priority orders runs within an organization; across organizations
 * the shares decide. Rows with concurrency keys have their own index (the keyed
 * claim); `keyed` selects which rows and index the pick reads.
 *
 * Parameters are SQL text: `$n` references of the caller's statement.
 */
export interface FairPick {
  /** Claim keyed rows (concurrency_keys IS NOT NULL) or plain ones. */
  keyed: boolean;
  /** The claiming worker's id. */
  worker: string;
  /** How many rows to take in all (SQL expression, bigint). */
  want: string;
  /** The organization after which to start (uuid; the nil uuid for none). */
  after: string;
  /** Run the fill pass (the plain claim; the counting claims look at a window of several times the batch instead). */
  fill: boolean;
}

export function fairPickCtes(pick: FairPick): string {
  const p = { ...pick, want: `(${pick.want})` };
  const rows = p.keyed ? 'q.concurrency_keys IS NOT NULL' : 'q.concurrency_keys IS NULL';
  // Due, and not leased, or leased to a dead worker (never this worker's own expired lease: it still runs that job).
  const runnable = `q.run_at <= now() AND (q.locked_until IS NULL OR (q.locked_until < now() AND q.locked_by <> ${p.worker}))`;
  const probe = (after: string | null) =>
    `(SELECT q.organization_id FROM stepwise.job_queue q
       WHERE ${rows}${after === null ? '' : ` AND q.organization_id > ${after}`} AND q.run_at <= now()
       ORDER BY q.organization_id LIMIT 1)`;
  const ctes = `orgs AS (
       SELECT s.id, s.id <= ${p.after} AS wrapped, 1::bigint AS n
         FROM (SELECT coalesce(${probe(p.after)}, ${probe(null)}) AS id OFFSET 0) s
        WHERE s.id IS NOT NULL
       UNION ALL
       SELECT s.id, s.wrapped, o.n + 1
         FROM orgs o
        CROSS JOIN LATERAL (
          SELECT x.id, o.wrapped OR x.id <= o.id AS wrapped
            FROM (SELECT coalesce(${probe('o.id')}, CASE WHEN NOT o.wrapped THEN ${probe(null)} END) AS id OFFSET 0) x
        ) s
        WHERE o.n < ${p.want} AND s.id IS NOT NULL
          -- Back at the organizations listed before the wrap: done.
          AND NOT (s.wrapped AND s.id > ${p.after})
     ),
     live AS (
       SELECT id, n, k, ${p.want} / k + CASE WHEN n <= ${p.want} % k THEN 1 ELSE 0 END AS share
         FROM (SELECT id, n, count(*) OVER () AS k FROM orgs) o
     ),
     first AS (
       SELECT c.* FROM live o
        CROSS JOIN LATERAL (
          SELECT q.ctid, q.job_id, q.organization_id, q.workflow_id, q.priority, q.run_at, q.concurrency_keys, q.concurrency_limits
            FROM stepwise.job_queue q
           WHERE q.organization_id = o.id AND ${rows} AND ${runnable}
           ORDER BY q.priority DESC, q.run_at, q.job_id
           LIMIT o.share
           FOR UPDATE SKIP LOCKED
        ) c
     )`;
  if (!p.fill) return ctes;
  return `${ctes},
     first_n AS (SELECT organization_id, count(*) AS got FROM first GROUP BY organization_id),
     fill AS (
       SELECT c.ctid, c.job_id FROM live o
         JOIN first_n f ON f.organization_id = o.id AND f.got >= o.share
        CROSS JOIN LATERAL (
          SELECT q.ctid, q.job_id, q.priority, q.run_at FROM stepwise.job_queue q
           WHERE q.organization_id = o.id AND ${rows} AND ${runnable}
           ORDER BY q.priority DESC, q.run_at, q.job_id
           OFFSET o.share
           LIMIT ${p.want} - (SELECT count(*) FROM first)
           FOR UPDATE SKIP LOCKED
        ) c
        WHERE o.k > 1
        ORDER BY c.priority DESC, c.run_at, c.job_id
        LIMIT ${p.want} - (SELECT count(*) FROM first)
     )`;
}

/** The organization to start the next claim after: the last one this claim served, in its wrap-around order from `after`. */
export function nextClaimCursor(organizationIds: readonly string[], after: string): string {
  let beyond: string | undefined; // the largest served id above `after` (listed before the wrap)
  let wrapped: string | undefined; // the largest served id at or below it (listed after the wrap)
  for (const id of organizationIds) {
    if (id > after) beyond = beyond === undefined || id > beyond ? id : beyond;
    else wrapped = wrapped === undefined || id > wrapped ? id : wrapped;
  }
  return wrapped ?? beyond ?? after;
}

/** The cursor before any claim: below every organization id. */
export const NIL_UUID = '00000000-0000-0000-0000-000000000000';
