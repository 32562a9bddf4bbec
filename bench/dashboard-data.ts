/**
 * What `bench dashboard` adds to a scale dataset (bench/scale-data.ts) before
 * it measures the dashboard: a signed-in person, business-field search keys,
 * and one long run for the inspector. Every step is idempotent, so a kept
 * dataset (`--database`) can be prepared again and again: what is there is
 * reused, nothing is added twice.
 *
 * Everything is written the way production writes it: the user through the
 * store and security functions; search keys as the enqueue writes them (one
 * row per run and key, with the run's created_at and run number); the long
 * run set-based, as bench/scale-data.ts writes jobs and streams (INSERT the
 * job PENDING, UPDATE it to its outcome, INSERT its stream rows with their
 * step metrics), so the read model and aggregates are filled by their
 * triggers and `checkScaleDataset` still agrees afterwards.
 */
import { randomBytes } from 'node:crypto';
import type { Db, Queryable } from '../src/db/index.js';
import { setUserPassword } from '../src/security/sessions.js';
import { createUser, findUsersByEmail } from '../src/store/index.js';
import { uuidv7 } from '../src/util/ids.js';
import { withStepMetrics } from './stream-step-metrics.js';

export const BENCH_EMAIL = 'dashboard-bench@example.com';
/** The business field the scale dataset's inputs carry (`{"member": "M-000123"}`). */
export const SEARCH_KEY = 'input.member';
export const LONG_RUN_WORKFLOW = 'dashboard bench: 10,000-row run';
export const LONG_RUN_ROWS = 10_000;

/**
 * Step ids of the long run: twenty distinct names (a workflow's step ids are
 * unique), the scale dataset's fifteen and five more.
 */
const LONG_RUN_STEPS = [
  'open_portal', 'login', 'search_member', 'check_eligibility', 'fetch_payer_rules', 'validate_input', 'map_codes',
  'submit_claim', 'verify_submission', 'download_eob', 'parse_eob', 'capture_screenshot', 'update_record', 'notify',
  'reconcile_totals', 'upload_documents', 'verify_documents', 'close_case', 'report_status', 'logout',
];

export interface DashboardFixture {
  organizationId: string;
  email: string;
  password: string;
  /** The organization's most used workflow, its most frequent error code, a member id of a run of the last day. */
  busiestWorkflowId: string;
  commonErrorCode: string;
  rareErrorCode: string;
  recentMember: string;
  searchKeyRows: number;
  longRunId: string;
}

/** The organization with the most runs: the one a busy operator looks at. */
async function busiestOrganization(db: Queryable): Promise<string> {
  const { rows } = await db.query<{ organization_id: string }>(
    `SELECT organization_id FROM stepwise.execution_metadata GROUP BY 1 ORDER BY count(*) DESC LIMIT 1`,
  );
  if (!rows[0]) throw new Error('the database holds no runs: not a scale dataset');
  return rows[0].organization_id;
}

/** A MEMBER (may cancel and retry: the runs page shows its selection boxes) with a fresh random password. */
async function benchUser(db: Db, organizationId: string): Promise<string> {
  const password = randomBytes(18).toString('base64url');
  const existing = (await findUsersByEmail(db, BENCH_EMAIL, organizationId))[0];
  const user = existing ?? (await createUser(db, organizationId, { email: BENCH_EMAIL, name: 'Dashboard bench', role: 'MEMBER' }));
  await setUserPassword(db, organizationId, user.id, password, '/password');
  return password;
}

/**
 * The organization's runs' member ids as search-key rows, as the enqueue
 * would have written them had the workflows declared `"searchKeys":
 * ["input.member"]` (the generator predates search keys).
 */
async function searchKeys(db: Db, organizationId: string): Promise<number> {
  const { rowCount } = await db.query(
    `INSERT INTO stepwise.job_search_keys (organization_id, job_id, key, value, created_at, run_number)
     SELECT organization_id, id, $2, input->>'member', created_at, run_number
       FROM stepwise.jobs
      WHERE organization_id = $1 AND input->>'member' IS NOT NULL
     ON CONFLICT DO NOTHING`,
    [organizationId, SEARCH_KEY],
  );
  if (rowCount > 0) await db.exec('ANALYZE stepwise.job_search_keys');
  const { rows } = await db.query<{ n: string }>(`SELECT count(*) AS n FROM stepwise.job_search_keys WHERE organization_id = $1`, [organizationId]);
  return Number(rows[0]!.n);
}

