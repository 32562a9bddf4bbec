-- Aggregates out of the completing transaction.
--
-- Until now the jobs update trigger added every finished job to
-- aggregate_metrics in the statement that recorded its outcome: 15 upserted
-- rows (3 periods × 5 dimension keys) with a histogram merge each, 2.2 ms of
-- the 2.7 ms completion statement for a lone job (pg_stat_user_functions,
-- 1-step runs at 50/s), and rows every worker's flush shared. Now the
-- trigger appends one row per finished job to aggregate_outbox, and a
-- roll-up (store/aggregate-outbox.ts, run by the workers one at a time
-- under an advisory try-lock) moves the rows into aggregate_metrics in
-- batches: deleting them and adding them in one transaction, so a crash at
-- any point counts each job exactly once. Readers see the rows not rolled
-- up yet through aggregate_metrics_live, which adds them on the fly, so
-- analytics stay exact at every moment.

-- 1. The outbox: append-only, taken whole by the roll-up. No foreign key:
--    its check would lock the organization's row in every flush; the
--    roll-up drops the rows of an organization deleted meanwhile.
CREATE TABLE stepwise.aggregate_outbox (
  organization_id uuid        NOT NULL,
  workflow_id     uuid        NOT NULL,
  client_id       uuid,
  initiator_type  text        NOT NULL,
  status          text        NOT NULL,
  completed_at    timestamptz NOT NULL,
  duration_ms     integer
);

SELECT stepwise.enable_tenant_rls();

-- 2. The rows a batch of finished jobs adds to aggregate_metrics, as a
--    function of its own so the live view computes exactly what the
--    roll-up writes. First collapse the jobs to one row per (dimensions,
--    hour, bucket): the jobs of one batch mostly finish in the same hour
--    with similar durations, so 500 jobs become tens of rows before the
--    3 periods × 5 keys expansion (measured: the expansion of raw jobs cost
--    ~2/3 of the time).
CREATE FUNCTION stepwise.aggregate_rows(p_org uuid[], p_workflow uuid[], p_client uuid[], p_initiator text[], p_status text[],
                                        p_completed_at timestamptz[], p_duration integer[])
RETURNS TABLE (organization_id uuid, period varchar(5), workflow_id uuid, client_id uuid, initiator_type varchar(10),
               period_start timestamptz, total_count integer, completed_count integer, partial_success_count integer,
               failed_count integer, cancelled_count integer, timed_out_count integer, duration_count integer,
               total_duration_ms bigint, min_duration_ms integer, max_duration_ms integer, duration_histogram jsonb)
LANGUAGE sql STABLE AS $$
  WITH j AS (
    SELECT u.org, u.wf, coalesce(u.cl, '00000000-0000-0000-0000-000000000001'::uuid) AS cl, u.ini,
           date_trunc('hour', u.completed_at, 'UTC') AS hour, stepwise.duration_bucket(u.duration) AS bucket,
           count(*) AS n,
           count(*) FILTER (WHERE u.status = 'COMPLETED') AS c,
           count(*) FILTER (WHERE u.status = 'PARTIAL_SUCCESS') AS ps_n,
           count(*) FILTER (WHERE u.status = 'FAILED') AS f,
           count(*) FILTER (WHERE u.status = 'CANCELLED') AS x,
           count(*) FILTER (WHERE u.status = 'TIMED_OUT') AS t,
           count(u.duration) AS dn, coalesce(sum(u.duration), 0) AS dsum, min(u.duration) AS dmin, max(u.duration) AS dmax
      FROM unnest(p_org, p_workflow, p_client, p_initiator, p_status, p_completed_at, p_duration)
             AS u(org, wf, cl, ini, status, completed_at, duration)
     GROUP BY 1, 2, 3, 4, 5, 6
  ), k AS (
    SELECT j.org, p.period, d.wf, d.cl, d.ini, date_trunc(p.unit, j.hour, 'UTC') AS ps, j.bucket,
           sum(j.n) AS n, sum(j.c) AS c, sum(j.ps_n) AS ps_n, sum(j.f) AS f, sum(j.x) AS x, sum(j.t) AS t,
           sum(j.dn) AS dn, sum(j.dsum) AS dsum, min(j.dmin) AS dmin, max(j.dmax) AS dmax
      FROM j
     CROSS JOIN (VALUES ('HOUR', 'hour'), ('DAY', 'day'), ('MONTH', 'month')) AS p(period, unit)
     CROSS JOIN LATERAL (VALUES
       (j.wf, j.cl, j.ini),
       (j.wf, '00000000-0000-0000-0000-000000000000'::uuid, 'all'),
       ('00000000-0000-0000-0000-000000000000'::uuid, j.cl, 'all'),
       ('00000000-0000-0000-0000-000000000000'::uuid, '00000000-0000-0000-0000-000000000000'::uuid, j.ini),
       ('00000000-0000-0000-0000-000000000000'::uuid, '00000000-0000-0000-0000-000000000000'::uuid, 'all')
     ) AS d(wf, cl, ini)
     GROUP BY 1, 2, 3, 4, 5, 6, 7
  )
  SELECT k.org, k.period::varchar(5), k.wf, k.cl, k.ini::varchar(10), k.ps, sum(k.n)::int, sum(k.c)::int, sum(k.ps_n)::int,
         sum(k.f)::int, sum(k.x)::int, sum(k.t)::int, sum(k.dn)::int, sum(k.dsum)::bigint, min(k.dmin)::int, max(k.dmax)::int,
         coalesce(jsonb_object_agg(k.bucket, k.dn) FILTER (WHERE k.bucket IS NOT NULL), '{}'::jsonb)
    FROM k
   GROUP BY k.org, k.period, k.wf, k.cl, k.ini, k.ps
