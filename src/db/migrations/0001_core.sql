-- Core schema: tenancy, workflows, jobs, the runnable-work queue and the per-job stream.
-- Every tenant-owned row carries organization_id; composite foreign keys
-- (organization_id, x_id) make it impossible for a job to point at another
-- tenant's workflow or client, whatever the application code does.

CREATE TABLE stepwise.organizations (
  id          uuid PRIMARY KEY,
  name        varchar(200) NOT NULL CHECK (length(btrim(name)) > 0),
  plan        varchar(20)  NOT NULL DEFAULT 'STARTER'
              CHECK (plan IN ('STARTER', 'PROFESSIONAL', 'ENTERPRISE')),
  -- Last run_number handed out. Enqueue bumps it by the batch size in one
  -- UPDATE, so a batch of 1,000 runs costs one row lock, not 1,000.
  run_counter bigint       NOT NULL DEFAULT 0,
  created_at  timestamptz  NOT NULL DEFAULT now(),
  updated_at  timestamptz  NOT NULL DEFAULT now()
);

CREATE TABLE stepwise.api_keys (
  id              uuid PRIMARY KEY,
  organization_id uuid NOT NULL REFERENCES stepwise.organizations (id) ON DELETE CASCADE,
  name            varchar(200) NOT NULL,
  -- The public part of the key, used to find the row; the secret is only hashed.
  prefix          varchar(32)  NOT NULL UNIQUE,
  key_hash        bytea        NOT NULL CHECK (octet_length(key_hash) = 32),
  role            varchar(10)  NOT NULL DEFAULT 'OWNER'
                  CHECK (role IN ('OWNER', 'ADMIN', 'MEMBER', 'VIEWER')),
  created_at      timestamptz  NOT NULL DEFAULT now(),
  last_used_at    timestamptz,
  expires_at      timestamptz,
  revoked_at      timestamptz
);
CREATE INDEX api_keys_org_idx ON stepwise.api_keys (organization_id);

-- The customer a run is on behalf of (a client id, or a provider's NPI in
-- healthcare back-office work).
CREATE TABLE stepwise.clients (
  id              uuid PRIMARY KEY,
  organization_id uuid NOT NULL REFERENCES stepwise.organizations (id) ON DELETE CASCADE,
  name            varchar(200) NOT NULL,
  external_id     varchar(100),
  created_at      timestamptz  NOT NULL DEFAULT now(),
  UNIQUE (organization_id, id),
  UNIQUE (organization_id, external_id)
);

CREATE TABLE stepwise.workflows (
  id              uuid PRIMARY KEY,
  organization_id uuid NOT NULL REFERENCES stepwise.organizations (id) ON DELETE CASCADE,
  name            varchar(200) NOT NULL CHECK (length(btrim(name)) > 0),
  description     varchar(2000),
  category        varchar(100),
  status          varchar(10)  NOT NULL DEFAULT 'ACTIVE'
                  CHECK (status IN ('ACTIVE', 'PAUSED', 'ARCHIVED', 'DRAFT')),
  current_version integer      NOT NULL DEFAULT 1 CHECK (current_version > 0),
  created_at      timestamptz  NOT NULL DEFAULT now(),
  updated_at      timestamptz  NOT NULL DEFAULT now(),
  deleted_at      timestamptz,
  UNIQUE (organization_id, id)
);
CREATE INDEX workflows_org_idx ON stepwise.workflows (organization_id, id DESC);

-- Immutable: a job pins the version it ran, so a version is never rewritten.
CREATE TABLE stepwise.workflow_versions (
  workflow_id     uuid        NOT NULL,
  version         integer     NOT NULL CHECK (version > 0),
  organization_id uuid        NOT NULL,
  -- The API refuses definitions over 1 MB of compact JSON. jsonb's text form
  -- adds a space after every ',' and ':' (at most ~1.5× here), so the backstop
  -- allows 2 MiB; only values that bypass the API can reach it.
  definition      jsonb       NOT NULL
                  CONSTRAINT workflow_versions_definition_check CHECK (octet_length(definition::text) <= 2097152),
  created_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (workflow_id, version),
  -- Target of the jobs foreign key: one check proves version, workflow and tenant.
  UNIQUE (organization_id, workflow_id, version),
  FOREIGN KEY (organization_id, workflow_id)
    REFERENCES stepwise.workflows (organization_id, id) ON DELETE CASCADE
);

CREATE FUNCTION stepwise.forbid_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% rows are immutable', TG_TABLE_NAME USING ERRCODE = '55000';
END $$;
CREATE TRIGGER workflow_versions_immutable BEFORE UPDATE ON stepwise.workflow_versions
  FOR EACH ROW EXECUTE FUNCTION stepwise.forbid_update();

