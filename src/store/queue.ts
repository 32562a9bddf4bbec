import type { Queryable } from '../db/index.js';
import type { JobStatus } from './jobs.js';
import { fairPickCtes, NIL_UUID } from './claim-fairness.js';
import { PLAN_LIMITS, PLANS } from './plans.js';

/** Where a resumed job picks up (see execution_checkpoints). */
export interface Checkpoint {
  nextStep: number;
  outputs: Record<string, unknown>;
  failedSteps: string[];
  state: Record<string, unknown>;
  /** Values the job carries across steps (a browser session's sealed state), by key. */
  carried: Record<string, unknown>;
}

/** A job as a worker receives it from a claim. */
export interface ClaimedJob {
  id: string;
  organizationId: string;
  workflowId: string;
  workflowVersion: number;
  clientId: string | null;
  runNumber: number;
  attempts: number;
  lastSeq: number;
  input: unknown;
  createdAt: Date;
  /** Status before this claim: PENDING for a new or retried job, WAITING when a delay or wait wakes it. */
  priorStatus: JobStatus;
  retryCount: number;
  maxRetries: number;
  deadlineAt: Date | null;
  /** When the job first started (this claim's time for a new job). */
  startedAt: Date;
  cancelRequested: boolean;
  checkpoint: Checkpoint | null;
  /** The user whose key started the run (null for schedules, webhooks, sub-workflows). */
  initiatedBy: string | null;
  /** A sub-workflow's parent job (null otherwise), and how many parents are above the job. */
  parentJobId: string | null;
  depth: number;
  /**
   * The claim's fencing token (job_queue.lease_epoch after this claim): every
   * write for the job is accepted only while the queue row still carries it
   * (store/record-tx.ts holdLeases).
   */
  lease: number;
}

/** A claimed row as the claims return it (shared with store/flow-claim.ts). */
export interface ClaimedRow {
  id: string;
  organization_id: string;
  workflow_id: string;
  workflow_version: number;
  client_id: string | null;
  run_number: number;
  attempts: number;
  last_seq: number;
  input: unknown;
  created_ms: number;
  prior_status: JobStatus;
  retry_count: number;
  max_retries: number;
  deadline_ms: number | null;
  started_ms: number;
  cancel_requested_at: Date | null;
  next_step: number | null;
  outputs: Record<string, unknown> | null;
  failed_steps: string[] | null;
  state: Record<string, unknown> | null;
  carried: Record<string, unknown> | null;
  lease_epoch: number;
  initiated_by: string | null;
  parent_job_id: string | null;
  depth: number;
}

export function toClaimed(r: ClaimedRow): ClaimedJob {
  return {
    id: r.id,
    organizationId: r.organization_id,
    workflowId: r.workflow_id,
    workflowVersion: r.workflow_version,
    clientId: r.client_id,
    runNumber: r.run_number,
    attempts: r.attempts,
    lastSeq: r.last_seq,
    input: r.input,
    createdAt: new Date(r.created_ms),
    priorStatus: r.prior_status,
    retryCount: r.retry_count,
    maxRetries: r.max_retries,
    deadlineAt: r.deadline_ms === null ? null : new Date(r.deadline_ms),
    startedAt: new Date(r.started_ms),
    cancelRequested: r.cancel_requested_at !== null,
    checkpoint:
      r.next_step === null
        ? null
        : { nextStep: r.next_step, outputs: r.outputs ?? {}, failedSteps: r.failed_steps ?? [], state: r.state ?? {}, carried: r.carried ?? {} },
    lease: r.lease_epoch,
    initiatedBy: r.initiated_by,
    parentJobId: r.parent_job_id,
    depth: r.depth,
  };
}

/**
 * Shared end of both claims, after a `picked` CTE of job ids: stamp the
 * lease with a new fencing token (lease_epoch + 1) and return the jobs with
 * their checkpoints, their token and what their start will record (attempt,
 * start time, deadline). The jobs row is not updated here: the worker writes
 * RUNNING with its first flush, in the same UPDATE that records the outcome
 * when the job ends within that flush, which is one write per job less (the
 * claim was a third of the worker's database time). The jobs are found by
 * `= ANY (ARRAY(…))` and only then joined to the CTE for the token: joined
 * alone, the planner (which guesses CTE sizes) hashed whole tables — 32 ms
 * for 500 jobs over a 20k-row queue here, most of it two sequential scans.
 * The queue rows are leased by the ctids the pick locked them at (a TID
 * scan, whatever the statistics): 500 index descents fewer than by job_id
 * (2,113 buffer hits instead of 2,645 for a claim of 500 here). A row that
 * another transaction changed between the claim's snapshot and its lock is
 * locked at a version the snapshot cannot see; it is then not leased and
 * stays runnable for the next claim. `picked` must give ctid and job_id.
 */
