import { LOCK_KEYS, type Db } from '../db/index.js';
import { fairPickCtes, NIL_UUID } from './claim-fairness.js';
import { CLAIM_TAIL, toClaimed, type ClaimedJob, type ClaimedRow, type ConcurrencyLimits } from './queue.js';

/** Candidates looked at per job wanted: runs held back by a limit are passed over within the window. */
const WINDOW_FACTOR = 4;

/**
 * Parking of a keyed run that cannot start before the runs ahead of it on
 * its key (it is past the key's limit in the key's line): out of the
 * claim's way for this many seconds per limit's worth of runs ahead of it,
 * at most PARK_MAX_S. It comes back sooner: the claim that starts runs of a
 * key moves the next ones of its line back in (as does any claim that meets
 * the key and finds a parked run near the head), so this only bounds how
 * late a parked run notices a head that left without starting (a cancelled
 * run) when no other run of its key is claimed meanwhile.
 */
const PARK_PER_DEPTH_S = 10;
const PARK_MAX_S = 300;

export interface LimitedClaimOptions {
  /** Claim the rows with concurrency keys (else the plain ones). */
  keyed: boolean;
  /** The organization the claimer served last (store/claim-fairness.ts nextClaimCursor). */
  after?: string | undefined;
}

/**
 * Claim runs that something counts: organization and workflow limits
 * (max_concurrent_runs, plans) and concurrency keys. One transaction of two
 * statements:
 *
 * 1. Pick candidates fairly (WINDOW_FACTOR per job wanted, a share per
 *    organization, FOR UPDATE SKIP LOCKED) and, in the same statement, take
 *    an advisory lock per scope they belong to — each limited organization
 *    and workflow and each concurrency key — in sorted order. Claims of
 *    different scopes never wait for each other (there is no global lock or
 *    row), and claims of the same scope queue in the same order, so they
 *    cannot deadlock.
 * 2. With those locks held, a fresh snapshot sees every lease the scope's
 *    previous claimer committed: count the running jobs (leased rows) per
 *    scope and admit candidates within the free slots.
 *
 * A key's runs start in their order (priority DESC, then the order they were
 * started in): a candidate is admitted when it is among the first
 * `limit − running` of its key's waiting runs (the line, read from the GIN
 * index on the keys), for every key it has. The runs of a line further back
 * than `limit` are parked (run_at pushed back, see PARK_PER_DEPTH_S), the
 * whole line in one UPDATE the first time a claim meets it, so a long line
 * on one key does not fill the candidate window of every claim; the claim
 * that starts runs of a key moves its next ones back in. A run waiting on a
 * delay or a wait step holds no slot (it holds no lease) and takes its
 * place in the line again when it wakes. A claim meeting a key reads all of
 * its queued rows: cheap for per-customer keys, a few ms for a key with
 * 10,000 queued.
 */
export async function claimJobsLimited(
  db: Db,
  workerId: string,
  limit: number,
  leaseMs: number,
  limits: ConcurrencyLimits,
  options: LimitedClaimOptions = { keyed: false },
): Promise<ClaimedJob[]> {
  const orgs = [...limits.organizations];
  const wfs = [...limits.workflows];
  return db.transaction(async (tx) => {
    const { rows: picked } = await tx.query<{ ids: string[] }>(
      `WITH RECURSIVE ${fairPickCtes({ keyed: options.keyed, worker: '$1', want: `$2::bigint * ${WINDOW_FACTOR}`, after: '$3::uuid', fill: false })},
       cand AS (
         SELECT job_id, organization_id, workflow_id, concurrency_keys,
                row_number() OVER (ORDER BY r, priority DESC, run_at, job_id) AS ord
           FROM (SELECT f.*, row_number() OVER (PARTITION BY organization_id ORDER BY priority DESC, run_at, job_id) AS r
                   FROM first f) x
       ),
       scopes AS (
         SELECT uuid_hash(organization_id) AS h FROM cand WHERE organization_id = ANY ($4::uuid[])
         UNION SELECT uuid_hash(workflow_id) FROM cand WHERE workflow_id = ANY ($5::uuid[])
         UNION SELECT hashint8(k) FROM cand CROSS JOIN LATERAL unnest(cand.concurrency_keys) AS k
       )
       SELECT (SELECT count(pg_advisory_xact_lock($6, s.h)) FROM (SELECT h FROM scopes ORDER BY h) s) AS locks,
              ARRAY(SELECT job_id FROM cand ORDER BY ord) AS ids`,
      [workerId, limit, options.after ?? NIL_UUID, orgs.map((o) => o[0]), wfs.map((w) => w[0]), LOCK_KEYS.limitedClaim],
    );
    const ids = picked[0]?.ids ?? [];
    if (ids.length === 0) return [];
    const { rows } = await tx.query<ClaimedRow>(admitSql(options.keyed), [
      workerId,
      limit,
      leaseMs,
      ids,
      orgs.map((o) => o[0]),
      orgs.map((o) => o[1]),
      wfs.map((w) => w[0]),
      wfs.map((w) => w[1]),
    ]);
    return rows.map(toClaimed);
  });
}

