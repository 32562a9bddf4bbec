-- step_metrics are counted by the engine's write path, not by a trigger.
--
-- The statement trigger of 0006/0011 read back every row a flush inserted
-- (~6,400 of them) to find the fifth that are step results, probed jobs for
-- each one's workflow and truncated its timestamp per period with a time
-- zone: 0.55 s of the server's 2.75 s CPU for the 20,000 jobs of the
-- throughput benchmark. The rows are in the worker's memory when it writes
-- them, with their workflow, so store/step-metrics.ts groups a flush's step
-- results by (workflow, step, period) there and hands the groups to
-- add_step_metrics below: one upsert of a few rows per flush.
--
-- insertStreamRows (store/stream.ts) is the only writer of new stream rows
-- and always counts them. A restore (lifecycle/restore.ts) puts back rows
-- that were counted when first written and does not; the replay guard of
-- 0013 goes with the trigger.
DROP TRIGGER execution_log_step_metrics ON stepwise.execution_log;
DROP FUNCTION stepwise.execution_log_step_metrics();

-- Add groups of step results (parallel arrays, one element per organization,
-- workflow, period, period start and step) to their rows. p_errors holds
-- each group's [{code, message, count}] or '[]'. A failure is recorded in
-- read_model_failures (reconcile reports it) and never fails the flush that
-- writes the stream itself.
CREATE FUNCTION stepwise.add_step_metrics(
  p_org uuid[], p_workflow uuid[], p_period text[], p_start timestamptz[], p_step integer[], p_name text[],
  p_executions integer[], p_successes integer[], p_failures integer[], p_duration double precision[],
  p_histogram jsonb[], p_errors jsonb[]
) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO stepwise.step_metrics AS m
    (organization_id, workflow_id, period, period_start, step_index, step_name, executions, successes, failures,
     total_duration_ms, duration_histogram, top_errors)
  SELECT u.org, u.wf, u.period, u.ps, u.idx, left(u.name, 100), u.n, u.ok, u.bad, u.dur, u.hist,
         CASE WHEN u.errs = '[]'::jsonb THEN u.errs ELSE stepwise.top_errors_merge('[]', u.errs) END
    FROM unnest(p_org, p_workflow, p_period, p_start, p_step, p_name, p_executions, p_successes, p_failures, p_duration,
                p_histogram, p_errors) AS u(org, wf, period, ps, idx, name, n, ok, bad, dur, hist, errs)
   -- Key order, so concurrent flushes lock shared rows in the same order (no deadlock).
   ORDER BY u.org, u.wf, u.period, u.ps, u.idx
  ON CONFLICT (organization_id, workflow_id, period, period_start, step_index) DO UPDATE SET
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