export const CLAIM_TAIL = `leased AS (
       UPDATE stepwise.job_queue q
          SET locked_by = $1, locked_until = now() + make_interval(secs => $3::double precision / 1000),
              wake_requested = false, lease_epoch = q.lease_epoch + 1
        WHERE q.ctid = ANY (ARRAY(SELECT ctid FROM picked))
       RETURNING q.job_id, q.lease_epoch
     )
     SELECT j.id, j.organization_id, j.workflow_id, j.workflow_version, j.client_id, j.run_number,
            j.attempts + CASE WHEN j.status = 'WAITING' THEN 0 ELSE 1 END AS attempts,
            j.last_seq, j.input, j.status AS prior_status, j.retry_count, j.max_retries,
            -- Epoch milliseconds: parsing three timestamp strings per job showed in worker profiles.
            (extract(epoch FROM j.created_at) * 1000)::float8 AS created_ms,
            (extract(epoch FROM coalesce(j.started_at, now())) * 1000)::float8 AS started_ms,
            (extract(epoch FROM coalesce(j.deadline_at, now() + make_interval(secs => j.timeout_ms::double precision / 1000))) * 1000)::float8 AS deadline_ms,
            j.cancel_requested_at, c.next_step, c.outputs, c.failed_steps, c.state, c.carried, l.lease_epoch,
            j.initiated_by, j.parent_job_id, j.depth
       FROM stepwise.jobs j
       JOIN leased l ON l.job_id = j.id
       LEFT JOIN stepwise.execution_checkpoints c ON c.job_id = j.id
      WHERE j.id = ANY (ARRAY(SELECT job_id FROM leased))`;

/** The plain claim (claimJobs): $1 worker, $2 how many, $3 lease ms, $4 the organization to start after. */
const CLAIM_SQL = `WITH RECURSIVE ${fairPickCtes({ keyed: false, worker: '$1', want: '$2::bigint', after: '$4::uuid', fill: true })},
     picked AS (SELECT ctid, job_id FROM first UNION ALL SELECT ctid, job_id FROM fill),
     ${CLAIM_TAIL}`;

/**
 * Claim up to `limit` runnable jobs in one statement: pick from the small
 * queue table with FOR UPDATE SKIP LOCKED (concurrent claimers skip each
 * other's rows instead of waiting), a share for each organization with
 * runnable work (store/claim-fairness.ts), stamp the lease, and return each
 * job with its checkpoint (LEFT JOIN: one round trip whether or not the job
 * resumes). A row whose lease expired (its worker died) is runnable again;
 * never this worker's own (its heartbeat was late and it still runs that
 * job). A job woken from WAITING is not a new attempt. Rows with
 * concurrency keys are left to the keyed claim (store/flow-claim.ts).
 *
 * `after`: the organization the claimer's previous claim served last
 * (nextClaimCursor), so claims go round when more organizations have work
 * than a batch has room for.
 *
 * A named prepared statement: the fair pick made planning 0.7 ms instead
 * of 0.3 ms, paid on every call unprepared. Measured with one organization,
 * 20,000 queued, 1,000 running, claims of 500 (wall time per claim, medians
 * of 60 in three rounds): server 4.3–5.5 ms prepared against 4.9–6.0 ms for
 * the previous (unfair, unprepared) claim, 5.5–6.6 ms unprepared; PGlite
 * (prepared with SQL PREPARE, db/pglite.ts) 15.1–15.8 ms against 15.2–15.5.
 */
export async function claimJobs(db: Queryable, workerId: string, limit: number, leaseMs: number, after: string = NIL_UUID): Promise<ClaimedJob[]> {
  const { rows } = await db.query<ClaimedRow>(CLAIM_SQL, [workerId, limit, leaseMs, after], { name: 'stepwise_claim' });
  return rows.map(toClaimed);
}

/**
 * Heartbeat: extend the leases this worker still holds, in one statement.
 * Returns the ids still held and, among them, those whose cancellation was
 * requested (the worker aborts them), and the ids whose queue row is gone
 * (the job ended: most often this worker's own flush completed it between
 * the worker listing its jobs and this statement, which is not a lost
 * lease). The rows are locked in job id order, the order a flush locks them
 * in (store/record-tx.ts holdLeases), so a heartbeat and a flush of the same
 * worker never deadlock each other.
 */
