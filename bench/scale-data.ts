/**
 * The scale dataset: one year of executions at a busy tenant's volume
 * (50,000 jobs and 3,000,000 stream rows a month), generated set-based in SQL
 * (generate_series, INSERT … SELECT) into the real schema, month by month.
 * Used by `bench scale` and reusable by other benchmarks (issue 5 storage).
 *
 * Each month is one transaction of three statements over a temporary table
 * of that month's jobs, the way production writes them: INSERT the jobs as
 * PENDING (as enqueue does), UPDATE them to their outcome in one statement
 * (as a worker's batched completion does), INSERT their stream rows. Any
 * statement-level triggers on jobs and execution_log (the read model,
 * aggregates, step metrics) therefore fire exactly as in production, once
 * per statement with transition tables.
 */
import { ensureStreamPartitions, type Db, type Queryable } from '../src/db/index.js';
import { uuidv7 } from '../src/util/ids.js';
import { rollUpAggregates } from '../src/store/aggregate-outbox.js';
import { withStepMetrics } from './stream-step-metrics.js';

/** Sizes of the dataset; the defaults are a busy tenant's year (600,000 jobs, 36,000,000 stream rows). */
export interface ScaleDataOptions {
  months: number;
  jobsPerMonth: number;
  /** Average stream rows per job (events + log lines); each job has at least 2 + 2 × executed steps. */
  rowsPerJob: number;
  organizations: number;
  workflows: number;
  clients: number;
  /** The dataset ends here (the last month is the month of `end`, filled up to `end`). */
  end: Date;
  /** Progress lines (stderr in the bench). */
  onProgress?: (message: string) => void;
}

export const SCALE_DEFAULTS: Omit<ScaleDataOptions, 'end' | 'onProgress'> = {
  months: 12,
  jobsPerMonth: 50_000,
  rowsPerJob: 60,
  organizations: 10,
  workflows: 50,
  clients: 200,
};

/** What was generated: enough for a benchmark to pick realistic parameters. */
export interface ScaleDataset {
  organizationIds: string[];
  /** workflow id → its organization. */
  workflows: { id: string; organizationId: string }[];
  from: Date;
  to: Date;
  jobs: number;
  streamRows: number;
  generationSeconds: number;
}

/**
 * Step ids of the generated workflows: a workflow of k steps takes k
 * consecutive names (mod 15), so ids are distinct within a workflow and
 * shared across workflows (step metrics group by id).
 */
const STEP_NAMES = [
  'open_portal', 'login', 'search_member', 'check_eligibility', 'fetch_payer_rules', 'validate_input', 'map_codes',
  'submit_claim', 'verify_submission', 'download_eob', 'parse_eob', 'capture_screenshot', 'update_record', 'notify',
  'logout',
];

/** Failure codes with their messages; earlier codes are more frequent (drawn with u²). */
const ERRORS: [string, string][] = [
  ['HTTP_503', 'payer portal answered 503 Service Unavailable'],
  ['ELEMENT_NOT_FOUND', 'selector #member-search-submit not found after 30000 ms'],
  ['HTTP_TIMEOUT', 'request to payer API timed out after 30000 ms'],
  ['LOGIN_FAILED', 'portal login rejected: invalid credentials or MFA required'],
  ['PAYER_REJECTED', 'claim rejected by payer: missing modifier for CPT 99213'],
  ['VALIDATION_FAILED', 'input.memberId does not match the payer format'],
  ['SESSION_EXPIRED', 'portal session expired during navigation'],
  ['RATE_LIMITED', 'payer API answered 429 Too Many Requests'],
];

/** Share of jobs by status, on top of each workflow's own failure rate (1–7%). */
const TIMED_OUT_SHARE = 0.005;
const CANCELLED_SHARE = 0.005;
const PARTIAL_SHARE = 0.01;

interface WorkflowSpec {
  id: string;
  organizationId: string;
  orgIndex: number;
  steps: number;
  medianMs: number;
  failRate: number;
}

function monthStart(year: number, month: number): Date {
  return new Date(Date.UTC(year, month, 1));
}

