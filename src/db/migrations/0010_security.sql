-- Security and compliance: encrypted integration credentials, the credential
-- and PHI audit logs, and row-level security on every tenant table as the
-- second wall behind the store's organization filters.
--
-- Numbered last on purpose: the RLS block at the end walks the catalog, so
-- every tenant table created by an earlier migration is covered. A later
-- migration that adds a tenant table ends with
--   SELECT stepwise.enable_tenant_rls();
-- (idempotent); test/integration/rls.test.ts fails for any table with an
-- organization_id column that lacks ENABLE + FORCE ROW LEVEL SECURITY and
-- the tenant policy.

-- Integration credentials (secrets steps use to call other systems). The
-- secret fields are one JSON object encrypted with AES-256-GCM
-- (security/crypto.ts); the columns hold only ciphertext, the 96-bit IV, the
-- 128-bit tag and the id of the key-ring key that sealed it (so rotation
-- knows which rows are left).
-- The associated data is "<id>:<organization_id>": a ciphertext copied to
-- another row or tenant fails authentication instead of decrypting.
CREATE TABLE stepwise.credentials (
  id              uuid PRIMARY KEY,
  organization_id uuid         NOT NULL REFERENCES stepwise.organizations (id) ON DELETE CASCADE,
  provider        varchar(100) NOT NULL CHECK (length(btrim(provider)) > 0),
  -- Referenced from templates as {{ credentials.<name>.<field> }}, so an identifier.
  name            varchar(100) NOT NULL CHECK (name ~ '^[A-Za-z_][A-Za-z0-9_]*$'),
  -- The API refuses secrets over 16 KiB of JSON; GCM adds nothing to the length.
  ciphertext      bytea        NOT NULL CHECK (octet_length(ciphertext) <= 65536),
  iv              bytea        NOT NULL CHECK (octet_length(iv) = 12),
  tag             bytea        NOT NULL CHECK (octet_length(tag) = 16),
  key_id          varchar(64)  NOT NULL,
  created_at      timestamptz  NOT NULL DEFAULT now(),
  updated_at      timestamptz  NOT NULL DEFAULT now(),
  UNIQUE (organization_id, name),
  UNIQUE (organization_id, id)
);

