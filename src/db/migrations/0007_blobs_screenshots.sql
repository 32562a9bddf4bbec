-- Blob-backed data: screenshots/artifacts (metadata here, bytes in blob
-- storage), large job results by reference (so jobs rows stay small), and a
-- queue of blob deletions so a blob is never forgotten when its last row
-- goes.

-- Stream rows that record a captured screenshot or artifact (data.screenshotId links the row).
INSERT INTO stepwise.stream_kinds VALUES (30, 'SCREENSHOT');

-- One stored copy of a byte string per (organization, sha256): the same image
-- captured 1,000 times is stored once. ref_count counts execution_screenshots
-- rows (not soft-deleted) plus in-flight captures that pinned the row before
-- uploading; the row and its blob go when it reaches 0. A row re-created after
-- such a delete gets a new blob_key (a generation suffix), so a capture racing a
-- delete never points at the key being deleted.
CREATE TABLE stepwise.screenshot_blobs (
  organization_id uuid         NOT NULL REFERENCES stepwise.organizations (id) ON DELETE CASCADE,
  sha256          bytea        NOT NULL CHECK (octet_length(sha256) = 32),
  blob_key        varchar(512) NOT NULL UNIQUE,
  bytes           bigint       NOT NULL CHECK (bytes >= 0),
  ref_count       integer      NOT NULL CHECK (ref_count >= 0),
  -- False until the bytes are in the blob store; a capture that finds it false uploads.
  stored          boolean      NOT NULL DEFAULT false,
  created_at      timestamptz  NOT NULL DEFAULT now(),
  updated_at      timestamptz  NOT NULL DEFAULT now(),
  PRIMARY KEY (organization_id, sha256)
);

CREATE TABLE stepwise.execution_screenshots (
  id              uuid         PRIMARY KEY,
  organization_id uuid         NOT NULL,
  job_id          uuid         NOT NULL REFERENCES stepwise.jobs (id) ON DELETE CASCADE,
  step_index      smallint,
  -- The stream row (execution_log seq) that records the capture, to show it
  -- in the job's timeline.
  stream_seq      integer,
  type            varchar(20)  NOT NULL DEFAULT 'SCREENSHOT'
                  CHECK (type IN ('SCREENSHOT', 'ERROR_SCREENSHOT', 'ARTIFACT')),
  name            varchar(200),
  content_type    varchar(100) NOT NULL,
  width           integer      CHECK (width IS NULL OR width BETWEEN 1 AND 100000),
  height          integer      CHECK (height IS NULL OR height BETWEEN 1 AND 100000),
  bytes           bigint       NOT NULL CHECK (bytes >= 0),
  sha256          bytea        NOT NULL CHECK (octet_length(sha256) = 32),
  blob_key        varchar(512) NOT NULL,
  captured_at     timestamptz  NOT NULL DEFAULT now(),
  -- From the organization's screenshot retention policy; NULL keeps it for ever.
  retain_until    timestamptz,
  deleted_at      timestamptz,
  -- Where a cold-tier copy lives, if one is made.
  archive_key     varchar(512)
);
-- "All screenshots of organization X" without a join to jobs.
CREATE INDEX execution_screenshots_org_idx ON stepwise.execution_screenshots (organization_id, captured_at DESC);
CREATE INDEX execution_screenshots_job_idx ON stepwise.execution_screenshots (job_id);
-- Only live rows with a deadline are ever scanned by the cleanup.
CREATE INDEX execution_screenshots_retain_idx ON stepwise.execution_screenshots (retain_until)
  WHERE deleted_at IS NULL AND retain_until IS NOT NULL;

-- Blob keys whose rows are gone: deleted from the blob store by
-- processBlobDeletions, then removed here. Queued in the same transaction
-- that drops the last reference, so a crash or an unreachable store between
-- "row gone" and "blob gone" leaves a retry, never an orphan.
CREATE TABLE stepwise.blob_deletions (
  blob_key        varchar(512) PRIMARY KEY,
  organization_id uuid,
  queued_at       timestamptz  NOT NULL DEFAULT now()
);