/**
 * Workflow popularity: job j picks workflow ⌊W·u²⌋, so workflow i gets
 * √((i+1)/W) − √(i/W) of the jobs (14% for the first of 50, 0.5% for the
 * last): a few busy workflows and a long tail, as in any real tenant base.
 */
function popularity(i: number, w: number): number {
  return Math.sqrt((i + 1) / w) - Math.sqrt(i / w);
}

function buildWorkflows(opts: Pick<ScaleDataOptions, 'workflows'>, orgIds: string[]): WorkflowSpec[] {
  return Array.from({ length: opts.workflows }, (_, i) => ({
    id: uuidv7(),
    organizationId: orgIds[i % orgIds.length]!,
    orgIndex: i % orgIds.length,
    // 3–15 steps, median 2 s – 2 min: eligibility checks are quick, claim submissions through a browser slow.
    steps: 3 + ((i * 7) % 13),
    medianMs: Math.round(2000 * Math.pow(60, ((i * 11) % 17) / 16)),
    failRate: 0.01 + (((i * 5) % 7) / 6) * 0.06,
  }));
}

/** Organizations, clients (grouped: client k of organization o is clientIds[o·perOrg + k]), workflows and their versions. */
async function insertSetup(
  tx: Queryable,
  from: Date,
  orgIds: string[],
  workflows: WorkflowSpec[],
  clientIds: string[],
  perOrg: number,
): Promise<void> {
  await tx.query(
    `INSERT INTO stepwise.organizations (id, name, plan, created_at, updated_at)
     SELECT id, 'scale org ' || n, (ARRAY['STARTER','PROFESSIONAL','ENTERPRISE'])[1 + n % 3], $2::timestamptz, $2::timestamptz
       FROM unnest($1::uuid[]) WITH ORDINALITY AS u(id, n)`,
    [orgIds, from.toISOString()],
  );
  await tx.query(
    `INSERT INTO stepwise.clients (id, organization_id, name, external_id, created_at)
     SELECT id, ($2::uuid[])[1 + (n - 1) / $3::int], 'Clinic ' || n, 'NPI-' || lpad((1000000000 + n * 7919)::text, 10, '0'),
            $4::timestamptz
       FROM unnest($1::uuid[]) WITH ORDINALITY AS u(id, n)`,
    [clientIds, orgIds, perOrg, from.toISOString()],
  );
  await tx.query(
    `INSERT INTO stepwise.workflows (id, organization_id, name, category, created_at, updated_at)
     SELECT id, org, 'workflow ' || n || ' ' || (ARRAY['eligibility check','claim submission','prior authorization','remittance download'])[1 + n % 4],
            (ARRAY['eligibility','claims','authorizations','remittance'])[1 + n % 4], $3::timestamptz, $3::timestamptz
       FROM unnest($1::uuid[], $2::uuid[]) WITH ORDINALITY AS u(id, org, n)`,
    [workflows.map((w) => w.id), workflows.map((w) => w.organizationId), from.toISOString()],
  );
  await tx.query(
    `INSERT INTO stepwise.workflow_versions (workflow_id, version, organization_id, definition, created_at)
     SELECT id, 1, org, def, $4::timestamptz FROM unnest($1::uuid[], $2::uuid[], $3::jsonb[]) AS u(id, org, def)`,
    [
      workflows.map((w) => w.id),
      workflows.map((w) => w.organizationId),
      workflows.map((w, i) =>
        JSON.stringify({ steps: Array.from({ length: w.steps }, (_, k) => ({ id: STEP_NAMES[(i + k) % STEP_NAMES.length], type: 'noop' })) }),
      ),
      from.toISOString(),
    ],
  );
}

