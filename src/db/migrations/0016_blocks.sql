-- Workflow language v2, the engine's part: steps that hold steps, and
-- workflows that start workflows.

-- 1. A sub-workflow's child is a real job that knows its parent and the
--    parent's step path. One child per parent step, however often the
--    parent's step runs (a takeover, a job-level retry): the unique index
--    makes a second start find the first child. depth counts the parents
--    above a job (0 for a run started any other way), so a chain of
--    workflows calling workflows stops at a bounded depth.
ALTER TABLE stepwise.jobs
  -- The user whose key started the run (API, CLI with a key): an approval may
  -- exclude them from deciding. NULL for schedules, webhooks and children.
  ADD COLUMN initiated_by     uuid,
  ADD COLUMN parent_job_id    uuid,
  ADD COLUMN parent_step_path text CHECK (parent_step_path IS NULL OR length(parent_step_path) <= 1000),
  ADD COLUMN depth            smallint NOT NULL DEFAULT 0 CHECK (depth BETWEEN 0 AND 10);
CREATE UNIQUE INDEX jobs_parent_step_idx ON stepwise.jobs (parent_job_id, parent_step_path) WHERE parent_job_id IS NOT NULL;
ALTER TABLE stepwise.jobs DROP CONSTRAINT jobs_initiator_type_check;
ALTER TABLE stepwise.jobs ADD CONSTRAINT jobs_initiator_type_check
  CHECK (initiator_type IN ('MANUAL', 'SCHEDULE', 'WEBHOOK', 'API', 'RETRY', 'PARENT'));

-- 2. A stream row of a step inside a block carries the step's path
--    (`inv[17].call`, `enrich.crm.score`); NULL for top-level rows, so those
--    cost nothing more (the row already has a null bitmap).
ALTER TABLE stepwise.execution_log ADD COLUMN path text;

INSERT INTO stepwise.stream_kinds VALUES
  (24, 'BRANCH_TAKEN'), (25, 'ITERATION_STARTED'), (26, 'ITERATION_COMPLETED'), (27, 'ITERATION_FAILED'),
  (28, 'MAP_PROGRESS'), (29, 'THROTTLED'), (31, 'APPROVAL_REQUESTED'), (32, 'APPROVAL_DECIDED'),
  (33, 'CHILD_JOB_STARTED'), (34, 'CHILD_JOB_COMPLETED');

-- 3. Where a job stands inside its blocks, one row per nested step (and one
--    per block for its own state: the branch taken, the items of a loop).
--    A job's top-level position stays in execution_checkpoints; keeping the
--    nested ones in rows of their own means a loop of 10,000 iterations adds
--    a row per iteration instead of rewriting an ever larger checkpoint on
--    every flush. Rows go with the job's success, or with its checkpoint
--    when that expires; a retry from the failed step copies the completed ones.
CREATE TABLE stepwise.execution_step_results (
  job_id          uuid     NOT NULL REFERENCES stepwise.jobs (id) ON DELETE CASCADE,
  organization_id uuid     NOT NULL,
  path            text     NOT NULL CHECK (length(path) <= 1000),
  -- 1 a block's own state (running), 2 a suspended step's state, 3 completed, 4 failed
  status          smallint NOT NULL CHECK (status BETWEEN 1 AND 4),
  output          jsonb,
  state           jsonb,
  -- The stream seq of the step's end: compensations run in reverse of it.
  seq             integer  NOT NULL DEFAULT 0,
  updated_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (job_id, path)
);

SELECT stepwise.enable_tenant_rls();