$$;

CREATE OR REPLACE FUNCTION stepwise.add_to_aggregates(p_org uuid[], p_workflow uuid[], p_client uuid[], p_initiator text[], p_status text[],
                                                      p_completed_at timestamptz[], p_duration integer[])
RETURNS void LANGUAGE sql AS $$
  INSERT INTO stepwise.aggregate_metrics AS a
    (organization_id, period, workflow_id, client_id, initiator_type, period_start, total_count, completed_count,
     partial_success_count, failed_count, cancelled_count, timed_out_count, duration_count, total_duration_ms,
     min_duration_ms, max_duration_ms, duration_histogram)
  SELECT r.* FROM stepwise.aggregate_rows(p_org, p_workflow, p_client, p_initiator, p_status, p_completed_at, p_duration) r
   -- Rows are locked in key order, the same in every transaction: a roll-up
   -- and a repair that meet wait for each other instead of deadlocking.
   ORDER BY r.organization_id, r.period, r.client_id, r.initiator_type, r.workflow_id, r.period_start
  ON CONFLICT (organization_id, period, client_id, initiator_type, workflow_id, period_start) DO UPDATE SET
    total_count = a.total_count + EXCLUDED.total_count,
    completed_count = a.completed_count + EXCLUDED.completed_count,
    partial_success_count = a.partial_success_count + EXCLUDED.partial_success_count,
    failed_count = a.failed_count + EXCLUDED.failed_count,
    cancelled_count = a.cancelled_count + EXCLUDED.cancelled_count,
    timed_out_count = a.timed_out_count + EXCLUDED.timed_out_count,
    duration_count = a.duration_count + EXCLUDED.duration_count,
    total_duration_ms = a.total_duration_ms + EXCLUDED.total_duration_ms,
    min_duration_ms = least(a.min_duration_ms, EXCLUDED.min_duration_ms),
    max_duration_ms = greatest(a.max_duration_ms, EXCLUDED.max_duration_ms),
    duration_histogram = stepwise.histogram_merge(a.duration_histogram, EXCLUDED.duration_histogram),
    updated_at = now()
$$;