/**
 * One month's jobs with every attribute drawn once, in a temporary table
 * that the three writes read from. Durations are log-normal around the
 * workflow's median (σ 0.9: p95 ≈ 4.4 × median, a long right tail), clamped
 * to 50 ms – 3 h; the queue delay is 50 ms plus up to a minute, cubed so
 * most jobs start at once. Ids are UUIDv7 of created_at (the engine's ids
 * are time-ordered too), run numbers one global sequence (unique within
 * every organization and increasing with creation, as the engine's are).
 *
 * $1 month start, $2 span in ms, $3 jobs, $4 workflows, $5 workflow ids,
 * $6 their organizations, $7 their step counts, $8 their median ms,
 * $9 their failure rates, $10 their organization index, $11 id salt,
 * $12 first run number − 1, $13 client ids (grouped by organization),
 * $14 clients per organization, $15 average log lines per job.
 */
const MONTH_JOBS_SQL = `
CREATE TEMP TABLE scale_month ON COMMIT DROP AS
WITH draw AS (
  SELECT g, $1::timestamptz + ($2::float8 * (g + random()) / $3) * interval '1 millisecond' AS created_at,
         1 + floor($4::int * random() ^ 2)::int AS w,
         random() AS r_status, random() AS r_client, random() AS r_init, greatest(random(), 1e-12) AS u1, random() AS u2,
         random() AS r_fail, random() AS r_logs, random() AS r_err, random() AS r_queue
    FROM generate_series(0, $3::int - 1) AS g
), job AS (
  SELECT d.*, ($5::uuid[])[w] AS workflow_id, ($6::uuid[])[w] AS organization_id, ($7::int[])[w] AS steps,
         ($10::int[])[w] AS org_index,
         CASE WHEN r_status < ($9::float8[])[w] THEN 'FAILED'
              WHEN r_status < ($9::float8[])[w] + ${TIMED_OUT_SHARE} THEN 'TIMED_OUT'
              WHEN r_status < ($9::float8[])[w] + ${TIMED_OUT_SHARE + CANCELLED_SHARE} THEN 'CANCELLED'
              WHEN r_status < ($9::float8[])[w] + ${TIMED_OUT_SHARE + CANCELLED_SHARE + PARTIAL_SHARE} THEN 'PARTIAL_SUCCESS'
              ELSE 'COMPLETED' END AS status,
         least(greatest(($8::float8[])[w] * exp(0.9 * sqrt(-2 * ln(u1)) * cos(2 * pi() * u2)), 50), 10800000)::int AS duration_ms,
         (50 + 60000 * r_queue ^ 3)::int AS queue_ms
    FROM draw d
), shaped AS (
  SELECT j.*,
         -- Steps that ran: all of them, or up to and including the one that failed.
         CASE WHEN status IN ('COMPLETED', 'PARTIAL_SUCCESS') THEN steps ELSE 1 + floor(r_fail * steps)::int END AS executed,
         1 + floor(r_err * r_err * ${ERRORS.length})::int AS error_index
    FROM job j
)
SELECT s.*,
       (lpad(to_hex((extract(epoch FROM created_at) * 1000)::bigint), 12, '0') || '7' || substr(md5($11 || ':' || g), 1, 3)
         || '8' || substr(md5($11 || ':' || g), 4, 15))::uuid AS id,
       $12::bigint + g + 1 AS run_number,
       -- 10% of jobs have no client; the rest spread over all of the organization's clients.
       CASE WHEN r_client < 0.1 THEN NULL
            ELSE ($13::uuid[])[1 + org_index * $14::int + least(floor((r_client - 0.1) / 0.9 * $14::int)::int, $14::int - 1)] END AS client_id,
       CASE WHEN r_init < 0.5 THEN 'SCHEDULE' WHEN r_init < 0.8 THEN 'API' WHEN r_init < 0.92 THEN 'WEBHOOK'
            WHEN r_init < 0.98 THEN 'MANUAL' ELSE 'RETRY' END AS initiator_type,
       created_at + queue_ms * interval '1 millisecond' AS started_at,
       created_at + (queue_ms + duration_ms) * interval '1 millisecond' AS completed_at,
       2 + 2 * executed + floor(r_logs * (2 * $15::int + 1))::int AS n
  FROM shaped s`;

