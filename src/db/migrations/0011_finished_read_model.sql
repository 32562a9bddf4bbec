-- The read model at one year of data (measured in bench/SCALE-NOTES.md,
-- sections 3 and 4).
--
-- 1. execution_metadata holds FINISHED jobs only, written once when a job
--    enters its terminal status. Live jobs (PENDING, RUNNING, WAITING) are
--    the rows of job_queue, and the job list reads them from there. With the
--    row written once, nothing in it is ever updated: no dead tuples, no
--    second entry in every index (an indexed status changing PENDING →
--    RUNNING → outcome made every update non-HOT: 829 bytes a row against
--    516 written once), and no metadata write at enqueue or claim.
-- 2. Indexes for the list filters that had none (client, error code).
-- 3. A partial index for the per-workflow stats over aggregate_metrics.
-- 4. MONTH rows in step_metrics, so a year of step stats reads ~12 month
--    rows per step plus the days at the range's edges, not 365 day rows.

-- ---------------------------------------------------------------------------
-- 1. execution_metadata: finished jobs only.
DELETE FROM stepwise.execution_metadata
 WHERE status NOT IN ('COMPLETED', 'PARTIAL_SUCCESS', 'FAILED', 'CANCELLED', 'TIMED_OUT');
-- Insert-only now: no room is needed on the page for updates.
ALTER TABLE stepwise.execution_metadata SET (fillfactor = 100);

