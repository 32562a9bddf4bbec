-- Knowledge collections and the retrieval record. An organization keeps
-- documents (payer rules, policies) in named collections; a retrieve step
-- ranks them against a query during a run, and the record of what it
-- returned, and which of those the run then used, is kept as narrow rows
-- rather than as a JSON blob per run (bench -- retrieval-bytes measures both).

-- 1. Documents, unique per (organization, collection, external id): the API
--    upserts by external id. `search` is the weighted text the ranking reads:
--    title and tags weigh most, then the condition, then the text and action.
--    'english' (stemming: "authorizations" finds "authorization") is in
--    PGlite's build as well as the server's.
CREATE FUNCTION stepwise.knowledge_tags_text(tags text[]) RETURNS text
  LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT array_to_string(tags, ' ') $$;

CREATE TABLE stepwise.knowledge_documents (
  id              uuid         PRIMARY KEY,
  organization_id uuid         NOT NULL REFERENCES stepwise.organizations (id) ON DELETE CASCADE,
  collection      varchar(64)  NOT NULL CHECK (collection ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),
  external_id     varchar(200) NOT NULL CHECK (length(external_id) >= 1),
  type            varchar(64)  NOT NULL CHECK (length(type) >= 1),
  title           varchar(500) NOT NULL CHECK (length(title) >= 1),
  text            text         NOT NULL CHECK (length(text) BETWEEN 1 AND 20000),
  condition       text         CHECK (length(condition) <= 4000),
  action          text         CHECK (length(action) <= 4000),
  tags            text[]       NOT NULL DEFAULT '{}' CHECK (cardinality(tags) <= 32),
  -- The API takes 16 KiB of compact JSON; jsonb's text form adds a space after every ':' and ','.
  metadata        jsonb        NOT NULL DEFAULT '{}'
                               CHECK (jsonb_typeof(metadata) = 'object' AND octet_length(metadata::text) <= 65536),
  search          tsvector     GENERATED ALWAYS AS (
                    setweight(to_tsvector('english', title), 'A')
                    || setweight(to_tsvector('english', stepwise.knowledge_tags_text(tags)), 'A')
                    || setweight(to_tsvector('english', coalesce(condition, '')), 'B')
                    || setweight(to_tsvector('english', text), 'C')
                    || setweight(to_tsvector('english', coalesce(action, '')), 'C')) STORED,
  created_at      timestamptz  NOT NULL DEFAULT now(),
  updated_at      timestamptz  NOT NULL DEFAULT now(),
  UNIQUE (organization_id, collection, external_id)
);
CREATE INDEX knowledge_documents_search_idx ON stepwise.knowledge_documents USING gin (search);

-- 2. One retrieval per (job, step path): a retrieve step that runs again
--    after a crash finds the one it recorded and returns the same documents.
--    No foreign key to jobs: a cascade would delete by job_id alone, which
--    this key (organization first) cannot serve; expiry deletes a job's
--    retrievals by (organization_id, job_id), and the archiver moves them
--    into the job's stream archive.
CREATE TABLE stepwise.retrievals (
  id              uuid         PRIMARY KEY,
  organization_id uuid         NOT NULL REFERENCES stepwise.organizations (id) ON DELETE CASCADE,
  job_id          uuid         NOT NULL,
  workflow_id     uuid         NOT NULL,
  created_at      timestamptz  NOT NULL DEFAULT now(),
  took_ms         integer      NOT NULL CHECK (took_ms >= 0),
  average_score   real,
  count           smallint     NOT NULL CHECK (count BETWEEN 0 AND 50),
  collection      varchar(64)  NOT NULL,
  step_path       text         NOT NULL CHECK (length(step_path) BETWEEN 1 AND 1000),
  query           text         NOT NULL CHECK (length(query) <= 2000),
  UNIQUE (organization_id, job_id, step_path)
);

-- 3. One row per document a retrieval returned, in rank order. Narrow on
--    purpose (64 bytes of heap unused, a used mark adds its time, path and
--    reason): no organization column; row-level security reaches it through
--    its retrieval (the policy below). No foreign key to the document: a
--    deleted document leaves the record of its retrieval (shown as deleted).
CREATE TABLE stepwise.retrieval_documents (
  retrieval_id uuid         NOT NULL REFERENCES stepwise.retrievals (id) ON DELETE CASCADE,
  document_id  uuid         NOT NULL,
  score        real         NOT NULL,
  rank         smallint     NOT NULL CHECK (rank BETWEEN 1 AND 50),
  -- The first mark wins: set once, by a markUsed step or an llm step's usedDocuments.
  used_at      timestamptz,
  used_by_path text         CHECK (length(used_by_path) <= 1000),
  used_reason  varchar(500),
  PRIMARY KEY (retrieval_id, rank),
  CHECK ((used_at IS NULL) = (used_by_path IS NULL))
);

-- 4. Daily counts per document and workflow, written by the statement that
--    records a retrieval and the one that marks documents used (rows taken in
--    key order), so analytics never reads an archive and outlives expiry.
CREATE TABLE stepwise.knowledge_usage_daily (
  organization_id uuid        NOT NULL REFERENCES stepwise.organizations (id) ON DELETE CASCADE,
  collection      varchar(64) NOT NULL,
  day             date        NOT NULL,
  workflow_id     uuid        NOT NULL,
  document_id     uuid        NOT NULL,
  retrieved       integer     NOT NULL DEFAULT 0 CHECK (retrieved >= 0),
  used            integer     NOT NULL DEFAULT 0 CHECK (used >= 0),
  PRIMARY KEY (organization_id, collection, day, workflow_id, document_id)
);

INSERT INTO stepwise.stream_kinds VALUES (35, 'RETRIEVED'), (36, 'DOCUMENTS_USED');

SELECT stepwise.enable_tenant_rls();

-- retrieval_documents has no organization_id, so enable_tenant_rls() took it
-- for a reference table (SELECT for every tenant). Its rows belong to their
-- retrieval's organization: the tenant sees a row when it sees the retrieval
-- (whose own policy applies inside the subquery).
GRANT SELECT, INSERT, UPDATE, DELETE ON stepwise.retrieval_documents TO stepwise_tenant;
ALTER TABLE stepwise.retrieval_documents ENABLE ROW LEVEL SECURITY;
ALTER TABLE stepwise.retrieval_documents FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON stepwise.retrieval_documents TO stepwise_tenant
  USING (EXISTS (SELECT 1 FROM stepwise.retrievals r WHERE r.id = retrieval_id))
  WITH CHECK (EXISTS (SELECT 1 FROM stepwise.retrievals r WHERE r.id = retrieval_id));
CREATE POLICY service_all ON stepwise.retrieval_documents TO stepwise_service USING (true) WITH CHECK (true);
