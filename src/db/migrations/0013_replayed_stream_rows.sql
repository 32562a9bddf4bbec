-- Stream rows put back by a restore (lifecycle/restore.ts) were counted into
-- step_metrics a second time: the statement trigger took them for new step
-- results. A restore marks its transaction (stepwise.replaying_stream = 'on',
-- transaction-local) and the trigger does not fire for its inserts. Every
-- other writer (the engine, imports, the scale generator) counts as before.
DROP TRIGGER execution_log_step_metrics ON stepwise.execution_log;
CREATE TRIGGER execution_log_step_metrics AFTER INSERT ON stepwise.execution_log
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
  WHEN (coalesce(current_setting('stepwise.replaying_stream', true), '') <> 'on')
  EXECUTE FUNCTION stepwise.execution_log_step_metrics();