-- Every create, update, rotate, delete and every decryption for use, so each
-- use of a secret can be accounted for. No foreign key to credentials: the
-- trail of a deleted credential must outlive it. Append-only.
CREATE TABLE stepwise.credential_audit_log (
  -- UUIDv7: time-ordered, so it is also the keyset pagination key.
  id              uuid PRIMARY KEY,
  organization_id uuid         NOT NULL REFERENCES stepwise.organizations (id) ON DELETE CASCADE,
  credential_id   uuid         NOT NULL,
  credential_name varchar(100) NOT NULL,
  action          varchar(10)  NOT NULL CHECK (action IN ('CREATE', 'UPDATE', 'ROTATE', 'DELETE', 'USE')),
  -- 'user:<user id>' or 'key:<api key id>' (API), 'worker:<worker id>' (a step's use), 'cli:keys-rotate'.
  actor           varchar(200) NOT NULL,
  api_key_id      uuid,
  job_id          uuid,
  step_id         varchar(100),
  at              timestamptz  NOT NULL DEFAULT now()
);
CREATE INDEX credential_audit_log_org_idx ON stepwise.credential_audit_log (organization_id, id DESC);
CREATE INDEX credential_audit_log_credential_idx ON stepwise.credential_audit_log (organization_id, credential_id, id DESC);
CREATE TRIGGER credential_audit_log_immutable BEFORE UPDATE ON stepwise.credential_audit_log
  FOR EACH ROW EXECUTE FUNCTION stepwise.forbid_update();

-- Every API read that returned PHI (protected health information, whose every
-- access must be auditable), written in the same transaction as the read.
-- Range-partitioned by month on `at` like the stream (db/partitions.ts makes
-- the months ahead; the default partition catches the rest), so six years of
-- rows are dropped a month at a time once they pass the retention floor,
-- never row by row.
CREATE TABLE stepwise.phi_audit_log (
  id              uuid         NOT NULL,
  organization_id uuid         NOT NULL,
  at              timestamptz  NOT NULL DEFAULT now(),
  actor           varchar(200) NOT NULL,
  api_key_id      uuid,
  resource_type   varchar(20)  NOT NULL CHECK (resource_type IN ('JOB', 'STREAM', 'SCREENSHOT')),
  resource_id     uuid         NOT NULL,
  job_id          uuid,
  workflow_id     uuid,
  -- The PHI paths of the workflow that the response carried ("input.memberId", "result").
  fields          text[]       NOT NULL CHECK (cardinality(fields) BETWEEN 1 AND 100),
  ip              varchar(64),
  user_agent      varchar(500),
  PRIMARY KEY (id, at)
) PARTITION BY RANGE (at);
CREATE TABLE stepwise.phi_audit_log_default PARTITION OF stepwise.phi_audit_log DEFAULT;
CREATE INDEX phi_audit_log_org_idx ON stepwise.phi_audit_log (organization_id, id DESC);
CREATE INDEX phi_audit_log_job_idx ON stepwise.phi_audit_log (organization_id, job_id) WHERE job_id IS NOT NULL;

-- Six-year retention (HIPAA, 45 CFR 164.316(b)(2)): no row younger than that
-- can be deleted or changed, whatever a retention policy or an operator says.
-- Row triggers on a partitioned table are cloned to every partition, present
-- and future, so a DELETE aimed at a partition is refused too. Dropping a
-- whole month is the retention path (store/phi-audit.ts refuses months
-- younger than six years); TRUNCATE is refused outright.
CREATE FUNCTION stepwise.phi_audit_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' THEN
    RAISE EXCEPTION 'phi_audit_log rows are immutable' USING ERRCODE = '55000';
  END IF;
  IF OLD.at > now() - interval '6 years' THEN
    RAISE EXCEPTION 'phi_audit_log rows are kept six years; this one is from %', OLD.at USING ERRCODE = '55000';
  END IF;
  RETURN OLD;
END $$;
CREATE TRIGGER phi_audit_log_retention BEFORE UPDATE OR DELETE ON stepwise.phi_audit_log
  FOR EACH ROW EXECUTE FUNCTION stepwise.phi_audit_guard();
CREATE FUNCTION stepwise.phi_audit_no_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'phi_audit_log is kept six years; it cannot be truncated' USING ERRCODE = '55000';
END $$;
CREATE TRIGGER phi_audit_log_no_truncate BEFORE TRUNCATE ON stepwise.phi_audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION stepwise.phi_audit_no_truncate();
CREATE TRIGGER phi_audit_log_default_no_truncate BEFORE TRUNCATE ON stepwise.phi_audit_log_default
  FOR EACH STATEMENT EXECUTE FUNCTION stepwise.phi_audit_no_truncate();

-- Webhook secrets move under the key ring: the clear `secret` column becomes
-- optional and new or rotated secrets are stored sealed (same AES-256-GCM
-- scheme as credentials, associated data "<workflow_id>:<organization_id>").
-- A deployment without a key ring keeps issuing clear secrets; rows in clear
-- are sealed by `stepwise keys rotate` (security/key-rotation.ts) once it has
-- one. The clear column is dropped by a later migration when no deployment
-- holds clear rows.
ALTER TABLE stepwise.webhook_triggers
  ALTER COLUMN secret DROP NOT NULL,
  ADD COLUMN secret_ciphertext bytea CHECK (octet_length(secret_ciphertext) <= 1024),
  ADD COLUMN secret_iv         bytea CHECK (octet_length(secret_iv) = 12),
  ADD COLUMN secret_tag        bytea CHECK (octet_length(secret_tag) = 16),
  ADD COLUMN secret_key_id     varchar(64),
  ADD CONSTRAINT webhook_triggers_secret_present CHECK (
    secret IS NOT NULL OR (secret_ciphertext IS NOT NULL AND secret_iv IS NOT NULL
                           AND secret_tag IS NOT NULL AND secret_key_id IS NOT NULL));

-- Row-level security: the database itself refuses another tenant's rows.
--
-- Two NOLOGIN roles, cluster-wide (roles are not per database, and test runs
-- create many databases in one cluster at once, so creation tolerates a
-- concurrent twin):
--   stepwise_tenant  — API requests run as this role (SET LOCAL ROLE via
--                      set_config in the request's transaction, db/tenant.ts)
--                      with stepwise.organization_id set; its policy admits
--                      only that organization's rows, and an unset setting
--                      is an error (no missing_ok), so it fails closed.
--   stepwise_service — the engine, scheduler, maintenance and admin CLI are
--                      cross-tenant system code; they run as the service's
--                      login role, which is made a member of this role and so
--                      gets a permissive USING (true) policy. The planner folds
--                      `true` away, so the engine's hot statements carry no
--                      per-row policy cost. A superuser login bypasses RLS
--                      altogether (as in tests and the default embedded mode).
DO $$
BEGIN
  CREATE ROLE stepwise_tenant NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END $$;
DO $$
BEGIN
  CREATE ROLE stepwise_service NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END $$;
-- The login that migrates is the login that serves. It must be able to
-- SET ROLE stepwise_tenant and carry stepwise_service's policy. A superuser
-- already can; a non-superuser needs CREATEROLE (or a DBA runs these two
-- GRANTs once per cluster beforehand — see the README).
DO $$
BEGIN
  IF NOT pg_has_role(current_user, 'stepwise_tenant', 'MEMBER') THEN
    EXECUTE format('GRANT stepwise_tenant TO %I', current_user);
  END IF;
  IF NOT pg_has_role(current_user, 'stepwise_service', 'MEMBER') THEN
    EXECUTE format('GRANT stepwise_service TO %I', current_user);
  END IF;
EXCEPTION
  WHEN unique_violation OR duplicate_object THEN NULL; -- a concurrent twin granted it
  WHEN insufficient_privilege THEN
    RAISE EXCEPTION 'the migrating role % cannot join stepwise_tenant / stepwise_service', current_user
      USING HINT = 'run as a superuser once, or have a DBA run: GRANT stepwise_tenant, stepwise_service TO ' || current_user;
END $$;

GRANT USAGE ON SCHEMA stepwise TO stepwise_tenant;

/**
 * Enable and force RLS with the tenant and service policies on every table
 * of schema stepwise that has an organization_id column (partitions are
 * reached through their parent, whose policies apply), grant the tenant
 * role DML on them and SELECT on the rest (reference tables). Idempotent:
 * tables that already carry the tenant policy are left alone.
 */
CREATE FUNCTION stepwise.enable_tenant_rls() RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  t record;
  n integer := 0;
BEGIN
  FOR t IN
    SELECT c.relname,
           EXISTS (SELECT 1 FROM pg_attribute a
                    WHERE a.attrelid = c.oid AND a.attname = 'organization_id' AND NOT a.attisdropped) AS tenant
      FROM pg_class c JOIN pg_namespace ns ON ns.oid = c.relnamespace
     WHERE ns.nspname = 'stepwise' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
       AND c.relname <> 'schema_migrations'
  LOOP
    IF NOT t.tenant AND t.relname <> 'organizations' THEN
      EXECUTE format('GRANT SELECT ON stepwise.%I TO stepwise_tenant', t.relname);
      CONTINUE;
    END IF;
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON stepwise.%I TO stepwise_tenant', t.relname);
    CONTINUE WHEN EXISTS (SELECT 1 FROM pg_policy p JOIN pg_class pc ON pc.oid = p.polrelid
                           JOIN pg_namespace pn ON pn.oid = pc.relnamespace
                          WHERE pn.nspname = 'stepwise' AND pc.relname = t.relname AND p.polname = 'tenant_isolation');
    EXECUTE format('ALTER TABLE stepwise.%I ENABLE ROW LEVEL SECURITY', t.relname);
    EXECUTE format('ALTER TABLE stepwise.%I FORCE ROW LEVEL SECURITY', t.relname);
    EXECUTE format(
      'CREATE POLICY tenant_isolation ON stepwise.%I TO stepwise_tenant
         USING (%2$I = current_setting(''stepwise.organization_id'')::uuid)
         WITH CHECK (%2$I = current_setting(''stepwise.organization_id'')::uuid)',
      t.relname, CASE WHEN t.tenant THEN 'organization_id' ELSE 'id' END);
    EXECUTE format('CREATE POLICY service_all ON stepwise.%I TO stepwise_service USING (true) WITH CHECK (true)', t.relname);
    n := n + 1;
  END LOOP;
  RETURN n;
END $$;

SELECT stepwise.enable_tenant_rls();