/**
 * The long run's stream: JOB_STARTED; per step STEP_STARTED, log lines,
 * STEP_COMPLETED (with durationMs); JOB_COMPLETED last. Middle row i of
 * n − 2 belongs to step ⌊i·e/(n−2)⌋ (the scale generator's split); log
 * lines 3% WARN, 20% DEBUG, the rest INFO, 10% with a small payload;
 * timestamps spread evenly over the run.
 *
 * $1 organization, $2 job, $3 rows, $4 step ids, $5 started, $6 completed, $7 run number.
 */
const LONG_RUN_STREAM_SQL = `
INSERT INTO stepwise.execution_log (organization_id, job_id, ts, seq, step_index, kind, level, message, data)
SELECT $1::uuid, $2::uuid, ts, q, step_index, kind,
       CASE kind WHEN 0 THEN (CASE WHEN r < 0.03 THEN 4 WHEN r < 0.23 THEN 2 ELSE 3 END) ELSE 3 END,
       CASE kind WHEN 1 THEN 'run ' || $7::bigint || ' started'
                 WHEN 2 THEN 'run ' || $7::bigint || ' completed'
                 WHEN 0 THEN CASE q % 5
                   WHEN 0 THEN 'checked eligibility for member M-' || lpad((q * 31 % 1000000)::text, 6, '0') || ': plan active'
                   WHEN 1 THEN 'GET /api/v2/members/' || (q * 7 % 100000) || '/coverage -> 200 in ' || (q % 400 + 20) || ' ms'
                   WHEN 2 THEN 'navigated to claims page ' || (q % 12 + 1) || ' of portal session ' || (q % 9973)
                   WHEN 3 THEN 'extracted ' || (q % 40 + 3) || ' fields from the results table, 0 missing'
                   ELSE 'waiting for selector #results-table (attempt ' || (q % 3 + 1) || ')' END
                 ELSE ($4::text[])[step_index + 1] END,
       CASE kind WHEN 11 THEN jsonb_build_object('durationMs', step_ms)
                 WHEN 0 THEN CASE WHEN r2 < 0.1 THEN jsonb_build_object('httpStatus', 200, 'bytes', q * 13 % 50000) END END
  FROM (
    SELECT x.*,
           CASE WHEN x.q = 1 THEN 1 WHEN x.q = $3::int THEN 2
                WHEN x.q = 2 OR ((x.q - 3) * x.e) / ($3::int - 2) <> x.step_index THEN 10
                WHEN ((x.q - 1) * x.e) / ($3::int - 2) <> x.step_index THEN 11
                ELSE 0 END AS kind
      FROM (
        SELECT q, cardinality($4::text[]) AS e, random() AS r, random() AS r2,
               $5::timestamptz + ($6::timestamptz - $5::timestamptz) * (q - 1) / ($3::int - 1) AS ts,
               CASE WHEN q = 1 OR q = $3::int THEN NULL ELSE ((q - 2) * cardinality($4::text[])) / ($3::int - 2) END AS step_index,
               (extract(epoch FROM $6::timestamptz - $5::timestamptz) * 1000 / cardinality($4::text[]) * (0.5 + random()))::int AS step_ms
          FROM generate_series(1, $3::int) AS q
      ) x
  ) y`;

