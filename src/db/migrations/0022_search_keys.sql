-- Finding runs by what they were started with, and saved views of the runs list.

-- 1. Search keys: a workflow definition may name up to 10 input paths
--    (`searchKeys`); when a run starts, each present scalar value at those
--    paths is written here (store/search-keys.ts, in the enqueue's own
--    statement). created_at and run_number are copied from the job so the
--    list (GET /v1/jobs?search=path:value) walks one index range in its
--    keyset order (created_at DESC, run_number DESC) and joins only the page.
--    No foreign key to jobs: a cascade would delete by job_id alone, which
--    this primary key (organization first) cannot serve; expiry deletes the
--    rows of its batch by (organization_id, job_id) instead (store/expiry.ts).
CREATE TABLE stepwise.job_search_keys (
  organization_id uuid        NOT NULL REFERENCES stepwise.organizations (id) ON DELETE CASCADE,
  job_id          uuid        NOT NULL,
  key             text        NOT NULL CHECK (length(key) BETWEEN 1 AND 200),
  value           text        NOT NULL CHECK (length(value) BETWEEN 1 AND 200),
  created_at      timestamptz NOT NULL,
  run_number      bigint      NOT NULL,
  PRIMARY KEY (organization_id, job_id, key)
);
CREATE INDEX job_search_keys_lookup_idx
  ON stepwise.job_search_keys (organization_id, key, value, created_at DESC, run_number DESC);

-- 2. Saved views: a name for a runs-list query string. A personal view
--    (shared = false) is visible to its owner only; a shared one to the whole
--    organization. Views go with their owner.
CREATE TABLE stepwise.saved_views (
  id              uuid         PRIMARY KEY,
  organization_id uuid         NOT NULL,
  owner_user_id   uuid         NOT NULL,
  name            varchar(100) NOT NULL CHECK (length(name) >= 1),
  page            varchar(20)  NOT NULL CHECK (page IN ('runs')),
  query           varchar(2000) NOT NULL,
  shared          boolean      NOT NULL DEFAULT false,
  created_at      timestamptz  NOT NULL DEFAULT now(),
  FOREIGN KEY (organization_id, owner_user_id) REFERENCES stepwise.users (organization_id, id) ON DELETE CASCADE
);
CREATE INDEX saved_views_org_page_idx ON stepwise.saved_views (organization_id, page, created_at);

SELECT stepwise.enable_tenant_rls();