-- Drop references of screenshot rows that stop counting (soft-deleted, or
-- deleted while live): one UPDATE and one DELETE per statement whatever the
-- number of rows, and the blob of every count that reaches 0 is queued for
-- deletion. The UPDATE locks the screenshot_blobs rows, so a capture pinning
-- the same hash waits and then re-creates the row under a new blob key.
CREATE FUNCTION stepwise.release_screenshot_refs(orgs uuid[], hashes bytea[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  UPDATE stepwise.screenshot_blobs b
     SET ref_count = greatest(0, b.ref_count - g.n), updated_at = now()
    FROM (SELECT o, h, count(*)::int AS n FROM unnest(orgs, hashes) AS u(o, h) GROUP BY o, h) g
   WHERE b.organization_id = g.o AND b.sha256 = g.h;
  -- A second statement: a DELETE in the same statement as the UPDATE would
  -- see the rows as they were before it and skip them.
  WITH del AS (
    DELETE FROM stepwise.screenshot_blobs b
     WHERE b.ref_count = 0
       AND (b.organization_id, b.sha256) IN (SELECT o, h FROM unnest(orgs, hashes) AS u(o, h))
    RETURNING b.blob_key, b.organization_id
  )
  INSERT INTO stepwise.blob_deletions (blob_key, organization_id)
  SELECT blob_key, organization_id FROM del
  ON CONFLICT (blob_key) DO NOTHING;
END $$;

CREATE FUNCTION stepwise.screenshots_soft_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM stepwise.release_screenshot_refs(array_agg(n.organization_id), array_agg(n.sha256))
     FROM new_rows n JOIN old_rows o ON o.id = n.id
    WHERE o.deleted_at IS NULL AND n.deleted_at IS NOT NULL
   HAVING count(*) > 0;
  RETURN NULL;
END $$;
CREATE TRIGGER execution_screenshots_soft_delete AFTER UPDATE ON stepwise.execution_screenshots
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION stepwise.screenshots_soft_deleted();

CREATE FUNCTION stepwise.screenshots_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM stepwise.release_screenshot_refs(array_agg(o.organization_id), array_agg(o.sha256))
     FROM old_rows o
    WHERE o.deleted_at IS NULL
   HAVING count(*) > 0;
  RETURN NULL;
END $$;
-- Also fires for rows removed by ON DELETE CASCADE from jobs (a job deleted by retention).
CREATE TRIGGER execution_screenshots_delete AFTER DELETE ON stepwise.execution_screenshots
  REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION stepwise.screenshots_deleted();

-- A job result kept in blob storage, the jobs row holding NULL. Written at
-- completion for results over the inline threshold (64 KB by default), and by
-- the archiver for older results.
CREATE TABLE stepwise.job_result_archives (
  job_id          uuid         PRIMARY KEY REFERENCES stepwise.jobs (id) ON DELETE CASCADE,
  organization_id uuid         NOT NULL,
  blob_key        varchar(512) NOT NULL,
  -- Bytes of the result's JSON text, and of what is stored (gzip).
  size_bytes      bigint       NOT NULL CHECK (size_bytes BETWEEN 0 AND 1048576),
  stored_bytes    bigint       NOT NULL CHECK (stored_bytes >= 0),
  content_encoding varchar(10) NOT NULL DEFAULT 'gzip' CHECK (content_encoding IN ('gzip', 'identity')),
  -- sha256 of the stored bytes, checked on every read.
  sha256          bytea        NOT NULL CHECK (octet_length(sha256) = 32),
  archived_at     timestamptz  NOT NULL DEFAULT now()
);

-- A result's blob goes when its record goes (the job deleted by retention).
CREATE FUNCTION stepwise.job_result_archives_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO stepwise.blob_deletions (blob_key, organization_id)
  SELECT blob_key, organization_id FROM old_rows
  ON CONFLICT (blob_key) DO NOTHING;
  RETURN NULL;
END $$;
CREATE TRIGGER job_result_archives_delete AFTER DELETE ON stepwise.job_result_archives
  REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION stepwise.job_result_archives_deleted();