/** The long run (one COMPLETED run of 10,000 stream rows, twenty steps, finished an hour ago), created once. */
async function longRun(db: Db, organizationId: string): Promise<string> {
  const { rows: found } = await db.query<{ id: string }>(
    `SELECT j.id FROM stepwise.workflows w JOIN stepwise.jobs j ON j.organization_id = w.organization_id AND j.workflow_id = w.id
      WHERE w.organization_id = $1 AND w.name = $2 AND j.last_seq = $3 LIMIT 1`,
    [organizationId, LONG_RUN_WORKFLOW, LONG_RUN_ROWS],
  );
  if (found[0]) return found[0].id;
  const workflowId = uuidv7();
  const jobId = uuidv7();
  const completed = new Date(Date.now() - 3_600_000);
  const started = new Date(completed.getTime() - 45 * 60_000);
  const created = new Date(started.getTime() - 2_000);
  const definition = { searchKeys: [SEARCH_KEY], steps: LONG_RUN_STEPS.map((id) => ({ id, type: 'noop' })) };
  await db.transaction(async (tx) => {
    await tx.query(
      `INSERT INTO stepwise.workflows (id, organization_id, name, category, created_at, updated_at) VALUES ($1, $2, $3, 'claims', $4, $4)`,
      [workflowId, organizationId, LONG_RUN_WORKFLOW, created.toISOString()],
    );
    await tx.query(
      `INSERT INTO stepwise.workflow_versions (workflow_id, version, organization_id, definition, created_at) VALUES ($1, 1, $2, $3, $4)`,
      [workflowId, organizationId, JSON.stringify(definition), created.toISOString()],
    );
    const { rows } = await tx.query<{ run_counter: string }>(
      `UPDATE stepwise.organizations SET run_counter = run_counter + 1 WHERE id = $1 RETURNING run_counter`,
      [organizationId],
    );
    const runNumber = rows[0]!.run_counter;
    await tx.query(
      `INSERT INTO stepwise.jobs (id, organization_id, workflow_id, workflow_version, run_number, status, initiator_type, input, steps_total, created_at)
       VALUES ($1, $2, $3, 1, $4, 'PENDING', 'API', $5, $6, $7)`,
      [jobId, organizationId, workflowId, runNumber, JSON.stringify({ member: 'M-424242' }), LONG_RUN_STEPS.length, created.toISOString()],
    );
    await tx.query(
      `INSERT INTO stepwise.job_search_keys (organization_id, job_id, key, value, created_at, run_number) VALUES ($1, $2, $3, 'M-424242', $4, $5)`,
      [organizationId, jobId, SEARCH_KEY, created.toISOString(), runNumber],
    );
    await tx.query(
      `UPDATE stepwise.jobs SET status = 'COMPLETED', attempts = 1, started_at = $2, completed_at = $3, duration_ms = $4,
              result = '{"eligible":true,"plan":"PPO"}', steps_completed = steps_total, last_seq = $5
        WHERE id = $1`,
      [jobId, started.toISOString(), completed.toISOString(), completed.getTime() - started.getTime(), LONG_RUN_ROWS],
    );
    await tx.query(withStepMetrics(LONG_RUN_STREAM_SQL), [
      organizationId, jobId, LONG_RUN_ROWS, LONG_RUN_STEPS, started.toISOString(), completed.toISOString(), runNumber,
    ]);
  });
  return jobId;
}

/**
 * Filter values a person would use, each matching runs in the runs page's
 * default window (the last 7 days): the busiest workflow, the most and least
 * frequent error code, a member of a recent run.
 */
async function filterValues(db: Queryable, organizationId: string): Promise<Pick<DashboardFixture, 'busiestWorkflowId' | 'commonErrorCode' | 'rareErrorCode' | 'recentMember'>> {
  const { rows: wf } = await db.query<{ workflow_id: string }>(
    `SELECT workflow_id FROM stepwise.jobs WHERE organization_id = $1 AND created_at > now() - interval '7 days' GROUP BY 1 ORDER BY count(*) DESC LIMIT 1`,
    [organizationId],
  );
  const { rows: codes } = await db.query<{ error_code: string }>(
    `SELECT error_code FROM stepwise.jobs
      WHERE organization_id = $1 AND status = 'FAILED' AND created_at > now() - interval '7 days'
      GROUP BY 1 ORDER BY count(*) DESC, 1`,
    [organizationId],
  );
  const { rows: member } = await db.query<{ value: string }>(
    `SELECT value FROM stepwise.job_search_keys WHERE organization_id = $1 AND key = $2 AND created_at > now() - interval '3 days'
      ORDER BY created_at DESC LIMIT 1 OFFSET 100`,
    [organizationId, SEARCH_KEY],
  );
  if (!wf[0] || !codes[0]) throw new Error('no failed run in the last 7 days: the dataset must end now (generate a fresh one)');
  return {
    busiestWorkflowId: wf[0].workflow_id,
    commonErrorCode: codes[0].error_code,
    rareErrorCode: codes[codes.length - 1]!.error_code,
    recentMember: member[0]?.value ?? 'M-424242',
  };
}

export async function prepareDashboardFixture(db: Db, log: (m: string) => void): Promise<DashboardFixture> {
  const organizationId = await busiestOrganization(db);
  const password = await benchUser(db, organizationId);
  let t = performance.now();
  const searchKeyRows = await searchKeys(db, organizationId);
  log(`search keys: ${searchKeyRows} rows for organization ${organizationId} (${Math.round(performance.now() - t)} ms)`);
  t = performance.now();
  const longRunId = await longRun(db, organizationId);
  log(`long run ${longRunId} ready (${Math.round(performance.now() - t)} ms)`);
  return { organizationId, email: BENCH_EMAIL, password, searchKeyRows, longRunId, ...(await filterValues(db, organizationId)) };
}