/** The month's jobs as enqueue writes them: PENDING, nothing run yet. */
const MONTH_INSERT_SQL = `
INSERT INTO stepwise.jobs (id, organization_id, workflow_id, workflow_version, client_id, run_number, status, initiator_type,
                           input, steps_total, created_at)
SELECT id, organization_id, workflow_id, 1, client_id, run_number, 'PENDING', initiator_type,
       jsonb_build_object('member', 'M-' || lpad((g % 1000000)::text, 6, '0')), steps, created_at
  FROM scale_month ORDER BY created_at`;

/** Their outcomes in one statement, as a worker's batched completion (store/outcomes.ts completeJobs) writes them. */
const MONTH_COMPLETE_SQL = `
UPDATE stepwise.jobs j
   SET status = m.status, attempts = 1, started_at = m.started_at, completed_at = m.completed_at, duration_ms = m.duration_ms,
       result = CASE WHEN m.status IN ('COMPLETED', 'PARTIAL_SUCCESS') THEN '{"eligible":true,"plan":"PPO"}'::jsonb END,
       error_code = CASE m.status WHEN 'FAILED' THEN ($1::text[])[m.error_index] WHEN 'TIMED_OUT' THEN 'JOB_TIMEOUT'
                                  WHEN 'CANCELLED' THEN 'CANCELLED' END,
       error_message = CASE m.status WHEN 'FAILED' THEN ($2::text[])[m.error_index] WHEN 'TIMED_OUT' THEN 'job deadline passed'
                                     WHEN 'CANCELLED' THEN 'cancelled by request' END,
       error_step = CASE WHEN m.status = 'FAILED' THEN ($3::text[])[1 + (m.w - 1 + m.executed - 1) % ${STEP_NAMES.length}] END,
       steps_completed = CASE WHEN m.status IN ('COMPLETED', 'PARTIAL_SUCCESS') THEN m.steps ELSE m.executed - 1 END,
       last_seq = m.n
  FROM scale_month m
 WHERE j.id = m.id`;

/**
 * Their stream rows: JOB_STARTED; per executed step STEP_STARTED, log lines,
 * STEP_COMPLETED (or STEP_FAILED for the step a failed job stopped at); the
 * outcome event last. Middle row i of m = n − 2 belongs to step ⌊i·e/m⌋, so
 * each of the e steps gets ≥ 2 rows (n ≥ 2 + 2e). Log lines are 3% WARN,
 * 0.3% ERROR, 20% DEBUG, the rest INFO, 35–75 characters, 10% with a small
 * jsonb payload; timestamps are spread evenly over the job's run.
 *
 * $1 error codes, $2 error messages, $3 step names, [$4, $5) the jobs (by g) of this statement.
 */
