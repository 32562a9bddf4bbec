-- The read side of steps inside blocks and of sub-workflows.

-- 1. step_metrics per step path. A step inside a block is counted under the
--    top-level index of its block and its path with loop indexes left out
--    (`inv[17].call` and `inv[3].call` are both `inv[].call`), so a loop's
--    iterations of one step aggregate into one row per period. Top-level
--    steps keep the empty path: the rows already there stay valid as they
--    are, and a constant default adds the column without rewriting the table.
--    The primary key is rebuilt (one pass over the table under its lock, as
--    0011 did when it added the period).
ALTER TABLE stepwise.step_metrics ADD COLUMN step_path text NOT NULL DEFAULT '';
ALTER TABLE stepwise.step_metrics DROP CONSTRAINT step_metrics_pkey;
ALTER TABLE stepwise.step_metrics ADD PRIMARY KEY (organization_id, workflow_id, period, period_start, step_index, step_path);

-- add_step_metrics of 0014 with the groups' paths (p_path, '' for top-level
-- steps) in the key; otherwise unchanged.
CREATE FUNCTION stepwise.add_step_metrics(
  p_org uuid[], p_workflow uuid[], p_period text[], p_start timestamptz[], p_step integer[], p_path text[], p_name text[],
  p_executions integer[], p_successes integer[], p_failures integer[], p_duration double precision[],
  p_histogram jsonb[], p_errors jsonb[]
) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO stepwise.step_metrics AS m
    (organization_id, workflow_id, period, period_start, step_index, step_path, step_name, executions, successes, failures,
     total_duration_ms, duration_histogram, top_errors)
  SELECT u.org, u.wf, u.period, u.ps, u.idx, u.path, left(u.name, 100), u.n, u.ok, u.bad, u.dur, u.hist,
         CASE WHEN u.errs = '[]'::jsonb THEN u.errs ELSE stepwise.top_errors_merge('[]', u.errs) END
    FROM unnest(p_org, p_workflow, p_period, p_start, p_step, p_path, p_name, p_executions, p_successes, p_failures, p_duration,
                p_histogram, p_errors) AS u(org, wf, period, ps, idx, path, name, n, ok, bad, dur, hist, errs)
   -- Key order, so concurrent flushes lock shared rows in the same order (no deadlock).
   ORDER BY u.org, u.wf, u.period, u.ps, u.idx, u.path
  ON CONFLICT (organization_id, workflow_id, period, period_start, step_index, step_path) DO UPDATE SET
    step_name = coalesce(EXCLUDED.step_name, m.step_name),
    executions = m.executions + EXCLUDED.executions,
    successes = m.successes + EXCLUDED.successes,
    failures = m.failures + EXCLUDED.failures,
    total_duration_ms = m.total_duration_ms + EXCLUDED.total_duration_ms,
    duration_histogram = stepwise.histogram_merge(m.duration_histogram, EXCLUDED.duration_histogram),
    top_errors = CASE WHEN EXCLUDED.top_errors = '[]'::jsonb THEN m.top_errors
                      ELSE stepwise.top_errors_merge(m.top_errors, EXCLUDED.top_errors) END,
    updated_at = now();
EXCEPTION WHEN OTHERS THEN
  INSERT INTO stepwise.read_model_failures (source, sqlstate, message, row_count)
  VALUES ('step_metrics', SQLSTATE, SQLERRM, coalesce(cardinality(p_org), 0));
END $$;

-- The signature of 0014 stays for workers of the previous release still
-- flushing during a rollout (they write top-level steps only): its old
-- conflict target no longer matches a unique index, so it hands its groups
-- to the function above with empty paths.
CREATE OR REPLACE FUNCTION stepwise.add_step_metrics(
  p_org uuid[], p_workflow uuid[], p_period text[], p_start timestamptz[], p_step integer[], p_name text[],
  p_executions integer[], p_successes integer[], p_failures integer[], p_duration double precision[],
  p_histogram jsonb[], p_errors jsonb[]
) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  PERFORM stepwise.add_step_metrics(p_org, p_workflow, p_period, p_start, p_step,
                                    array_fill(''::text, ARRAY[coalesce(cardinality(p_org), 0)]), p_name,
                                    p_executions, p_successes, p_failures, p_duration, p_histogram, p_errors);
END $$;

-- 2. The job list filtered by parent (GET /v1/jobs?parentJobId=…, a job's
--    children). Finished jobs are listed from execution_metadata, so it
--    carries the parent (NULL for every job that is not a child: no cost to
--    the other rows) and a partial index holds the children only, in the
--    list's keyset order.
ALTER TABLE stepwise.execution_metadata ADD COLUMN parent_job_id uuid;
UPDATE stepwise.execution_metadata m SET parent_job_id = j.parent_job_id
  FROM stepwise.jobs j
 WHERE j.id = m.job_id AND j.parent_job_id IS NOT NULL;
CREATE INDEX execution_metadata_org_parent_created_idx ON stepwise.execution_metadata
  (organization_id, parent_job_id, created_at DESC, run_number DESC) WHERE parent_job_id IS NOT NULL;

-- The jobs triggers of 0011 with parent_job_id copied. A job's parent never
-- changes, so the update trigger's rewrite of a finished row leaves it be.
CREATE OR REPLACE FUNCTION stepwise.jobs_read_model_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  -- A job inserted already finished (an import, the scale benchmark) enters
  -- the read model and the aggregates here.
  BEGIN
    EXECUTE $q$
    INSERT INTO stepwise.execution_metadata
      (job_id, organization_id, workflow_id, client_id, run_number, status, initiator_type, steps_total, steps_completed,
       attempts, retry_count, created_at, started_at, completed_at, duration_ms, error_code, error_message, error_step,
       parent_job_id)
    SELECT id, organization_id, workflow_id, client_id, run_number, status, initiator_type, steps_total, steps_completed,
           attempts, retry_count, created_at, started_at, completed_at, duration_ms, error_code, left(error_message, 500), error_step,
           parent_job_id
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