-- 3. What analytics read: the rolled-up rows plus the outbox's rows not
--    rolled up yet, expanded the same way (the outbox holds at most the
--    jobs of a roll-up interval, 500 ms). A filter on organization_id
--    reaches the outbox's GROUP BY, so a tenant expands its own rows only.
--    security_invoker: the tenant's row-level security applies to both.
CREATE VIEW stepwise.aggregate_metrics_live WITH (security_invoker = true) AS
  SELECT a.organization_id, a.period, a.workflow_id, a.client_id, a.initiator_type, a.period_start, a.total_count,
         a.completed_count, a.partial_success_count, a.failed_count, a.cancelled_count, a.timed_out_count,
         a.duration_count, a.total_duration_ms, a.min_duration_ms, a.max_duration_ms, a.duration_histogram
    FROM stepwise.aggregate_metrics a
  UNION ALL
  SELECT o.organization_id, r.period, r.workflow_id, r.client_id, r.initiator_type, r.period_start, r.total_count,
         r.completed_count, r.partial_success_count, r.failed_count, r.cancelled_count, r.timed_out_count,
         r.duration_count, r.total_duration_ms, r.min_duration_ms, r.max_duration_ms, r.duration_histogram
    FROM (SELECT b.organization_id, array_agg(b.organization_id) AS orgs, array_agg(b.workflow_id) AS wfs,
                 array_agg(b.client_id) AS cls, array_agg(b.initiator_type) AS inis, array_agg(b.status) AS sts,
                 array_agg(b.completed_at) AS cas, array_agg(b.duration_ms) AS durs
            FROM stepwise.aggregate_outbox b GROUP BY b.organization_id) o
   CROSS JOIN LATERAL stepwise.aggregate_rows(o.orgs, o.wfs, o.cls, o.inis, o.sts, o.cas, o.durs) r;

GRANT SELECT ON stepwise.aggregate_metrics_live TO stepwise_tenant;