const MONTH_STREAM_SQL = `
INSERT INTO stepwise.execution_log (organization_id, job_id, ts, seq, step_index, kind, level, message, data)
SELECT organization_id, id, ts, q, step_index, kind,
       CASE kind WHEN 0 THEN (CASE WHEN r < 0.003 THEN 5 WHEN r < 0.033 THEN 4 WHEN r < 0.233 THEN 2 ELSE 3 END)
                 WHEN 3 THEN 5 WHEN 5 THEN 5 WHEN 12 THEN 5 WHEN 4 THEN 4 WHEN 6 THEN 4 ELSE 3 END,
       CASE kind WHEN 1 THEN 'run ' || run_number || ' started'
                 WHEN 2 THEN 'run ' || run_number || ' completed'
                 WHEN 6 THEN 'run ' || run_number || ' completed; failed steps: ' || step_name
                 WHEN 3 THEN ($2::text[])[error_index]
                 WHEN 5 THEN 'job deadline passed'
                 WHEN 4 THEN 'cancelled by request'
                 WHEN 12 THEN ($2::text[])[error_index]
                 WHEN 0 THEN CASE q % 5
                   WHEN 0 THEN 'checked eligibility for member M-' || lpad(((g * 31 + q) % 1000000)::text, 6, '0') || ': plan active'
                   WHEN 1 THEN 'GET /api/v2/members/' || ((g * 7 + q) % 100000) || '/coverage -> 200 in ' || ((g + q) % 400 + 20) || ' ms'
                   WHEN 2 THEN 'navigated to claims page ' || (q % 12 + 1) || ' of portal session ' || (g % 9973)
                   WHEN 3 THEN 'extracted ' || (q % 40 + 3) || ' fields from the results table, 0 missing'
                   ELSE 'waiting for selector #results-table (attempt ' || (q % 3 + 1) || ')' END
                 ELSE step_name END,
       CASE kind WHEN 11 THEN jsonb_build_object('durationMs', step_ms)
                 WHEN 12 THEN jsonb_build_object('durationMs', step_ms, 'code', ($1::text[])[error_index])
                 WHEN 3 THEN jsonb_build_object('code', ($1::text[])[error_index])
                 WHEN 5 THEN '{"code":"JOB_TIMEOUT"}'::jsonb
                 WHEN 4 THEN '{"code":"CANCELLED"}'::jsonb
                 WHEN 0 THEN CASE WHEN r2 < 0.1 THEN jsonb_build_object('httpStatus', 200, 'bytes', (g + q) % 50000) END
            END
  FROM (
    SELECT x.*, ($3::text[])[1 + (x.w - 1 + coalesce(x.step_index, x.executed - 1)) % ${STEP_NAMES.length}] AS step_name,
           CASE WHEN x.q = 1 THEN 1
                WHEN x.q = x.n THEN CASE x.status WHEN 'COMPLETED' THEN 2 WHEN 'FAILED' THEN 3 WHEN 'CANCELLED' THEN 4
                                                  WHEN 'TIMED_OUT' THEN 5 ELSE 6 END
                WHEN x.q = 2 OR ((x.q - 3) * x.executed) / (x.n - 2) <> x.step_index THEN 10
                WHEN ((x.q - 1) * x.executed) / (x.n - 2) <> x.step_index THEN
                  CASE WHEN x.status <> 'COMPLETED' AND x.status <> 'PARTIAL_SUCCESS' AND x.step_index = x.executed - 1 THEN 12 ELSE 11 END
                ELSE 0 END AS kind
      FROM (
        SELECT m.organization_id, m.id, m.g, m.w, m.n, m.executed, m.status, m.run_number, m.error_index, q,
               random() AS r, random() AS r2,
               m.started_at + (m.completed_at - m.started_at) * (q - 1) / (m.n - 1) AS ts,
               CASE WHEN q = 1 OR q = m.n THEN NULL ELSE ((q - 2) * m.executed) / (m.n - 2) END AS step_index,
               greatest(1, (m.duration_ms / m.executed * (0.5 + random()))::int) AS step_ms
          FROM scale_month m CROSS JOIN LATERAL generate_series(1, m.n) AS q
         WHERE m.g >= $4 AND m.g < $5
      ) x
  ) y`;

/**
 * Jobs whose stream rows one INSERT writes: a production flush holds a few
 * hundred jobs, and a chunk this size keeps each statement's step_metrics
 * grouping about as small as a flush's.
 */
const STREAM_CHUNK_JOBS = 500;

/** Expected executed steps per job over the workflow mix (failures stop early; ignored: they are a few percent). */
function expectedSteps(workflows: WorkflowSpec[]): number {
  return workflows.reduce((sum, w, i) => sum + popularity(i, workflows.length) * w.steps, 0);
}

/**
 * Generate the dataset into a migrated database: organizations, clients,
 * workflows with one version each, then `months` months of jobs and their
 * streams ending at `end`, then VACUUM ANALYZE (what autovacuum would have
 * done over a year; PostgreSQL never auto-analyzes a partitioned parent).
 * Month partitions of execution_log are created for the whole range first
 * (db/partitions.ts), so no row lands in the default partition.
 */