/** Rows of the queue matching `cond`, once from each claim index (a predicate the partial indexes can use). */
function queueRows(columns: string, cond: string): string {
  return `SELECT ${columns} FROM stepwise.job_queue WHERE concurrency_keys IS NULL AND ${cond}
          UNION ALL
          SELECT ${columns} FROM stepwise.job_queue WHERE concurrency_keys IS NOT NULL AND ${cond}`;
}

/**
 * Statement 2: admit candidates ($4, in claim order) within the free slots
 * of their organization ($5/$6), workflow ($7/$8) and keys, lease up to $2.
 */
function admitSql(keyed: boolean): string {
  const keyCtes = keyed
    ? `ck AS (
         SELECT c.job_id, k.key, k.lim FROM cq c CROSS JOIN LATERAL unnest(c.concurrency_keys, c.concurrency_limits) AS k(key, lim)
       ),
       -- Every queued row of the candidates' keys: running (leased) ones to
       -- count, waiting ones (due, or parked) to order. One GIN lookup.
       krows AS (
         SELECT q.job_id, q.priority, k.key,
                q.locked_until > now() AS running,
                (q.locked_until IS NULL OR q.locked_until <= now()) AND (q.run_at <= now() OR q.run_at = q.parked_until) AS waiting,
                coalesce(q.run_at = q.parked_until, false) AS parked
           FROM stepwise.job_queue q CROSS JOIN LATERAL unnest(q.concurrency_keys) AS k(key)
          WHERE q.concurrency_keys IS NOT NULL AND q.concurrency_keys && ARRAY(SELECT DISTINCT key FROM ck)
            AND k.key IN (SELECT key FROM ck)
       ),
       running_k AS (SELECT key, count(*) FILTER (WHERE running)::int AS n FROM krows GROUP BY key),
       line AS (
         SELECT job_id, key, parked, row_number() OVER (PARTITION BY key ORDER BY priority DESC, job_id) AS r
           FROM krows WHERE waiting
       ),
       key_limit AS (SELECT key, max(lim) AS lim FROM ck GROUP BY key),
       -- Each candidate's place in its keys' lines.
       place AS (
         SELECT ck.job_id, ck.key, ck.lim, l.r, coalesce(rk.n, 0) AS running
           FROM ck
           JOIN line l ON l.job_id = ck.job_id AND l.key = ck.key
           LEFT JOIN running_k rk ON rk.key = ck.key
       ),
       verdict AS (SELECT job_id, bool_and(r <= lim - running) AS free FROM place GROUP BY job_id),`
    : '';
  const admissible = keyed ? 'LEFT JOIN verdict v ON v.job_id = c.job_id WHERE coalesce(v.free, true)' : '';
  const keyWrites = keyed
    ? `admitted_k AS (SELECT ck.key, count(*) AS a FROM ck JOIN picked p ON p.job_id = ck.job_id GROUP BY ck.key),
       -- Where each waiting run of the candidates' keys stands once the runs
       -- started here have left the lines: near (within every key's limit:
       -- it starts as soon as a slot frees) or further back.
       standing AS (
         SELECT l.job_id, bool_or(l.parked) AS parked,
                bool_and(l.r <= kl.lim + coalesce(a.a, 0)) AS near,
                max(ceil((l.r - coalesce(a.a, 0))::float8 / kl.lim)) AS depth
           FROM line l
           JOIN key_limit kl ON kl.key = l.key
           LEFT JOIN admitted_k a ON a.key = l.key
          GROUP BY l.job_id
       ),
       -- Runs further back: parked, the whole line at once (not only the
       -- candidates), so the next claims find other keys' runs instead of
       -- this line. Near ones stay claimable: at most a limit's worth per key.
       -- Rows another claimer holds are left to it (SKIP LOCKED: this
       -- statement never waits for a row).
       parked AS (
         UPDATE stepwise.job_queue q
            SET run_at = now() + make_interval(secs => least(${PARK_MAX_S}, ${PARK_PER_DEPTH_S} * s.depth)),
                parked_until = now() + make_interval(secs => least(${PARK_MAX_S}, ${PARK_PER_DEPTH_S} * s.depth))
           FROM standing s
          WHERE q.job_id = s.job_id
            AND q.job_id = ANY (ARRAY(
                  SELECT x.job_id FROM stepwise.job_queue x
                   WHERE x.job_id IN (SELECT job_id FROM standing WHERE NOT parked AND NOT near)
                     AND x.job_id NOT IN (SELECT job_id FROM picked)
                   FOR UPDATE SKIP LOCKED))
         RETURNING q.job_id
       ),
       -- Parked runs now near the head of every line they are in: due again.
       unparked AS (
         UPDATE stepwise.job_queue q SET run_at = now(), parked_until = NULL
          WHERE q.job_id = ANY (ARRAY(
                  SELECT x.job_id FROM stepwise.job_queue x
                   WHERE x.job_id IN (SELECT job_id FROM standing WHERE parked AND near)
                     AND x.job_id NOT IN (SELECT job_id FROM cq)
                   FOR UPDATE SKIP LOCKED))
         RETURNING q.job_id
       ),`
    : '';
  return `WITH cq AS (
       SELECT c.ord, q.ctid, q.job_id, q.organization_id, q.workflow_id, q.concurrency_keys, q.concurrency_limits
         FROM unnest($4::uuid[]) WITH ORDINALITY AS c(job_id, ord)
         JOIN stepwise.job_queue q ON q.job_id = c.job_id
     ),
     lim_o AS (SELECT * FROM unnest($5::uuid[], $6::int[]) AS l(id, max) WHERE l.id IN (SELECT organization_id FROM cq)),
     lim_w AS (SELECT * FROM unnest($7::uuid[], $8::int[]) AS l(id, max) WHERE l.id IN (SELECT workflow_id FROM cq)),
     running_o AS (
       SELECT organization_id AS id, count(*)::int AS n
         FROM (${queueRows('organization_id', 'organization_id IN (SELECT id FROM lim_o) AND locked_until > now()')}) r
        GROUP BY 1
     ),
     running_w AS (
       SELECT workflow_id AS id, count(*)::int AS n
         FROM (${queueRows(
           'workflow_id',
           `organization_id IN (SELECT organization_id FROM cq WHERE workflow_id IN (SELECT id FROM lim_w))
            AND workflow_id IN (SELECT id FROM lim_w) AND locked_until > now()`,
         )}) r
        GROUP BY 1
     ),
     ${keyCtes}
     ranked AS (
       SELECT c.ctid, c.job_id, c.ord, c.organization_id, c.workflow_id,
              row_number() OVER (PARTITION BY c.organization_id ORDER BY c.ord) AS r_o,
              row_number() OVER (PARTITION BY c.workflow_id ORDER BY c.ord) AS r_w
         FROM cq c ${admissible}
     ),
     picked AS (
       SELECT r.ctid, r.job_id FROM ranked r
         LEFT JOIN lim_o lo ON lo.id = r.organization_id LEFT JOIN running_o ro ON ro.id = r.organization_id
         LEFT JOIN lim_w lw ON lw.id = r.workflow_id LEFT JOIN running_w rw ON rw.id = r.workflow_id
        WHERE (lo.max IS NULL OR r.r_o <= lo.max - coalesce(ro.n, 0))
          AND (lw.max IS NULL OR r.r_w <= lw.max - coalesce(rw.n, 0))
        ORDER BY r.ord
        LIMIT $2
     ),
     ${keyWrites}
     ${CLAIM_TAIL}`;
}
