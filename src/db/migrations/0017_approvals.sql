-- Approvals: a person in the loop. An approval step opens one approval per
-- job and step path, the job waits (WAITING, no worker held) until enough
-- approvers decide or the approval expires, and every decision is kept as the
-- audit of who decided what, when, with which comment and form values.

-- 1. One approval per (job, step path): a step that runs again (a takeover,
--    a resumed job) finds the approval it opened instead of opening another.
--    Who may decide is kept on the row as the step asked it when it opened
--    (roles and users listed, whether the run's initiator is excluded), so a
--    later change of the workflow does not change an open request.
CREATE TABLE stepwise.approvals (
  id                uuid PRIMARY KEY,
  organization_id   uuid         NOT NULL,
  job_id            uuid         NOT NULL REFERENCES stepwise.jobs (id) ON DELETE CASCADE,
  step_path         text         NOT NULL CHECK (length(step_path) BETWEEN 1 AND 1000),
  title             varchar(500) NOT NULL,
  approver_roles    text[]       NOT NULL DEFAULT '{}'
                                 CHECK (approver_roles <@ ARRAY['VIEWER', 'MEMBER', 'ADMIN', 'OWNER']::text[]),
  approver_users    uuid[]       NOT NULL DEFAULT '{}',
  exclude_initiator boolean      NOT NULL DEFAULT false,
  -- The user whose key started the run (NULL for schedules, webhooks, children).
  initiated_by      uuid,
  required          smallint     NOT NULL CHECK (required BETWEEN 1 AND 10),
  -- JSON Schema of the values a decision carries (NULL: no form).
  form              jsonb        CHECK (form IS NULL OR octet_length(form::text) <= 65536),
  status            varchar(10)  NOT NULL DEFAULT 'PENDING' CHECK (status IN ('PENDING', 'APPROVED', 'REJECTED', 'EXPIRED')),
  -- What the step's onTimeout made of an approval nobody decided in time.
  timeout_outcome   varchar(10)  CHECK (timeout_outcome IN ('APPROVED', 'REJECTED')),
  requested_at      timestamptz  NOT NULL DEFAULT now(),
  expires_at        timestamptz,
  decided_at        timestamptz,
  UNIQUE (job_id, step_path),
  UNIQUE (organization_id, id),
  CHECK (cardinality(approver_roles) + cardinality(approver_users) > 0),
  CHECK ((status = 'PENDING') = (decided_at IS NULL)),
  CHECK ((status = 'EXPIRED') = (timeout_outcome IS NOT NULL))
);
-- GET /v1/approvals?status=…: an organization's approvals by status, newest first.
CREATE INDEX approvals_org_status_idx ON stepwise.approvals (organization_id, status, id);

-- 2. The decisions, which are the audit: one per user and approval (the same
--    person approving twice does not count twice). No foreign key to users:
--    the trail of a decision must outlive the user who made it.
CREATE TABLE stepwise.approval_decisions (
  id              uuid PRIMARY KEY,
  organization_id uuid          NOT NULL,
  approval_id     uuid          NOT NULL REFERENCES stepwise.approvals (id) ON DELETE CASCADE,
  -- 1, 2, … in the order made. Decisions on one approval are taken under its
  -- row lock, so this order is exact whatever the clocks of the API processes
  -- say; the step reports decisions in the stream by it, each once.
  seq             smallint      NOT NULL CHECK (seq > 0),
  user_id         uuid          NOT NULL,
  decision        varchar(10)   NOT NULL CHECK (decision IN ('APPROVE', 'REJECT')),
  comment         varchar(2000),
  form_values     jsonb         CHECK (form_values IS NULL OR octet_length(form_values::text) <= 65536),
  -- How it arrived: an API key (api_key_id names it) or the user's link.
  via             varchar(4)    NOT NULL CHECK (via IN ('API', 'LINK')),
  api_key_id      uuid,
  decided_at      timestamptz   NOT NULL DEFAULT now(),
  UNIQUE (approval_id, user_id),
  UNIQUE (approval_id, seq)
);

-- 3. Per-approver links: one per eligible user when the approval opens. Only
--    the SHA-256 of a token is stored. The token itself is an HMAC, under a
--    key derived from the server's key ring (key_id names the ring key), of
--    the approval, the user and the random nonce below; it is derived, and
--    its hash filled in, when an OWNER or ADMIN first reads the approval. So
--    neither the database alone (no key) nor the key alone (no nonce) yields
--    a token, and the links can be shown again without ever being stored.
CREATE TABLE stepwise.approval_links (
  approval_id     uuid        NOT NULL REFERENCES stepwise.approvals (id) ON DELETE CASCADE,
  organization_id uuid        NOT NULL,
  user_id         uuid        NOT NULL,
  nonce           bytea       NOT NULL CHECK (octet_length(nonce) = 32),
  token_hash      bytea       CHECK (octet_length(token_hash) = 32),
  key_id          varchar(64),
  -- The approval's expiry (NULL when it has none: the link then ends with the approval).
  expires_at      timestamptz,
  used_at         timestamptz,
  created_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (approval_id, user_id),
  CHECK ((token_hash IS NULL) = (key_id IS NULL))
);
CREATE UNIQUE INDEX approval_links_token_idx ON stepwise.approval_links (token_hash) WHERE token_hash IS NOT NULL;

SELECT stepwise.enable_tenant_rls();