export async function generateScaleDataset(db: Db, options: Partial<ScaleDataOptions> = {}): Promise<ScaleDataset> {
  const opts: ScaleDataOptions = { ...SCALE_DEFAULTS, end: new Date(), ...options };
  const progress = opts.onProgress ?? (() => {});
  const t0 = performance.now();
  const endMonth = monthStart(opts.end.getUTCFullYear(), opts.end.getUTCMonth());
  const first = monthStart(endMonth.getUTCFullYear(), endMonth.getUTCMonth() - opts.months + 1);
  // Creates from the month before `now` to `monthsAhead` after it: first … end month + 1.
  await ensureStreamPartitions(db, monthStart(first.getUTCFullYear(), first.getUTCMonth() + 1), opts.months);

  const orgIds = Array.from({ length: opts.organizations }, () => uuidv7());
  const workflows = buildWorkflows(opts, orgIds);
  const perOrg = Math.max(1, Math.floor(opts.clients / opts.organizations));
  const clientIds = Array.from({ length: perOrg * opts.organizations }, () => uuidv7());
  await db.transaction((tx) => insertSetup(tx, first, orgIds, workflows, clientIds, perOrg));

  const avgLogs = Math.max(0, Math.round(opts.rowsPerJob - 2 - 2 * expectedSteps(workflows)));
  const salt = uuidv7();
  let jobs = 0;
  let streamRows = 0;
  const generateMonth = async (m: number): Promise<void> => {
    const start = monthStart(first.getUTCFullYear(), first.getUTCMonth() + m);
    const next = monthStart(first.getUTCFullYear(), first.getUTCMonth() + m + 1);
    const span = (m === opts.months - 1 ? Math.min(next.getTime(), opts.end.getTime()) : next.getTime()) - start.getTime();
    const tm = performance.now();
    const timings: string[] = [];
    const timed = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
      const ts = performance.now();
      const out = await fn();
      timings.push(`${what} ${((performance.now() - ts) / 1000).toFixed(1)} s`);
      return out;
    };
    const errorArgs = [ERRORS.map((e) => e[0]), ERRORS.map((e) => e[1]), STEP_NAMES];
    const rows = await db.transaction(async (tx) => {
      await timed('draw', () =>
        tx.query(MONTH_JOBS_SQL, [
          start.toISOString(), span, opts.jobsPerMonth, workflows.length,
          workflows.map((w) => w.id), workflows.map((w) => w.organizationId), workflows.map((w) => w.steps),
          workflows.map((w) => w.medianMs), workflows.map((w) => w.failRate), workflows.map((w) => w.orgIndex),
          `${salt}:${m}`, m * opts.jobsPerMonth, clientIds, perOrg, avgLogs,
        ]),
      );
      // The planner knows nothing of a fresh temporary table (autovacuum never sees one).
      await tx.query('ANALYZE scale_month');
      await timed('enqueue', () => tx.query(MONTH_INSERT_SQL));
      await timed('complete', () => tx.query(MONTH_COMPLETE_SQL, errorArgs));
      let rowCount = 0;
      await timed('stream', async () => {
        for (let lo = 0; lo < opts.jobsPerMonth; lo += STREAM_CHUNK_JOBS) {
          const { rows: written } = await tx.query<{ n: number }>(withStepMetrics(MONTH_STREAM_SQL), [...errorArgs, lo, lo + STREAM_CHUNK_JOBS]);
          rowCount += written[0]!.n;
        }
      });
      return rowCount;
    });
    jobs += opts.jobsPerMonth;
    streamRows += rows;
    progress(
      `month ${m + 1}/${opts.months} (${start.toISOString().slice(0, 7)}): ${opts.jobsPerMonth} jobs, ${rows} stream rows ` +
        `in ${((performance.now() - tm) / 1000).toFixed(1)} s (${timings.join(', ')})`,
    );
  };
  // Two lanes on two connections, each its own half of the year in order:
  // the first half's months and the second half's never run at the same
  // time as a neighbour, so the two transactions never upsert the same
  // aggregate or step-metrics row (a job finishing after its month's end
  // touches the next month's first hours) and cannot deadlock on them.
  const lanes = opts.months >= 4 ? 2 : 1;
  const perLane = Math.ceil(opts.months / lanes);
  await Promise.all(
    Array.from({ length: lanes }, async (_, lane) => {
      for (let m = lane * perLane; m < Math.min(opts.months, (lane + 1) * perLane); m++) await generateMonth(m);
    }),
  );
  await db.query(
    `UPDATE stepwise.organizations o SET run_counter = r.n
       FROM (SELECT organization_id, max(run_number) AS n FROM stepwise.jobs GROUP BY organization_id) r
      WHERE o.id = r.organization_id AND o.id = ANY($1::uuid[])`,
    [orgIds],
  );
  // The finished jobs wait in aggregate_outbox (migration 0027) until rolled up, as the workers would.
  const tr = performance.now();
  const rolled = await rollUpAggregates(db, { wait: true });
  progress(`${rolled ?? 0} finished jobs rolled up into aggregate_metrics in ${((performance.now() - tr) / 1000).toFixed(1)} s`);
  const tv = performance.now();
  await db.exec('VACUUM ANALYZE');
  progress(`VACUUM ANALYZE in ${((performance.now() - tv) / 1000).toFixed(1)} s`);
  return {
    organizationIds: orgIds,
    workflows: workflows.map((w) => ({ id: w.id, organizationId: w.organizationId })),
    from: first,
    to: opts.end,
    jobs,
    streamRows,
    generationSeconds: (performance.now() - t0) / 1000,
  };
}

