-- Users and roles (seed 004 §2.1), API keys owned by users, and usage per
-- organization and month (seed 004 §2.8) with the plan limits enforced in code
-- (store/plans.ts).

CREATE TABLE stepwise.users (
  id              uuid PRIMARY KEY,
  organization_id uuid         NOT NULL REFERENCES stepwise.organizations (id) ON DELETE CASCADE,
  -- Compared case-insensitively: the unique index is on lower(email).
  email           varchar(254) NOT NULL CHECK (email ~ '^[^\s@]+@[^\s@]+$'),
  name            varchar(200),
  role            varchar(10)  NOT NULL DEFAULT 'MEMBER'
                  CHECK (role IN ('OWNER', 'ADMIN', 'MEMBER', 'VIEWER')),
  created_at      timestamptz  NOT NULL DEFAULT now(),
  updated_at      timestamptz  NOT NULL DEFAULT now(),
  -- A disabled user's keys stop working at once (checked at authentication).
  disabled_at     timestamptz,
  UNIQUE (organization_id, id)
);
CREATE UNIQUE INDEX users_org_email_idx ON stepwise.users (organization_id, lower(email));

-- A key belongs to a user and carries at most the user's role: the effective
-- role is min(key role, user role), evaluated at authentication, so demoting
-- a user caps every key they hold without rewriting the keys. Deleting a user
-- revokes their keys first (store/users.ts); the key rows stay for the audit
-- trail, with user_id cleared.
ALTER TABLE stepwise.api_keys ADD COLUMN user_id uuid;
ALTER TABLE stepwise.api_keys
  ADD CONSTRAINT api_keys_user_fk FOREIGN KEY (organization_id, user_id)
  REFERENCES stepwise.users (organization_id, id) ON DELETE SET NULL (user_id);
CREATE INDEX api_keys_user_idx ON stepwise.api_keys (user_id) WHERE user_id IS NOT NULL;

-- Backfill: every organization that has keys gets one OWNER user, and its
-- keys become that user's (they were created by `org create` or first start,
-- which now create the owner with the key).
INSERT INTO stepwise.users (id, organization_id, email, name, role)
SELECT gen_random_uuid(), o.id, 'owner@localhost', 'Owner', 'OWNER'
  FROM stepwise.organizations o
 WHERE EXISTS (SELECT 1 FROM stepwise.api_keys k WHERE k.organization_id = o.id);
UPDATE stepwise.api_keys k SET user_id = u.id
  FROM stepwise.users u
 WHERE u.organization_id = k.organization_id AND k.user_id IS NULL;

-- Usage per organization and calendar month (UTC). One row per month with a
-- column per metric rather than the seed's row per metric: the engine's
-- triggers then cost one upsert per statement for all metrics at once.
CREATE TABLE stepwise.usage_records (
  organization_id uuid        NOT NULL REFERENCES stepwise.organizations (id) ON DELETE CASCADE,
  period_start    date        NOT NULL CHECK (extract(day FROM period_start) = 1),
  executions      bigint      NOT NULL DEFAULT 0,
  steps           bigint      NOT NULL DEFAULT 0,
  -- Bytes of job input and result as stored (pg_column_size, i.e. after
  -- TOAST compression), added when a job is created and when it ends.
  storage_bytes   bigint      NOT NULL DEFAULT 0,
  updated_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (organization_id, period_start)
);

-- Executions and input bytes, once per INSERT statement on jobs: an enqueue
-- batch of 1,000 runs costs one upsert (grouped by organization and month),
-- not 1,000. Enqueue already holds the organization's row lock (run_counter),
-- so these upserts never contend with another tenant's.
CREATE FUNCTION stepwise.usage_on_jobs_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO stepwise.usage_records AS u (organization_id, period_start, executions, storage_bytes)
  SELECT n.organization_id, (date_trunc('month', n.created_at AT TIME ZONE 'UTC'))::date,
         count(*), coalesce(sum(pg_column_size(n.input)), 0)
    FROM new_jobs n
   GROUP BY 1, 2
  ON CONFLICT (organization_id, period_start) DO UPDATE
     SET executions = u.executions + excluded.executions,
         storage_bytes = u.storage_bytes + excluded.storage_bytes,
         updated_at = now();
  RETURN NULL;
END $$;
CREATE TRIGGER jobs_usage_insert AFTER INSERT ON stepwise.jobs
  REFERENCING NEW TABLE AS new_jobs
  FOR EACH STATEMENT EXECUTE FUNCTION stepwise.usage_on_jobs_insert();

-- Steps and result bytes when jobs end, once per UPDATE statement: the
-- worker completes jobs in batches (store/outcomes.ts), so a flush of 500
-- completions costs one join of the two transition tables and one upsert.
-- Counted on the transition into a terminal status only, so a job counts its
-- steps once (a job retried from a failed step is a new job, counted anew).
-- Attributed to the month the job was created in, like its execution.
CREATE FUNCTION stepwise.usage_on_jobs_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO stepwise.usage_records AS u (organization_id, period_start, steps, storage_bytes)
  SELECT n.organization_id, (date_trunc('month', n.created_at AT TIME ZONE 'UTC'))::date,
         sum(n.steps_completed), coalesce(sum(pg_column_size(n.result)), 0)
    FROM new_jobs n JOIN old_jobs o ON o.id = n.id
   WHERE n.status IN ('COMPLETED', 'PARTIAL_SUCCESS', 'FAILED', 'CANCELLED', 'TIMED_OUT')
     AND o.status NOT IN ('COMPLETED', 'PARTIAL_SUCCESS', 'FAILED', 'CANCELLED', 'TIMED_OUT')
   GROUP BY 1, 2
  ON CONFLICT (organization_id, period_start) DO UPDATE
     SET steps = u.steps + excluded.steps,
         storage_bytes = u.storage_bytes + excluded.storage_bytes,
         updated_at = now();
  RETURN NULL;
END $$;
CREATE TRIGGER jobs_usage_update AFTER UPDATE ON stepwise.jobs
  REFERENCING OLD TABLE AS old_jobs NEW TABLE AS new_jobs
  FOR EACH STATEMENT EXECUTE FUNCTION stepwise.usage_on_jobs_update();

-- Usage of the jobs that exist already.
INSERT INTO stepwise.usage_records (organization_id, period_start, executions, steps, storage_bytes)
SELECT organization_id, (date_trunc('month', created_at AT TIME ZONE 'UTC'))::date, count(*),
       coalesce(sum(steps_completed) FILTER (WHERE status IN ('COMPLETED', 'PARTIAL_SUCCESS', 'FAILED', 'CANCELLED', 'TIMED_OUT')), 0),
       coalesce(sum(coalesce(pg_column_size(input), 0) + coalesce(pg_column_size(result), 0)), 0)
  FROM stepwise.jobs
 GROUP BY 1, 2;