-- 4. The jobs triggers of 0019, appending to the outbox instead of adding
--    to the aggregates. Static SQL: plans are kept for the session, where
--    EXECUTE planned each statement again on every enqueue and flush.
CREATE OR REPLACE FUNCTION stepwise.jobs_read_model_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  -- Every enqueue comes here with jobs that are not finished: leave before
  -- the blocks below, each a subtransaction.
  IF NOT EXISTS (SELECT 1 FROM new_jobs WHERE status IN ('COMPLETED', 'PARTIAL_SUCCESS', 'FAILED', 'CANCELLED', 'TIMED_OUT')) THEN
    RETURN NULL;
  END IF;
  -- A job inserted already finished (an import, the scale benchmark) enters
  -- the read model and the aggregates here.
  BEGIN
    INSERT INTO stepwise.execution_metadata
      (job_id, organization_id, workflow_id, client_id, run_number, status, initiator_type, steps_total, steps_completed,
       attempts, retry_count, created_at, started_at, completed_at, duration_ms, error_code, error_message, error_step,
       parent_job_id)
    SELECT id, organization_id, workflow_id, client_id, run_number, status, initiator_type, steps_total, steps_completed,
           attempts, retry_count, created_at, started_at, completed_at, duration_ms, error_code, left(error_message, 500), error_step,
           parent_job_id
      FROM new_jobs
     WHERE status IN ('COMPLETED', 'PARTIAL_SUCCESS', 'FAILED', 'CANCELLED', 'TIMED_OUT')
    ON CONFLICT (job_id) DO NOTHING;
  EXCEPTION WHEN OTHERS THEN
    INSERT INTO stepwise.read_model_failures (source, sqlstate, message, row_count)
    VALUES ('execution_metadata', SQLSTATE, SQLERRM, (SELECT count(*) FROM new_jobs));
  END;
  BEGIN
    INSERT INTO stepwise.aggregate_outbox (organization_id, workflow_id, client_id, initiator_type, status, completed_at, duration_ms)
    SELECT n.organization_id, n.workflow_id, n.client_id, n.initiator_type::text, n.status::text, n.completed_at, n.duration_ms
      FROM new_jobs n
     WHERE n.status IN ('COMPLETED', 'PARTIAL_SUCCESS', 'FAILED', 'CANCELLED', 'TIMED_OUT') AND n.completed_at IS NOT NULL;
  EXCEPTION WHEN OTHERS THEN
    INSERT INTO stepwise.read_model_failures (source, sqlstate, message, row_count)
    VALUES ('aggregate_metrics', SQLSTATE, SQLERRM, (SELECT count(*) FROM new_jobs));
  END;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION stepwise.jobs_read_model_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  -- A start (RUNNING), a suspension or a retry neither is nor was finished:
  -- leave before the blocks below, each a subtransaction.
  IF NOT EXISTS (SELECT 1 FROM new_jobs WHERE status IN ('COMPLETED', 'PARTIAL_SUCCESS', 'FAILED', 'CANCELLED', 'TIMED_OUT'))
     AND NOT EXISTS (SELECT 1 FROM old_jobs WHERE status IN ('COMPLETED', 'PARTIAL_SUCCESS', 'FAILED', 'CANCELLED', 'TIMED_OUT')) THEN
    RETURN NULL;
  END IF;
  BEGIN
    -- A claim or a lease statement has no finished row, and this is a scan
    -- of its transition table that finds nothing. A completion writes the
    -- finished rows once; a later change to a finished job's compared
    -- fields (rare: an operator's fix) rewrites its row.
    INSERT INTO stepwise.execution_metadata AS m
      (job_id, organization_id, workflow_id, client_id, run_number, status, initiator_type, steps_total, steps_completed,
       attempts, retry_count, created_at, started_at, completed_at, duration_ms, error_code, error_message, error_step,
       parent_job_id)
    SELECT n.id, n.organization_id, n.workflow_id, n.client_id, n.run_number, n.status, n.initiator_type, n.steps_total,
           n.steps_completed, n.attempts, n.retry_count, n.created_at, n.started_at, n.completed_at, n.duration_ms,
           n.error_code, left(n.error_message, 500), n.error_step, n.parent_job_id
      FROM new_jobs n
     WHERE n.status IN ('COMPLETED', 'PARTIAL_SUCCESS', 'FAILED', 'CANCELLED', 'TIMED_OUT')
       AND NOT EXISTS (
         SELECT 1 FROM old_jobs o
          WHERE o.id = n.id
            AND (o.status, o.steps_completed, o.attempts, o.retry_count, o.started_at, o.completed_at, o.duration_ms,
                 o.error_code, o.error_message, o.error_step)
                IS NOT DISTINCT FROM
                (n.status, n.steps_completed, n.attempts, n.retry_count, n.started_at, n.completed_at, n.duration_ms,
                 n.error_code, n.error_message, n.error_step))
    ON CONFLICT (job_id) DO UPDATE SET
      status = EXCLUDED.status, steps_completed = EXCLUDED.steps_completed, attempts = EXCLUDED.attempts,
      retry_count = EXCLUDED.retry_count, started_at = EXCLUDED.started_at, completed_at = EXCLUDED.completed_at,
      duration_ms = EXCLUDED.duration_ms, error_code = EXCLUDED.error_code, error_message = EXCLUDED.error_message,
      error_step = EXCLUDED.error_step, last_synced_at = now();
    -- A finished job made live again (an operator's requeue) leaves the
    -- read model; the job list shows it from the queue.
    DELETE FROM stepwise.execution_metadata m
     WHERE m.job_id = ANY(ARRAY(
             SELECT n.id FROM new_jobs n JOIN old_jobs o ON o.id = n.id
              WHERE n.status NOT IN ('COMPLETED', 'PARTIAL_SUCCESS', 'FAILED', 'CANCELLED', 'TIMED_OUT')
                AND o.status IN ('COMPLETED', 'PARTIAL_SUCCESS', 'FAILED', 'CANCELLED', 'TIMED_OUT')));
  EXCEPTION WHEN OTHERS THEN
    INSERT INTO stepwise.read_model_failures (source, sqlstate, message, row_count)
    VALUES ('execution_metadata', SQLSTATE, SQLERRM, (SELECT count(*) FROM new_jobs));
  END;
  -- Aggregates count a job once: on the update that moves it from a
  -- non-terminal status INTO a terminal one (unchanged from 0006).
  BEGIN
    INSERT INTO stepwise.aggregate_outbox (organization_id, workflow_id, client_id, initiator_type, status, completed_at, duration_ms)
    SELECT n.organization_id, n.workflow_id, n.client_id, n.initiator_type::text, n.status::text, n.completed_at, n.duration_ms
      FROM new_jobs n JOIN old_jobs o ON o.id = n.id
     WHERE n.status IN ('COMPLETED', 'PARTIAL_SUCCESS', 'FAILED', 'CANCELLED', 'TIMED_OUT')
       AND o.status NOT IN ('COMPLETED', 'PARTIAL_SUCCESS', 'FAILED', 'CANCELLED', 'TIMED_OUT')
       AND n.completed_at IS NOT NULL;
  EXCEPTION WHEN OTHERS THEN
    INSERT INTO stepwise.read_model_failures (source, sqlstate, message, row_count)
    VALUES ('aggregate_metrics', SQLSTATE, SQLERRM, (SELECT count(*) FROM new_jobs));
  END;
  RETURN NULL;
END $$;
