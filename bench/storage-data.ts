/**
 * A set-based stream dataset for the storage benchmark and the archival
 * tests: a busy tenant's volume by default (50,000 jobs and 3,000,000 stream rows
 * a month for 12 months), generated in SQL (generate_series, INSERT …
 * SELECT) month by month into the real schema, ending at `end`.
 * (bench/scale-data.ts from issue 4 generates the richer scale dataset; this
 * one writes only what archival reads — jobs and their streams — so it can
 * run here before that merges.)
 *
 * Rows look like the engine's: per job a JOB_STARTED, per step STEP_STARTED,
 * a few log lines and STEP_COMPLETED, then JOB_COMPLETED; messages carry
 * step names, member ids, HTTP statuses and durations drawn at random, and
 * a third of the rows carry a small jsonb payload, so the compression ratio
 * is not flattered by identical rows.
 */
import { ensureStreamPartitions, type Db } from '../src/db/index.js';
import { uuidv7 } from '../src/util/ids.js';
import { withStepMetrics } from './stream-step-metrics.js';

export interface StorageDataOptions {
  months: number;
  jobsPerMonth: number;
  /** Stream rows per job (default 60: 3,000,000 rows over 50,000 jobs a month). */
  rowsPerJob: number;
  organizations: number;
  /** The data ends here: the last month is the one holding the instant before `end`. */
  end: Date;
  onProgress?: (message: string) => void;
}

export const STORAGE_DATA_DEFAULTS = { months: 12, jobsPerMonth: 50_000, rowsPerJob: 60, organizations: 4 } as const;

export interface StorageDataset {
  organizationIds: string[];
  jobs: number;
  streamRows: number;
  from: Date;
  to: Date;
}

const STEP_NAMES = ['open_portal', 'login', 'search_member', 'check_eligibility', 'fetch_payer_rules', 'submit_claim', 'download_eob', 'logout'];

