-- Durable execution: checkpoints, signals, job-level retries and deadlines, cancellation.

-- Latest resumable state per job, so a job resumes where it stopped after a
-- crash instead of running its steps again: the next step to run and
-- the outputs of the steps before it, plus room for browser storage state.
-- Written in the same transaction as the stream rows of the steps it
-- covers; deleted when the job ends (kept until expires_at for FAILED jobs,
-- so "retry from the failed step" can reuse the outputs).
CREATE TABLE stepwise.execution_checkpoints (
  job_id          uuid PRIMARY KEY REFERENCES stepwise.jobs (id) ON DELETE CASCADE,
  organization_id uuid        NOT NULL,
  next_step       integer     NOT NULL CHECK (next_step >= 0),
  outputs         jsonb       NOT NULL DEFAULT '{}',
  -- Steps that failed under continueOnError (the job will end PARTIAL_SUCCESS).
  failed_steps    jsonb       NOT NULL DEFAULT '[]',
  -- Step-specific resumable state: a wait's deadline, browser storage state, …
  state           jsonb       NOT NULL DEFAULT '{}',
  expires_at      timestamptz NOT NULL,
  updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX execution_checkpoints_expiry_idx ON stepwise.execution_checkpoints (expires_at);

-- Signals are stored, so one sent before its wait step runs is not lost.
CREATE TABLE stepwise.job_signals (
  id              uuid PRIMARY KEY,
  organization_id uuid         NOT NULL,
  job_id          uuid         NOT NULL REFERENCES stepwise.jobs (id) ON DELETE CASCADE,
  name            varchar(100) NOT NULL,
  payload         jsonb CONSTRAINT job_signals_payload_check CHECK (payload IS NULL OR octet_length(payload::text) <= 2097152),
  created_at      timestamptz  NOT NULL DEFAULT now(),
  consumed_at     timestamptz
);
CREATE INDEX job_signals_pending_idx ON stepwise.job_signals (job_id, name, created_at) WHERE consumed_at IS NULL;

-- Job-level retries (retry_count, max_retries, max_retries_reached),
-- the whole-job deadline, and cancellation requested by the API.
ALTER TABLE stepwise.jobs
  ADD COLUMN retry_count         integer NOT NULL DEFAULT 0,
  ADD COLUMN max_retries         integer NOT NULL DEFAULT 0,
  ADD COLUMN max_retries_reached boolean NOT NULL DEFAULT false,
  ADD COLUMN timeout_ms          integer,
  ADD COLUMN deadline_at         timestamptz,
  ADD COLUMN cancel_requested_at timestamptz;

-- Optional concurrency limits on running jobs (null = unlimited). The queue
-- row carries the workflow so a limited claim can count running jobs per
-- workflow from the small queue table alone.
ALTER TABLE stepwise.organizations ADD COLUMN max_concurrent_runs integer CHECK (max_concurrent_runs > 0);
ALTER TABLE stepwise.workflows ADD COLUMN max_concurrent_runs integer CHECK (max_concurrent_runs > 0);
ALTER TABLE stepwise.job_queue ADD COLUMN workflow_id uuid;
UPDATE stepwise.job_queue q SET workflow_id = j.workflow_id FROM stepwise.jobs j WHERE j.id = q.job_id;
ALTER TABLE stepwise.job_queue ALTER COLUMN workflow_id SET NOT NULL;
-- No index on the lease for counting: an index whose predicate or key
-- involves locked_by would make every claim a non-HOT update. A limited
-- claim scans the (small) queue table instead.

-- Set by a signal or a cancel request; a worker suspending the job sees it
-- (same row, so the two updates serialise) and makes the job runnable at
-- once instead of sleeping past the signal.
ALTER TABLE stepwise.job_queue ADD COLUMN wake_requested boolean NOT NULL DEFAULT false;