/** Counts that must agree between jobs and what the triggers derived from them. */
export interface ScaleConsistency {
  jobs: number;
  metadataRows: number;
  /** Sum of total_count over the (all, all, all) MONTH rows of aggregate_metrics, and of the outbox's jobs not rolled up yet. */
  aggregatedJobs: number;
  terminalJobs: number;
  /** Sum of executions over the DAY rows of step_metrics (the MONTH rows count the same executions again). */
  stepExecutions: number;
  /** Steps that ran according to jobs: steps_completed, plus the failing step of a job that stopped early. */
  stepsRun: number;
  readModelFailures: number;
}

/**
 * A cheap consistency check of the derived tables against jobs (seconds,
 * not a recount of 36,000,000 stream rows): one metadata row per finished job (the generator finishes every job), every
 * finished job counted once in the monthly "all" aggregates, one step
 * execution per step that ran, no recorded trigger failure.
 */
export async function checkScaleDataset(db: Queryable): Promise<{ ok: boolean; counts: ScaleConsistency }> {
  const { rows } = await db.query<Record<keyof ScaleConsistency, string>>(
    `SELECT (SELECT count(*) FROM stepwise.jobs) AS "jobs",
            (SELECT count(*) FROM stepwise.execution_metadata) AS "metadataRows",
            (SELECT coalesce(sum(total_count), 0) FROM stepwise.aggregate_metrics_live
              WHERE period = 'MONTH' AND workflow_id = $1 AND client_id = $1 AND initiator_type = 'all') AS "aggregatedJobs",
            (SELECT count(*) FROM stepwise.jobs
              WHERE status IN ('COMPLETED', 'PARTIAL_SUCCESS', 'FAILED', 'CANCELLED', 'TIMED_OUT')) AS "terminalJobs",
            (SELECT coalesce(sum(executions), 0) FROM stepwise.step_metrics WHERE period = 'DAY') AS "stepExecutions",
            (SELECT coalesce(sum(steps_completed + CASE WHEN status IN ('FAILED', 'CANCELLED', 'TIMED_OUT') THEN 1 ELSE 0 END), 0)
               FROM stepwise.jobs) AS "stepsRun",
            (SELECT count(*) FROM stepwise.read_model_failures) AS "readModelFailures"`,
    ['00000000-0000-0000-0000-000000000000'],
  );
  const r = rows[0]!;
  const counts: ScaleConsistency = {
    jobs: Number(r.jobs),
    metadataRows: Number(r.metadataRows),
    aggregatedJobs: Number(r.aggregatedJobs),
    terminalJobs: Number(r.terminalJobs),
    stepExecutions: Number(r.stepExecutions),
    stepsRun: Number(r.stepsRun),
    readModelFailures: Number(r.readModelFailures),
  };
  const ok =
    counts.metadataRows === counts.jobs &&
    counts.aggregatedJobs === counts.terminalJobs &&
    counts.stepExecutions === counts.stepsRun &&
    counts.readModelFailures === 0;
  return { ok, counts };
}
