-- Webhook triggers: a workflow started by a signed POST /v1/hooks/:workflowId
-- (HMAC-SHA256 of the raw body under a per-workflow secret, see
-- security/webhook-signature.ts), and the deliveries seen recently, which is
-- what rejects a replay inside the 5-minute timestamp window.

CREATE TABLE stepwise.webhook_triggers (
  -- One trigger per workflow; the public route knows only the workflow id,
  -- so it is the key the delivery lookup uses.
  workflow_id     uuid PRIMARY KEY,
  organization_id uuid         NOT NULL,
  -- The HMAC key itself, as issued. It cannot be only hashed like an API key:
  -- verifying a signature means computing the HMAC with it. Only
  -- store/webhooks.ts reads this column and the API shows it once, when it
  -- is issued. Stored in clear for now; the "Security and compliance" issue
  -- moves it under the AES-256-GCM key ring (STEPWISE_ENCRYPTION_KEYS) with the
  -- integration credentials, and that migration re-encrypts these rows.
  secret          text         NOT NULL CHECK (secret LIKE 'whsec\_%' AND length(secret) <= 200),
  enabled         boolean      NOT NULL DEFAULT true,
  created_at      timestamptz  NOT NULL DEFAULT now(),
  -- Last time the secret changed after creation (rotate, or re-enable after a disable).
  rotated_at      timestamptz,
  -- CASCADE: a workflow is only ever soft-deleted by the application, so this
  -- fires only when the whole organization goes.
  FOREIGN KEY (organization_id, workflow_id) REFERENCES stepwise.workflows (organization_id, id) ON DELETE CASCADE
);

-- One row per accepted delivery, written in the same transaction as the job
-- it started, so "accepted" and "enqueued" cannot disagree. A row is only
-- useful while its timestamp could still pass the 5-minute check; older rows
-- are deleted by the next delivery to the same workflow, so the table holds
-- minutes of traffic, not history (the job itself is the history).
CREATE TABLE stepwise.webhook_deliveries (
  organization_id uuid        NOT NULL,
  workflow_id     uuid        NOT NULL,
  -- HMAC-SHA256 of `${timestamp}.${body}` under the secret: byte-identical
  -- deliveries (a replay) have the same one, a re-sent event with a new
  -- timestamp does not.
  signature       bytea       NOT NULL CHECK (octet_length(signature) = 32),
  -- The Stepwise-Timestamp the sender signed (what pruning goes by).
  signed_at       timestamptz NOT NULL,
  received_at     timestamptz NOT NULL DEFAULT now(),
  -- No foreign key: retention deleting jobs would have to probe this table
  -- for every job, for rows that are minutes old and only say which job a
  -- replay refers to.
  job_id          uuid        NOT NULL,
  -- The replay guard: a second insert of the same signature conflicts
  -- (INSERT … ON CONFLICT DO NOTHING, which also makes two concurrent
  -- identical deliveries wait on each other instead of both getting through).
  CONSTRAINT webhook_deliveries_replay_key PRIMARY KEY (organization_id, workflow_id, signature),
  FOREIGN KEY (organization_id, workflow_id) REFERENCES stepwise.workflows (organization_id, id) ON DELETE CASCADE
);
-- Pruning: "this workflow's deliveries signed before t" is a range scan.
CREATE INDEX webhook_deliveries_prune_idx ON stepwise.webhook_deliveries (organization_id, workflow_id, signed_at);
