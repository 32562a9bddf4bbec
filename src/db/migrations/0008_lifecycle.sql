-- Data lifecycle: per-organization retention policies, the record of stream
-- archives in blob storage, restore holds and the maintenance leader lease.

-- Retention policies, per organization and resource type. Ages are in days
-- since the data was written: hot (in PostgreSQL) until hot_retention_days,
-- then archived in blob storage and kept at least until
-- archive_retention_days, then deleted at delete_after_days (NULL keeps the
-- archive for ever).
CREATE TABLE stepwise.retention_policies (
  organization_id        uuid        NOT NULL REFERENCES stepwise.organizations (id) ON DELETE CASCADE,
  resource_type          varchar(20) NOT NULL
                         CHECK (resource_type IN ('execution_log', 'screenshot', 'job', 'job_result', 'phi_audit')),
  hot_retention_days     integer     NOT NULL DEFAULT 30 CHECK (hot_retention_days BETWEEN 1 AND 36500),
  archive_retention_days integer     NOT NULL DEFAULT 365 CHECK (archive_retention_days BETWEEN 1 AND 36500),
  delete_after_days      integer     CHECK (delete_after_days IS NULL OR delete_after_days BETWEEN 1 AND 36500),
  created_at             timestamptz NOT NULL DEFAULT now(),
  updated_at             timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (organization_id, resource_type),
  CONSTRAINT retention_policies_order_check CHECK (
    archive_retention_days >= hot_retention_days
    AND (delete_after_days IS NULL OR delete_after_days >= archive_retention_days)),
  -- PHI access records are kept six years (HIPAA, 45 CFR 164.316(b)(2));
  -- 2,192 days covers six years with two leap days. The API refuses less with
  -- a clear error; this is the wall behind it.
  CONSTRAINT retention_policies_phi_minimum_check CHECK (
    resource_type <> 'phi_audit'
    OR (archive_retention_days >= 2192 AND (delete_after_days IS NULL OR delete_after_days >= 2192)))
);

-- One blob of archived data: many jobs of one organization in gzip members
-- of up to 32 jobs (lifecycle/archive-format.ts), so a reader decompresses
-- only the member holding its job.
CREATE TABLE stepwise.archive_blobs (
  blob_key        varchar(512) PRIMARY KEY,
  organization_id uuid         NOT NULL,
  resource_type   varchar(20)  NOT NULL,
  bytes           bigint       NOT NULL CHECK (bytes >= 0),
  sha256          bytea        NOT NULL CHECK (octet_length(sha256) = 32),
  record_count    integer      NOT NULL CHECK (record_count >= 0),
  created_at      timestamptz  NOT NULL DEFAULT now()
);
CREATE INDEX archive_blobs_org_idx ON stepwise.archive_blobs (organization_id);

-- Stream archives: one row per archived stretch of one job's stream. A job's
-- archives always cover seq 1..max(last_seq) without gaps (a job is archived
-- from its first unarchived row to its last, and restore takes back all of a
-- job's archives), so "is this hot row archived?" is "seq <= max(last_seq)".
CREATE TABLE stepwise.execution_log_archives (
  id              uuid         PRIMARY KEY,
  organization_id uuid         NOT NULL,
  job_id          uuid         NOT NULL,
  blob_key        varchar(512) NOT NULL REFERENCES stepwise.archive_blobs (blob_key),
  -- Where the gzip member holding this job sits in the blob (shared by the
  -- member's jobs, as are compressed_size and sha256).
  byte_offset     bigint       NOT NULL CHECK (byte_offset >= 0),
  compressed_size integer      NOT NULL CHECK (compressed_size > 0),
  record_count    integer      NOT NULL CHECK (record_count > 0),
  first_seq       integer      NOT NULL,
  last_seq        integer      NOT NULL,
  start_date      timestamptz  NOT NULL,
  end_date        timestamptz  NOT NULL,
  -- sha256 of the member's compressed bytes, checked on every read.
  sha256          bytea        NOT NULL CHECK (octet_length(sha256) = 32),
  archived_at     timestamptz  NOT NULL DEFAULT now(),
  CHECK (last_seq >= first_seq),
  -- The idempotency wall: a rerun after a crash cannot record a stretch twice.
  UNIQUE (organization_id, job_id, first_seq)
);
CREATE INDEX execution_log_archives_blob_idx ON stepwise.execution_log_archives (blob_key);
CREATE INDEX execution_log_archives_age_idx ON stepwise.execution_log_archives (organization_id, end_date);

-- A restored job stays hot until hold_until; the archiver skips it till then
-- (otherwise the next daily run would archive it straight back).
CREATE TABLE stepwise.archive_holds (
  organization_id uuid        NOT NULL,
  job_id          uuid        NOT NULL,
  hold_until      timestamptz NOT NULL,
  created_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (organization_id, job_id)
);

-- Leader lease for the daily maintenance run. A lease row rather than an
-- advisory lock: the run spans many transactions and blob writes, and a
-- session lock would need a connection pinned for its whole length, which
-- the pool (and PGlite's single connection) cannot give. An expired lease is
-- taken over, so a leader that dies is replaced after leaseMs.
CREATE TABLE stepwise.maintenance_leases (
  name       varchar(50)  PRIMARY KEY,
  holder     varchar(100) NOT NULL,
  expires_at timestamptz  NOT NULL
);