CREATE OR REPLACE FUNCTION stepwise.jobs_read_model_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  -- A job inserted already finished (an import, the scale benchmark) enters
  -- the read model and the aggregates here.
  BEGIN
    EXECUTE $q$
    INSERT INTO stepwise.execution_metadata
      (job_id, organization_id, workflow_id, client_id, run_number, status, initiator_type, steps_total, steps_completed,
       attempts, retry_count, created_at, started_at, completed_at, duration_ms, error_code, error_message, error_step)
    SELECT id, organization_id, workflow_id, client_id, run_number, status, initiator_type, steps_total, steps_completed,
           attempts, retry_count, created_at, started_at, completed_at, duration_ms, error_code, left(error_message, 500), error_step
      FROM new_jobs
     WHERE status IN ('COMPLETED', 'PARTIAL_SUCCESS', 'FAILED', 'CANCELLED', 'TIMED_OUT')
    ON CONFLICT (job_id) DO NOTHING $q$;
  EXCEPTION WHEN OTHERS THEN
    INSERT INTO stepwise.read_model_failures (source, sqlstate, message, row_count)
    VALUES ('execution_metadata', SQLSTATE, SQLERRM, (SELECT count(*) FROM new_jobs));
  END;
  BEGIN
    EXECUTE $q$
    SELECT stepwise.add_to_aggregates(
      array_agg(n.organization_id), array_agg(n.workflow_id), array_agg(n.client_id), array_agg(n.initiator_type::text),
      array_agg(n.status::text), array_agg(n.completed_at), array_agg(n.duration_ms))
      FROM new_jobs n
     WHERE n.status IN ('COMPLETED', 'PARTIAL_SUCCESS', 'FAILED', 'CANCELLED', 'TIMED_OUT') AND n.completed_at IS NOT NULL
    HAVING count(*) > 0 $q$;
  EXCEPTION WHEN OTHERS THEN
    INSERT INTO stepwise.read_model_failures (source, sqlstate, message, row_count)
    VALUES ('aggregate_metrics', SQLSTATE, SQLERRM, (SELECT count(*) FROM new_jobs));
  END;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION stepwise.jobs_read_model_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  BEGIN
    -- A claim or a lease statement has no finished row, and this is a scan
    -- of its transition table that finds nothing. A completion writes the
    -- finished rows once; a later change to a finished job's compared
    -- fields (rare: an operator's fix) rewrites its row.
    EXECUTE $q$
    INSERT INTO stepwise.execution_metadata AS m
      (job_id, organization_id, workflow_id, client_id, run_number, status, initiator_type, steps_total, steps_completed,
       attempts, retry_count, created_at, started_at, completed_at, duration_ms, error_code, error_message, error_step)
    SELECT n.id, n.organization_id, n.workflow_id, n.client_id, n.run_number, n.status, n.initiator_type, n.steps_total,
           n.steps_completed, n.attempts, n.retry_count, n.created_at, n.started_at, n.completed_at, n.duration_ms,
           n.error_code, left(n.error_message, 500), n.error_step
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
      error_step = EXCLUDED.error_step, last_synced_at = now() $q$;
    -- A finished job made live again (an operator's requeue) leaves the
    -- read model; the job list shows it from the queue.
    EXECUTE $q$
    DELETE FROM stepwise.execution_metadata m
     WHERE m.job_id = ANY(ARRAY(
             SELECT n.id FROM new_jobs n JOIN old_jobs o ON o.id = n.id
              WHERE n.status NOT IN ('COMPLETED', 'PARTIAL_SUCCESS', 'FAILED', 'CANCELLED', 'TIMED_OUT')
                AND o.status IN ('COMPLETED', 'PARTIAL_SUCCESS', 'FAILED', 'CANCELLED', 'TIMED_OUT'))) $q$;
  EXCEPTION WHEN OTHERS THEN
    INSERT INTO stepwise.read_model_failures (source, sqlstate, message, row_count)
    VALUES ('execution_metadata', SQLSTATE, SQLERRM, (SELECT count(*) FROM new_jobs));
  END;
  -- Aggregates count a job once: on the update that moves it from a
  -- non-terminal status INTO a terminal one (unchanged from 0006).
  BEGIN
    EXECUTE $q$
    SELECT stepwise.add_to_aggregates(
      array_agg(n.organization_id), array_agg(n.workflow_id), array_agg(n.client_id), array_agg(n.initiator_type::text),
      array_agg(n.status::text), array_agg(n.completed_at), array_agg(n.duration_ms))
      FROM new_jobs n JOIN old_jobs o ON o.id = n.id
     WHERE n.status IN ('COMPLETED', 'PARTIAL_SUCCESS', 'FAILED', 'CANCELLED', 'TIMED_OUT')
       AND o.status NOT IN ('COMPLETED', 'PARTIAL_SUCCESS', 'FAILED', 'CANCELLED', 'TIMED_OUT')
       AND n.completed_at IS NOT NULL
    HAVING count(*) > 0 $q$;
  EXCEPTION WHEN OTHERS THEN
    INSERT INTO stepwise.read_model_failures (source, sqlstate, message, row_count)
    VALUES ('aggregate_metrics', SQLSTATE, SQLERRM, (SELECT count(*) FROM new_jobs));
  END;
  RETURN NULL;
END $$;

-- ---------------------------------------------------------------------------
-- 2. List filters that walked the organization's whole history without an
-- index (a client with few jobs read a year: 279 ms). run_number breaks ties
-- of one enqueue batch, as in the (organization, created_at) index.
CREATE INDEX execution_metadata_org_client_created_idx ON stepwise.execution_metadata
  (organization_id, client_id, created_at DESC, run_number DESC) WHERE client_id IS NOT NULL;
-- Partial: only failed and timed-out jobs carry an error code (a few per cent).
CREATE INDEX execution_metadata_org_error_created_idx ON stepwise.execution_metadata
  (organization_id, error_code, created_at DESC, run_number DESC) WHERE error_code IS NOT NULL;

-- ---------------------------------------------------------------------------
-- 3. Per-workflow stats read the (workflow, all clients, all initiators)
-- rollup rows of every workflow over a range. In the primary key the
-- workflow comes before period_start, so each period segment scanned every
-- workflow's every period_start (10 ms a segment at one year). Only those
-- rollup rows (a fifth of the table) enter this index.
CREATE INDEX aggregate_metrics_workflow_rollup_idx ON stepwise.aggregate_metrics (organization_id, period, period_start)
  WHERE client_id = '00000000-0000-0000-0000-000000000000' AND initiator_type = 'all'
    AND workflow_id <> '00000000-0000-0000-0000-000000000000';

-- ---------------------------------------------------------------------------
-- 4. step_metrics: DAY and MONTH rows.
ALTER TABLE stepwise.step_metrics ADD COLUMN period varchar(5) NOT NULL DEFAULT 'DAY' CHECK (period IN ('DAY', 'MONTH'));
ALTER TABLE stepwise.step_metrics DROP CONSTRAINT step_metrics_pkey;
-- period_start before step_index: a range of one workflow is one index range.
ALTER TABLE stepwise.step_metrics ADD PRIMARY KEY (organization_id, workflow_id, period, period_start, step_index);

-- Merge top-error lists across rows: sum per (code, message), keep the 10 most frequent.
CREATE FUNCTION stepwise.top_errors_of(lists jsonb[]) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT coalesce(jsonb_agg(jsonb_build_object('code', code, 'message', message, 'count', n) ORDER BY n DESC, code, message), '[]'::jsonb)
    FROM (SELECT e->>'code' AS code, e->>'message' AS message, sum((e->>'count')::bigint) AS n
            FROM unnest(lists) l, jsonb_array_elements(l) e
           GROUP BY 1, 2
           ORDER BY 3 DESC, 1, 2
           LIMIT 10) t
$$;

-- Month rows from the day rows already there.
INSERT INTO stepwise.step_metrics
  (organization_id, workflow_id, period, period_start, step_index, step_name, executions, successes, failures,
   total_duration_ms, duration_histogram, top_errors)
SELECT organization_id, workflow_id, 'MONTH', date_trunc('month', period_start, 'UTC'), step_index,
       (array_agg(step_name ORDER BY period_start DESC) FILTER (WHERE step_name IS NOT NULL))[1],
       sum(executions), sum(successes), sum(failures), sum(total_duration_ms),
       stepwise.histogram_sum(duration_histogram), stepwise.top_errors_of(array_agg(top_errors))
  FROM stepwise.step_metrics
 WHERE period = 'DAY'
 GROUP BY organization_id, workflow_id, date_trunc('month', period_start, 'UTC'), step_index;

CREATE OR REPLACE FUNCTION stepwise.execution_log_step_metrics() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  BEGIN
    -- As in 0006, each step row's workflow by a primary-key probe, then the
    -- groups of this flush expanded to their DAY and MONTH rows.
    EXECUTE $q$
    WITH r AS (
      SELECT r.organization_id AS org, j.workflow_id AS wf, r.step_index AS idx, r.ts,
             r.kind = 11 AS ok, CASE WHEN r.kind = 11 THEN left(r.message, 100) END AS name,
             coalesce((r.data->>'durationMs')::double precision, 0) AS dur,
             CASE WHEN r.kind = 12 THEN coalesce(r.data->>'code', 'STEP_ERROR') END AS code,
             CASE WHEN r.kind = 12 THEN left(r.message, 200) END AS msg
        FROM new_rows r
       CROSS JOIN LATERAL (SELECT x.workflow_id FROM stepwise.jobs x
                            WHERE x.id = r.job_id AND x.organization_id = r.organization_id LIMIT 1) j
       WHERE r.kind IN (11, 12) AND r.step_index IS NOT NULL AND r.data->'compensation' IS NULL
    ), s AS (
      SELECT r.org, r.wf, r.idx, p.period, date_trunc(p.unit, r.ts, 'UTC') AS ps, r.ok, r.name, r.dur, r.code, r.msg
        FROM r CROSS JOIN (VALUES ('DAY', 'day'), ('MONTH', 'month')) AS p(period, unit)
    ), b AS (
      SELECT org, wf, idx, period, ps, stepwise.duration_bucket(dur) AS bucket, count(*) AS n FROM s GROUP BY 1, 2, 3, 4, 5, 6
    ), bh AS (
      SELECT org, wf, idx, period, ps, jsonb_object_agg(bucket, n) AS hist FROM b GROUP BY 1, 2, 3, 4, 5
    ), e AS (
      SELECT org, wf, idx, period, ps, jsonb_agg(jsonb_build_object('code', code, 'message', msg, 'count', n)) AS errs
        FROM (SELECT org, wf, idx, period, ps, code, msg, count(*) AS n FROM s WHERE code IS NOT NULL GROUP BY 1, 2, 3, 4, 5, 6, 7) x
       GROUP BY 1, 2, 3, 4, 5
    ), t AS (
      SELECT org, wf, idx, period, ps, max(name) AS name, count(*) AS n, count(*) FILTER (WHERE ok) AS okn,
             count(*) FILTER (WHERE NOT ok) AS bad, sum(dur) AS dsum
        FROM s GROUP BY 1, 2, 3, 4, 5
    )
    INSERT INTO stepwise.step_metrics AS m
      (organization_id, workflow_id, period, period_start, step_index, step_name, executions, successes, failures,
       total_duration_ms, duration_histogram, top_errors)
    SELECT t.org, t.wf, t.period, t.ps, t.idx, t.name, t.n, t.okn, t.bad, t.dsum, bh.hist,
           CASE WHEN e.errs IS NULL THEN '[]'::jsonb ELSE stepwise.top_errors_merge('[]', e.errs) END
      FROM t
      JOIN bh ON (bh.org, bh.wf, bh.idx, bh.period, bh.ps) = (t.org, t.wf, t.idx, t.period, t.ps)
      LEFT JOIN e ON (e.org, e.wf, e.idx, e.period, e.ps) = (t.org, t.wf, t.idx, t.period, t.ps)
     -- Key order, so concurrent flushes lock shared rows in the same order (no deadlock).
     ORDER BY t.org, t.wf, t.period, t.ps, t.idx
    ON CONFLICT (organization_id, workflow_id, period, period_start, step_index) DO UPDATE SET
      step_name = coalesce(EXCLUDED.step_name, m.step_name),
      executions = m.executions + EXCLUDED.executions,
      successes = m.successes + EXCLUDED.successes,
      failures = m.failures + EXCLUDED.failures,
      total_duration_ms = m.total_duration_ms + EXCLUDED.total_duration_ms,
      duration_histogram = stepwise.histogram_merge(m.duration_histogram, EXCLUDED.duration_histogram),
      top_errors = CASE WHEN EXCLUDED.top_errors = '[]'::jsonb THEN m.top_errors
                        ELSE stepwise.top_errors_merge(m.top_errors, EXCLUDED.top_errors) END,
      updated_at = now() $q$;
  EXCEPTION WHEN OTHERS THEN
    INSERT INTO stepwise.read_model_failures (source, sqlstate, message, row_count)
    VALUES ('step_metrics', SQLSTATE, SQLERRM, (SELECT count(*) FROM new_rows));
  END;
  RETURN NULL;
END $$;
