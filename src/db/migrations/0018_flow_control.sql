-- Flow control declared by workflow definitions: concurrency keys, a claim
-- that is fair between organizations, rate-limit buckets, dedupe and
-- debounce keys. Runs of workflows without flow control write none of the
-- new columns and rows.

-- 1. Concurrency keys. A run of a workflow with `concurrency` rules carries
--    one 64-bit key per rule (a hash of the workflow, the rule's key
--    expression and the value it gave for the run's input) and that rule's
--    limit. The keys never change after the insert, so the lease updates of
--    the hot path stay HOT. Every other row leaves them NULL (the row already
--    has a null bitmap, so it grows by nothing).
--    parked_until: a keyed run that cannot start until runs ahead of it on
--    its key have started is moved out of the claim's way (run_at pushed
--    back to parked_until) so that a long line on one key does not hold up
--    other keys; the claim that starts the runs ahead of it moves it back.
--    A row is parked while run_at = parked_until (a later suspension changes
--    run_at, which ends the parking without another write).
ALTER TABLE stepwise.job_queue
  ADD COLUMN concurrency_keys   bigint[],
  ADD COLUMN concurrency_limits integer[],
  ADD COLUMN parked_until       timestamptz;

-- 2. The claim index leads with the organization: the claim walks the
--    organizations that have runnable rows (a loose index scan, one probe
--    each) and takes a share from each, so one organization's backlog cannot
--    hold back another's runs. Keyed and plain rows have an index each, so
--    the plain claim (the throughput path) never steps over keyed rows and
--    the keyed claim never over plain ones; every row is in exactly one of
--    them, so an insert costs what it cost with the one index before.
DROP INDEX stepwise.job_queue_claim_idx;
CREATE INDEX job_queue_claim_idx ON stepwise.job_queue (organization_id, priority DESC, run_at, job_id)
  WHERE concurrency_keys IS NULL;
CREATE INDEX job_queue_keyed_claim_idx ON stepwise.job_queue (organization_id, priority DESC, run_at, job_id)
  WHERE concurrency_keys IS NOT NULL;
-- The rows of a key (running ones to count, waiting ones in their order).
CREATE INDEX job_queue_concurrency_keys_idx ON stepwise.job_queue USING gin (concurrency_keys)
  WHERE concurrency_keys IS NOT NULL;

-- 3. Rate-limit buckets: one token bucket per (organization, bucket name,
--    key value), shared by every workflow of the organization that names
--    the bucket. A take refills by the time elapsed and takes one token in
--    one UPDATE of the locked rows; tokens and updated_at are in no index, so
--    takes are HOT updates (fillfactor leaves the room for them).
CREATE TABLE stepwise.rate_limit_buckets (
  organization_id uuid        NOT NULL REFERENCES stepwise.organizations (id) ON DELETE CASCADE,
  bucket          text        NOT NULL CHECK (bucket ~ '^[A-Za-z0-9_.:-]{1,100}$'),
  -- The key's value as text (long values are hashed by the engine first).
  key             text        NOT NULL CHECK (length(key) <= 200),
  tokens          double precision NOT NULL,
  updated_at      timestamptz NOT NULL,
  PRIMARY KEY (organization_id, bucket, key)
) WITH (fillfactor = 50);

-- 4. Dedupe: the first run with a key within the workflow's ttl; a later
--    start with the key returns that job. Keys are 128-bit hashes of the
--    workflow, the key expression and its value. Expired rows are replaced
--    by the next start with the key and swept a few at a time by starts of
--    the organization (the expiry index).
CREATE TABLE stepwise.dedupe_keys (
  organization_id uuid        NOT NULL REFERENCES stepwise.organizations (id) ON DELETE CASCADE,
  workflow_id     uuid        NOT NULL,
  key_hash        uuid        NOT NULL,
  job_id          uuid        NOT NULL,
  expires_at      timestamptz NOT NULL,
  PRIMARY KEY (organization_id, workflow_id, key_hash)
);
CREATE INDEX dedupe_keys_expiry_idx ON stepwise.dedupe_keys (organization_id, expires_at);

-- 5. Debounce: the run of a key that has not started yet. A start with the
--    key while it waits replaces its input and pushes its start back, never
--    past deadline_at (its first start plus maxDelayMs). A row whose run has
--    started is replaced by the next start with the key; rows are swept a
--    day after their deadline.
CREATE TABLE stepwise.debounce_keys (
  organization_id uuid        NOT NULL REFERENCES stepwise.organizations (id) ON DELETE CASCADE,
  workflow_id     uuid        NOT NULL,
  key_hash        uuid        NOT NULL,
  job_id          uuid        NOT NULL,
  deadline_at     timestamptz NOT NULL,
  PRIMARY KEY (organization_id, workflow_id, key_hash)
);
CREATE INDEX debounce_keys_deadline_idx ON stepwise.debounce_keys (organization_id, deadline_at);

SELECT stepwise.enable_tenant_rls();
