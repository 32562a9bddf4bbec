-- Users and roles, API keys owned by users, and usage per organization and
-- month with the plan limits enforced in code (store/plans.ts).

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
-- column per metric rather than a row per metric: the engine then pays one
-- upsert per statement for all metrics at once.
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

-- Kept current by the two statements that create and end jobs, each adding
-- one upsert per organization and month to the statement it already runs
-- (store/jobs.ts enqueueJobs: executions and input bytes; store/outcomes.ts
-- completeJobs: steps and result bytes). Statement-level triggers with
-- transition tables were measured first and cost 25-30% of enqueue and
-- completion time on PGlite (~4% on the server) for the same result.

-- Usage of the jobs that exist already.
INSERT INTO stepwise.usage_records (organization_id, period_start, executions, steps, storage_bytes)
SELECT organization_id, (date_trunc('month', created_at AT TIME ZONE 'UTC'))::date, count(*),
       coalesce(sum(steps_completed) FILTER (WHERE status IN ('COMPLETED', 'PARTIAL_SUCCESS', 'FAILED', 'CANCELLED', 'TIMED_OUT')), 0),
       coalesce(sum(coalesce(pg_column_size(input), 0) + coalesce(pg_column_size(result), 0)), 0)
  FROM stepwise.jobs
 GROUP BY 1, 2;