export async function renewLeases(
  db: Queryable,
  workerId: string,
  jobIds: string[],
  leaseMs: number,
): Promise<{ held: string[]; cancelled: string[]; gone: string[] }> {
  if (jobIds.length === 0) return { held: [], cancelled: [], gone: [] };
  const { rows } = await db.query<{ job_id: string; cancel: boolean; gone: boolean }>(
    `WITH mine AS (
       SELECT job_id FROM stepwise.job_queue
        WHERE job_id = ANY($2::uuid[]) AND locked_by = $1
        ORDER BY job_id
        FOR UPDATE
     ), renewed AS (
       UPDATE stepwise.job_queue q
          SET locked_until = now() + make_interval(secs => $3::double precision / 1000)
         FROM mine WHERE q.job_id = mine.job_id
       RETURNING q.job_id
     )
     SELECT r.job_id, j.cancel_requested_at IS NOT NULL AS cancel, false AS gone
       FROM renewed r JOIN stepwise.jobs j ON j.id = r.job_id
     UNION ALL
     SELECT g.id, false, true
       FROM unnest($2::uuid[]) AS g(id)
      WHERE NOT EXISTS (SELECT 1 FROM stepwise.job_queue q WHERE q.job_id = g.id)`,
    [workerId, jobIds, leaseMs],
  );
  const live = rows.filter((r) => !r.gone);
  const gone = rows.filter((r) => r.gone).map((r) => r.job_id);
  // A job neither renewed nor gone is lost, but for one case: `mine` waited
  // for the row's lock held by this worker's own flush, which then deleted
  // it (the job ended), and the NOT EXISTS above still saw the row in the
  // statement's snapshot, taken before that commit. A second statement has a
  // fresh snapshot: what it finds missing ended. Seen for 19–100 jobs per
  // round of `bench scale-out` with 4 worker processes, each logged as a lost
  // lease and counted as fenced.
  const answered = new Set(rows.map((r) => r.job_id));
  const unsure = jobIds.filter((id) => !answered.has(id));
  if (unsure.length > 0) {
    const { rows: still } = await db.query<{ job_id: string }>('SELECT job_id FROM stepwise.job_queue WHERE job_id = ANY($1::uuid[])', [unsure]);
    const present = new Set(still.map((r) => r.job_id));
    for (const id of unsure) if (!present.has(id)) gone.push(id);
  }
  return {
    held: live.map((r) => r.job_id),
    cancelled: live.filter((r) => r.cancel).map((r) => r.job_id),
    gone,
  };
}

/**
 * Hand claimed jobs back at once (a batch the worker cannot start, e.g. its
 * definitions could not be read): unlocked and runnable again, instead of
 * held until the lease expires. Only rows this worker still holds.
 */
export async function releaseClaims(db: Queryable, workerId: string, jobIds: string[]): Promise<number> {
  if (jobIds.length === 0) return 0;
  const { rowCount } = await db.query(
    `UPDATE stepwise.job_queue SET locked_by = NULL, locked_until = NULL
      WHERE job_id = ANY($2::uuid[]) AND locked_by = $1`,
    [workerId, jobIds],
  );
  return rowCount;
}

/** Highest sequence number already in the stream per job (for jobs taken over after a crash). */
export async function findLastSeqs(db: Queryable, jobIds: string[]): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  if (jobIds.length === 0) return out;
  const { rows } = await db.query<{ job_id: string; seq: number }>(
    `SELECT job_id, max(seq) AS seq FROM stepwise.execution_log WHERE job_id = ANY($1::uuid[]) GROUP BY job_id`,
    [jobIds],
  );
  for (const r of rows) out.set(r.job_id, r.seq);
  return out;
}


/** Concurrency limits in force: organizations and workflows with max_concurrent_runs set. */
export interface ConcurrencyLimits {
  organizations: Map<string, number>;
  workflows: Map<string, number>;
  /** Some queued run has concurrency keys: the keyed claim (store/flow-claim.ts) has work. */
  keyed?: boolean | undefined;
}

/**
 * Admin read (workers serve every tenant): all limits, in one query. An
 * organization's limit is the lower of its own max_concurrent_runs and its
 * plan's concurrent runs (store/plans.ts), so plans reuse the limited claim
 * instead of a second mechanism; an unlimited organization is not listed.
 * Also whether any queued run has concurrency keys (one probe of the keyed
 * claim index, empty unless a workflow declares concurrency rules).
 */
export async function findConcurrencyLimits(db: Queryable): Promise<ConcurrencyLimits> {
  const plans = PLANS.filter((p) => PLAN_LIMITS[p].concurrentRuns !== null);
  const { rows } = await db.query<{ scope: 'o' | 'w' | 'k'; id: string; max: number }>(
    `SELECT 'o' AS scope, o.id, least(o.max_concurrent_runs, p.max) AS max
       FROM stepwise.organizations o
       LEFT JOIN unnest($1::text[], $2::int[]) AS p(plan, max) ON p.plan = o.plan
      WHERE o.max_concurrent_runs IS NOT NULL OR p.max IS NOT NULL
     UNION ALL
     SELECT 'w', id, max_concurrent_runs FROM stepwise.workflows WHERE max_concurrent_runs IS NOT NULL
     UNION ALL
     SELECT 'k', NULL, NULL WHERE EXISTS (SELECT 1 FROM stepwise.job_queue WHERE concurrency_keys IS NOT NULL)`,
    [plans, plans.map((p) => PLAN_LIMITS[p].concurrentRuns)],
  );
  const limits: ConcurrencyLimits = { organizations: new Map(), workflows: new Map() };
  for (const r of rows) {
    if (r.scope === 'k') limits.keyed = true;
    else (r.scope === 'o' ? limits.organizations : limits.workflows).set(r.id, r.max);
  }
  return limits;
}
