-- Values a job carries from one step to the next that are not step outputs:
-- a browser session's cookies and storage (sealed with the credential key
-- ring), so that a later browser step naming the same session, run after a
-- wait or a crash or on another worker, opens a context restored from them.
-- Written with the checkpoint (under the job's lease, fenced like it) and
-- gone with it when the job ends. Nullable without a default: adding it
-- rewrites nothing.
ALTER TABLE stepwise.execution_checkpoints ADD COLUMN carried jsonb;