-- One row per execution. Deliberately no index on status: status changes on
-- every job twice, and an indexed column would turn those into non-HOT
-- updates that touch every index. fillfactor 80 leaves room on the page for
-- the HOT updates (PENDING → RUNNING → COMPLETED).
CREATE TABLE stepwise.jobs (
  id               uuid PRIMARY KEY,
  organization_id  uuid         NOT NULL,
  workflow_id      uuid         NOT NULL,
  workflow_version integer      NOT NULL,
  client_id        uuid,
  run_number       bigint       NOT NULL,
  status           varchar(16)  NOT NULL DEFAULT 'PENDING'
                   CHECK (status IN ('PENDING', 'RUNNING', 'WAITING', 'COMPLETED', 'PARTIAL_SUCCESS',
                                     'FAILED', 'CANCELLED', 'TIMED_OUT')),
  initiator_type   varchar(10)  NOT NULL DEFAULT 'API'
                   CHECK (initiator_type IN ('MANUAL', 'SCHEDULE', 'WEBHOOK', 'API', 'RETRY')),
  retry_of_job_id  uuid,
  priority         smallint     NOT NULL DEFAULT 0,
  attempts         integer      NOT NULL DEFAULT 0,
  idempotency_key  varchar(200),
  -- Backstops of the 1 MB (compact JSON) limits enforced in code; 2 MiB of
  -- jsonb text for the reason given on workflow_versions.definition.
  input            jsonb CONSTRAINT jobs_input_check CHECK (input IS NULL OR octet_length(input::text) <= 2097152),
  result           jsonb CONSTRAINT jobs_result_check CHECK (result IS NULL OR octet_length(result::text) <= 2097152),
  error_code       varchar(100),
  error_message    varchar(2000),
  error_step       varchar(100),
  steps_total      integer      NOT NULL DEFAULT 0,
  steps_completed  integer      NOT NULL DEFAULT 0,
  -- Highest stream sequence number written for this job.
  last_seq         integer      NOT NULL DEFAULT 0,
  created_at       timestamptz  NOT NULL DEFAULT now(),
  started_at       timestamptz,
  completed_at     timestamptz,
  duration_ms      integer,
  -- One composite key checks the pinned version, its workflow and the tenant
  -- at once: every foreign key is a per-row trigger on the enqueue path.
  FOREIGN KEY (organization_id, workflow_id, workflow_version)
    REFERENCES stepwise.workflow_versions (organization_id, workflow_id, version),
  FOREIGN KEY (organization_id, client_id) REFERENCES stepwise.clients (organization_id, id),
  -- Also the newest-first listing index: run numbers grow with creation.
  UNIQUE (organization_id, run_number)
) WITH (fillfactor = 80);
-- Partial: most runs carry no key, and they cost no entry here.
CREATE UNIQUE INDEX jobs_idempotency_key_idx ON stepwise.jobs (organization_id, idempotency_key)
  WHERE idempotency_key IS NOT NULL;
CREATE INDEX jobs_org_workflow_idx ON stepwise.jobs (organization_id, workflow_id, run_number DESC);

-- Only runnable or running work lives here, so the claim index stays a few
-- pages while `jobs` grows for years. A row leaves when its job ends.
CREATE TABLE stepwise.job_queue (
  -- No foreign key to jobs: a queue row is only ever written with its job,
  -- in the same statement, and removed by the engine before the job ends;
  -- the per-row check cost a tenth of enqueue time for nothing.
  job_id          uuid PRIMARY KEY,
  organization_id uuid        NOT NULL,
  priority        smallint    NOT NULL DEFAULT 0,
  run_at          timestamptz NOT NULL DEFAULT now(),
  -- Lease: who holds the job and until when. Not in the claim index, so taking
  -- and renewing a lease are HOT updates.
  locked_by       varchar(100),
  locked_until    timestamptz
) WITH (fillfactor = 70);
CREATE INDEX job_queue_claim_idx ON stepwise.job_queue (priority DESC, run_at, job_id);

-- Reference tables for the stream's compact codes, so SQL readers can join names.
CREATE TABLE stepwise.log_levels (
  level smallint PRIMARY KEY,
  name  varchar(5) NOT NULL UNIQUE
);
INSERT INTO stepwise.log_levels VALUES
  (1, 'TRACE'), (2, 'DEBUG'), (3, 'INFO'), (4, 'WARN'), (5, 'ERROR'), (6, 'FATAL');

CREATE TABLE stepwise.stream_kinds (
  kind smallint PRIMARY KEY,
  name varchar(32) NOT NULL UNIQUE
);
INSERT INTO stepwise.stream_kinds VALUES
  (0, 'LOG'),
  (1, 'JOB_STARTED'), (2, 'JOB_COMPLETED'), (3, 'JOB_FAILED'), (4, 'JOB_CANCELLED'),
  (5, 'JOB_TIMED_OUT'), (6, 'JOB_PARTIAL_SUCCESS'), (7, 'JOB_HANDED_BACK'),
  (10, 'STEP_STARTED'), (11, 'STEP_COMPLETED'), (12, 'STEP_FAILED'),
  (20, 'RETRY_SCHEDULED'), (21, 'WAITING'), (22, 'SIGNAL_RECEIVED'), (23, 'COMPENSATED');

-- The per-job append-only stream: typed events and log lines in one narrow
-- table, ordered by a per-job sequence number. Codes instead of strings and
-- nine columns keep a row with a 50-character message near 140 bytes of heap
-- (a row of wide text columns was ~500). Range-partitioned by month on ts;
-- code creates the months ahead (db/partitions.ts) and the default partition
-- catches anything outside them so an insert never fails for want of a
-- partition.
CREATE TABLE stepwise.execution_log (
  organization_id uuid        NOT NULL,
  job_id          uuid        NOT NULL,
  ts              timestamptz NOT NULL,
  seq             integer     NOT NULL,
  step_index      smallint,
  kind            smallint    NOT NULL,
  level           smallint    NOT NULL CHECK (level BETWEEN 1 AND 6),
  message         text        NOT NULL,
  data            jsonb
) PARTITION BY RANGE (ts);
-- One key per job: b-tree deduplication stores each job id once with a
-- posting list of row pointers (~7 bytes a row here, against ~40 for a
-- (job_id, seq) key), and a job's rows are few enough to sort by seq after.
CREATE INDEX execution_log_job_idx ON stepwise.execution_log (job_id);
CREATE TABLE stepwise.execution_log_default PARTITION OF stepwise.execution_log DEFAULT;
