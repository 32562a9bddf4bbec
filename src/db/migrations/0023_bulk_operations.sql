-- Bulk actions on jobs (POST /v1/jobs/bulk): cancel or retry many jobs at
-- once, chosen by id or by the job list's filter. The request creates one row
-- and answers at once; a runner in the API process (engine/bulk.ts) works
-- through the jobs in chunks, each chunk in one transaction that applies the
-- action to its jobs and advances the counters and the cursor below, so a
-- crash never applies a chunk twice and never loses the progress made.
CREATE TABLE stepwise.bulk_operations (
  id              uuid PRIMARY KEY,
  organization_id uuid         NOT NULL REFERENCES stepwise.organizations (id) ON DELETE CASCADE,
  -- 'user:<user id>' or 'key:<api key id>', like the audit logs' actor.
  created_by      varchar(200) NOT NULL,
  action          varchar(10)  NOT NULL CHECK (action IN ('cancel', 'retry')),
  -- A retry's starting point; NULL for a cancel.
  retry_from      varchar(20)  CHECK (retry_from IN ('failed-step', 'start')),
  -- Exactly one way of choosing the jobs: a list of ids, or the list's
  -- filter. A filter is bounded by created_at (jobs created later, the
  -- retries this operation starts among them, are never chosen).
  job_ids         uuid[]       CHECK (cardinality(job_ids) BETWEEN 1 AND 1000),
  filter          jsonb        CHECK (octet_length(filter::text) <= 16384),
  status          varchar(10)  NOT NULL DEFAULT 'RUNNING' CHECK (status IN ('RUNNING', 'COMPLETED', 'FAILED')),
  total           integer      NOT NULL CHECK (total >= 0),
  done            integer      NOT NULL DEFAULT 0 CHECK (done >= 0),
  succeeded       integer      NOT NULL DEFAULT 0 CHECK (succeeded >= 0),
  failed          integer      NOT NULL DEFAULT 0 CHECK (failed >= 0),
  -- The first 50 jobs the action was refused for: [{jobId, code, message}].
  errors          jsonb        NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(errors) = 'array' AND jsonb_array_length(errors) <= 50),
  -- Where the paging stands: {"offset": n} into job_ids, or {"createdUs", "runNumber"}
  -- of the last job done in the filter's newest-first order. NULL: nothing done yet.
  cursor          jsonb,
  -- The process working on it, and until when (a crashed process's operation is taken over when this passes).
  lease_holder    varchar(200),
  lease_until     timestamptz,
  -- Chunks that failed in a row (their transaction rolled back); the operation FAILS after a few.
  chunk_failures  smallint     NOT NULL DEFAULT 0,
  last_error      varchar(2000),
  created_at      timestamptz  NOT NULL DEFAULT now(),
  updated_at      timestamptz  NOT NULL DEFAULT now(),
  finished_at     timestamptz,
  UNIQUE (organization_id, id),
  CHECK ((job_ids IS NULL) <> (filter IS NULL)),
  CHECK ((action = 'retry') = (retry_from IS NOT NULL)),
  CHECK (done = succeeded + failed),
  CHECK ((status = 'RUNNING') = (finished_at IS NULL))
);
-- GET /v1/operations: an organization's operations, newest first.
CREATE INDEX bulk_operations_org_created_idx ON stepwise.bulk_operations (organization_id, created_at DESC, id DESC);
-- The runner's look for work: the few operations still running.
CREATE INDEX bulk_operations_running_idx ON stepwise.bulk_operations (created_at) WHERE status = 'RUNNING';

SELECT stepwise.enable_tenant_rls();