/** Generate the dataset; returns what was written. */
export async function generateStorageDataset(db: Db, opts: StorageDataOptions): Promise<StorageDataset> {
  const orgIds = Array.from({ length: opts.organizations }, () => uuidv7());
  const wfIds = orgIds.map(() => uuidv7());
  const end = opts.end;
  const last = new Date(end.getTime() - 1);
  const from = new Date(Date.UTC(last.getUTCFullYear(), last.getUTCMonth() - opts.months + 1, 1));
  await db.transaction(async (tx) => {
    await tx.query(
      `INSERT INTO stepwise.organizations (id, name, created_at) SELECT id, 'storage org ' || n, $2
         FROM unnest($1::uuid[]) WITH ORDINALITY AS u(id, n)`,
      [orgIds, from.toISOString()],
    );
    await tx.query(
      `INSERT INTO stepwise.workflows (id, organization_id, name, created_at) SELECT id, org, 'claims ' || n, $3
         FROM unnest($1::uuid[], $2::uuid[]) WITH ORDINALITY AS u(id, org, n)`,
      [wfIds, orgIds, from.toISOString()],
    );
    await tx.query(
      `INSERT INTO stepwise.workflow_versions (workflow_id, version, organization_id, definition)
       SELECT id, 1, org, $3::jsonb FROM unnest($1::uuid[], $2::uuid[]) AS u(id, org)`,
      [wfIds, orgIds, JSON.stringify({ steps: STEP_NAMES.map((id) => ({ id, type: 'noop' })) })],
    );
  });
  let jobs = 0;
  let rows = 0;
  for (let m = 0; m < opts.months; m++) {
    const monthFrom = new Date(Date.UTC(from.getUTCFullYear(), from.getUTCMonth() + m, 1));
    const nextMonth = new Date(Date.UTC(from.getUTCFullYear(), from.getUTCMonth() + m + 1, 1));
    const monthTo = nextMonth < end ? nextMonth : end;
    await ensureStreamPartitions(db, monthFrom, 0);
    const spanMs = monthTo.getTime() - monthFrom.getTime() - 3_600_000;
    if (spanMs <= 0) continue;
    const t0 = performance.now();
    await db.transaction(async (tx) => {
      await tx.query(
        `CREATE TEMP TABLE storage_month ON COMMIT DROP AS
         SELECT (md5($6::text || g)::uuid) AS id, ($4::uuid[])[1 + g % $7] AS org, ($5::uuid[])[1 + g % $7] AS wf,
                $8::bigint + g + 1 AS run_number,
                $1::timestamptz + ($2::float8 * (g + random()) / $3) * interval '1 millisecond' AS created_at,
                (200 + 120000 * random() ^ 3)::int AS duration_ms,
                random() < 0.04 AS failed
           FROM generate_series(0, $3::int - 1) AS g`,
        [monthFrom.toISOString(), spanMs, opts.jobsPerMonth, orgIds, wfIds, `m${m}-${from.getTime()}`, orgIds.length, jobs],
      );
      await tx.query(
        `INSERT INTO stepwise.jobs (id, organization_id, workflow_id, workflow_version, run_number, status, initiator_type,
                                   attempts, steps_total, steps_completed, last_seq, created_at, started_at, completed_at, duration_ms,
                                   error_code, error_message)
         SELECT id, org, wf, 1, run_number, CASE WHEN failed THEN 'FAILED' ELSE 'COMPLETED' END, 'SCHEDULE', 1, $1, $1, $2,
                created_at, created_at + interval '40 ms', created_at + duration_ms * interval '1 ms', duration_ms,
                CASE WHEN failed THEN 'HTTP_503' END, CASE WHEN failed THEN 'payer portal answered 503' END
           FROM storage_month`,
        [STEP_NAMES.length, opts.rowsPerJob],
      );
      // Row s of a job: 1 JOB_STARTED, last JOB_COMPLETED, in between steps of
      // (STEP_STARTED, log lines, STEP_COMPLETED) spread over the job's duration.
      await tx.query(
        withStepMetrics(`INSERT INTO stepwise.execution_log (organization_id, job_id, ts, seq, step_index, kind, level, message, data)
         SELECT j.org, j.id,
                j.created_at + (j.duration_ms * (s - 1)::float8 / $1) * interval '1 ms' + (random() * 3) * interval '1 ms',
                s, CASE WHEN s IN (1, $1) THEN NULL ELSE ((s - 2) * $3 / ($1 - 1))::smallint END,
                CASE WHEN s = 1 THEN 1 WHEN s = $1 THEN CASE WHEN j.failed THEN 3 ELSE 2 END
                     WHEN s % 6 = 2 THEN 10 WHEN s % 6 = 1 THEN 11 ELSE 0 END,
                CASE WHEN s % 6 = 4 AND random() < 0.1 THEN 4 WHEN s % 17 = 0 THEN 2 ELSE 3 END,
                CASE WHEN s = 1 THEN 'job started (run ' || j.run_number || ')'
                     WHEN s = $1 THEN CASE WHEN j.failed THEN 'job failed: payer portal answered 503' ELSE 'job completed in ' || j.duration_ms || ' ms' END
                     WHEN s % 6 = 2 THEN 'step ' || ($2::text[])[1 + (s / 6) % $3] || ' started'
                     WHEN s % 6 = 1 THEN 'step ' || ($2::text[])[1 + (s / 6) % $3] || ' completed in ' || (random() * 4000)::int || ' ms'
                     WHEN s % 6 = 3 THEN 'GET https://portal.payer' || (1 + j.run_number % 40) || '.example/api/members/M' || (100000 + (random() * 899999)::int) || ' -> ' || (ARRAY[200, 200, 200, 404, 503])[1 + (random() * 4)::int]
                     WHEN s % 6 = 4 THEN 'eligibility for member M' || (100000 + (random() * 899999)::int) || ': ' || (ARRAY['active', 'active', 'inactive', 'pending'])[1 + (random() * 3)::int]
                     ELSE 'parsed ' || (random() * 40)::int || ' rows from the remittance page in ' || (random() * 900)::int || ' ms' END,
                CASE WHEN s % 3 = 0 THEN jsonb_build_object('status', (ARRAY[200, 200, 404, 503])[1 + (random() * 3)::int],
                                                           'ms', (random() * 2000)::int, 'attempt', 1 + (random() < 0.1)::int,
                                                           'memberId', 'M' || (100000 + (random() * 899999)::int)) END
           FROM storage_month j CROSS JOIN generate_series(1, $1::int) AS s`),
        [opts.rowsPerJob, STEP_NAMES, STEP_NAMES.length],
      );
    });
    jobs += opts.jobsPerMonth;
    rows += opts.jobsPerMonth * opts.rowsPerJob;
    opts.onProgress?.(`month ${m + 1}/${opts.months}: ${opts.jobsPerMonth} jobs, ${opts.jobsPerMonth * opts.rowsPerJob} rows in ${Math.round(performance.now() - t0)} ms`);
  }
  await db.query(
    `UPDATE stepwise.organizations o SET run_counter = (SELECT coalesce(max(run_number), 0) FROM stepwise.jobs j WHERE j.organization_id = o.id)
      WHERE o.id = ANY($1::uuid[])`,
    [orgIds],
  );
  return { organizationIds: orgIds, jobs, streamRows: rows, from, to: end };
}
