-- Cron schedules and their audit trail.
-- Like every tenant table, both carry organization_id, and the composite
-- foreign keys (organization_id, x_id) make it impossible for a schedule to
-- start another tenant's workflow or for an audit row to describe another
-- tenant's schedule, whatever the application code does.

CREATE TABLE stepwise.schedules (
  id              uuid PRIMARY KEY,
  organization_id uuid         NOT NULL REFERENCES stepwise.organizations (id) ON DELETE CASCADE,
  workflow_id     uuid         NOT NULL,
  name            varchar(200) NOT NULL CHECK (length(btrim(name)) > 0),
  -- Validated in code (croner, five fields or a @nickname); stored as given.
  cron            varchar(200) NOT NULL CHECK (length(btrim(cron)) > 0),
  -- IANA name, validated in code against the runtime's time zone database.
  timezone        varchar(64)  NOT NULL DEFAULT 'UTC',
  -- The input of every run it starts. Same 1 MB limit (in code) and 2 MiB
  -- jsonb backstop as jobs.input, for the reason given there.
  input           jsonb CONSTRAINT schedules_input_check CHECK (input IS NULL OR octet_length(input::text) <= 2097152),
  enabled         boolean      NOT NULL DEFAULT true,
  -- After downtime longer than the grace period: SKIP the missed firings, or
  -- RUN_ONCE for the whole missed period.
  misfire_policy  varchar(10)  NOT NULL DEFAULT 'SKIP' CHECK (misfire_policy IN ('SKIP', 'RUN_ONCE')),
  -- The next firing not yet enqueued. NULL while paused or deleted: a paused
  -- period is not downtime, so resuming computes it afresh instead of
  -- treating the pause as a misfire.
  next_fire_at    timestamptz,
  last_fired_at   timestamptz,
  created_at      timestamptz  NOT NULL DEFAULT now(),
  updated_at      timestamptz  NOT NULL DEFAULT now(),
  deleted_at      timestamptz,
  UNIQUE (organization_id, id),
  -- CASCADE: a workflow is only ever soft-deleted by the application, so this
  -- fires only when the whole organization goes.
  FOREIGN KEY (organization_id, workflow_id) REFERENCES stepwise.workflows (organization_id, id) ON DELETE CASCADE
);
CREATE INDEX schedules_org_idx ON stepwise.schedules (organization_id, id DESC);
CREATE INDEX schedules_workflow_idx ON stepwise.schedules (organization_id, workflow_id);
-- The scheduler asks "which live schedules are due?" every tick, across all
-- tenants. A partial index holding only enabled, undeleted schedules keyed by
-- next_fire_at answers that with a range scan that stops at the first row in
-- the future, and paused or deleted schedules never cost anything.
CREATE INDEX schedules_due_idx ON stepwise.schedules (next_fire_at)
  WHERE enabled AND deleted_at IS NULL AND next_fire_at IS NOT NULL;

-- Who changed a schedule, when, and what it looked like before and after.
-- Written in the same transaction as the change, so a change without its
-- audit row (or the reverse) cannot exist. Append-only.
CREATE TABLE stepwise.schedule_audit_log (
  id              uuid PRIMARY KEY,
  organization_id uuid         NOT NULL REFERENCES stepwise.organizations (id) ON DELETE CASCADE,
  schedule_id     uuid         NOT NULL,
  action          varchar(10)  NOT NULL CHECK (action IN ('CREATE', 'UPDATE', 'PAUSE', 'RESUME', 'DELETE')),
  -- The API key id that made the change ('cli:<key id>' from the CLI).
  actor           varchar(100) NOT NULL,
  -- Snapshots of the schedule (null before CREATE); each holds at most one
  -- 1 MB input plus a few small fields.
  before          jsonb CHECK (before IS NULL OR octet_length(before::text) <= 4194304),
  after           jsonb CHECK (after IS NULL OR octet_length(after::text) <= 4194304),
  at              timestamptz  NOT NULL DEFAULT now(),
  -- NO ACTION (not RESTRICT): the only hard delete of a schedule is the
  -- organization cascade, which removes these rows in the same statement.
  FOREIGN KEY (organization_id, schedule_id) REFERENCES stepwise.schedules (organization_id, id)
);
CREATE INDEX schedule_audit_log_schedule_idx ON stepwise.schedule_audit_log (organization_id, schedule_id, id DESC);
CREATE TRIGGER schedule_audit_log_immutable BEFORE UPDATE ON stepwise.schedule_audit_log
  FOR EACH ROW EXECUTE FUNCTION stepwise.forbid_update();
