-- Sign-in for the web dashboard: password hashes on users, single-use
-- invitations to set one, and server-side sessions behind an HttpOnly cookie
-- (security/sessions.ts, api/routes/sessions.ts).

-- "scrypt$N$r$p$<salt>$<hash>" (security/passwords.ts): the parameters travel
-- with the hash, so raising the cost later needs no migration. NULL: the user
-- cannot sign in with a password (keys only, or not invited yet).
ALTER TABLE stepwise.users
  ADD COLUMN password_hash       varchar(255) CHECK (password_hash LIKE 'scrypt$%'),
  ADD COLUMN password_changed_at timestamptz;
-- Sign-in starts from an email without an organization (emails are unique per
-- organization only), so it needs an index that does not lead with one.
CREATE INDEX users_email_password_idx ON stepwise.users (lower(email)) WHERE password_hash IS NOT NULL;

-- An invitation link lets its holder set the user's password once. Only the
-- SHA-256 of the link's 256-bit random token is stored; used_at makes it
-- single use (set by the statement that accepts it).
CREATE TABLE stepwise.user_invitations (
  id                 uuid PRIMARY KEY,
  organization_id    uuid        NOT NULL REFERENCES stepwise.organizations (id) ON DELETE CASCADE,
  user_id            uuid        NOT NULL,
  token_hash         bytea       NOT NULL UNIQUE CHECK (octet_length(token_hash) = 32),
  -- Who issued it ('user:<id>' or 'cli'), for the record.
  created_by         varchar(200) NOT NULL,
  created_at         timestamptz NOT NULL DEFAULT now(),
  expires_at         timestamptz NOT NULL,
  used_at            timestamptz,
  CHECK (expires_at > created_at),
  FOREIGN KEY (organization_id, user_id) REFERENCES stepwise.users (organization_id, id) ON DELETE CASCADE
);
CREATE INDEX user_invitations_user_idx ON stepwise.user_invitations (organization_id, user_id);

-- A dashboard session. id is the SHA-256 of the random cookie value: a leaked
-- table holds nothing a browser could present. api_key_id is set when the
-- session was opened by pasting an API key; it then acts with that key's
-- (capped) role and ends when the key is revoked or expires. Deleting the
-- user or the key deletes its sessions (the foreign keys cascade); disabling
-- a user or revoking a key deletes them in the same statement's transaction,
-- and authentication checks both in its one query regardless.
CREATE TABLE stepwise.web_sessions (
  id              bytea       PRIMARY KEY CHECK (octet_length(id) = 32),
  organization_id uuid        NOT NULL REFERENCES stepwise.organizations (id) ON DELETE CASCADE,
  user_id         uuid        NOT NULL,
  api_key_id      uuid        REFERENCES stepwise.api_keys (id) ON DELETE CASCADE,
  created_at      timestamptz NOT NULL DEFAULT now(),
  -- Moved at most once a minute (security/sessions.ts), so reads do not write on every request.
  last_seen_at    timestamptz NOT NULL DEFAULT now(),
  -- The absolute end: created_at + 12 h.
  expires_at      timestamptz NOT NULL,
  CHECK (expires_at > created_at),
  FOREIGN KEY (organization_id, user_id) REFERENCES stepwise.users (organization_id, id) ON DELETE CASCADE
);
CREATE INDEX web_sessions_user_idx ON stepwise.web_sessions (organization_id, user_id);
CREATE INDEX web_sessions_key_idx ON stepwise.web_sessions (api_key_id) WHERE api_key_id IS NOT NULL;

SELECT stepwise.enable_tenant_rls();
