-- The whole Stepwise schema as the migrations in src/db/migrations leave a fresh
-- database, for reading and reviewing. Generated: do not edit; run
-- `npm run schema:dump` after adding a migration (a test fails until then).

--
-- PostgreSQL database dump
--

--
-- Name: stepwise; Type: SCHEMA; Schema: -; Owner: -
--

CREATE SCHEMA stepwise;

--
-- Name: add_step_metrics(uuid[], uuid[], text[], timestamp with time zone[], integer[], text[], integer[], integer[], integer[], double precision[], jsonb[], jsonb[]); Type: FUNCTION; Schema: stepwise; Owner: -
--

CREATE FUNCTION stepwise.add_step_metrics(p_org uuid[], p_workflow uuid[], p_period text[], p_start timestamp with time zone[], p_step integer[], p_name text[], p_executions integer[], p_successes integer[], p_failures integer[], p_duration double precision[], p_histogram jsonb[], p_errors jsonb[]) RETURNS void
    LANGUAGE plpgsql
    AS $$
BEGIN
  PERFORM stepwise.add_step_metrics(p_org, p_workflow, p_period, p_start, p_step,
                                    array_fill(''::text, ARRAY[coalesce(cardinality(p_org), 0)]), p_name,
                                    p_executions, p_successes, p_failures, p_duration, p_histogram, p_errors);
END $$;

--
-- Name: add_step_metrics(uuid[], uuid[], text[], timestamp with time zone[], integer[], text[], text[], integer[], integer[], integer[], double precision[], jsonb[], jsonb[]); Type: FUNCTION; Schema: stepwise; Owner: -
--

CREATE FUNCTION stepwise.add_step_metrics(p_org uuid[], p_workflow uuid[], p_period text[], p_start timestamp with time zone[], p_step integer[], p_path text[], p_name text[], p_executions integer[], p_successes integer[], p_failures integer[], p_duration double precision[], p_histogram jsonb[], p_errors jsonb[]) RETURNS void
    LANGUAGE plpgsql
    AS $$
BEGIN
  INSERT INTO stepwise.step_metrics AS m
    (organization_id, workflow_id, period, period_start, step_index, step_path, step_name, executions, successes, failures,
     total_duration_ms, duration_histogram, top_errors)
  SELECT u.org, u.wf, u.period, u.ps, u.idx, u.path, left(u.name, 100), u.n, u.ok, u.bad, u.dur, u.hist,
         CASE WHEN u.errs = '[]'::jsonb THEN u.errs ELSE stepwise.top_errors_merge('[]', u.errs) END
    FROM unnest(p_org, p_workflow, p_period, p_start, p_step, p_path, p_name, p_executions, p_successes, p_failures, p_duration,
                p_histogram, p_errors) AS u(org, wf, period, ps, idx, path, name, n, ok, bad, dur, hist, errs)
   -- Key order, so concurrent flushes lock shared rows in the same order (no deadlock).
   ORDER BY u.org, u.wf, u.period, u.ps, u.idx, u.path
  ON CONFLICT (organization_id, workflow_id, period, period_start, step_index, step_path) DO UPDATE SET
    step_name = coalesce(EXCLUDED.step_name, m.step_name),
    executions = m.executions + EXCLUDED.executions,
    successes = m.successes + EXCLUDED.successes,
    failures = m.failures + EXCLUDED.failures,
    total_duration_ms = m.total_duration_ms + EXCLUDED.total_duration_ms,
    duration_histogram = stepwise.histogram_merge(m.duration_histogram, EXCLUDED.duration_histogram),
    top_errors = CASE WHEN EXCLUDED.top_errors = '[]'::jsonb THEN m.top_errors
                      ELSE stepwise.top_errors_merge(m.top_errors, EXCLUDED.top_errors) END,
    updated_at = now();
EXCEPTION WHEN OTHERS THEN
  INSERT INTO stepwise.read_model_failures (source, sqlstate, message, row_count)
  VALUES ('step_metrics', SQLSTATE, SQLERRM, coalesce(cardinality(p_org), 0));
END $$;

--
-- Name: add_to_aggregates(uuid[], uuid[], uuid[], text[], text[], timestamp with time zone[], integer[]); Type: FUNCTION; Schema: stepwise; Owner: -
--

CREATE FUNCTION stepwise.add_to_aggregates(p_org uuid[], p_workflow uuid[], p_client uuid[], p_initiator text[], p_status text[], p_completed_at timestamp with time zone[], p_duration integer[]) RETURNS void
    LANGUAGE sql
    AS $$
  INSERT INTO stepwise.aggregate_metrics AS a
    (organization_id, period, workflow_id, client_id, initiator_type, period_start, total_count, completed_count,
     partial_success_count, failed_count, cancelled_count, timed_out_count, duration_count, total_duration_ms,
     min_duration_ms, max_duration_ms, duration_histogram)
  SELECT r.* FROM stepwise.aggregate_rows(p_org, p_workflow, p_client, p_initiator, p_status, p_completed_at, p_duration) r
   -- Rows are locked in key order, the same in every transaction: a roll-up
   -- and a repair that meet wait for each other instead of deadlocking.
   ORDER BY r.organization_id, r.period, r.client_id, r.initiator_type, r.workflow_id, r.period_start
  ON CONFLICT (organization_id, period, client_id, initiator_type, workflow_id, period_start) DO UPDATE SET
    total_count = a.total_count + EXCLUDED.total_count,
    completed_count = a.completed_count + EXCLUDED.completed_count,
    partial_success_count = a.partial_success_count + EXCLUDED.partial_success_count,
    failed_count = a.failed_count + EXCLUDED.failed_count,
    cancelled_count = a.cancelled_count + EXCLUDED.cancelled_count,
    timed_out_count = a.timed_out_count + EXCLUDED.timed_out_count,
    duration_count = a.duration_count + EXCLUDED.duration_count,
    total_duration_ms = a.total_duration_ms + EXCLUDED.total_duration_ms,
    min_duration_ms = least(a.min_duration_ms, EXCLUDED.min_duration_ms),
    max_duration_ms = greatest(a.max_duration_ms, EXCLUDED.max_duration_ms),
    duration_histogram = stepwise.histogram_merge(a.duration_histogram, EXCLUDED.duration_histogram),
    updated_at = now()
$$;

--
-- Name: aggregate_rows(uuid[], uuid[], uuid[], text[], text[], timestamp with time zone[], integer[]); Type: FUNCTION; Schema: stepwise; Owner: -
--

CREATE FUNCTION stepwise.aggregate_rows(p_org uuid[], p_workflow uuid[], p_client uuid[], p_initiator text[], p_status text[], p_completed_at timestamp with time zone[], p_duration integer[]) RETURNS TABLE(organization_id uuid, period character varying, workflow_id uuid, client_id uuid, initiator_type character varying, period_start timestamp with time zone, total_count integer, completed_count integer, partial_success_count integer, failed_count integer, cancelled_count integer, timed_out_count integer, duration_count integer, total_duration_ms bigint, min_duration_ms integer, max_duration_ms integer, duration_histogram jsonb)
    LANGUAGE sql STABLE
    AS $$
  WITH j AS (
    SELECT u.org, u.wf, coalesce(u.cl, '00000000-0000-0000-0000-000000000001'::uuid) AS cl, u.ini,
           date_trunc('hour', u.completed_at, 'UTC') AS hour, stepwise.duration_bucket(u.duration) AS bucket,
           count(*) AS n,
           count(*) FILTER (WHERE u.status = 'COMPLETED') AS c,
           count(*) FILTER (WHERE u.status = 'PARTIAL_SUCCESS') AS ps_n,
           count(*) FILTER (WHERE u.status = 'FAILED') AS f,
           count(*) FILTER (WHERE u.status = 'CANCELLED') AS x,
           count(*) FILTER (WHERE u.status = 'TIMED_OUT') AS t,
           count(u.duration) AS dn, coalesce(sum(u.duration), 0) AS dsum, min(u.duration) AS dmin, max(u.duration) AS dmax
      FROM unnest(p_org, p_workflow, p_client, p_initiator, p_status, p_completed_at, p_duration)
             AS u(org, wf, cl, ini, status, completed_at, duration)
     GROUP BY 1, 2, 3, 4, 5, 6
  ), k AS (
    SELECT j.org, p.period, d.wf, d.cl, d.ini, date_trunc(p.unit, j.hour, 'UTC') AS ps, j.bucket,
           sum(j.n) AS n, sum(j.c) AS c, sum(j.ps_n) AS ps_n, sum(j.f) AS f, sum(j.x) AS x, sum(j.t) AS t,
           sum(j.dn) AS dn, sum(j.dsum) AS dsum, min(j.dmin) AS dmin, max(j.dmax) AS dmax
      FROM j
     CROSS JOIN (VALUES ('HOUR', 'hour'), ('DAY', 'day'), ('MONTH', 'month')) AS p(period, unit)
     CROSS JOIN LATERAL (VALUES
       (j.wf, j.cl, j.ini),
       (j.wf, '00000000-0000-0000-0000-000000000000'::uuid, 'all'),
       ('00000000-0000-0000-0000-000000000000'::uuid, j.cl, 'all'),
       ('00000000-0000-0000-0000-000000000000'::uuid, '00000000-0000-0000-0000-000000000000'::uuid, j.ini),
       ('00000000-0000-0000-0000-000000000000'::uuid, '00000000-0000-0000-0000-000000000000'::uuid, 'all')
     ) AS d(wf, cl, ini)
     GROUP BY 1, 2, 3, 4, 5, 6, 7
  )
  SELECT k.org, k.period::varchar(5), k.wf, k.cl, k.ini::varchar(10), k.ps, sum(k.n)::int, sum(k.c)::int, sum(k.ps_n)::int,
         sum(k.f)::int, sum(k.x)::int, sum(k.t)::int, sum(k.dn)::int, sum(k.dsum)::bigint, min(k.dmin)::int, max(k.dmax)::int,
         coalesce(jsonb_object_agg(k.bucket, k.dn) FILTER (WHERE k.bucket IS NOT NULL), '{}'::jsonb)
    FROM k
   GROUP BY k.org, k.period, k.wf, k.cl, k.ini, k.ps
$$;

--
-- Name: count_template_use(uuid, uuid); Type: FUNCTION; Schema: stepwise; Owner: -
--

CREATE FUNCTION stepwise.count_template_use(p_template uuid, p_org uuid) RETURNS bigint
    LANGUAGE sql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
  UPDATE stepwise.templates SET popularity = popularity + 1
   WHERE id = p_template
     AND (owner_organization_id IS NULL OR is_public OR owner_organization_id = p_org)
     AND p_org = coalesce(nullif(current_setting('stepwise.organization_id', true), ''), p_org::text)::uuid
  RETURNING popularity
$$;

--
-- Name: duration_bucket(double precision); Type: FUNCTION; Schema: stepwise; Owner: -
--

CREATE FUNCTION stepwise.duration_bucket(ms double precision) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
  SELECT CASE WHEN ms IS NULL THEN NULL
              WHEN ms < 0.01 THEN 0
              ELSE least(299, 1 + floor(ln(ms / 0.01) / ln(1.1))::integer) END
$$;

--
-- Name: enable_tenant_rls(); Type: FUNCTION; Schema: stepwise; Owner: -
--

CREATE FUNCTION stepwise.enable_tenant_rls() RETURNS integer
    LANGUAGE plpgsql
    AS $_$
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
END $_$;

--
-- Name: forbid_update(); Type: FUNCTION; Schema: stepwise; Owner: -
--

CREATE FUNCTION stepwise.forbid_update() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
  RAISE EXCEPTION '% rows are immutable', TG_TABLE_NAME USING ERRCODE = '55000';
END $$;

--
-- Name: histogram_merge(jsonb, jsonb); Type: FUNCTION; Schema: stepwise; Owner: -
--

CREATE FUNCTION stepwise.histogram_merge(a jsonb, b jsonb) RETURNS jsonb
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
  SELECT coalesce(jsonb_object_agg(k, n), '{}'::jsonb)
    FROM (SELECT k, sum(v::bigint) AS n
            FROM (SELECT * FROM jsonb_each_text(coalesce(a, '{}'::jsonb))
                  UNION ALL
                  SELECT * FROM jsonb_each_text(coalesce(b, '{}'::jsonb))) e(k, v)
           GROUP BY k) s
$$;

--
-- Name: job_result_archives_deleted(); Type: FUNCTION; Schema: stepwise; Owner: -
--

CREATE FUNCTION stepwise.job_result_archives_deleted() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
  INSERT INTO stepwise.blob_deletions (blob_key, organization_id)
  SELECT blob_key, organization_id FROM old_rows
  ON CONFLICT (blob_key) DO NOTHING;
  RETURN NULL;
END $$;

--
-- Name: jobs_read_model_insert(); Type: FUNCTION; Schema: stepwise; Owner: -
--

CREATE FUNCTION stepwise.jobs_read_model_insert() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
  -- Every enqueue comes here with jobs that are not finished: leave before
  -- the blocks below, each a subtransaction.
  IF NOT EXISTS (SELECT 1 FROM new_jobs WHERE status IN ('COMPLETED', 'PARTIAL_SUCCESS', 'FAILED', 'CANCELLED', 'TIMED_OUT')) THEN
    RETURN NULL;
  END IF;
  -- A job inserted already finished (an import, the scale benchmark) enters
  -- the read model and the aggregates here.
  BEGIN
    INSERT INTO stepwise.execution_metadata
      (job_id, organization_id, workflow_id, client_id, run_number, status, initiator_type, steps_total, steps_completed,
       attempts, retry_count, created_at, started_at, completed_at, duration_ms, error_code, error_message, error_step,
       parent_job_id)
    SELECT id, organization_id, workflow_id, client_id, run_number, status, initiator_type, steps_total, steps_completed,
           attempts, retry_count, created_at, started_at, completed_at, duration_ms, error_code, left(error_message, 500), error_step,
           parent_job_id
      FROM new_jobs
     WHERE status IN ('COMPLETED', 'PARTIAL_SUCCESS', 'FAILED', 'CANCELLED', 'TIMED_OUT')
    ON CONFLICT (job_id) DO NOTHING;
  EXCEPTION WHEN OTHERS THEN
    INSERT INTO stepwise.read_model_failures (source, sqlstate, message, row_count)
    VALUES ('execution_metadata', SQLSTATE, SQLERRM, (SELECT count(*) FROM new_jobs));
  END;
  BEGIN
    INSERT INTO stepwise.aggregate_outbox (organization_id, workflow_id, client_id, initiator_type, status, completed_at, duration_ms)
    SELECT n.organization_id, n.workflow_id, n.client_id, n.initiator_type::text, n.status::text, n.completed_at, n.duration_ms
      FROM new_jobs n
     WHERE n.status IN ('COMPLETED', 'PARTIAL_SUCCESS', 'FAILED', 'CANCELLED', 'TIMED_OUT') AND n.completed_at IS NOT NULL;
  EXCEPTION WHEN OTHERS THEN
    INSERT INTO stepwise.read_model_failures (source, sqlstate, message, row_count)
    VALUES ('aggregate_metrics', SQLSTATE, SQLERRM, (SELECT count(*) FROM new_jobs));
  END;
  RETURN NULL;
END $$;

--
-- Name: jobs_read_model_update(); Type: FUNCTION; Schema: stepwise; Owner: -
--

CREATE FUNCTION stepwise.jobs_read_model_update() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
  -- A start (RUNNING), a suspension or a retry neither is nor was finished:
  -- leave before the blocks below, each a subtransaction.
  IF NOT EXISTS (SELECT 1 FROM new_jobs WHERE status IN ('COMPLETED', 'PARTIAL_SUCCESS', 'FAILED', 'CANCELLED', 'TIMED_OUT'))
     AND NOT EXISTS (SELECT 1 FROM old_jobs WHERE status IN ('COMPLETED', 'PARTIAL_SUCCESS', 'FAILED', 'CANCELLED', 'TIMED_OUT')) THEN
    RETURN NULL;
  END IF;
  BEGIN
    -- A claim or a lease statement has no finished row, and this is a scan
    -- of its transition table that finds nothing. A completion writes the
    -- finished rows once; a later change to a finished job's compared
    -- fields (rare: an operator's fix) rewrites its row.
    INSERT INTO stepwise.execution_metadata AS m
      (job_id, organization_id, workflow_id, client_id, run_number, status, initiator_type, steps_total, steps_completed,
       attempts, retry_count, created_at, started_at, completed_at, duration_ms, error_code, error_message, error_step,
       parent_job_id)
    SELECT n.id, n.organization_id, n.workflow_id, n.client_id, n.run_number, n.status, n.initiator_type, n.steps_total,
           n.steps_completed, n.attempts, n.retry_count, n.created_at, n.started_at, n.completed_at, n.duration_ms,
           n.error_code, left(n.error_message, 500), n.error_step, n.parent_job_id
      FROM new_jobs n
     WHERE n.status IN ('COMPLETED', 'PARTIAL_SUCCESS', 'FAILED', 'CANCELLED', 'TIMED_OUT')
       AND NOT EXISTS (
         SELECT 1 FROM old_jobs o
          WHERE o.id = n.id
            AND (o.status, o.steps_completed, o.attempts, o.retry_count, o.started_at, o.completed_at, o.duration_ms,
                 o.error_code, o.error_message, o.error_step)
                IS NOT DISTINCT FROM
                (n.status, n.steps_completed, n.attempts, n.retry_count, n.started_at, n.completed_at, n.duration_ms,
                 n.error_code, n.error_message, n.error_step))
    ON CONFLICT (job_id) DO UPDATE SET
      status = EXCLUDED.status, steps_completed = EXCLUDED.steps_completed, attempts = EXCLUDED.attempts,
      retry_count = EXCLUDED.retry_count, started_at = EXCLUDED.started_at, completed_at = EXCLUDED.completed_at,
      duration_ms = EXCLUDED.duration_ms, error_code = EXCLUDED.error_code, error_message = EXCLUDED.error_message,
      error_step = EXCLUDED.error_step, last_synced_at = now();
    -- A finished job made live again (an operator's requeue) leaves the
    -- read model; the job list shows it from the queue.
    DELETE FROM stepwise.execution_metadata m
     WHERE m.job_id = ANY(ARRAY(
             SELECT n.id FROM new_jobs n JOIN old_jobs o ON o.id = n.id
              WHERE n.status NOT IN ('COMPLETED', 'PARTIAL_SUCCESS', 'FAILED', 'CANCELLED', 'TIMED_OUT')
                AND o.status IN ('COMPLETED', 'PARTIAL_SUCCESS', 'FAILED', 'CANCELLED', 'TIMED_OUT')));
  EXCEPTION WHEN OTHERS THEN
    INSERT INTO stepwise.read_model_failures (source, sqlstate, message, row_count)
    VALUES ('execution_metadata', SQLSTATE, SQLERRM, (SELECT count(*) FROM new_jobs));
  END;
  -- Aggregates count a job once: on the update that moves it from a
  -- non-terminal status INTO a terminal one (unchanged from 0006).
  BEGIN
    INSERT INTO stepwise.aggregate_outbox (organization_id, workflow_id, client_id, initiator_type, status, completed_at, duration_ms)
    SELECT n.organization_id, n.workflow_id, n.client_id, n.initiator_type::text, n.status::text, n.completed_at, n.duration_ms
      FROM new_jobs n JOIN old_jobs o ON o.id = n.id
     WHERE n.status IN ('COMPLETED', 'PARTIAL_SUCCESS', 'FAILED', 'CANCELLED', 'TIMED_OUT')
       AND o.status NOT IN ('COMPLETED', 'PARTIAL_SUCCESS', 'FAILED', 'CANCELLED', 'TIMED_OUT')
       AND n.completed_at IS NOT NULL;
  EXCEPTION WHEN OTHERS THEN
    INSERT INTO stepwise.read_model_failures (source, sqlstate, message, row_count)
    VALUES ('aggregate_metrics', SQLSTATE, SQLERRM, (SELECT count(*) FROM new_jobs));
  END;
  RETURN NULL;
END $$;

--
-- Name: knowledge_tags_text(text[]); Type: FUNCTION; Schema: stepwise; Owner: -
--

CREATE FUNCTION stepwise.knowledge_tags_text(tags text[]) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT array_to_string(tags, ' ') $$;

--
-- Name: phi_audit_guard(); Type: FUNCTION; Schema: stepwise; Owner: -
--

CREATE FUNCTION stepwise.phi_audit_guard() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
  IF TG_OP = 'UPDATE' THEN
    RAISE EXCEPTION 'phi_audit_log rows are immutable' USING ERRCODE = '55000';
  END IF;
  IF OLD.at > now() - interval '6 years' THEN
    RAISE EXCEPTION 'phi_audit_log rows are kept six years; this one is from %', OLD.at USING ERRCODE = '55000';
  END IF;
  RETURN OLD;
END $$;

--
-- Name: phi_audit_no_truncate(); Type: FUNCTION; Schema: stepwise; Owner: -
--

CREATE FUNCTION stepwise.phi_audit_no_truncate() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
  RAISE EXCEPTION 'phi_audit_log is kept six years; it cannot be truncated' USING ERRCODE = '55000';
END $$;

--
-- Name: release_screenshot_refs(uuid[], bytea[]); Type: FUNCTION; Schema: stepwise; Owner: -
--

CREATE FUNCTION stepwise.release_screenshot_refs(orgs uuid[], hashes bytea[]) RETURNS void
    LANGUAGE plpgsql
    AS $$
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

--
-- Name: screenshots_deleted(); Type: FUNCTION; Schema: stepwise; Owner: -
--

CREATE FUNCTION stepwise.screenshots_deleted() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
  PERFORM stepwise.release_screenshot_refs(array_agg(o.organization_id), array_agg(o.sha256))
     FROM old_rows o
    WHERE o.deleted_at IS NULL
   HAVING count(*) > 0;
  RETURN NULL;
END $$;

--
-- Name: screenshots_soft_deleted(); Type: FUNCTION; Schema: stepwise; Owner: -
--

CREATE FUNCTION stepwise.screenshots_soft_deleted() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
  PERFORM stepwise.release_screenshot_refs(array_agg(n.organization_id), array_agg(n.sha256))
     FROM new_rows n JOIN old_rows o ON o.id = n.id
    WHERE o.deleted_at IS NULL AND n.deleted_at IS NOT NULL
   HAVING count(*) > 0;
  RETURN NULL;
END $$;

--
-- Name: template_ratings_rollup(); Type: FUNCTION; Schema: stepwise; Owner: -
--

CREATE FUNCTION stepwise.template_ratings_rollup() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    UPDATE stepwise.templates SET rating_sum = rating_sum + NEW.rating, rating_count = rating_count + 1 WHERE id = NEW.template_id;
  ELSIF TG_OP = 'UPDATE' THEN
    UPDATE stepwise.templates SET rating_sum = rating_sum + NEW.rating - OLD.rating WHERE id = NEW.template_id;
  ELSE
    UPDATE stepwise.templates SET rating_sum = rating_sum - OLD.rating, rating_count = rating_count - 1 WHERE id = OLD.template_id;
  END IF;
  RETURN NULL;
END $$;

--
-- Name: template_search_vector(text, text, text[]); Type: FUNCTION; Schema: stepwise; Owner: -
--

CREATE FUNCTION stepwise.template_search_vector(p_name text, p_description text, p_tags text[]) RETURNS tsvector
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
  SELECT setweight(to_tsvector('english', p_name), 'A')
      || setweight(to_tsvector('english', coalesce(array_to_string(p_tags, ' '), '')), 'A')
      || setweight(to_tsvector('english', p_description), 'B')
$$;

--
-- Name: top_errors_merge(jsonb, jsonb); Type: FUNCTION; Schema: stepwise; Owner: -
--

CREATE FUNCTION stepwise.top_errors_merge(a jsonb, b jsonb) RETURNS jsonb
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
  SELECT coalesce(jsonb_agg(jsonb_build_object('code', code, 'message', message, 'count', n) ORDER BY n DESC, code, message), '[]'::jsonb)
    FROM (SELECT code, message, sum(n) AS n
            FROM (SELECT e->>'code' AS code, e->>'message' AS message, (e->>'count')::bigint AS n
                    FROM jsonb_array_elements(coalesce(a, '[]'::jsonb) || coalesce(b, '[]'::jsonb)) e) x
           GROUP BY code, message
           ORDER BY sum(n) DESC, code, message
           LIMIT 10) t
$$;

--
-- Name: top_errors_of(jsonb[]); Type: FUNCTION; Schema: stepwise; Owner: -
--

CREATE FUNCTION stepwise.top_errors_of(lists jsonb[]) RETURNS jsonb
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
  SELECT coalesce(jsonb_agg(jsonb_build_object('code', code, 'message', message, 'count', n) ORDER BY n DESC, code, message), '[]'::jsonb)
    FROM (SELECT e->>'code' AS code, e->>'message' AS message, sum((e->>'count')::bigint) AS n
            FROM unnest(lists) l, jsonb_array_elements(l) e
           GROUP BY 1, 2
           ORDER BY 3 DESC, 1, 2
           LIMIT 10) t
$$;

--
-- Name: histogram_sum(jsonb); Type: AGGREGATE; Schema: stepwise; Owner: -
--

CREATE AGGREGATE stepwise.histogram_sum(jsonb) (
    SFUNC = stepwise.histogram_merge,
    STYPE = jsonb,
    INITCOND = '{}'
);

--
-- Name: aggregate_metrics; Type: TABLE; Schema: stepwise; Owner: -
--

CREATE TABLE stepwise.aggregate_metrics (
    organization_id uuid NOT NULL,
    period character varying(5) NOT NULL,
    workflow_id uuid DEFAULT '00000000-0000-0000-0000-000000000000'::uuid NOT NULL,
    client_id uuid DEFAULT '00000000-0000-0000-0000-000000000000'::uuid NOT NULL,
    initiator_type character varying(10) DEFAULT 'all'::character varying NOT NULL,
    period_start timestamp with time zone NOT NULL,
    total_count integer DEFAULT 0 NOT NULL,
    completed_count integer DEFAULT 0 NOT NULL,
    partial_success_count integer DEFAULT 0 NOT NULL,
    failed_count integer DEFAULT 0 NOT NULL,
    cancelled_count integer DEFAULT 0 NOT NULL,
    timed_out_count integer DEFAULT 0 NOT NULL,
    duration_count integer DEFAULT 0 NOT NULL,
    total_duration_ms bigint DEFAULT 0 NOT NULL,
    min_duration_ms integer,
    max_duration_ms integer,
    duration_histogram jsonb DEFAULT '{}'::jsonb NOT NULL,
    avg_duration_ms double precision GENERATED ALWAYS AS (
CASE
    WHEN (duration_count > 0) THEN ((total_duration_ms)::double precision / (duration_count)::double precision)
    ELSE NULL::double precision
END) STORED,
    success_rate double precision GENERATED ALWAYS AS (
CASE
    WHEN (total_count > 0) THEN ((completed_count)::double precision / (total_count)::double precision)
    ELSE NULL::double precision
END) STORED,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT aggregate_metrics_period_check CHECK (((period)::text = ANY ((ARRAY['HOUR'::character varying, 'DAY'::character varying, 'MONTH'::character varying])::text[])))
)
WITH (fillfactor='70');

ALTER TABLE ONLY stepwise.aggregate_metrics FORCE ROW LEVEL SECURITY;

--
-- Name: aggregate_outbox; Type: TABLE; Schema: stepwise; Owner: -
--

CREATE TABLE stepwise.aggregate_outbox (
    organization_id uuid NOT NULL,
    workflow_id uuid NOT NULL,
    client_id uuid,
    initiator_type text NOT NULL,
    status text NOT NULL,
    completed_at timestamp with time zone NOT NULL,
    duration_ms integer
);

ALTER TABLE ONLY stepwise.aggregate_outbox FORCE ROW LEVEL SECURITY;

--
-- Name: aggregate_metrics_live; Type: VIEW; Schema: stepwise; Owner: -
--

CREATE VIEW stepwise.aggregate_metrics_live WITH (security_invoker='true') AS
 SELECT a.organization_id,
    a.period,
    a.workflow_id,
    a.client_id,
    a.initiator_type,
    a.period_start,
    a.total_count,
    a.completed_count,
    a.partial_success_count,
    a.failed_count,
    a.cancelled_count,
    a.timed_out_count,
    a.duration_count,
    a.total_duration_ms,
    a.min_duration_ms,
    a.max_duration_ms,
    a.duration_histogram
   FROM stepwise.aggregate_metrics a
UNION ALL
 SELECT o.organization_id,
    r.period,
    r.workflow_id,
    r.client_id,
    r.initiator_type,
    r.period_start,
    r.total_count,
    r.completed_count,
    r.partial_success_count,
    r.failed_count,
    r.cancelled_count,
    r.timed_out_count,
    r.duration_count,
    r.total_duration_ms,
    r.min_duration_ms,
    r.max_duration_ms,
    r.duration_histogram
   FROM (( SELECT b.organization_id,
            array_agg(b.organization_id) AS orgs,
            array_agg(b.workflow_id) AS wfs,
            array_agg(b.client_id) AS cls,
            array_agg(b.initiator_type) AS inis,
            array_agg(b.status) AS sts,
            array_agg(b.completed_at) AS cas,
            array_agg(b.duration_ms) AS durs
           FROM stepwise.aggregate_outbox b
          GROUP BY b.organization_id) o
     CROSS JOIN LATERAL stepwise.aggregate_rows(o.orgs, o.wfs, o.cls, o.inis, o.sts, o.cas, o.durs) r(organization_id, period, workflow_id, client_id, initiator_type, period_start, total_count, completed_count, partial_success_count, failed_count, cancelled_count, timed_out_count, duration_count, total_duration_ms, min_duration_ms, max_duration_ms, duration_histogram));

--
-- Name: api_keys; Type: TABLE; Schema: stepwise; Owner: -
--

CREATE TABLE stepwise.api_keys (
    id uuid NOT NULL,
    organization_id uuid NOT NULL,
    name character varying(200) NOT NULL,
    prefix character varying(32) NOT NULL,
    key_hash bytea NOT NULL,
    role character varying(10) DEFAULT 'OWNER'::character varying NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    last_used_at timestamp with time zone,
    expires_at timestamp with time zone,
    revoked_at timestamp with time zone,
    user_id uuid,
    CONSTRAINT api_keys_key_hash_check CHECK ((octet_length(key_hash) = 32)),
    CONSTRAINT api_keys_role_check CHECK (((role)::text = ANY ((ARRAY['OWNER'::character varying, 'ADMIN'::character varying, 'MEMBER'::character varying, 'VIEWER'::character varying])::text[])))
);

ALTER TABLE ONLY stepwise.api_keys FORCE ROW LEVEL SECURITY;

--
-- Name: approval_decisions; Type: TABLE; Schema: stepwise; Owner: -
--

CREATE TABLE stepwise.approval_decisions (
    id uuid NOT NULL,
    organization_id uuid NOT NULL,
    approval_id uuid NOT NULL,
    seq smallint NOT NULL,
    user_id uuid NOT NULL,
    decision character varying(10) NOT NULL,
    comment character varying(2000),
    form_values jsonb,
    via character varying(4) NOT NULL,
    api_key_id uuid,
    decided_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT approval_decisions_decision_check CHECK (((decision)::text = ANY ((ARRAY['APPROVE'::character varying, 'REJECT'::character varying])::text[]))),
    CONSTRAINT approval_decisions_form_values_check CHECK (((form_values IS NULL) OR (octet_length((form_values)::text) <= 65536))),
    CONSTRAINT approval_decisions_seq_check CHECK ((seq > 0)),
    CONSTRAINT approval_decisions_via_check CHECK (((via)::text = ANY ((ARRAY['API'::character varying, 'LINK'::character varying])::text[])))
);

ALTER TABLE ONLY stepwise.approval_decisions FORCE ROW LEVEL SECURITY;

--
-- Name: approval_links; Type: TABLE; Schema: stepwise; Owner: -
--

CREATE TABLE stepwise.approval_links (
    approval_id uuid NOT NULL,
    organization_id uuid NOT NULL,
    user_id uuid NOT NULL,
    nonce bytea NOT NULL,
    token_hash bytea,
    key_id character varying(64),
    expires_at timestamp with time zone,
    used_at timestamp with time zone,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT approval_links_check CHECK (((token_hash IS NULL) = (key_id IS NULL))),
    CONSTRAINT approval_links_nonce_check CHECK ((octet_length(nonce) = 32)),
    CONSTRAINT approval_links_token_hash_check CHECK ((octet_length(token_hash) = 32))
);

ALTER TABLE ONLY stepwise.approval_links FORCE ROW LEVEL SECURITY;

--
-- Name: approvals; Type: TABLE; Schema: stepwise; Owner: -
--

CREATE TABLE stepwise.approvals (
    id uuid NOT NULL,
    organization_id uuid NOT NULL,
    job_id uuid NOT NULL,
    step_path text NOT NULL,
    title character varying(500) NOT NULL,
    approver_roles text[] DEFAULT '{}'::text[] NOT NULL,
    approver_users uuid[] DEFAULT '{}'::uuid[] NOT NULL,
    exclude_initiator boolean DEFAULT false NOT NULL,
    initiated_by uuid,
    required smallint NOT NULL,
    form jsonb,
    status character varying(10) DEFAULT 'PENDING'::character varying NOT NULL,
    timeout_outcome character varying(10),
    requested_at timestamp with time zone DEFAULT now() NOT NULL,
    expires_at timestamp with time zone,
    decided_at timestamp with time zone,
    CONSTRAINT approvals_approver_roles_check CHECK ((approver_roles <@ ARRAY['VIEWER'::text, 'MEMBER'::text, 'ADMIN'::text, 'OWNER'::text])),
    CONSTRAINT approvals_check CHECK (((cardinality(approver_roles) + cardinality(approver_users)) > 0)),
    CONSTRAINT approvals_check1 CHECK ((((status)::text = 'PENDING'::text) = (decided_at IS NULL))),
    CONSTRAINT approvals_check2 CHECK ((((status)::text = 'EXPIRED'::text) = (timeout_outcome IS NOT NULL))),
    CONSTRAINT approvals_form_check CHECK (((form IS NULL) OR (octet_length((form)::text) <= 65536))),
    CONSTRAINT approvals_required_check CHECK (((required >= 1) AND (required <= 10))),
    CONSTRAINT approvals_status_check CHECK (((status)::text = ANY ((ARRAY['PENDING'::character varying, 'APPROVED'::character varying, 'REJECTED'::character varying, 'EXPIRED'::character varying])::text[]))),
    CONSTRAINT approvals_step_path_check CHECK (((length(step_path) >= 1) AND (length(step_path) <= 1000))),
    CONSTRAINT approvals_timeout_outcome_check CHECK (((timeout_outcome)::text = ANY ((ARRAY['APPROVED'::character varying, 'REJECTED'::character varying])::text[])))
);

ALTER TABLE ONLY stepwise.approvals FORCE ROW LEVEL SECURITY;

--
-- Name: archive_blobs; Type: TABLE; Schema: stepwise; Owner: -
--

CREATE TABLE stepwise.archive_blobs (
    blob_key character varying(512) NOT NULL,
    organization_id uuid NOT NULL,
    resource_type character varying(20) NOT NULL,
    bytes bigint NOT NULL,
    sha256 bytea NOT NULL,
    record_count integer NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT archive_blobs_bytes_check CHECK ((bytes >= 0)),
    CONSTRAINT archive_blobs_record_count_check CHECK ((record_count >= 0)),
    CONSTRAINT archive_blobs_sha256_check CHECK ((octet_length(sha256) = 32))
);

ALTER TABLE ONLY stepwise.archive_blobs FORCE ROW LEVEL SECURITY;

--
-- Name: archive_holds; Type: TABLE; Schema: stepwise; Owner: -
--

CREATE TABLE stepwise.archive_holds (
    organization_id uuid NOT NULL,
    job_id uuid NOT NULL,
    hold_until timestamp with time zone NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL
);

ALTER TABLE ONLY stepwise.archive_holds FORCE ROW LEVEL SECURITY;

--
-- Name: blob_deletions; Type: TABLE; Schema: stepwise; Owner: -
--

CREATE TABLE stepwise.blob_deletions (
    blob_key character varying(512) NOT NULL,
    organization_id uuid,
    queued_at timestamp with time zone DEFAULT now() NOT NULL
);

ALTER TABLE ONLY stepwise.blob_deletions FORCE ROW LEVEL SECURITY;

--
-- Name: bulk_operations; Type: TABLE; Schema: stepwise; Owner: -
--

CREATE TABLE stepwise.bulk_operations (
    id uuid NOT NULL,
    organization_id uuid NOT NULL,
    created_by character varying(200) NOT NULL,
    action character varying(10) NOT NULL,
    retry_from character varying(20),
    job_ids uuid[],
    filter jsonb,
    status character varying(10) DEFAULT 'RUNNING'::character varying NOT NULL,
    total integer NOT NULL,
    done integer DEFAULT 0 NOT NULL,
    succeeded integer DEFAULT 0 NOT NULL,
    failed integer DEFAULT 0 NOT NULL,
    errors jsonb DEFAULT '[]'::jsonb NOT NULL,
    cursor jsonb,
    lease_holder character varying(200),
    lease_until timestamp with time zone,
    chunk_failures smallint DEFAULT 0 NOT NULL,
    last_error character varying(2000),
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    finished_at timestamp with time zone,
    CONSTRAINT bulk_operations_action_check CHECK (((action)::text = ANY ((ARRAY['cancel'::character varying, 'retry'::character varying])::text[]))),
    CONSTRAINT bulk_operations_check CHECK (((job_ids IS NULL) <> (filter IS NULL))),
    CONSTRAINT bulk_operations_check1 CHECK ((((action)::text = 'retry'::text) = (retry_from IS NOT NULL))),
    CONSTRAINT bulk_operations_check2 CHECK ((done = (succeeded + failed))),
    CONSTRAINT bulk_operations_check3 CHECK ((((status)::text = 'RUNNING'::text) = (finished_at IS NULL))),
    CONSTRAINT bulk_operations_done_check CHECK ((done >= 0)),
    CONSTRAINT bulk_operations_errors_check CHECK (((jsonb_typeof(errors) = 'array'::text) AND (jsonb_array_length(errors) <= 50))),
    CONSTRAINT bulk_operations_failed_check CHECK ((failed >= 0)),
    CONSTRAINT bulk_operations_filter_check CHECK ((octet_length((filter)::text) <= 16384)),
    CONSTRAINT bulk_operations_job_ids_check CHECK (((cardinality(job_ids) >= 1) AND (cardinality(job_ids) <= 1000))),
    CONSTRAINT bulk_operations_retry_from_check CHECK (((retry_from)::text = ANY ((ARRAY['failed-step'::character varying, 'start'::character varying])::text[]))),
    CONSTRAINT bulk_operations_status_check CHECK (((status)::text = ANY ((ARRAY['RUNNING'::character varying, 'COMPLETED'::character varying, 'FAILED'::character varying])::text[]))),
    CONSTRAINT bulk_operations_succeeded_check CHECK ((succeeded >= 0)),
    CONSTRAINT bulk_operations_total_check CHECK ((total >= 0))
);

ALTER TABLE ONLY stepwise.bulk_operations FORCE ROW LEVEL SECURITY;

--
-- Name: clients; Type: TABLE; Schema: stepwise; Owner: -
--

CREATE TABLE stepwise.clients (
    id uuid NOT NULL,
    organization_id uuid NOT NULL,
    name character varying(200) NOT NULL,
    external_id character varying(100),
    created_at timestamp with time zone DEFAULT now() NOT NULL
);

ALTER TABLE ONLY stepwise.clients FORCE ROW LEVEL SECURITY;

--
-- Name: credential_audit_log; Type: TABLE; Schema: stepwise; Owner: -
--

CREATE TABLE stepwise.credential_audit_log (
    id uuid NOT NULL,
    organization_id uuid NOT NULL,
    credential_id uuid NOT NULL,
    credential_name character varying(100) NOT NULL,
    action character varying(10) NOT NULL,
    actor character varying(200) NOT NULL,
    api_key_id uuid,
    job_id uuid,
    step_id character varying(100),
    at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT credential_audit_log_action_check CHECK (((action)::text = ANY ((ARRAY['CREATE'::character varying, 'UPDATE'::character varying, 'ROTATE'::character varying, 'DELETE'::character varying, 'USE'::character varying])::text[])))
);

ALTER TABLE ONLY stepwise.credential_audit_log FORCE ROW LEVEL SECURITY;

--
-- Name: credentials; Type: TABLE; Schema: stepwise; Owner: -
--

CREATE TABLE stepwise.credentials (
    id uuid NOT NULL,
    organization_id uuid NOT NULL,
    provider character varying(100) NOT NULL,
    name character varying(100) NOT NULL,
    ciphertext bytea NOT NULL,
    iv bytea NOT NULL,
    tag bytea NOT NULL,
    key_id character varying(64) NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT credentials_ciphertext_check CHECK ((octet_length(ciphertext) <= 65536)),
    CONSTRAINT credentials_iv_check CHECK ((octet_length(iv) = 12)),
    CONSTRAINT credentials_name_check CHECK (((name)::text ~ '^[A-Za-z_][A-Za-z0-9_]*$'::text)),
    CONSTRAINT credentials_provider_check CHECK ((length(btrim((provider)::text)) > 0)),
    CONSTRAINT credentials_tag_check CHECK ((octet_length(tag) = 16))
);

ALTER TABLE ONLY stepwise.credentials FORCE ROW LEVEL SECURITY;

--
-- Name: debounce_keys; Type: TABLE; Schema: stepwise; Owner: -
--

CREATE TABLE stepwise.debounce_keys (
    organization_id uuid NOT NULL,
    workflow_id uuid NOT NULL,
    key_hash uuid NOT NULL,
    job_id uuid NOT NULL,
    deadline_at timestamp with time zone NOT NULL
);

ALTER TABLE ONLY stepwise.debounce_keys FORCE ROW LEVEL SECURITY;

--
-- Name: dedupe_keys; Type: TABLE; Schema: stepwise; Owner: -
--

CREATE TABLE stepwise.dedupe_keys (
    organization_id uuid NOT NULL,
    workflow_id uuid NOT NULL,
    key_hash uuid NOT NULL,
    job_id uuid NOT NULL,
    expires_at timestamp with time zone NOT NULL
);

ALTER TABLE ONLY stepwise.dedupe_keys FORCE ROW LEVEL SECURITY;

--
-- Name: execution_checkpoints; Type: TABLE; Schema: stepwise; Owner: -
--

CREATE TABLE stepwise.execution_checkpoints (
    job_id uuid NOT NULL,
    organization_id uuid NOT NULL,
    next_step integer NOT NULL,
    outputs jsonb DEFAULT '{}'::jsonb NOT NULL,
    failed_steps jsonb DEFAULT '[]'::jsonb NOT NULL,
    state jsonb DEFAULT '{}'::jsonb NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    carried jsonb,
    CONSTRAINT execution_checkpoints_next_step_check CHECK ((next_step >= 0))
);

ALTER TABLE ONLY stepwise.execution_checkpoints FORCE ROW LEVEL SECURITY;

--
-- Name: execution_log; Type: TABLE; Schema: stepwise; Owner: -
--

CREATE TABLE stepwise.execution_log (
    organization_id uuid NOT NULL,
    job_id uuid NOT NULL,
    ts timestamp with time zone NOT NULL,
    seq integer NOT NULL,
    step_index smallint,
    kind smallint NOT NULL,
    level smallint NOT NULL,
    message text NOT NULL,
    data jsonb,
    path text,
    CONSTRAINT execution_log_level_check CHECK (((level >= 1) AND (level <= 6)))
)
PARTITION BY RANGE (ts);

ALTER TABLE ONLY stepwise.execution_log FORCE ROW LEVEL SECURITY;

--
-- Name: execution_log_archives; Type: TABLE; Schema: stepwise; Owner: -
--

CREATE TABLE stepwise.execution_log_archives (
    id uuid NOT NULL,
    organization_id uuid NOT NULL,
    job_id uuid NOT NULL,
    blob_key character varying(512) NOT NULL,
    byte_offset bigint NOT NULL,
    compressed_size integer NOT NULL,
    record_count integer NOT NULL,
    first_seq integer NOT NULL,
    last_seq integer NOT NULL,
    start_date timestamp with time zone NOT NULL,
    end_date timestamp with time zone NOT NULL,
    sha256 bytea NOT NULL,
    archived_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT execution_log_archives_byte_offset_check CHECK ((byte_offset >= 0)),
    CONSTRAINT execution_log_archives_check CHECK ((last_seq >= first_seq)),
    CONSTRAINT execution_log_archives_compressed_size_check CHECK ((compressed_size > 0)),
    CONSTRAINT execution_log_archives_record_count_check CHECK ((record_count > 0)),
    CONSTRAINT execution_log_archives_sha256_check CHECK ((octet_length(sha256) = 32))
);

ALTER TABLE ONLY stepwise.execution_log_archives FORCE ROW LEVEL SECURITY;

--
-- Name: execution_log_default; Type: TABLE; Schema: stepwise; Owner: -
--

CREATE TABLE stepwise.execution_log_default (
    organization_id uuid NOT NULL,
    job_id uuid NOT NULL,
    ts timestamp with time zone NOT NULL,
    seq integer NOT NULL,
    step_index smallint,
    kind smallint NOT NULL,
    level smallint NOT NULL,
    message text NOT NULL,
    data jsonb,
    path text,
    CONSTRAINT execution_log_level_check CHECK (((level >= 1) AND (level <= 6)))
);

--
-- Name: execution_metadata; Type: TABLE; Schema: stepwise; Owner: -
--

CREATE TABLE stepwise.execution_metadata (
    job_id uuid NOT NULL,
    organization_id uuid NOT NULL,
    workflow_id uuid NOT NULL,
    client_id uuid,
    run_number bigint NOT NULL,
    status character varying(16) NOT NULL,
    initiator_type character varying(10) NOT NULL,
    steps_total integer NOT NULL,
    steps_completed integer NOT NULL,
    attempts integer NOT NULL,
    retry_count integer NOT NULL,
    created_at timestamp with time zone NOT NULL,
    started_at timestamp with time zone,
    completed_at timestamp with time zone,
    duration_ms integer,
    error_code character varying(100),
    error_message character varying(500),
    error_step character varying(100),
    last_synced_at timestamp with time zone DEFAULT now() NOT NULL,
    parent_job_id uuid
)
WITH (fillfactor='100');

ALTER TABLE ONLY stepwise.execution_metadata FORCE ROW LEVEL SECURITY;

--
-- Name: execution_screenshots; Type: TABLE; Schema: stepwise; Owner: -
--

CREATE TABLE stepwise.execution_screenshots (
    id uuid NOT NULL,
    organization_id uuid NOT NULL,
    job_id uuid NOT NULL,
    step_index smallint,
    stream_seq integer,
    type character varying(20) DEFAULT 'SCREENSHOT'::character varying NOT NULL,
    name character varying(200),
    content_type character varying(100) NOT NULL,
    width integer,
    height integer,
    bytes bigint NOT NULL,
    sha256 bytea NOT NULL,
    blob_key character varying(512) NOT NULL,
    captured_at timestamp with time zone DEFAULT now() NOT NULL,
    retain_until timestamp with time zone,
    deleted_at timestamp with time zone,
    archive_key character varying(512),
    CONSTRAINT execution_screenshots_bytes_check CHECK ((bytes >= 0)),
    CONSTRAINT execution_screenshots_height_check CHECK (((height IS NULL) OR ((height >= 1) AND (height <= 100000)))),
    CONSTRAINT execution_screenshots_sha256_check CHECK ((octet_length(sha256) = 32)),
    CONSTRAINT execution_screenshots_type_check CHECK (((type)::text = ANY ((ARRAY['SCREENSHOT'::character varying, 'ERROR_SCREENSHOT'::character varying, 'ARTIFACT'::character varying])::text[]))),
    CONSTRAINT execution_screenshots_width_check CHECK (((width IS NULL) OR ((width >= 1) AND (width <= 100000))))
);

ALTER TABLE ONLY stepwise.execution_screenshots FORCE ROW LEVEL SECURITY;

--
-- Name: execution_step_results; Type: TABLE; Schema: stepwise; Owner: -
--

CREATE TABLE stepwise.execution_step_results (
    job_id uuid NOT NULL,
    organization_id uuid NOT NULL,
    path text NOT NULL,
    status smallint NOT NULL,
    output jsonb,
    state jsonb,
    seq integer DEFAULT 0 NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT execution_step_results_path_check CHECK ((length(path) <= 1000)),
    CONSTRAINT execution_step_results_status_check CHECK (((status >= 1) AND (status <= 4)))
);

ALTER TABLE ONLY stepwise.execution_step_results FORCE ROW LEVEL SECURITY;

--
-- Name: job_queue; Type: TABLE; Schema: stepwise; Owner: -
--

CREATE TABLE stepwise.job_queue (
    job_id uuid NOT NULL,
    organization_id uuid NOT NULL,
    priority smallint DEFAULT 0 NOT NULL,
    run_at timestamp with time zone DEFAULT now() NOT NULL,
    locked_by character varying(100),
    locked_until timestamp with time zone,
    workflow_id uuid NOT NULL,
    wake_requested boolean DEFAULT false NOT NULL,
    lease_epoch integer DEFAULT 0 NOT NULL,
    concurrency_keys bigint[],
    concurrency_limits integer[],
    parked_until timestamp with time zone
)
WITH (fillfactor='25');

ALTER TABLE ONLY stepwise.job_queue FORCE ROW LEVEL SECURITY;

--
-- Name: job_result_archives; Type: TABLE; Schema: stepwise; Owner: -
--

CREATE TABLE stepwise.job_result_archives (
    job_id uuid NOT NULL,
    organization_id uuid NOT NULL,
    blob_key character varying(512) NOT NULL,
    size_bytes bigint NOT NULL,
    stored_bytes bigint NOT NULL,
    content_encoding character varying(10) DEFAULT 'gzip'::character varying NOT NULL,
    sha256 bytea NOT NULL,
    archived_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT job_result_archives_content_encoding_check CHECK (((content_encoding)::text = ANY ((ARRAY['gzip'::character varying, 'identity'::character varying])::text[]))),
    CONSTRAINT job_result_archives_sha256_check CHECK ((octet_length(sha256) = 32)),
    CONSTRAINT job_result_archives_size_bytes_check CHECK (((size_bytes >= 0) AND (size_bytes <= 1048576))),
    CONSTRAINT job_result_archives_stored_bytes_check CHECK ((stored_bytes >= 0))
);

ALTER TABLE ONLY stepwise.job_result_archives FORCE ROW LEVEL SECURITY;

--
-- Name: job_search_keys; Type: TABLE; Schema: stepwise; Owner: -
--

CREATE TABLE stepwise.job_search_keys (
    organization_id uuid NOT NULL,
    job_id uuid NOT NULL,
    key text NOT NULL,
    value text NOT NULL,
    created_at timestamp with time zone NOT NULL,
    run_number bigint NOT NULL,
    CONSTRAINT job_search_keys_key_check CHECK (((length(key) >= 1) AND (length(key) <= 200))),
    CONSTRAINT job_search_keys_value_check CHECK (((length(value) >= 1) AND (length(value) <= 200)))
);

ALTER TABLE ONLY stepwise.job_search_keys FORCE ROW LEVEL SECURITY;

--
-- Name: job_signals; Type: TABLE; Schema: stepwise; Owner: -
--

CREATE TABLE stepwise.job_signals (
    id uuid NOT NULL,
    organization_id uuid NOT NULL,
    job_id uuid NOT NULL,
    name character varying(100) NOT NULL,
    payload jsonb,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    consumed_at timestamp with time zone,
    CONSTRAINT job_signals_payload_check CHECK (((payload IS NULL) OR (octet_length((payload)::text) <= 2097152)))
);

ALTER TABLE ONLY stepwise.job_signals FORCE ROW LEVEL SECURITY;

--
-- Name: jobs; Type: TABLE; Schema: stepwise; Owner: -
--

CREATE TABLE stepwise.jobs (
    id uuid NOT NULL,
    organization_id uuid NOT NULL,
    workflow_id uuid NOT NULL,
    workflow_version integer NOT NULL,
    client_id uuid,
    run_number bigint NOT NULL,
    status character varying(16) DEFAULT 'PENDING'::character varying NOT NULL,
    initiator_type character varying(10) DEFAULT 'API'::character varying NOT NULL,
    retry_of_job_id uuid,
    priority smallint DEFAULT 0 NOT NULL,
    attempts integer DEFAULT 0 NOT NULL,
    idempotency_key character varying(200),
    input jsonb,
    result jsonb,
    error_code character varying(100),
    error_message character varying(2000),
    error_step character varying(100),
    steps_total integer DEFAULT 0 NOT NULL,
    steps_completed integer DEFAULT 0 NOT NULL,
    last_seq integer DEFAULT 0 NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    started_at timestamp with time zone,
    completed_at timestamp with time zone,
    duration_ms integer,
    retry_count integer DEFAULT 0 NOT NULL,
    max_retries integer DEFAULT 0 NOT NULL,
    max_retries_reached boolean DEFAULT false NOT NULL,
    timeout_ms integer,
    deadline_at timestamp with time zone,
    cancel_requested_at timestamp with time zone,
    initiated_by uuid,
    parent_job_id uuid,
    parent_step_path text,
    depth smallint DEFAULT 0 NOT NULL,
    CONSTRAINT jobs_depth_check CHECK (((depth >= 0) AND (depth <= 10))),
    CONSTRAINT jobs_initiator_type_check CHECK (((initiator_type)::text = ANY ((ARRAY['MANUAL'::character varying, 'SCHEDULE'::character varying, 'WEBHOOK'::character varying, 'API'::character varying, 'RETRY'::character varying, 'PARENT'::character varying])::text[]))),
    CONSTRAINT jobs_input_check CHECK (((input IS NULL) OR (octet_length((input)::text) <= 2097152))),
    CONSTRAINT jobs_parent_step_path_check CHECK (((parent_step_path IS NULL) OR (length(parent_step_path) <= 1000))),
    CONSTRAINT jobs_result_check CHECK (((result IS NULL) OR (octet_length((result)::text) <= 2097152))),
    CONSTRAINT jobs_status_check CHECK (((status)::text = ANY ((ARRAY['PENDING'::character varying, 'RUNNING'::character varying, 'WAITING'::character varying, 'COMPLETED'::character varying, 'PARTIAL_SUCCESS'::character varying, 'FAILED'::character varying, 'CANCELLED'::character varying, 'TIMED_OUT'::character varying])::text[])))
)
WITH (fillfactor='50');

ALTER TABLE ONLY stepwise.jobs FORCE ROW LEVEL SECURITY;

--
-- Name: knowledge_documents; Type: TABLE; Schema: stepwise; Owner: -
--

CREATE TABLE stepwise.knowledge_documents (
    id uuid NOT NULL,
    organization_id uuid NOT NULL,
    collection character varying(64) NOT NULL,
    external_id character varying(200) NOT NULL,
    type character varying(64) NOT NULL,
    title character varying(500) NOT NULL,
    text text NOT NULL,
    condition text,
    action text,
    tags text[] DEFAULT '{}'::text[] NOT NULL,
    metadata jsonb DEFAULT '{}'::jsonb NOT NULL,
    search tsvector GENERATED ALWAYS AS (((((setweight(to_tsvector('english'::regconfig, (title)::text), 'A'::"char") || setweight(to_tsvector('english'::regconfig, stepwise.knowledge_tags_text(tags)), 'A'::"char")) || setweight(to_tsvector('english'::regconfig, COALESCE(condition, ''::text)), 'B'::"char")) || setweight(to_tsvector('english'::regconfig, text), 'C'::"char")) || setweight(to_tsvector('english'::regconfig, COALESCE(action, ''::text)), 'C'::"char"))) STORED,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT knowledge_documents_action_check CHECK ((length(action) <= 4000)),
    CONSTRAINT knowledge_documents_collection_check CHECK (((collection)::text ~ '^[a-z0-9][a-z0-9_-]{0,63}$'::text)),
    CONSTRAINT knowledge_documents_condition_check CHECK ((length(condition) <= 4000)),
    CONSTRAINT knowledge_documents_external_id_check CHECK ((length((external_id)::text) >= 1)),
    CONSTRAINT knowledge_documents_metadata_check CHECK (((jsonb_typeof(metadata) = 'object'::text) AND (octet_length((metadata)::text) <= 65536))),
    CONSTRAINT knowledge_documents_tags_check CHECK ((cardinality(tags) <= 32)),
    CONSTRAINT knowledge_documents_text_check CHECK (((length(text) >= 1) AND (length(text) <= 20000))),
    CONSTRAINT knowledge_documents_title_check CHECK ((length((title)::text) >= 1)),
    CONSTRAINT knowledge_documents_type_check CHECK ((length((type)::text) >= 1))
);

ALTER TABLE ONLY stepwise.knowledge_documents FORCE ROW LEVEL SECURITY;

--
-- Name: knowledge_usage_daily; Type: TABLE; Schema: stepwise; Owner: -
--

CREATE TABLE stepwise.knowledge_usage_daily (
    organization_id uuid NOT NULL,
    collection character varying(64) NOT NULL,
    day date NOT NULL,
    workflow_id uuid NOT NULL,
    document_id uuid NOT NULL,
    retrieved integer DEFAULT 0 NOT NULL,
    used integer DEFAULT 0 NOT NULL,
    CONSTRAINT knowledge_usage_daily_retrieved_check CHECK ((retrieved >= 0)),
    CONSTRAINT knowledge_usage_daily_used_check CHECK ((used >= 0))
);

ALTER TABLE ONLY stepwise.knowledge_usage_daily FORCE ROW LEVEL SECURITY;

--
-- Name: log_levels; Type: TABLE; Schema: stepwise; Owner: -
--

CREATE TABLE stepwise.log_levels (
    level smallint NOT NULL,
    name character varying(5) NOT NULL
);

--
-- Name: maintenance_leases; Type: TABLE; Schema: stepwise; Owner: -
--

CREATE TABLE stepwise.maintenance_leases (
    name character varying(50) NOT NULL,
    holder character varying(100) NOT NULL,
    expires_at timestamp with time zone NOT NULL
);

--
-- Name: organizations; Type: TABLE; Schema: stepwise; Owner: -
--

CREATE TABLE stepwise.organizations (
    id uuid NOT NULL,
    name character varying(200) NOT NULL,
    plan character varying(20) DEFAULT 'STARTER'::character varying NOT NULL,
    run_counter bigint DEFAULT 0 NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    max_concurrent_runs integer,
    CONSTRAINT organizations_max_concurrent_runs_check CHECK ((max_concurrent_runs > 0)),
    CONSTRAINT organizations_name_check CHECK ((length(btrim((name)::text)) > 0)),
    CONSTRAINT organizations_plan_check CHECK (((plan)::text = ANY ((ARRAY['STARTER'::character varying, 'PROFESSIONAL'::character varying, 'ENTERPRISE'::character varying])::text[])))
);

ALTER TABLE ONLY stepwise.organizations FORCE ROW LEVEL SECURITY;

--
-- Name: phi_audit_log; Type: TABLE; Schema: stepwise; Owner: -
--

CREATE TABLE stepwise.phi_audit_log (
    id uuid NOT NULL,
    organization_id uuid NOT NULL,
    at timestamp with time zone DEFAULT now() NOT NULL,
    actor character varying(200) NOT NULL,
    api_key_id uuid,
    resource_type character varying(20) NOT NULL,
    resource_id uuid NOT NULL,
    job_id uuid,
    workflow_id uuid,
    fields text[] NOT NULL,
    ip character varying(64),
    user_agent character varying(500),
    CONSTRAINT phi_audit_log_fields_check CHECK (((cardinality(fields) >= 1) AND (cardinality(fields) <= 100))),
    CONSTRAINT phi_audit_log_resource_type_check CHECK (((resource_type)::text = ANY ((ARRAY['JOB'::character varying, 'STREAM'::character varying, 'SCREENSHOT'::character varying])::text[])))
)
PARTITION BY RANGE (at);

ALTER TABLE ONLY stepwise.phi_audit_log FORCE ROW LEVEL SECURITY;

--
-- Name: phi_audit_log_default; Type: TABLE; Schema: stepwise; Owner: -
--

CREATE TABLE stepwise.phi_audit_log_default (
    id uuid NOT NULL,
    organization_id uuid NOT NULL,
    at timestamp with time zone DEFAULT now() NOT NULL,
    actor character varying(200) NOT NULL,
    api_key_id uuid,
    resource_type character varying(20) NOT NULL,
    resource_id uuid NOT NULL,
    job_id uuid,
    workflow_id uuid,
    fields text[] NOT NULL,
    ip character varying(64),
    user_agent character varying(500),
    CONSTRAINT phi_audit_log_fields_check CHECK (((cardinality(fields) >= 1) AND (cardinality(fields) <= 100))),
    CONSTRAINT phi_audit_log_resource_type_check CHECK (((resource_type)::text = ANY ((ARRAY['JOB'::character varying, 'STREAM'::character varying, 'SCREENSHOT'::character varying])::text[])))
);

--
-- Name: rate_limit_buckets; Type: TABLE; Schema: stepwise; Owner: -
--

CREATE TABLE stepwise.rate_limit_buckets (
    organization_id uuid NOT NULL,
    bucket text NOT NULL,
    key text NOT NULL,
    tokens double precision NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    CONSTRAINT rate_limit_buckets_bucket_check CHECK ((bucket ~ '^[A-Za-z0-9_.:-]{1,100}$'::text)),
    CONSTRAINT rate_limit_buckets_key_check CHECK ((length(key) <= 200))
)
WITH (fillfactor='50');

ALTER TABLE ONLY stepwise.rate_limit_buckets FORCE ROW LEVEL SECURITY;

--
-- Name: read_model_failures; Type: TABLE; Schema: stepwise; Owner: -
--

CREATE TABLE stepwise.read_model_failures (
    id bigint NOT NULL,
    occurred_at timestamp with time zone DEFAULT now() NOT NULL,
    source character varying(40) NOT NULL,
    sqlstate character varying(5),
    message text NOT NULL,
    row_count integer NOT NULL,
    resolved_at timestamp with time zone
);

--
-- Name: read_model_failures_id_seq; Type: SEQUENCE; Schema: stepwise; Owner: -
--

ALTER TABLE stepwise.read_model_failures ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME stepwise.read_model_failures_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

--
-- Name: retention_policies; Type: TABLE; Schema: stepwise; Owner: -
--

CREATE TABLE stepwise.retention_policies (
    organization_id uuid NOT NULL,
    resource_type character varying(20) NOT NULL,
    hot_retention_days integer DEFAULT 30 NOT NULL,
    archive_retention_days integer DEFAULT 365 NOT NULL,
    delete_after_days integer,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT retention_policies_archive_retention_days_check CHECK (((archive_retention_days >= 1) AND (archive_retention_days <= 36500))),
    CONSTRAINT retention_policies_delete_after_days_check CHECK (((delete_after_days IS NULL) OR ((delete_after_days >= 1) AND (delete_after_days <= 36500)))),
    CONSTRAINT retention_policies_hot_retention_days_check CHECK (((hot_retention_days >= 1) AND (hot_retention_days <= 36500))),
    CONSTRAINT retention_policies_order_check CHECK (((archive_retention_days >= hot_retention_days) AND ((delete_after_days IS NULL) OR (delete_after_days >= archive_retention_days)))),
    CONSTRAINT retention_policies_phi_minimum_check CHECK ((((resource_type)::text <> 'phi_audit'::text) OR ((archive_retention_days >= 2192) AND ((delete_after_days IS NULL) OR (delete_after_days >= 2192))))),
    CONSTRAINT retention_policies_resource_type_check CHECK (((resource_type)::text = ANY ((ARRAY['execution_log'::character varying, 'screenshot'::character varying, 'job'::character varying, 'job_result'::character varying, 'phi_audit'::character varying])::text[])))
);

ALTER TABLE ONLY stepwise.retention_policies FORCE ROW LEVEL SECURITY;

--
-- Name: retrieval_documents; Type: TABLE; Schema: stepwise; Owner: -
--

CREATE TABLE stepwise.retrieval_documents (
    retrieval_id uuid NOT NULL,
    document_id uuid NOT NULL,
    score real NOT NULL,
    rank smallint NOT NULL,
    used_at timestamp with time zone,
    used_by_path text,
    used_reason character varying(500),
    CONSTRAINT retrieval_documents_check CHECK (((used_at IS NULL) = (used_by_path IS NULL))),
    CONSTRAINT retrieval_documents_rank_check CHECK (((rank >= 1) AND (rank <= 50))),
    CONSTRAINT retrieval_documents_used_by_path_check CHECK ((length(used_by_path) <= 1000))
);

ALTER TABLE ONLY stepwise.retrieval_documents FORCE ROW LEVEL SECURITY;

--
-- Name: retrievals; Type: TABLE; Schema: stepwise; Owner: -
--

CREATE TABLE stepwise.retrievals (
    id uuid NOT NULL,
    organization_id uuid NOT NULL,
    job_id uuid NOT NULL,
    workflow_id uuid NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    took_ms integer NOT NULL,
    average_score real,
    count smallint NOT NULL,
    collection character varying(64) NOT NULL,
    step_path text NOT NULL,
    query text NOT NULL,
    CONSTRAINT retrievals_count_check CHECK (((count >= 0) AND (count <= 50))),
    CONSTRAINT retrievals_query_check CHECK ((length(query) <= 2000)),
    CONSTRAINT retrievals_step_path_check CHECK (((length(step_path) >= 1) AND (length(step_path) <= 1000))),
    CONSTRAINT retrievals_took_ms_check CHECK ((took_ms >= 0))
);

ALTER TABLE ONLY stepwise.retrievals FORCE ROW LEVEL SECURITY;

--
-- Name: saved_views; Type: TABLE; Schema: stepwise; Owner: -
--

CREATE TABLE stepwise.saved_views (
    id uuid NOT NULL,
    organization_id uuid NOT NULL,
    owner_user_id uuid NOT NULL,
    name character varying(100) NOT NULL,
    page character varying(20) NOT NULL,
    query character varying(2000) NOT NULL,
    shared boolean DEFAULT false NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT saved_views_name_check CHECK ((length((name)::text) >= 1)),
    CONSTRAINT saved_views_page_check CHECK (((page)::text = 'runs'::text))
);

ALTER TABLE ONLY stepwise.saved_views FORCE ROW LEVEL SECURITY;

--
-- Name: schedule_audit_log; Type: TABLE; Schema: stepwise; Owner: -
--

CREATE TABLE stepwise.schedule_audit_log (
    id uuid NOT NULL,
    organization_id uuid NOT NULL,
    schedule_id uuid NOT NULL,
    action character varying(10) NOT NULL,
    actor character varying(100) NOT NULL,
    before jsonb,
    after jsonb,
    at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT schedule_audit_log_action_check CHECK (((action)::text = ANY ((ARRAY['CREATE'::character varying, 'UPDATE'::character varying, 'PAUSE'::character varying, 'RESUME'::character varying, 'DELETE'::character varying])::text[]))),
    CONSTRAINT schedule_audit_log_after_check CHECK (((after IS NULL) OR (octet_length((after)::text) <= 4194304))),
    CONSTRAINT schedule_audit_log_before_check CHECK (((before IS NULL) OR (octet_length((before)::text) <= 4194304)))
);

ALTER TABLE ONLY stepwise.schedule_audit_log FORCE ROW LEVEL SECURITY;

--
-- Name: schedules; Type: TABLE; Schema: stepwise; Owner: -
--

CREATE TABLE stepwise.schedules (
    id uuid NOT NULL,
    organization_id uuid NOT NULL,
    workflow_id uuid NOT NULL,
    name character varying(200) NOT NULL,
    cron character varying(200) NOT NULL,
    timezone character varying(64) DEFAULT 'UTC'::character varying NOT NULL,
    input jsonb,
    enabled boolean DEFAULT true NOT NULL,
    misfire_policy character varying(10) DEFAULT 'SKIP'::character varying NOT NULL,
    next_fire_at timestamp with time zone,
    last_fired_at timestamp with time zone,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    deleted_at timestamp with time zone,
    CONSTRAINT schedules_cron_check CHECK ((length(btrim((cron)::text)) > 0)),
    CONSTRAINT schedules_input_check CHECK (((input IS NULL) OR (octet_length((input)::text) <= 2097152))),
    CONSTRAINT schedules_misfire_policy_check CHECK (((misfire_policy)::text = ANY ((ARRAY['SKIP'::character varying, 'RUN_ONCE'::character varying])::text[]))),
    CONSTRAINT schedules_name_check CHECK ((length(btrim((name)::text)) > 0))
);

ALTER TABLE ONLY stepwise.schedules FORCE ROW LEVEL SECURITY;

--
-- Name: schema_migrations; Type: TABLE; Schema: stepwise; Owner: -
--

CREATE TABLE stepwise.schema_migrations (
    version integer NOT NULL,
    name text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamp with time zone DEFAULT now() NOT NULL
);

--
-- Name: screenshot_blobs; Type: TABLE; Schema: stepwise; Owner: -
--

CREATE TABLE stepwise.screenshot_blobs (
    organization_id uuid NOT NULL,
    sha256 bytea NOT NULL,
    blob_key character varying(512) NOT NULL,
    bytes bigint NOT NULL,
    ref_count integer NOT NULL,
    stored boolean DEFAULT false NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT screenshot_blobs_bytes_check CHECK ((bytes >= 0)),
    CONSTRAINT screenshot_blobs_ref_count_check CHECK ((ref_count >= 0)),
    CONSTRAINT screenshot_blobs_sha256_check CHECK ((octet_length(sha256) = 32))
);

ALTER TABLE ONLY stepwise.screenshot_blobs FORCE ROW LEVEL SECURITY;

--
-- Name: step_metrics; Type: TABLE; Schema: stepwise; Owner: -
--

CREATE TABLE stepwise.step_metrics (
    organization_id uuid NOT NULL,
    workflow_id uuid NOT NULL,
    step_index smallint NOT NULL,
    period_start timestamp with time zone NOT NULL,
    step_name character varying(100),
    executions integer DEFAULT 0 NOT NULL,
    successes integer DEFAULT 0 NOT NULL,
    failures integer DEFAULT 0 NOT NULL,
    total_duration_ms double precision DEFAULT 0 NOT NULL,
    duration_histogram jsonb DEFAULT '{}'::jsonb NOT NULL,
    top_errors jsonb DEFAULT '[]'::jsonb NOT NULL,
    avg_duration_ms double precision GENERATED ALWAYS AS (
CASE
    WHEN (executions > 0) THEN (total_duration_ms / (executions)::double precision)
    ELSE NULL::double precision
END) STORED,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    period character varying(5) DEFAULT 'DAY'::character varying NOT NULL,
    step_path text DEFAULT ''::text NOT NULL,
    CONSTRAINT step_metrics_period_check CHECK (((period)::text = ANY ((ARRAY['DAY'::character varying, 'MONTH'::character varying])::text[])))
)
WITH (fillfactor='50');

ALTER TABLE ONLY stepwise.step_metrics FORCE ROW LEVEL SECURITY;

--
-- Name: stream_kinds; Type: TABLE; Schema: stepwise; Owner: -
--

CREATE TABLE stepwise.stream_kinds (
    kind smallint NOT NULL,
    name character varying(32) NOT NULL
);

--
-- Name: template_ratings; Type: TABLE; Schema: stepwise; Owner: -
--

CREATE TABLE stepwise.template_ratings (
    template_id uuid NOT NULL,
    organization_id uuid NOT NULL,
    user_id uuid NOT NULL,
    rating smallint NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT template_ratings_rating_check CHECK (((rating >= 1) AND (rating <= 5)))
);

ALTER TABLE ONLY stepwise.template_ratings FORCE ROW LEVEL SECURITY;

--
-- Name: templates; Type: TABLE; Schema: stepwise; Owner: -
--

CREATE TABLE stepwise.templates (
    id uuid NOT NULL,
    owner_organization_id uuid,
    slug character varying(100),
    name character varying(200) NOT NULL,
    description character varying(4000) DEFAULT ''::character varying NOT NULL,
    category character varying(20) NOT NULL,
    tags text[] DEFAULT '{}'::text[] NOT NULL,
    difficulty character varying(12) DEFAULT 'BEGINNER'::character varying NOT NULL,
    estimated_minutes_saved integer DEFAULT 0 NOT NULL,
    definition jsonb NOT NULL,
    required_integrations text[] DEFAULT '{}'::text[] NOT NULL,
    optional_integrations text[] DEFAULT '{}'::text[] NOT NULL,
    settings_schema jsonb DEFAULT '{"type": "object"}'::jsonb NOT NULL,
    author character varying(10) NOT NULL,
    is_public boolean DEFAULT false NOT NULL,
    popularity bigint DEFAULT 0 NOT NULL,
    rating_sum bigint DEFAULT 0 NOT NULL,
    rating_count integer DEFAULT 0 NOT NULL,
    rating double precision GENERATED ALWAYS AS (
CASE
    WHEN (rating_count = 0) THEN (0)::double precision
    ELSE ((rating_sum)::double precision / (rating_count)::double precision)
END) STORED,
    created_by uuid,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    search tsvector GENERATED ALWAYS AS (stepwise.template_search_vector((name)::text, (description)::text, tags)) STORED,
    CONSTRAINT templates_author_check CHECK (((author)::text = ANY ((ARRAY['OFFICIAL'::character varying, 'COMMUNITY'::character varying])::text[]))),
    CONSTRAINT templates_category_check CHECK (((category)::text = ANY ((ARRAY['MARKETING'::character varying, 'SALES'::character varying, 'OPERATIONS'::character varying, 'CUSTOMER_SUPPORT'::character varying, 'ADMIN'::character varying, 'CUSTOM'::character varying])::text[]))),
    CONSTRAINT templates_check CHECK ((((author)::text = 'OFFICIAL'::text) = (owner_organization_id IS NULL))),
    CONSTRAINT templates_check1 CHECK ((((author)::text = 'OFFICIAL'::text) = (slug IS NOT NULL))),
    CONSTRAINT templates_check2 CHECK ((((author)::text = 'COMMUNITY'::text) OR is_public)),
    CONSTRAINT templates_definition_check CHECK (((jsonb_typeof(definition) = 'object'::text) AND (octet_length((definition)::text) <= 1048576))),
    CONSTRAINT templates_difficulty_check CHECK (((difficulty)::text = ANY ((ARRAY['BEGINNER'::character varying, 'INTERMEDIATE'::character varying, 'ADVANCED'::character varying])::text[]))),
    CONSTRAINT templates_estimated_minutes_saved_check CHECK (((estimated_minutes_saved >= 0) AND (estimated_minutes_saved <= 100000))),
    CONSTRAINT templates_name_check CHECK ((length(btrim((name)::text)) > 0)),
    CONSTRAINT templates_optional_integrations_check CHECK ((cardinality(optional_integrations) <= 20)),
    CONSTRAINT templates_popularity_check CHECK ((popularity >= 0)),
    CONSTRAINT templates_rating_count_check CHECK ((rating_count >= 0)),
    CONSTRAINT templates_rating_sum_check CHECK ((rating_sum >= 0)),
    CONSTRAINT templates_required_integrations_check CHECK ((cardinality(required_integrations) <= 20)),
    CONSTRAINT templates_settings_schema_check CHECK (((jsonb_typeof(settings_schema) = 'object'::text) AND (octet_length((settings_schema)::text) <= 65536))),
    CONSTRAINT templates_slug_check CHECK (((slug)::text ~ '^[a-z0-9][a-z0-9-]{0,99}$'::text)),
    CONSTRAINT templates_tags_check CHECK ((cardinality(tags) <= 20))
);

ALTER TABLE ONLY stepwise.templates FORCE ROW LEVEL SECURITY;

--
-- Name: usage_records; Type: TABLE; Schema: stepwise; Owner: -
--

CREATE TABLE stepwise.usage_records (
    organization_id uuid NOT NULL,
    period_start date NOT NULL,
    executions bigint DEFAULT 0 NOT NULL,
    steps bigint DEFAULT 0 NOT NULL,
    storage_bytes bigint DEFAULT 0 NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    ai_input_tokens bigint DEFAULT 0 NOT NULL,
    ai_output_tokens bigint DEFAULT 0 NOT NULL,
    ai_cost_micros bigint DEFAULT 0 NOT NULL,
    CONSTRAINT usage_records_ai_cost_micros_check CHECK ((ai_cost_micros >= 0)),
    CONSTRAINT usage_records_ai_input_tokens_check CHECK ((ai_input_tokens >= 0)),
    CONSTRAINT usage_records_ai_output_tokens_check CHECK ((ai_output_tokens >= 0)),
    CONSTRAINT usage_records_period_start_check CHECK ((EXTRACT(day FROM period_start) = (1)::numeric))
);

ALTER TABLE ONLY stepwise.usage_records FORCE ROW LEVEL SECURITY;

--
-- Name: user_invitations; Type: TABLE; Schema: stepwise; Owner: -
--

CREATE TABLE stepwise.user_invitations (
    id uuid NOT NULL,
    organization_id uuid NOT NULL,
    user_id uuid NOT NULL,
    token_hash bytea NOT NULL,
    created_by character varying(200) NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    used_at timestamp with time zone,
    CONSTRAINT user_invitations_check CHECK ((expires_at > created_at)),
    CONSTRAINT user_invitations_token_hash_check CHECK ((octet_length(token_hash) = 32))
);

ALTER TABLE ONLY stepwise.user_invitations FORCE ROW LEVEL SECURITY;

--
-- Name: users; Type: TABLE; Schema: stepwise; Owner: -
--

CREATE TABLE stepwise.users (
    id uuid NOT NULL,
    organization_id uuid NOT NULL,
    email character varying(254) NOT NULL,
    name character varying(200),
    role character varying(10) DEFAULT 'MEMBER'::character varying NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    disabled_at timestamp with time zone,
    password_hash character varying(255),
    password_changed_at timestamp with time zone,
    CONSTRAINT users_email_check CHECK (((email)::text ~ '^[^\s@]+@[^\s@]+$'::text)),
    CONSTRAINT users_password_hash_check CHECK (((password_hash)::text ~~ 'scrypt$%'::text)),
    CONSTRAINT users_role_check CHECK (((role)::text = ANY ((ARRAY['OWNER'::character varying, 'ADMIN'::character varying, 'MEMBER'::character varying, 'VIEWER'::character varying])::text[])))
);

ALTER TABLE ONLY stepwise.users FORCE ROW LEVEL SECURITY;

--
-- Name: web_sessions; Type: TABLE; Schema: stepwise; Owner: -
--

CREATE TABLE stepwise.web_sessions (
    id bytea NOT NULL,
    organization_id uuid NOT NULL,
    user_id uuid NOT NULL,
    api_key_id uuid,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    last_seen_at timestamp with time zone DEFAULT now() NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    CONSTRAINT web_sessions_check CHECK ((expires_at > created_at)),
    CONSTRAINT web_sessions_id_check CHECK ((octet_length(id) = 32))
);

ALTER TABLE ONLY stepwise.web_sessions FORCE ROW LEVEL SECURITY;

--
-- Name: webhook_deliveries; Type: TABLE; Schema: stepwise; Owner: -
--

CREATE TABLE stepwise.webhook_deliveries (
    organization_id uuid NOT NULL,
    workflow_id uuid NOT NULL,
    signature bytea NOT NULL,
    signed_at timestamp with time zone NOT NULL,
    received_at timestamp with time zone DEFAULT now() NOT NULL,
    job_id uuid NOT NULL,
    CONSTRAINT webhook_deliveries_signature_check CHECK ((octet_length(signature) = 32))
);

ALTER TABLE ONLY stepwise.webhook_deliveries FORCE ROW LEVEL SECURITY;

--
-- Name: webhook_triggers; Type: TABLE; Schema: stepwise; Owner: -
--

CREATE TABLE stepwise.webhook_triggers (
    workflow_id uuid NOT NULL,
    organization_id uuid NOT NULL,
    secret text,
    enabled boolean DEFAULT true NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    rotated_at timestamp with time zone,
    secret_ciphertext bytea,
    secret_iv bytea,
    secret_tag bytea,
    secret_key_id character varying(64),
    CONSTRAINT webhook_triggers_secret_check CHECK (((secret ~~ 'whsec\_%'::text) AND (length(secret) <= 200))),
    CONSTRAINT webhook_triggers_secret_ciphertext_check CHECK ((octet_length(secret_ciphertext) <= 1024)),
    CONSTRAINT webhook_triggers_secret_iv_check CHECK ((octet_length(secret_iv) = 12)),
    CONSTRAINT webhook_triggers_secret_present CHECK (((secret IS NOT NULL) OR ((secret_ciphertext IS NOT NULL) AND (secret_iv IS NOT NULL) AND (secret_tag IS NOT NULL) AND (secret_key_id IS NOT NULL)))),
    CONSTRAINT webhook_triggers_secret_tag_check CHECK ((octet_length(secret_tag) = 16))
);

ALTER TABLE ONLY stepwise.webhook_triggers FORCE ROW LEVEL SECURITY;

--
-- Name: workflow_versions; Type: TABLE; Schema: stepwise; Owner: -
--

CREATE TABLE stepwise.workflow_versions (
    workflow_id uuid NOT NULL,
    version integer NOT NULL,
    organization_id uuid NOT NULL,
    definition jsonb NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT workflow_versions_definition_check CHECK ((octet_length((definition)::text) <= 2097152)),
    CONSTRAINT workflow_versions_version_check CHECK ((version > 0))
);

ALTER TABLE ONLY stepwise.workflow_versions FORCE ROW LEVEL SECURITY;

--
-- Name: workflows; Type: TABLE; Schema: stepwise; Owner: -
--

CREATE TABLE stepwise.workflows (
    id uuid NOT NULL,
    organization_id uuid NOT NULL,
    name character varying(200) NOT NULL,
    description character varying(2000),
    category character varying(100),
    status character varying(10) DEFAULT 'ACTIVE'::character varying NOT NULL,
    current_version integer DEFAULT 1 NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    deleted_at timestamp with time zone,
    max_concurrent_runs integer,
    CONSTRAINT workflows_current_version_check CHECK ((current_version > 0)),
    CONSTRAINT workflows_max_concurrent_runs_check CHECK ((max_concurrent_runs > 0)),
    CONSTRAINT workflows_name_check CHECK ((length(btrim((name)::text)) > 0)),
    CONSTRAINT workflows_status_check CHECK (((status)::text = ANY ((ARRAY['ACTIVE'::character varying, 'PAUSED'::character varying, 'ARCHIVED'::character varying, 'DRAFT'::character varying])::text[])))
);

ALTER TABLE ONLY stepwise.workflows FORCE ROW LEVEL SECURITY;

--
-- Name: execution_log_default; Type: TABLE ATTACH; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.execution_log ATTACH PARTITION stepwise.execution_log_default DEFAULT;

--
-- Name: phi_audit_log_default; Type: TABLE ATTACH; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.phi_audit_log ATTACH PARTITION stepwise.phi_audit_log_default DEFAULT;

--
-- Name: aggregate_metrics aggregate_metrics_pkey; Type: CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.aggregate_metrics
    ADD CONSTRAINT aggregate_metrics_pkey PRIMARY KEY (organization_id, period, client_id, initiator_type, workflow_id, period_start);

--
-- Name: api_keys api_keys_pkey; Type: CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.api_keys
    ADD CONSTRAINT api_keys_pkey PRIMARY KEY (id);

--
-- Name: api_keys api_keys_prefix_key; Type: CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.api_keys
    ADD CONSTRAINT api_keys_prefix_key UNIQUE (prefix);

--
-- Name: approval_decisions approval_decisions_approval_id_seq_key; Type: CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.approval_decisions
    ADD CONSTRAINT approval_decisions_approval_id_seq_key UNIQUE (approval_id, seq);

--
-- Name: approval_decisions approval_decisions_approval_id_user_id_key; Type: CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.approval_decisions
    ADD CONSTRAINT approval_decisions_approval_id_user_id_key UNIQUE (approval_id, user_id);

--
-- Name: approval_decisions approval_decisions_pkey; Type: CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.approval_decisions
    ADD CONSTRAINT approval_decisions_pkey PRIMARY KEY (id);

--
-- Name: approval_links approval_links_pkey; Type: CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.approval_links
    ADD CONSTRAINT approval_links_pkey PRIMARY KEY (approval_id, user_id);

--
-- Name: approvals approvals_job_id_step_path_key; Type: CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.approvals
    ADD CONSTRAINT approvals_job_id_step_path_key UNIQUE (job_id, step_path);

--
-- Name: approvals approvals_organization_id_id_key; Type: CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.approvals
    ADD CONSTRAINT approvals_organization_id_id_key UNIQUE (organization_id, id);

--
-- Name: approvals approvals_pkey; Type: CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.approvals
    ADD CONSTRAINT approvals_pkey PRIMARY KEY (id);

--
-- Name: archive_blobs archive_blobs_pkey; Type: CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.archive_blobs
    ADD CONSTRAINT archive_blobs_pkey PRIMARY KEY (blob_key);

--
-- Name: archive_holds archive_holds_pkey; Type: CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.archive_holds
    ADD CONSTRAINT archive_holds_pkey PRIMARY KEY (organization_id, job_id);

--
-- Name: blob_deletions blob_deletions_pkey; Type: CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.blob_deletions
    ADD CONSTRAINT blob_deletions_pkey PRIMARY KEY (blob_key);

--
-- Name: bulk_operations bulk_operations_organization_id_id_key; Type: CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.bulk_operations
    ADD CONSTRAINT bulk_operations_organization_id_id_key UNIQUE (organization_id, id);

--
-- Name: bulk_operations bulk_operations_pkey; Type: CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.bulk_operations
    ADD CONSTRAINT bulk_operations_pkey PRIMARY KEY (id);

--
-- Name: clients clients_organization_id_external_id_key; Type: CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.clients
    ADD CONSTRAINT clients_organization_id_external_id_key UNIQUE (organization_id, external_id);

--
-- Name: clients clients_organization_id_id_key; Type: CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.clients
    ADD CONSTRAINT clients_organization_id_id_key UNIQUE (organization_id, id);

--
-- Name: clients clients_pkey; Type: CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.clients
    ADD CONSTRAINT clients_pkey PRIMARY KEY (id);

--
-- Name: credential_audit_log credential_audit_log_pkey; Type: CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.credential_audit_log
    ADD CONSTRAINT credential_audit_log_pkey PRIMARY KEY (id);

--
-- Name: credentials credentials_organization_id_id_key; Type: CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.credentials
    ADD CONSTRAINT credentials_organization_id_id_key UNIQUE (organization_id, id);

--
-- Name: credentials credentials_organization_id_name_key; Type: CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.credentials
    ADD CONSTRAINT credentials_organization_id_name_key UNIQUE (organization_id, name);

--
-- Name: credentials credentials_pkey; Type: CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.credentials
    ADD CONSTRAINT credentials_pkey PRIMARY KEY (id);

--
-- Name: debounce_keys debounce_keys_pkey; Type: CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.debounce_keys
    ADD CONSTRAINT debounce_keys_pkey PRIMARY KEY (organization_id, workflow_id, key_hash);

--
-- Name: dedupe_keys dedupe_keys_pkey; Type: CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.dedupe_keys
    ADD CONSTRAINT dedupe_keys_pkey PRIMARY KEY (organization_id, workflow_id, key_hash);

--
-- Name: execution_checkpoints execution_checkpoints_pkey; Type: CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.execution_checkpoints
    ADD CONSTRAINT execution_checkpoints_pkey PRIMARY KEY (job_id);

--
-- Name: execution_log_archives execution_log_archives_organization_id_job_id_first_seq_key; Type: CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.execution_log_archives
    ADD CONSTRAINT execution_log_archives_organization_id_job_id_first_seq_key UNIQUE (organization_id, job_id, first_seq);

--
-- Name: execution_log_archives execution_log_archives_pkey; Type: CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.execution_log_archives
    ADD CONSTRAINT execution_log_archives_pkey PRIMARY KEY (id);

--
-- Name: execution_metadata execution_metadata_pkey; Type: CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.execution_metadata
    ADD CONSTRAINT execution_metadata_pkey PRIMARY KEY (job_id);

--
-- Name: execution_screenshots execution_screenshots_pkey; Type: CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.execution_screenshots
    ADD CONSTRAINT execution_screenshots_pkey PRIMARY KEY (id);

--
-- Name: execution_step_results execution_step_results_pkey; Type: CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.execution_step_results
    ADD CONSTRAINT execution_step_results_pkey PRIMARY KEY (job_id, path);

--
-- Name: job_queue job_queue_pkey; Type: CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.job_queue
    ADD CONSTRAINT job_queue_pkey PRIMARY KEY (job_id);

--
-- Name: job_result_archives job_result_archives_pkey; Type: CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.job_result_archives
    ADD CONSTRAINT job_result_archives_pkey PRIMARY KEY (job_id);

--
-- Name: job_search_keys job_search_keys_pkey; Type: CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.job_search_keys
    ADD CONSTRAINT job_search_keys_pkey PRIMARY KEY (organization_id, job_id, key);

--
-- Name: job_signals job_signals_pkey; Type: CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.job_signals
    ADD CONSTRAINT job_signals_pkey PRIMARY KEY (id);

--
-- Name: jobs jobs_organization_id_run_number_key; Type: CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.jobs
    ADD CONSTRAINT jobs_organization_id_run_number_key UNIQUE (organization_id, run_number);

--
-- Name: jobs jobs_pkey; Type: CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.jobs
    ADD CONSTRAINT jobs_pkey PRIMARY KEY (id);

--
-- Name: knowledge_documents knowledge_documents_organization_id_collection_external_id_key; Type: CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.knowledge_documents
    ADD CONSTRAINT knowledge_documents_organization_id_collection_external_id_key UNIQUE (organization_id, collection, external_id);

--
-- Name: knowledge_documents knowledge_documents_pkey; Type: CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.knowledge_documents
    ADD CONSTRAINT knowledge_documents_pkey PRIMARY KEY (id);

--
-- Name: knowledge_usage_daily knowledge_usage_daily_pkey; Type: CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.knowledge_usage_daily
    ADD CONSTRAINT knowledge_usage_daily_pkey PRIMARY KEY (organization_id, collection, day, workflow_id, document_id);

--
-- Name: log_levels log_levels_name_key; Type: CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.log_levels
    ADD CONSTRAINT log_levels_name_key UNIQUE (name);

--
-- Name: log_levels log_levels_pkey; Type: CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.log_levels
    ADD CONSTRAINT log_levels_pkey PRIMARY KEY (level);

--
-- Name: maintenance_leases maintenance_leases_pkey; Type: CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.maintenance_leases
    ADD CONSTRAINT maintenance_leases_pkey PRIMARY KEY (name);

--
-- Name: organizations organizations_pkey; Type: CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.organizations
    ADD CONSTRAINT organizations_pkey PRIMARY KEY (id);

--
-- Name: phi_audit_log phi_audit_log_pkey; Type: CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.phi_audit_log
    ADD CONSTRAINT phi_audit_log_pkey PRIMARY KEY (id, at);

--
-- Name: phi_audit_log_default phi_audit_log_default_pkey; Type: CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.phi_audit_log_default
    ADD CONSTRAINT phi_audit_log_default_pkey PRIMARY KEY (id, at);

--
-- Name: rate_limit_buckets rate_limit_buckets_pkey; Type: CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.rate_limit_buckets
    ADD CONSTRAINT rate_limit_buckets_pkey PRIMARY KEY (organization_id, bucket, key);

--
-- Name: read_model_failures read_model_failures_pkey; Type: CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.read_model_failures
    ADD CONSTRAINT read_model_failures_pkey PRIMARY KEY (id);

--
-- Name: retention_policies retention_policies_pkey; Type: CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.retention_policies
    ADD CONSTRAINT retention_policies_pkey PRIMARY KEY (organization_id, resource_type);

--
-- Name: retrieval_documents retrieval_documents_pkey; Type: CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.retrieval_documents
    ADD CONSTRAINT retrieval_documents_pkey PRIMARY KEY (retrieval_id, rank);

--
-- Name: retrievals retrievals_organization_id_job_id_step_path_key; Type: CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.retrievals
    ADD CONSTRAINT retrievals_organization_id_job_id_step_path_key UNIQUE (organization_id, job_id, step_path);

--
-- Name: retrievals retrievals_pkey; Type: CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.retrievals
    ADD CONSTRAINT retrievals_pkey PRIMARY KEY (id);

--
-- Name: saved_views saved_views_pkey; Type: CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.saved_views
    ADD CONSTRAINT saved_views_pkey PRIMARY KEY (id);

--
-- Name: schedule_audit_log schedule_audit_log_pkey; Type: CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.schedule_audit_log
    ADD CONSTRAINT schedule_audit_log_pkey PRIMARY KEY (id);

--
-- Name: schedules schedules_organization_id_id_key; Type: CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.schedules
    ADD CONSTRAINT schedules_organization_id_id_key UNIQUE (organization_id, id);

--
-- Name: schedules schedules_pkey; Type: CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.schedules
    ADD CONSTRAINT schedules_pkey PRIMARY KEY (id);

--
-- Name: schema_migrations schema_migrations_pkey; Type: CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.schema_migrations
    ADD CONSTRAINT schema_migrations_pkey PRIMARY KEY (version);

--
-- Name: screenshot_blobs screenshot_blobs_blob_key_key; Type: CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.screenshot_blobs
    ADD CONSTRAINT screenshot_blobs_blob_key_key UNIQUE (blob_key);

--
-- Name: screenshot_blobs screenshot_blobs_pkey; Type: CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.screenshot_blobs
    ADD CONSTRAINT screenshot_blobs_pkey PRIMARY KEY (organization_id, sha256);

--
-- Name: step_metrics step_metrics_pkey; Type: CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.step_metrics
    ADD CONSTRAINT step_metrics_pkey PRIMARY KEY (organization_id, workflow_id, period, period_start, step_index, step_path);

--
-- Name: stream_kinds stream_kinds_name_key; Type: CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.stream_kinds
    ADD CONSTRAINT stream_kinds_name_key UNIQUE (name);

--
-- Name: stream_kinds stream_kinds_pkey; Type: CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.stream_kinds
    ADD CONSTRAINT stream_kinds_pkey PRIMARY KEY (kind);

--
-- Name: template_ratings template_ratings_pkey; Type: CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.template_ratings
    ADD CONSTRAINT template_ratings_pkey PRIMARY KEY (template_id, user_id);

--
-- Name: templates templates_pkey; Type: CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.templates
    ADD CONSTRAINT templates_pkey PRIMARY KEY (id);

--
-- Name: templates templates_slug_key; Type: CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.templates
    ADD CONSTRAINT templates_slug_key UNIQUE (slug);

--
-- Name: usage_records usage_records_pkey; Type: CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.usage_records
    ADD CONSTRAINT usage_records_pkey PRIMARY KEY (organization_id, period_start);

--
-- Name: user_invitations user_invitations_pkey; Type: CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.user_invitations
    ADD CONSTRAINT user_invitations_pkey PRIMARY KEY (id);

--
-- Name: user_invitations user_invitations_token_hash_key; Type: CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.user_invitations
    ADD CONSTRAINT user_invitations_token_hash_key UNIQUE (token_hash);

--
-- Name: users users_organization_id_id_key; Type: CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.users
    ADD CONSTRAINT users_organization_id_id_key UNIQUE (organization_id, id);

--
-- Name: users users_pkey; Type: CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.users
    ADD CONSTRAINT users_pkey PRIMARY KEY (id);

--
-- Name: web_sessions web_sessions_pkey; Type: CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.web_sessions
    ADD CONSTRAINT web_sessions_pkey PRIMARY KEY (id);

--
-- Name: webhook_deliveries webhook_deliveries_replay_key; Type: CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.webhook_deliveries
    ADD CONSTRAINT webhook_deliveries_replay_key PRIMARY KEY (organization_id, workflow_id, signature);

--
-- Name: webhook_triggers webhook_triggers_pkey; Type: CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.webhook_triggers
    ADD CONSTRAINT webhook_triggers_pkey PRIMARY KEY (workflow_id);

--
-- Name: workflow_versions workflow_versions_organization_id_workflow_id_version_key; Type: CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.workflow_versions
    ADD CONSTRAINT workflow_versions_organization_id_workflow_id_version_key UNIQUE (organization_id, workflow_id, version);

--
-- Name: workflow_versions workflow_versions_pkey; Type: CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.workflow_versions
    ADD CONSTRAINT workflow_versions_pkey PRIMARY KEY (workflow_id, version);

--
-- Name: workflows workflows_organization_id_id_key; Type: CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.workflows
    ADD CONSTRAINT workflows_organization_id_id_key UNIQUE (organization_id, id);

--
-- Name: workflows workflows_pkey; Type: CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.workflows
    ADD CONSTRAINT workflows_pkey PRIMARY KEY (id);

--
-- Name: aggregate_metrics_workflow_rollup_idx; Type: INDEX; Schema: stepwise; Owner: -
--

CREATE INDEX aggregate_metrics_workflow_rollup_idx ON stepwise.aggregate_metrics USING btree (organization_id, period, period_start) WHERE ((client_id = '00000000-0000-0000-0000-000000000000'::uuid) AND ((initiator_type)::text = 'all'::text) AND (workflow_id <> '00000000-0000-0000-0000-000000000000'::uuid));

--
-- Name: api_keys_org_idx; Type: INDEX; Schema: stepwise; Owner: -
--

CREATE INDEX api_keys_org_idx ON stepwise.api_keys USING btree (organization_id);

--
-- Name: api_keys_user_idx; Type: INDEX; Schema: stepwise; Owner: -
--

CREATE INDEX api_keys_user_idx ON stepwise.api_keys USING btree (user_id) WHERE (user_id IS NOT NULL);

--
-- Name: approval_links_token_idx; Type: INDEX; Schema: stepwise; Owner: -
--

CREATE UNIQUE INDEX approval_links_token_idx ON stepwise.approval_links USING btree (token_hash) WHERE (token_hash IS NOT NULL);

--
-- Name: approvals_org_status_idx; Type: INDEX; Schema: stepwise; Owner: -
--

CREATE INDEX approvals_org_status_idx ON stepwise.approvals USING btree (organization_id, status, id);

--
-- Name: archive_blobs_org_idx; Type: INDEX; Schema: stepwise; Owner: -
--

CREATE INDEX archive_blobs_org_idx ON stepwise.archive_blobs USING btree (organization_id);

--
-- Name: bulk_operations_org_created_idx; Type: INDEX; Schema: stepwise; Owner: -
--

CREATE INDEX bulk_operations_org_created_idx ON stepwise.bulk_operations USING btree (organization_id, created_at DESC, id DESC);

--
-- Name: bulk_operations_running_idx; Type: INDEX; Schema: stepwise; Owner: -
--

CREATE INDEX bulk_operations_running_idx ON stepwise.bulk_operations USING btree (created_at) WHERE ((status)::text = 'RUNNING'::text);

--
-- Name: credential_audit_log_credential_idx; Type: INDEX; Schema: stepwise; Owner: -
--

CREATE INDEX credential_audit_log_credential_idx ON stepwise.credential_audit_log USING btree (organization_id, credential_id, id DESC);

--
-- Name: credential_audit_log_org_idx; Type: INDEX; Schema: stepwise; Owner: -
--

CREATE INDEX credential_audit_log_org_idx ON stepwise.credential_audit_log USING btree (organization_id, id DESC);

--
-- Name: debounce_keys_deadline_idx; Type: INDEX; Schema: stepwise; Owner: -
--

CREATE INDEX debounce_keys_deadline_idx ON stepwise.debounce_keys USING btree (organization_id, deadline_at);

--
-- Name: dedupe_keys_expiry_idx; Type: INDEX; Schema: stepwise; Owner: -
--

CREATE INDEX dedupe_keys_expiry_idx ON stepwise.dedupe_keys USING btree (organization_id, expires_at);

--
-- Name: execution_checkpoints_expiry_idx; Type: INDEX; Schema: stepwise; Owner: -
--

CREATE INDEX execution_checkpoints_expiry_idx ON stepwise.execution_checkpoints USING btree (expires_at);

--
-- Name: execution_log_alerts_idx; Type: INDEX; Schema: stepwise; Owner: -
--

CREATE INDEX execution_log_alerts_idx ON ONLY stepwise.execution_log USING btree (organization_id, ts DESC) WHERE (level >= 4);

--
-- Name: execution_log_archives_age_idx; Type: INDEX; Schema: stepwise; Owner: -
--

CREATE INDEX execution_log_archives_age_idx ON stepwise.execution_log_archives USING btree (organization_id, end_date);

--
-- Name: execution_log_archives_blob_idx; Type: INDEX; Schema: stepwise; Owner: -
--

CREATE INDEX execution_log_archives_blob_idx ON stepwise.execution_log_archives USING btree (blob_key);

--
-- Name: execution_log_job_level_idx; Type: INDEX; Schema: stepwise; Owner: -
--

CREATE INDEX execution_log_job_level_idx ON ONLY stepwise.execution_log USING btree (job_id, level);

--
-- Name: execution_log_default_job_id_level_idx; Type: INDEX; Schema: stepwise; Owner: -
--

CREATE INDEX execution_log_default_job_id_level_idx ON stepwise.execution_log_default USING btree (job_id, level);

--
-- Name: execution_log_default_organization_id_ts_idx; Type: INDEX; Schema: stepwise; Owner: -
--

CREATE INDEX execution_log_default_organization_id_ts_idx ON stepwise.execution_log_default USING btree (organization_id, ts DESC) WHERE (level >= 4);

--
-- Name: execution_metadata_org_client_created_idx; Type: INDEX; Schema: stepwise; Owner: -
--

CREATE INDEX execution_metadata_org_client_created_idx ON stepwise.execution_metadata USING btree (organization_id, client_id, created_at DESC, run_number DESC) WHERE (client_id IS NOT NULL);

--
-- Name: execution_metadata_org_created_idx; Type: INDEX; Schema: stepwise; Owner: -
--

CREATE INDEX execution_metadata_org_created_idx ON stepwise.execution_metadata USING btree (organization_id, created_at DESC, run_number DESC);

--
-- Name: execution_metadata_org_error_created_idx; Type: INDEX; Schema: stepwise; Owner: -
--

CREATE INDEX execution_metadata_org_error_created_idx ON stepwise.execution_metadata USING btree (organization_id, error_code, created_at DESC, run_number DESC) WHERE (error_code IS NOT NULL);

--
-- Name: execution_metadata_org_parent_created_idx; Type: INDEX; Schema: stepwise; Owner: -
--

CREATE INDEX execution_metadata_org_parent_created_idx ON stepwise.execution_metadata USING btree (organization_id, parent_job_id, created_at DESC, run_number DESC) WHERE (parent_job_id IS NOT NULL);

--
-- Name: execution_metadata_org_status_created_idx; Type: INDEX; Schema: stepwise; Owner: -
--

CREATE INDEX execution_metadata_org_status_created_idx ON stepwise.execution_metadata USING btree (organization_id, status, created_at DESC);

--
-- Name: execution_metadata_org_workflow_created_idx; Type: INDEX; Schema: stepwise; Owner: -
--

CREATE INDEX execution_metadata_org_workflow_created_idx ON stepwise.execution_metadata USING btree (organization_id, workflow_id, created_at DESC);

--
-- Name: execution_screenshots_job_idx; Type: INDEX; Schema: stepwise; Owner: -
--

CREATE INDEX execution_screenshots_job_idx ON stepwise.execution_screenshots USING btree (job_id);

--
-- Name: execution_screenshots_org_idx; Type: INDEX; Schema: stepwise; Owner: -
--

CREATE INDEX execution_screenshots_org_idx ON stepwise.execution_screenshots USING btree (organization_id, captured_at DESC);

--
-- Name: execution_screenshots_retain_idx; Type: INDEX; Schema: stepwise; Owner: -
--

CREATE INDEX execution_screenshots_retain_idx ON stepwise.execution_screenshots USING btree (retain_until) WHERE ((deleted_at IS NULL) AND (retain_until IS NOT NULL));

--
-- Name: job_queue_claim_idx; Type: INDEX; Schema: stepwise; Owner: -
--

CREATE INDEX job_queue_claim_idx ON stepwise.job_queue USING btree (organization_id, priority DESC, run_at, job_id) WHERE (concurrency_keys IS NULL);

--
-- Name: job_queue_concurrency_keys_idx; Type: INDEX; Schema: stepwise; Owner: -
--

CREATE INDEX job_queue_concurrency_keys_idx ON stepwise.job_queue USING gin (concurrency_keys) WHERE (concurrency_keys IS NOT NULL);

--
-- Name: job_queue_keyed_claim_idx; Type: INDEX; Schema: stepwise; Owner: -
--

CREATE INDEX job_queue_keyed_claim_idx ON stepwise.job_queue USING btree (organization_id, priority DESC, run_at, job_id) WHERE (concurrency_keys IS NOT NULL);

--
-- Name: job_search_keys_lookup_idx; Type: INDEX; Schema: stepwise; Owner: -
--

CREATE INDEX job_search_keys_lookup_idx ON stepwise.job_search_keys USING btree (organization_id, key, value, created_at DESC, run_number DESC);

--
-- Name: job_signals_pending_idx; Type: INDEX; Schema: stepwise; Owner: -
--

CREATE INDEX job_signals_pending_idx ON stepwise.job_signals USING btree (job_id, name, created_at) WHERE (consumed_at IS NULL);

--
-- Name: jobs_idempotency_key_idx; Type: INDEX; Schema: stepwise; Owner: -
--

CREATE UNIQUE INDEX jobs_idempotency_key_idx ON stepwise.jobs USING btree (organization_id, idempotency_key) WHERE (idempotency_key IS NOT NULL);

--
-- Name: jobs_org_workflow_idx; Type: INDEX; Schema: stepwise; Owner: -
--

CREATE INDEX jobs_org_workflow_idx ON stepwise.jobs USING btree (organization_id, workflow_id, run_number DESC);

--
-- Name: jobs_parent_step_idx; Type: INDEX; Schema: stepwise; Owner: -
--

CREATE UNIQUE INDEX jobs_parent_step_idx ON stepwise.jobs USING btree (parent_job_id, parent_step_path) WHERE (parent_job_id IS NOT NULL);

--
-- Name: knowledge_documents_search_idx; Type: INDEX; Schema: stepwise; Owner: -
--

CREATE INDEX knowledge_documents_search_idx ON stepwise.knowledge_documents USING gin (search);

--
-- Name: phi_audit_log_org_idx; Type: INDEX; Schema: stepwise; Owner: -
--

CREATE INDEX phi_audit_log_org_idx ON ONLY stepwise.phi_audit_log USING btree (organization_id, id DESC);

--
-- Name: phi_audit_log_default_organization_id_id_idx; Type: INDEX; Schema: stepwise; Owner: -
--

CREATE INDEX phi_audit_log_default_organization_id_id_idx ON stepwise.phi_audit_log_default USING btree (organization_id, id DESC);

--
-- Name: phi_audit_log_job_idx; Type: INDEX; Schema: stepwise; Owner: -
--

CREATE INDEX phi_audit_log_job_idx ON ONLY stepwise.phi_audit_log USING btree (organization_id, job_id) WHERE (job_id IS NOT NULL);

--
-- Name: phi_audit_log_default_organization_id_job_id_idx; Type: INDEX; Schema: stepwise; Owner: -
--

CREATE INDEX phi_audit_log_default_organization_id_job_id_idx ON stepwise.phi_audit_log_default USING btree (organization_id, job_id) WHERE (job_id IS NOT NULL);

--
-- Name: saved_views_org_page_idx; Type: INDEX; Schema: stepwise; Owner: -
--

CREATE INDEX saved_views_org_page_idx ON stepwise.saved_views USING btree (organization_id, page, created_at);

--
-- Name: schedule_audit_log_schedule_idx; Type: INDEX; Schema: stepwise; Owner: -
--

CREATE INDEX schedule_audit_log_schedule_idx ON stepwise.schedule_audit_log USING btree (organization_id, schedule_id, id DESC);

--
-- Name: schedules_due_idx; Type: INDEX; Schema: stepwise; Owner: -
--

CREATE INDEX schedules_due_idx ON stepwise.schedules USING btree (next_fire_at) WHERE (enabled AND (deleted_at IS NULL) AND (next_fire_at IS NOT NULL));

--
-- Name: schedules_org_idx; Type: INDEX; Schema: stepwise; Owner: -
--

CREATE INDEX schedules_org_idx ON stepwise.schedules USING btree (organization_id, id DESC);

--
-- Name: schedules_workflow_idx; Type: INDEX; Schema: stepwise; Owner: -
--

CREATE INDEX schedules_workflow_idx ON stepwise.schedules USING btree (organization_id, workflow_id);

--
-- Name: template_ratings_user_idx; Type: INDEX; Schema: stepwise; Owner: -
--

CREATE INDEX template_ratings_user_idx ON stepwise.template_ratings USING btree (organization_id, user_id);

--
-- Name: templates_category_popularity_idx; Type: INDEX; Schema: stepwise; Owner: -
--

CREATE INDEX templates_category_popularity_idx ON stepwise.templates USING btree (category, popularity DESC, id);

--
-- Name: templates_category_rating_idx; Type: INDEX; Schema: stepwise; Owner: -
--

CREATE INDEX templates_category_rating_idx ON stepwise.templates USING btree (category, rating DESC, id);

--
-- Name: templates_owner_idx; Type: INDEX; Schema: stepwise; Owner: -
--

CREATE INDEX templates_owner_idx ON stepwise.templates USING btree (owner_organization_id) WHERE (owner_organization_id IS NOT NULL);

--
-- Name: templates_popularity_idx; Type: INDEX; Schema: stepwise; Owner: -
--

CREATE INDEX templates_popularity_idx ON stepwise.templates USING btree (popularity DESC, id);

--
-- Name: templates_rating_idx; Type: INDEX; Schema: stepwise; Owner: -
--

CREATE INDEX templates_rating_idx ON stepwise.templates USING btree (rating DESC, id);

--
-- Name: templates_search_idx; Type: INDEX; Schema: stepwise; Owner: -
--

CREATE INDEX templates_search_idx ON stepwise.templates USING gin (search);

--
-- Name: user_invitations_user_idx; Type: INDEX; Schema: stepwise; Owner: -
--

CREATE INDEX user_invitations_user_idx ON stepwise.user_invitations USING btree (organization_id, user_id);

--
-- Name: users_email_password_idx; Type: INDEX; Schema: stepwise; Owner: -
--

CREATE INDEX users_email_password_idx ON stepwise.users USING btree (lower((email)::text)) WHERE (password_hash IS NOT NULL);

--
-- Name: users_org_email_idx; Type: INDEX; Schema: stepwise; Owner: -
--

CREATE UNIQUE INDEX users_org_email_idx ON stepwise.users USING btree (organization_id, lower((email)::text));

--
-- Name: web_sessions_key_idx; Type: INDEX; Schema: stepwise; Owner: -
--

CREATE INDEX web_sessions_key_idx ON stepwise.web_sessions USING btree (api_key_id) WHERE (api_key_id IS NOT NULL);

--
-- Name: web_sessions_user_idx; Type: INDEX; Schema: stepwise; Owner: -
--

CREATE INDEX web_sessions_user_idx ON stepwise.web_sessions USING btree (organization_id, user_id);

--
-- Name: webhook_deliveries_prune_idx; Type: INDEX; Schema: stepwise; Owner: -
--

CREATE INDEX webhook_deliveries_prune_idx ON stepwise.webhook_deliveries USING btree (organization_id, workflow_id, signed_at);

--
-- Name: workflows_org_idx; Type: INDEX; Schema: stepwise; Owner: -
--

CREATE INDEX workflows_org_idx ON stepwise.workflows USING btree (organization_id, id DESC);

--
-- Name: execution_log_default_job_id_level_idx; Type: INDEX ATTACH; Schema: stepwise; Owner: -
--

ALTER INDEX stepwise.execution_log_job_level_idx ATTACH PARTITION stepwise.execution_log_default_job_id_level_idx;

--
-- Name: execution_log_default_organization_id_ts_idx; Type: INDEX ATTACH; Schema: stepwise; Owner: -
--

ALTER INDEX stepwise.execution_log_alerts_idx ATTACH PARTITION stepwise.execution_log_default_organization_id_ts_idx;

--
-- Name: phi_audit_log_default_organization_id_id_idx; Type: INDEX ATTACH; Schema: stepwise; Owner: -
--

ALTER INDEX stepwise.phi_audit_log_org_idx ATTACH PARTITION stepwise.phi_audit_log_default_organization_id_id_idx;

--
-- Name: phi_audit_log_default_organization_id_job_id_idx; Type: INDEX ATTACH; Schema: stepwise; Owner: -
--

ALTER INDEX stepwise.phi_audit_log_job_idx ATTACH PARTITION stepwise.phi_audit_log_default_organization_id_job_id_idx;

--
-- Name: phi_audit_log_default_pkey; Type: INDEX ATTACH; Schema: stepwise; Owner: -
--

ALTER INDEX stepwise.phi_audit_log_pkey ATTACH PARTITION stepwise.phi_audit_log_default_pkey;

--
-- Name: credential_audit_log credential_audit_log_immutable; Type: TRIGGER; Schema: stepwise; Owner: -
--

CREATE TRIGGER credential_audit_log_immutable BEFORE UPDATE ON stepwise.credential_audit_log FOR EACH ROW EXECUTE FUNCTION stepwise.forbid_update();

--
-- Name: execution_screenshots execution_screenshots_delete; Type: TRIGGER; Schema: stepwise; Owner: -
--

CREATE TRIGGER execution_screenshots_delete AFTER DELETE ON stepwise.execution_screenshots REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION stepwise.screenshots_deleted();

--
-- Name: execution_screenshots execution_screenshots_soft_delete; Type: TRIGGER; Schema: stepwise; Owner: -
--

CREATE TRIGGER execution_screenshots_soft_delete AFTER UPDATE ON stepwise.execution_screenshots REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION stepwise.screenshots_soft_deleted();

--
-- Name: job_result_archives job_result_archives_delete; Type: TRIGGER; Schema: stepwise; Owner: -
--

CREATE TRIGGER job_result_archives_delete AFTER DELETE ON stepwise.job_result_archives REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION stepwise.job_result_archives_deleted();

--
-- Name: jobs jobs_read_model_insert; Type: TRIGGER; Schema: stepwise; Owner: -
--

CREATE TRIGGER jobs_read_model_insert AFTER INSERT ON stepwise.jobs REFERENCING NEW TABLE AS new_jobs FOR EACH STATEMENT EXECUTE FUNCTION stepwise.jobs_read_model_insert();

--
-- Name: jobs jobs_read_model_update; Type: TRIGGER; Schema: stepwise; Owner: -
--

CREATE TRIGGER jobs_read_model_update AFTER UPDATE ON stepwise.jobs REFERENCING OLD TABLE AS old_jobs NEW TABLE AS new_jobs FOR EACH STATEMENT EXECUTE FUNCTION stepwise.jobs_read_model_update();

--
-- Name: phi_audit_log_default phi_audit_log_default_no_truncate; Type: TRIGGER; Schema: stepwise; Owner: -
--

CREATE TRIGGER phi_audit_log_default_no_truncate BEFORE TRUNCATE ON stepwise.phi_audit_log_default FOR EACH STATEMENT EXECUTE FUNCTION stepwise.phi_audit_no_truncate();

--
-- Name: phi_audit_log phi_audit_log_no_truncate; Type: TRIGGER; Schema: stepwise; Owner: -
--

CREATE TRIGGER phi_audit_log_no_truncate BEFORE TRUNCATE ON stepwise.phi_audit_log FOR EACH STATEMENT EXECUTE FUNCTION stepwise.phi_audit_no_truncate();

--
-- Name: phi_audit_log phi_audit_log_retention; Type: TRIGGER; Schema: stepwise; Owner: -
--

CREATE TRIGGER phi_audit_log_retention BEFORE DELETE OR UPDATE ON stepwise.phi_audit_log FOR EACH ROW EXECUTE FUNCTION stepwise.phi_audit_guard();

--
-- Name: schedule_audit_log schedule_audit_log_immutable; Type: TRIGGER; Schema: stepwise; Owner: -
--

CREATE TRIGGER schedule_audit_log_immutable BEFORE UPDATE ON stepwise.schedule_audit_log FOR EACH ROW EXECUTE FUNCTION stepwise.forbid_update();

--
-- Name: template_ratings template_ratings_rollup; Type: TRIGGER; Schema: stepwise; Owner: -
--

CREATE TRIGGER template_ratings_rollup AFTER INSERT OR DELETE OR UPDATE OF rating ON stepwise.template_ratings FOR EACH ROW EXECUTE FUNCTION stepwise.template_ratings_rollup();

--
-- Name: workflow_versions workflow_versions_immutable; Type: TRIGGER; Schema: stepwise; Owner: -
--

CREATE TRIGGER workflow_versions_immutable BEFORE UPDATE ON stepwise.workflow_versions FOR EACH ROW EXECUTE FUNCTION stepwise.forbid_update();

--
-- Name: api_keys api_keys_organization_id_fkey; Type: FK CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.api_keys
    ADD CONSTRAINT api_keys_organization_id_fkey FOREIGN KEY (organization_id) REFERENCES stepwise.organizations(id) ON DELETE CASCADE;

--
-- Name: api_keys api_keys_user_fk; Type: FK CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.api_keys
    ADD CONSTRAINT api_keys_user_fk FOREIGN KEY (organization_id, user_id) REFERENCES stepwise.users(organization_id, id) ON DELETE SET NULL (user_id);

--
-- Name: approval_decisions approval_decisions_approval_id_fkey; Type: FK CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.approval_decisions
    ADD CONSTRAINT approval_decisions_approval_id_fkey FOREIGN KEY (approval_id) REFERENCES stepwise.approvals(id) ON DELETE CASCADE;

--
-- Name: approval_links approval_links_approval_id_fkey; Type: FK CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.approval_links
    ADD CONSTRAINT approval_links_approval_id_fkey FOREIGN KEY (approval_id) REFERENCES stepwise.approvals(id) ON DELETE CASCADE;

--
-- Name: approvals approvals_job_id_fkey; Type: FK CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.approvals
    ADD CONSTRAINT approvals_job_id_fkey FOREIGN KEY (job_id) REFERENCES stepwise.jobs(id) ON DELETE CASCADE;

--
-- Name: bulk_operations bulk_operations_organization_id_fkey; Type: FK CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.bulk_operations
    ADD CONSTRAINT bulk_operations_organization_id_fkey FOREIGN KEY (organization_id) REFERENCES stepwise.organizations(id) ON DELETE CASCADE;

--
-- Name: clients clients_organization_id_fkey; Type: FK CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.clients
    ADD CONSTRAINT clients_organization_id_fkey FOREIGN KEY (organization_id) REFERENCES stepwise.organizations(id) ON DELETE CASCADE;

--
-- Name: credential_audit_log credential_audit_log_organization_id_fkey; Type: FK CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.credential_audit_log
    ADD CONSTRAINT credential_audit_log_organization_id_fkey FOREIGN KEY (organization_id) REFERENCES stepwise.organizations(id) ON DELETE CASCADE;

--
-- Name: credentials credentials_organization_id_fkey; Type: FK CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.credentials
    ADD CONSTRAINT credentials_organization_id_fkey FOREIGN KEY (organization_id) REFERENCES stepwise.organizations(id) ON DELETE CASCADE;

--
-- Name: debounce_keys debounce_keys_organization_id_fkey; Type: FK CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.debounce_keys
    ADD CONSTRAINT debounce_keys_organization_id_fkey FOREIGN KEY (organization_id) REFERENCES stepwise.organizations(id) ON DELETE CASCADE;

--
-- Name: dedupe_keys dedupe_keys_organization_id_fkey; Type: FK CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.dedupe_keys
    ADD CONSTRAINT dedupe_keys_organization_id_fkey FOREIGN KEY (organization_id) REFERENCES stepwise.organizations(id) ON DELETE CASCADE;

--
-- Name: execution_checkpoints execution_checkpoints_job_id_fkey; Type: FK CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.execution_checkpoints
    ADD CONSTRAINT execution_checkpoints_job_id_fkey FOREIGN KEY (job_id) REFERENCES stepwise.jobs(id) ON DELETE CASCADE;

--
-- Name: execution_log_archives execution_log_archives_blob_key_fkey; Type: FK CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.execution_log_archives
    ADD CONSTRAINT execution_log_archives_blob_key_fkey FOREIGN KEY (blob_key) REFERENCES stepwise.archive_blobs(blob_key);

--
-- Name: execution_screenshots execution_screenshots_job_id_fkey; Type: FK CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.execution_screenshots
    ADD CONSTRAINT execution_screenshots_job_id_fkey FOREIGN KEY (job_id) REFERENCES stepwise.jobs(id) ON DELETE CASCADE;

--
-- Name: execution_step_results execution_step_results_job_id_fkey; Type: FK CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.execution_step_results
    ADD CONSTRAINT execution_step_results_job_id_fkey FOREIGN KEY (job_id) REFERENCES stepwise.jobs(id) ON DELETE CASCADE;

--
-- Name: job_result_archives job_result_archives_job_id_fkey; Type: FK CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.job_result_archives
    ADD CONSTRAINT job_result_archives_job_id_fkey FOREIGN KEY (job_id) REFERENCES stepwise.jobs(id) ON DELETE CASCADE;

--
-- Name: job_search_keys job_search_keys_organization_id_fkey; Type: FK CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.job_search_keys
    ADD CONSTRAINT job_search_keys_organization_id_fkey FOREIGN KEY (organization_id) REFERENCES stepwise.organizations(id) ON DELETE CASCADE;

--
-- Name: job_signals job_signals_job_id_fkey; Type: FK CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.job_signals
    ADD CONSTRAINT job_signals_job_id_fkey FOREIGN KEY (job_id) REFERENCES stepwise.jobs(id) ON DELETE CASCADE;

--
-- Name: jobs jobs_organization_id_client_id_fkey; Type: FK CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.jobs
    ADD CONSTRAINT jobs_organization_id_client_id_fkey FOREIGN KEY (organization_id, client_id) REFERENCES stepwise.clients(organization_id, id);

--
-- Name: jobs jobs_organization_id_workflow_id_workflow_version_fkey; Type: FK CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.jobs
    ADD CONSTRAINT jobs_organization_id_workflow_id_workflow_version_fkey FOREIGN KEY (organization_id, workflow_id, workflow_version) REFERENCES stepwise.workflow_versions(organization_id, workflow_id, version);

--
-- Name: knowledge_documents knowledge_documents_organization_id_fkey; Type: FK CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.knowledge_documents
    ADD CONSTRAINT knowledge_documents_organization_id_fkey FOREIGN KEY (organization_id) REFERENCES stepwise.organizations(id) ON DELETE CASCADE;

--
-- Name: knowledge_usage_daily knowledge_usage_daily_organization_id_fkey; Type: FK CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.knowledge_usage_daily
    ADD CONSTRAINT knowledge_usage_daily_organization_id_fkey FOREIGN KEY (organization_id) REFERENCES stepwise.organizations(id) ON DELETE CASCADE;

--
-- Name: rate_limit_buckets rate_limit_buckets_organization_id_fkey; Type: FK CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.rate_limit_buckets
    ADD CONSTRAINT rate_limit_buckets_organization_id_fkey FOREIGN KEY (organization_id) REFERENCES stepwise.organizations(id) ON DELETE CASCADE;

--
-- Name: retention_policies retention_policies_organization_id_fkey; Type: FK CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.retention_policies
    ADD CONSTRAINT retention_policies_organization_id_fkey FOREIGN KEY (organization_id) REFERENCES stepwise.organizations(id) ON DELETE CASCADE;

--
-- Name: retrieval_documents retrieval_documents_retrieval_id_fkey; Type: FK CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.retrieval_documents
    ADD CONSTRAINT retrieval_documents_retrieval_id_fkey FOREIGN KEY (retrieval_id) REFERENCES stepwise.retrievals(id) ON DELETE CASCADE;

--
-- Name: retrievals retrievals_organization_id_fkey; Type: FK CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.retrievals
    ADD CONSTRAINT retrievals_organization_id_fkey FOREIGN KEY (organization_id) REFERENCES stepwise.organizations(id) ON DELETE CASCADE;

--
-- Name: saved_views saved_views_organization_id_owner_user_id_fkey; Type: FK CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.saved_views
    ADD CONSTRAINT saved_views_organization_id_owner_user_id_fkey FOREIGN KEY (organization_id, owner_user_id) REFERENCES stepwise.users(organization_id, id) ON DELETE CASCADE;

--
-- Name: schedule_audit_log schedule_audit_log_organization_id_fkey; Type: FK CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.schedule_audit_log
    ADD CONSTRAINT schedule_audit_log_organization_id_fkey FOREIGN KEY (organization_id) REFERENCES stepwise.organizations(id) ON DELETE CASCADE;

--
-- Name: schedule_audit_log schedule_audit_log_organization_id_schedule_id_fkey; Type: FK CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.schedule_audit_log
    ADD CONSTRAINT schedule_audit_log_organization_id_schedule_id_fkey FOREIGN KEY (organization_id, schedule_id) REFERENCES stepwise.schedules(organization_id, id);

--
-- Name: schedules schedules_organization_id_fkey; Type: FK CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.schedules
    ADD CONSTRAINT schedules_organization_id_fkey FOREIGN KEY (organization_id) REFERENCES stepwise.organizations(id) ON DELETE CASCADE;

--
-- Name: schedules schedules_organization_id_workflow_id_fkey; Type: FK CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.schedules
    ADD CONSTRAINT schedules_organization_id_workflow_id_fkey FOREIGN KEY (organization_id, workflow_id) REFERENCES stepwise.workflows(organization_id, id) ON DELETE CASCADE;

--
-- Name: screenshot_blobs screenshot_blobs_organization_id_fkey; Type: FK CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.screenshot_blobs
    ADD CONSTRAINT screenshot_blobs_organization_id_fkey FOREIGN KEY (organization_id) REFERENCES stepwise.organizations(id) ON DELETE CASCADE;

--
-- Name: template_ratings template_ratings_organization_id_user_id_fkey; Type: FK CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.template_ratings
    ADD CONSTRAINT template_ratings_organization_id_user_id_fkey FOREIGN KEY (organization_id, user_id) REFERENCES stepwise.users(organization_id, id) ON DELETE CASCADE;

--
-- Name: template_ratings template_ratings_template_id_fkey; Type: FK CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.template_ratings
    ADD CONSTRAINT template_ratings_template_id_fkey FOREIGN KEY (template_id) REFERENCES stepwise.templates(id) ON DELETE CASCADE;

--
-- Name: templates templates_owner_organization_id_fkey; Type: FK CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.templates
    ADD CONSTRAINT templates_owner_organization_id_fkey FOREIGN KEY (owner_organization_id) REFERENCES stepwise.organizations(id) ON DELETE CASCADE;

--
-- Name: usage_records usage_records_organization_id_fkey; Type: FK CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.usage_records
    ADD CONSTRAINT usage_records_organization_id_fkey FOREIGN KEY (organization_id) REFERENCES stepwise.organizations(id) ON DELETE CASCADE;

--
-- Name: user_invitations user_invitations_organization_id_fkey; Type: FK CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.user_invitations
    ADD CONSTRAINT user_invitations_organization_id_fkey FOREIGN KEY (organization_id) REFERENCES stepwise.organizations(id) ON DELETE CASCADE;

--
-- Name: user_invitations user_invitations_organization_id_user_id_fkey; Type: FK CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.user_invitations
    ADD CONSTRAINT user_invitations_organization_id_user_id_fkey FOREIGN KEY (organization_id, user_id) REFERENCES stepwise.users(organization_id, id) ON DELETE CASCADE;

--
-- Name: users users_organization_id_fkey; Type: FK CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.users
    ADD CONSTRAINT users_organization_id_fkey FOREIGN KEY (organization_id) REFERENCES stepwise.organizations(id) ON DELETE CASCADE;

--
-- Name: web_sessions web_sessions_api_key_id_fkey; Type: FK CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.web_sessions
    ADD CONSTRAINT web_sessions_api_key_id_fkey FOREIGN KEY (api_key_id) REFERENCES stepwise.api_keys(id) ON DELETE CASCADE;

--
-- Name: web_sessions web_sessions_organization_id_fkey; Type: FK CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.web_sessions
    ADD CONSTRAINT web_sessions_organization_id_fkey FOREIGN KEY (organization_id) REFERENCES stepwise.organizations(id) ON DELETE CASCADE;

--
-- Name: web_sessions web_sessions_organization_id_user_id_fkey; Type: FK CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.web_sessions
    ADD CONSTRAINT web_sessions_organization_id_user_id_fkey FOREIGN KEY (organization_id, user_id) REFERENCES stepwise.users(organization_id, id) ON DELETE CASCADE;

--
-- Name: webhook_deliveries webhook_deliveries_organization_id_workflow_id_fkey; Type: FK CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.webhook_deliveries
    ADD CONSTRAINT webhook_deliveries_organization_id_workflow_id_fkey FOREIGN KEY (organization_id, workflow_id) REFERENCES stepwise.workflows(organization_id, id) ON DELETE CASCADE;

--
-- Name: webhook_triggers webhook_triggers_organization_id_workflow_id_fkey; Type: FK CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.webhook_triggers
    ADD CONSTRAINT webhook_triggers_organization_id_workflow_id_fkey FOREIGN KEY (organization_id, workflow_id) REFERENCES stepwise.workflows(organization_id, id) ON DELETE CASCADE;

--
-- Name: workflow_versions workflow_versions_organization_id_workflow_id_fkey; Type: FK CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.workflow_versions
    ADD CONSTRAINT workflow_versions_organization_id_workflow_id_fkey FOREIGN KEY (organization_id, workflow_id) REFERENCES stepwise.workflows(organization_id, id) ON DELETE CASCADE;

--
-- Name: workflows workflows_organization_id_fkey; Type: FK CONSTRAINT; Schema: stepwise; Owner: -
--

ALTER TABLE ONLY stepwise.workflows
    ADD CONSTRAINT workflows_organization_id_fkey FOREIGN KEY (organization_id) REFERENCES stepwise.organizations(id) ON DELETE CASCADE;

--
-- Name: aggregate_metrics; Type: ROW SECURITY; Schema: stepwise; Owner: -
--

ALTER TABLE stepwise.aggregate_metrics ENABLE ROW LEVEL SECURITY;

--
-- Name: aggregate_outbox; Type: ROW SECURITY; Schema: stepwise; Owner: -
--

ALTER TABLE stepwise.aggregate_outbox ENABLE ROW LEVEL SECURITY;

--
-- Name: api_keys; Type: ROW SECURITY; Schema: stepwise; Owner: -
--

ALTER TABLE stepwise.api_keys ENABLE ROW LEVEL SECURITY;

--
-- Name: approval_decisions; Type: ROW SECURITY; Schema: stepwise; Owner: -
--

ALTER TABLE stepwise.approval_decisions ENABLE ROW LEVEL SECURITY;

--
-- Name: approval_links; Type: ROW SECURITY; Schema: stepwise; Owner: -
--

ALTER TABLE stepwise.approval_links ENABLE ROW LEVEL SECURITY;

--
-- Name: approvals; Type: ROW SECURITY; Schema: stepwise; Owner: -
--

ALTER TABLE stepwise.approvals ENABLE ROW LEVEL SECURITY;

--
-- Name: archive_blobs; Type: ROW SECURITY; Schema: stepwise; Owner: -
--

ALTER TABLE stepwise.archive_blobs ENABLE ROW LEVEL SECURITY;

--
-- Name: archive_holds; Type: ROW SECURITY; Schema: stepwise; Owner: -
--

ALTER TABLE stepwise.archive_holds ENABLE ROW LEVEL SECURITY;

--
-- Name: blob_deletions; Type: ROW SECURITY; Schema: stepwise; Owner: -
--

ALTER TABLE stepwise.blob_deletions ENABLE ROW LEVEL SECURITY;

--
-- Name: bulk_operations; Type: ROW SECURITY; Schema: stepwise; Owner: -
--

ALTER TABLE stepwise.bulk_operations ENABLE ROW LEVEL SECURITY;

--
-- Name: clients; Type: ROW SECURITY; Schema: stepwise; Owner: -
--

ALTER TABLE stepwise.clients ENABLE ROW LEVEL SECURITY;

--
-- Name: credential_audit_log; Type: ROW SECURITY; Schema: stepwise; Owner: -
--

ALTER TABLE stepwise.credential_audit_log ENABLE ROW LEVEL SECURITY;

--
-- Name: credentials; Type: ROW SECURITY; Schema: stepwise; Owner: -
--

ALTER TABLE stepwise.credentials ENABLE ROW LEVEL SECURITY;

--
-- Name: debounce_keys; Type: ROW SECURITY; Schema: stepwise; Owner: -
--

ALTER TABLE stepwise.debounce_keys ENABLE ROW LEVEL SECURITY;

--
-- Name: dedupe_keys; Type: ROW SECURITY; Schema: stepwise; Owner: -
--

ALTER TABLE stepwise.dedupe_keys ENABLE ROW LEVEL SECURITY;

--
-- Name: execution_checkpoints; Type: ROW SECURITY; Schema: stepwise; Owner: -
--

ALTER TABLE stepwise.execution_checkpoints ENABLE ROW LEVEL SECURITY;

--
-- Name: execution_log; Type: ROW SECURITY; Schema: stepwise; Owner: -
--

ALTER TABLE stepwise.execution_log ENABLE ROW LEVEL SECURITY;

--
-- Name: execution_log_archives; Type: ROW SECURITY; Schema: stepwise; Owner: -
--

ALTER TABLE stepwise.execution_log_archives ENABLE ROW LEVEL SECURITY;

--
-- Name: execution_metadata; Type: ROW SECURITY; Schema: stepwise; Owner: -
--

ALTER TABLE stepwise.execution_metadata ENABLE ROW LEVEL SECURITY;

--
-- Name: execution_screenshots; Type: ROW SECURITY; Schema: stepwise; Owner: -
--

ALTER TABLE stepwise.execution_screenshots ENABLE ROW LEVEL SECURITY;

--
-- Name: execution_step_results; Type: ROW SECURITY; Schema: stepwise; Owner: -
--

ALTER TABLE stepwise.execution_step_results ENABLE ROW LEVEL SECURITY;

--
-- Name: job_queue; Type: ROW SECURITY; Schema: stepwise; Owner: -
--

ALTER TABLE stepwise.job_queue ENABLE ROW LEVEL SECURITY;

--
-- Name: job_result_archives; Type: ROW SECURITY; Schema: stepwise; Owner: -
--

ALTER TABLE stepwise.job_result_archives ENABLE ROW LEVEL SECURITY;

--
-- Name: job_search_keys; Type: ROW SECURITY; Schema: stepwise; Owner: -
--

ALTER TABLE stepwise.job_search_keys ENABLE ROW LEVEL SECURITY;

--
-- Name: job_signals; Type: ROW SECURITY; Schema: stepwise; Owner: -
--

ALTER TABLE stepwise.job_signals ENABLE ROW LEVEL SECURITY;

--
-- Name: jobs; Type: ROW SECURITY; Schema: stepwise; Owner: -
--

ALTER TABLE stepwise.jobs ENABLE ROW LEVEL SECURITY;

--
-- Name: knowledge_documents; Type: ROW SECURITY; Schema: stepwise; Owner: -
--

ALTER TABLE stepwise.knowledge_documents ENABLE ROW LEVEL SECURITY;

--
-- Name: knowledge_usage_daily; Type: ROW SECURITY; Schema: stepwise; Owner: -
--

ALTER TABLE stepwise.knowledge_usage_daily ENABLE ROW LEVEL SECURITY;

--
-- Name: organizations; Type: ROW SECURITY; Schema: stepwise; Owner: -
--

ALTER TABLE stepwise.organizations ENABLE ROW LEVEL SECURITY;

--
-- Name: phi_audit_log; Type: ROW SECURITY; Schema: stepwise; Owner: -
--

ALTER TABLE stepwise.phi_audit_log ENABLE ROW LEVEL SECURITY;

--
-- Name: rate_limit_buckets; Type: ROW SECURITY; Schema: stepwise; Owner: -
--

ALTER TABLE stepwise.rate_limit_buckets ENABLE ROW LEVEL SECURITY;

--
-- Name: retention_policies; Type: ROW SECURITY; Schema: stepwise; Owner: -
--

ALTER TABLE stepwise.retention_policies ENABLE ROW LEVEL SECURITY;

--
-- Name: retrieval_documents; Type: ROW SECURITY; Schema: stepwise; Owner: -
--

ALTER TABLE stepwise.retrieval_documents ENABLE ROW LEVEL SECURITY;

--
-- Name: retrievals; Type: ROW SECURITY; Schema: stepwise; Owner: -
--

ALTER TABLE stepwise.retrievals ENABLE ROW LEVEL SECURITY;

--
-- Name: saved_views; Type: ROW SECURITY; Schema: stepwise; Owner: -
--

ALTER TABLE stepwise.saved_views ENABLE ROW LEVEL SECURITY;

--
-- Name: schedule_audit_log; Type: ROW SECURITY; Schema: stepwise; Owner: -
--

ALTER TABLE stepwise.schedule_audit_log ENABLE ROW LEVEL SECURITY;

--
-- Name: schedules; Type: ROW SECURITY; Schema: stepwise; Owner: -
--

ALTER TABLE stepwise.schedules ENABLE ROW LEVEL SECURITY;

--
-- Name: screenshot_blobs; Type: ROW SECURITY; Schema: stepwise; Owner: -
--

ALTER TABLE stepwise.screenshot_blobs ENABLE ROW LEVEL SECURITY;

--
-- Name: aggregate_metrics service_all; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY service_all ON stepwise.aggregate_metrics TO stepwise_service USING (true) WITH CHECK (true);

--
-- Name: aggregate_outbox service_all; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY service_all ON stepwise.aggregate_outbox TO stepwise_service USING (true) WITH CHECK (true);

--
-- Name: api_keys service_all; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY service_all ON stepwise.api_keys TO stepwise_service USING (true) WITH CHECK (true);

--
-- Name: approval_decisions service_all; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY service_all ON stepwise.approval_decisions TO stepwise_service USING (true) WITH CHECK (true);

--
-- Name: approval_links service_all; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY service_all ON stepwise.approval_links TO stepwise_service USING (true) WITH CHECK (true);

--
-- Name: approvals service_all; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY service_all ON stepwise.approvals TO stepwise_service USING (true) WITH CHECK (true);

--
-- Name: archive_blobs service_all; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY service_all ON stepwise.archive_blobs TO stepwise_service USING (true) WITH CHECK (true);

--
-- Name: archive_holds service_all; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY service_all ON stepwise.archive_holds TO stepwise_service USING (true) WITH CHECK (true);

--
-- Name: blob_deletions service_all; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY service_all ON stepwise.blob_deletions TO stepwise_service USING (true) WITH CHECK (true);

--
-- Name: bulk_operations service_all; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY service_all ON stepwise.bulk_operations TO stepwise_service USING (true) WITH CHECK (true);

--
-- Name: clients service_all; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY service_all ON stepwise.clients TO stepwise_service USING (true) WITH CHECK (true);

--
-- Name: credential_audit_log service_all; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY service_all ON stepwise.credential_audit_log TO stepwise_service USING (true) WITH CHECK (true);

--
-- Name: credentials service_all; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY service_all ON stepwise.credentials TO stepwise_service USING (true) WITH CHECK (true);

--
-- Name: debounce_keys service_all; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY service_all ON stepwise.debounce_keys TO stepwise_service USING (true) WITH CHECK (true);

--
-- Name: dedupe_keys service_all; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY service_all ON stepwise.dedupe_keys TO stepwise_service USING (true) WITH CHECK (true);

--
-- Name: execution_checkpoints service_all; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY service_all ON stepwise.execution_checkpoints TO stepwise_service USING (true) WITH CHECK (true);

--
-- Name: execution_log service_all; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY service_all ON stepwise.execution_log TO stepwise_service USING (true) WITH CHECK (true);

--
-- Name: execution_log_archives service_all; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY service_all ON stepwise.execution_log_archives TO stepwise_service USING (true) WITH CHECK (true);

--
-- Name: execution_metadata service_all; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY service_all ON stepwise.execution_metadata TO stepwise_service USING (true) WITH CHECK (true);

--
-- Name: execution_screenshots service_all; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY service_all ON stepwise.execution_screenshots TO stepwise_service USING (true) WITH CHECK (true);

--
-- Name: execution_step_results service_all; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY service_all ON stepwise.execution_step_results TO stepwise_service USING (true) WITH CHECK (true);

--
-- Name: job_queue service_all; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY service_all ON stepwise.job_queue TO stepwise_service USING (true) WITH CHECK (true);

--
-- Name: job_result_archives service_all; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY service_all ON stepwise.job_result_archives TO stepwise_service USING (true) WITH CHECK (true);

--
-- Name: job_search_keys service_all; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY service_all ON stepwise.job_search_keys TO stepwise_service USING (true) WITH CHECK (true);

--
-- Name: job_signals service_all; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY service_all ON stepwise.job_signals TO stepwise_service USING (true) WITH CHECK (true);

--
-- Name: jobs service_all; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY service_all ON stepwise.jobs TO stepwise_service USING (true) WITH CHECK (true);

--
-- Name: knowledge_documents service_all; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY service_all ON stepwise.knowledge_documents TO stepwise_service USING (true) WITH CHECK (true);

--
-- Name: knowledge_usage_daily service_all; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY service_all ON stepwise.knowledge_usage_daily TO stepwise_service USING (true) WITH CHECK (true);

--
-- Name: organizations service_all; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY service_all ON stepwise.organizations TO stepwise_service USING (true) WITH CHECK (true);

--
-- Name: phi_audit_log service_all; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY service_all ON stepwise.phi_audit_log TO stepwise_service USING (true) WITH CHECK (true);

--
-- Name: rate_limit_buckets service_all; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY service_all ON stepwise.rate_limit_buckets TO stepwise_service USING (true) WITH CHECK (true);

--
-- Name: retention_policies service_all; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY service_all ON stepwise.retention_policies TO stepwise_service USING (true) WITH CHECK (true);

--
-- Name: retrieval_documents service_all; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY service_all ON stepwise.retrieval_documents TO stepwise_service USING (true) WITH CHECK (true);

--
-- Name: retrievals service_all; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY service_all ON stepwise.retrievals TO stepwise_service USING (true) WITH CHECK (true);

--
-- Name: saved_views service_all; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY service_all ON stepwise.saved_views TO stepwise_service USING (true) WITH CHECK (true);

--
-- Name: schedule_audit_log service_all; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY service_all ON stepwise.schedule_audit_log TO stepwise_service USING (true) WITH CHECK (true);

--
-- Name: schedules service_all; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY service_all ON stepwise.schedules TO stepwise_service USING (true) WITH CHECK (true);

--
-- Name: screenshot_blobs service_all; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY service_all ON stepwise.screenshot_blobs TO stepwise_service USING (true) WITH CHECK (true);

--
-- Name: step_metrics service_all; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY service_all ON stepwise.step_metrics TO stepwise_service USING (true) WITH CHECK (true);

--
-- Name: template_ratings service_all; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY service_all ON stepwise.template_ratings TO stepwise_service USING (true) WITH CHECK (true);

--
-- Name: templates service_all; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY service_all ON stepwise.templates TO stepwise_service USING (true) WITH CHECK (true);

--
-- Name: usage_records service_all; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY service_all ON stepwise.usage_records TO stepwise_service USING (true) WITH CHECK (true);

--
-- Name: user_invitations service_all; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY service_all ON stepwise.user_invitations TO stepwise_service USING (true) WITH CHECK (true);

--
-- Name: users service_all; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY service_all ON stepwise.users TO stepwise_service USING (true) WITH CHECK (true);

--
-- Name: web_sessions service_all; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY service_all ON stepwise.web_sessions TO stepwise_service USING (true) WITH CHECK (true);

--
-- Name: webhook_deliveries service_all; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY service_all ON stepwise.webhook_deliveries TO stepwise_service USING (true) WITH CHECK (true);

--
-- Name: webhook_triggers service_all; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY service_all ON stepwise.webhook_triggers TO stepwise_service USING (true) WITH CHECK (true);

--
-- Name: workflow_versions service_all; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY service_all ON stepwise.workflow_versions TO stepwise_service USING (true) WITH CHECK (true);

--
-- Name: workflows service_all; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY service_all ON stepwise.workflows TO stepwise_service USING (true) WITH CHECK (true);

--
-- Name: step_metrics; Type: ROW SECURITY; Schema: stepwise; Owner: -
--

ALTER TABLE stepwise.step_metrics ENABLE ROW LEVEL SECURITY;

--
-- Name: templates template_delete; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY template_delete ON stepwise.templates FOR DELETE TO stepwise_tenant USING ((owner_organization_id = (current_setting('stepwise.organization_id'::text))::uuid));

--
-- Name: templates template_insert; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY template_insert ON stepwise.templates FOR INSERT TO stepwise_tenant WITH CHECK ((owner_organization_id = (current_setting('stepwise.organization_id'::text))::uuid));

--
-- Name: template_ratings; Type: ROW SECURITY; Schema: stepwise; Owner: -
--

ALTER TABLE stepwise.template_ratings ENABLE ROW LEVEL SECURITY;

--
-- Name: templates template_read; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY template_read ON stepwise.templates FOR SELECT TO stepwise_tenant USING (((owner_organization_id IS NULL) OR is_public OR (owner_organization_id = (current_setting('stepwise.organization_id'::text))::uuid)));

--
-- Name: templates template_update; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY template_update ON stepwise.templates FOR UPDATE TO stepwise_tenant USING ((owner_organization_id = (current_setting('stepwise.organization_id'::text))::uuid)) WITH CHECK ((owner_organization_id = (current_setting('stepwise.organization_id'::text))::uuid));

--
-- Name: templates; Type: ROW SECURITY; Schema: stepwise; Owner: -
--

ALTER TABLE stepwise.templates ENABLE ROW LEVEL SECURITY;

--
-- Name: aggregate_metrics tenant_isolation; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY tenant_isolation ON stepwise.aggregate_metrics TO stepwise_tenant USING ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid)) WITH CHECK ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid));

--
-- Name: aggregate_outbox tenant_isolation; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY tenant_isolation ON stepwise.aggregate_outbox TO stepwise_tenant USING ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid)) WITH CHECK ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid));

--
-- Name: api_keys tenant_isolation; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY tenant_isolation ON stepwise.api_keys TO stepwise_tenant USING ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid)) WITH CHECK ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid));

--
-- Name: approval_decisions tenant_isolation; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY tenant_isolation ON stepwise.approval_decisions TO stepwise_tenant USING ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid)) WITH CHECK ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid));

--
-- Name: approval_links tenant_isolation; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY tenant_isolation ON stepwise.approval_links TO stepwise_tenant USING ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid)) WITH CHECK ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid));

--
-- Name: approvals tenant_isolation; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY tenant_isolation ON stepwise.approvals TO stepwise_tenant USING ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid)) WITH CHECK ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid));

--
-- Name: archive_blobs tenant_isolation; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY tenant_isolation ON stepwise.archive_blobs TO stepwise_tenant USING ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid)) WITH CHECK ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid));

--
-- Name: archive_holds tenant_isolation; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY tenant_isolation ON stepwise.archive_holds TO stepwise_tenant USING ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid)) WITH CHECK ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid));

--
-- Name: blob_deletions tenant_isolation; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY tenant_isolation ON stepwise.blob_deletions TO stepwise_tenant USING ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid)) WITH CHECK ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid));

--
-- Name: bulk_operations tenant_isolation; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY tenant_isolation ON stepwise.bulk_operations TO stepwise_tenant USING ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid)) WITH CHECK ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid));

--
-- Name: clients tenant_isolation; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY tenant_isolation ON stepwise.clients TO stepwise_tenant USING ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid)) WITH CHECK ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid));

--
-- Name: credential_audit_log tenant_isolation; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY tenant_isolation ON stepwise.credential_audit_log TO stepwise_tenant USING ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid)) WITH CHECK ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid));

--
-- Name: credentials tenant_isolation; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY tenant_isolation ON stepwise.credentials TO stepwise_tenant USING ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid)) WITH CHECK ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid));

--
-- Name: debounce_keys tenant_isolation; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY tenant_isolation ON stepwise.debounce_keys TO stepwise_tenant USING ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid)) WITH CHECK ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid));

--
-- Name: dedupe_keys tenant_isolation; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY tenant_isolation ON stepwise.dedupe_keys TO stepwise_tenant USING ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid)) WITH CHECK ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid));

--
-- Name: execution_checkpoints tenant_isolation; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY tenant_isolation ON stepwise.execution_checkpoints TO stepwise_tenant USING ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid)) WITH CHECK ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid));

--
-- Name: execution_log tenant_isolation; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY tenant_isolation ON stepwise.execution_log TO stepwise_tenant USING ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid)) WITH CHECK ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid));

--
-- Name: execution_log_archives tenant_isolation; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY tenant_isolation ON stepwise.execution_log_archives TO stepwise_tenant USING ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid)) WITH CHECK ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid));

--
-- Name: execution_metadata tenant_isolation; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY tenant_isolation ON stepwise.execution_metadata TO stepwise_tenant USING ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid)) WITH CHECK ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid));

--
-- Name: execution_screenshots tenant_isolation; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY tenant_isolation ON stepwise.execution_screenshots TO stepwise_tenant USING ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid)) WITH CHECK ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid));

--
-- Name: execution_step_results tenant_isolation; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY tenant_isolation ON stepwise.execution_step_results TO stepwise_tenant USING ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid)) WITH CHECK ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid));

--
-- Name: job_queue tenant_isolation; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY tenant_isolation ON stepwise.job_queue TO stepwise_tenant USING ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid)) WITH CHECK ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid));

--
-- Name: job_result_archives tenant_isolation; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY tenant_isolation ON stepwise.job_result_archives TO stepwise_tenant USING ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid)) WITH CHECK ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid));

--
-- Name: job_search_keys tenant_isolation; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY tenant_isolation ON stepwise.job_search_keys TO stepwise_tenant USING ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid)) WITH CHECK ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid));

--
-- Name: job_signals tenant_isolation; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY tenant_isolation ON stepwise.job_signals TO stepwise_tenant USING ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid)) WITH CHECK ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid));

--
-- Name: jobs tenant_isolation; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY tenant_isolation ON stepwise.jobs TO stepwise_tenant USING ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid)) WITH CHECK ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid));

--
-- Name: knowledge_documents tenant_isolation; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY tenant_isolation ON stepwise.knowledge_documents TO stepwise_tenant USING ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid)) WITH CHECK ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid));

--
-- Name: knowledge_usage_daily tenant_isolation; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY tenant_isolation ON stepwise.knowledge_usage_daily TO stepwise_tenant USING ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid)) WITH CHECK ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid));

--
-- Name: organizations tenant_isolation; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY tenant_isolation ON stepwise.organizations TO stepwise_tenant USING ((id = (current_setting('stepwise.organization_id'::text))::uuid)) WITH CHECK ((id = (current_setting('stepwise.organization_id'::text))::uuid));

--
-- Name: phi_audit_log tenant_isolation; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY tenant_isolation ON stepwise.phi_audit_log TO stepwise_tenant USING ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid)) WITH CHECK ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid));

--
-- Name: rate_limit_buckets tenant_isolation; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY tenant_isolation ON stepwise.rate_limit_buckets TO stepwise_tenant USING ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid)) WITH CHECK ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid));

--
-- Name: retention_policies tenant_isolation; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY tenant_isolation ON stepwise.retention_policies TO stepwise_tenant USING ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid)) WITH CHECK ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid));

--
-- Name: retrieval_documents tenant_isolation; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY tenant_isolation ON stepwise.retrieval_documents TO stepwise_tenant USING ((EXISTS ( SELECT 1
   FROM stepwise.retrievals r
  WHERE (r.id = retrieval_documents.retrieval_id)))) WITH CHECK ((EXISTS ( SELECT 1
   FROM stepwise.retrievals r
  WHERE (r.id = retrieval_documents.retrieval_id))));

--
-- Name: retrievals tenant_isolation; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY tenant_isolation ON stepwise.retrievals TO stepwise_tenant USING ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid)) WITH CHECK ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid));

--
-- Name: saved_views tenant_isolation; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY tenant_isolation ON stepwise.saved_views TO stepwise_tenant USING ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid)) WITH CHECK ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid));

--
-- Name: schedule_audit_log tenant_isolation; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY tenant_isolation ON stepwise.schedule_audit_log TO stepwise_tenant USING ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid)) WITH CHECK ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid));

--
-- Name: schedules tenant_isolation; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY tenant_isolation ON stepwise.schedules TO stepwise_tenant USING ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid)) WITH CHECK ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid));

--
-- Name: screenshot_blobs tenant_isolation; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY tenant_isolation ON stepwise.screenshot_blobs TO stepwise_tenant USING ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid)) WITH CHECK ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid));

--
-- Name: step_metrics tenant_isolation; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY tenant_isolation ON stepwise.step_metrics TO stepwise_tenant USING ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid)) WITH CHECK ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid));

--
-- Name: template_ratings tenant_isolation; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY tenant_isolation ON stepwise.template_ratings TO stepwise_tenant USING ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid)) WITH CHECK ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid));

--
-- Name: usage_records tenant_isolation; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY tenant_isolation ON stepwise.usage_records TO stepwise_tenant USING ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid)) WITH CHECK ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid));

--
-- Name: user_invitations tenant_isolation; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY tenant_isolation ON stepwise.user_invitations TO stepwise_tenant USING ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid)) WITH CHECK ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid));

--
-- Name: users tenant_isolation; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY tenant_isolation ON stepwise.users TO stepwise_tenant USING ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid)) WITH CHECK ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid));

--
-- Name: web_sessions tenant_isolation; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY tenant_isolation ON stepwise.web_sessions TO stepwise_tenant USING ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid)) WITH CHECK ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid));

--
-- Name: webhook_deliveries tenant_isolation; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY tenant_isolation ON stepwise.webhook_deliveries TO stepwise_tenant USING ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid)) WITH CHECK ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid));

--
-- Name: webhook_triggers tenant_isolation; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY tenant_isolation ON stepwise.webhook_triggers TO stepwise_tenant USING ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid)) WITH CHECK ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid));

--
-- Name: workflow_versions tenant_isolation; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY tenant_isolation ON stepwise.workflow_versions TO stepwise_tenant USING ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid)) WITH CHECK ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid));

--
-- Name: workflows tenant_isolation; Type: POLICY; Schema: stepwise; Owner: -
--

CREATE POLICY tenant_isolation ON stepwise.workflows TO stepwise_tenant USING ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid)) WITH CHECK ((organization_id = (current_setting('stepwise.organization_id'::text))::uuid));

--
-- Name: usage_records; Type: ROW SECURITY; Schema: stepwise; Owner: -
--

ALTER TABLE stepwise.usage_records ENABLE ROW LEVEL SECURITY;

--
-- Name: user_invitations; Type: ROW SECURITY; Schema: stepwise; Owner: -
--

ALTER TABLE stepwise.user_invitations ENABLE ROW LEVEL SECURITY;

--
-- Name: users; Type: ROW SECURITY; Schema: stepwise; Owner: -
--

ALTER TABLE stepwise.users ENABLE ROW LEVEL SECURITY;

--
-- Name: web_sessions; Type: ROW SECURITY; Schema: stepwise; Owner: -
--

ALTER TABLE stepwise.web_sessions ENABLE ROW LEVEL SECURITY;

--
-- Name: webhook_deliveries; Type: ROW SECURITY; Schema: stepwise; Owner: -
--

ALTER TABLE stepwise.webhook_deliveries ENABLE ROW LEVEL SECURITY;

--
-- Name: webhook_triggers; Type: ROW SECURITY; Schema: stepwise; Owner: -
--

ALTER TABLE stepwise.webhook_triggers ENABLE ROW LEVEL SECURITY;

--
-- Name: workflow_versions; Type: ROW SECURITY; Schema: stepwise; Owner: -
--

ALTER TABLE stepwise.workflow_versions ENABLE ROW LEVEL SECURITY;

--
-- Name: workflows; Type: ROW SECURITY; Schema: stepwise; Owner: -
--

ALTER TABLE stepwise.workflows ENABLE ROW LEVEL SECURITY;

--
-- Name: SCHEMA stepwise; Type: ACL; Schema: -; Owner: -
--

GRANT USAGE ON SCHEMA stepwise TO stepwise_tenant;

--
-- Name: TABLE aggregate_metrics; Type: ACL; Schema: stepwise; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE stepwise.aggregate_metrics TO stepwise_tenant;

--
-- Name: TABLE aggregate_outbox; Type: ACL; Schema: stepwise; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE stepwise.aggregate_outbox TO stepwise_tenant;

--
-- Name: TABLE aggregate_metrics_live; Type: ACL; Schema: stepwise; Owner: -
--

GRANT SELECT ON TABLE stepwise.aggregate_metrics_live TO stepwise_tenant;

--
-- Name: TABLE api_keys; Type: ACL; Schema: stepwise; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE stepwise.api_keys TO stepwise_tenant;

--
-- Name: TABLE approval_decisions; Type: ACL; Schema: stepwise; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE stepwise.approval_decisions TO stepwise_tenant;

--
-- Name: TABLE approval_links; Type: ACL; Schema: stepwise; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE stepwise.approval_links TO stepwise_tenant;

--
-- Name: TABLE approvals; Type: ACL; Schema: stepwise; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE stepwise.approvals TO stepwise_tenant;

--
-- Name: TABLE archive_blobs; Type: ACL; Schema: stepwise; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE stepwise.archive_blobs TO stepwise_tenant;

--
-- Name: TABLE archive_holds; Type: ACL; Schema: stepwise; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE stepwise.archive_holds TO stepwise_tenant;

--
-- Name: TABLE blob_deletions; Type: ACL; Schema: stepwise; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE stepwise.blob_deletions TO stepwise_tenant;

--
-- Name: TABLE bulk_operations; Type: ACL; Schema: stepwise; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE stepwise.bulk_operations TO stepwise_tenant;

--
-- Name: TABLE clients; Type: ACL; Schema: stepwise; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE stepwise.clients TO stepwise_tenant;

--
-- Name: TABLE credential_audit_log; Type: ACL; Schema: stepwise; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE stepwise.credential_audit_log TO stepwise_tenant;

--
-- Name: TABLE credentials; Type: ACL; Schema: stepwise; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE stepwise.credentials TO stepwise_tenant;

--
-- Name: TABLE debounce_keys; Type: ACL; Schema: stepwise; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE stepwise.debounce_keys TO stepwise_tenant;

--
-- Name: TABLE dedupe_keys; Type: ACL; Schema: stepwise; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE stepwise.dedupe_keys TO stepwise_tenant;

--
-- Name: TABLE execution_checkpoints; Type: ACL; Schema: stepwise; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE stepwise.execution_checkpoints TO stepwise_tenant;

--
-- Name: TABLE execution_log; Type: ACL; Schema: stepwise; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE stepwise.execution_log TO stepwise_tenant;

--
-- Name: TABLE execution_log_archives; Type: ACL; Schema: stepwise; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE stepwise.execution_log_archives TO stepwise_tenant;

--
-- Name: TABLE execution_metadata; Type: ACL; Schema: stepwise; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE stepwise.execution_metadata TO stepwise_tenant;

--
-- Name: TABLE execution_screenshots; Type: ACL; Schema: stepwise; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE stepwise.execution_screenshots TO stepwise_tenant;

--
-- Name: TABLE execution_step_results; Type: ACL; Schema: stepwise; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE stepwise.execution_step_results TO stepwise_tenant;

--
-- Name: TABLE job_queue; Type: ACL; Schema: stepwise; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE stepwise.job_queue TO stepwise_tenant;

--
-- Name: TABLE job_result_archives; Type: ACL; Schema: stepwise; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE stepwise.job_result_archives TO stepwise_tenant;

--
-- Name: TABLE job_search_keys; Type: ACL; Schema: stepwise; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE stepwise.job_search_keys TO stepwise_tenant;

--
-- Name: TABLE job_signals; Type: ACL; Schema: stepwise; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE stepwise.job_signals TO stepwise_tenant;

--
-- Name: TABLE jobs; Type: ACL; Schema: stepwise; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE stepwise.jobs TO stepwise_tenant;

--
-- Name: TABLE knowledge_documents; Type: ACL; Schema: stepwise; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE stepwise.knowledge_documents TO stepwise_tenant;

--
-- Name: TABLE knowledge_usage_daily; Type: ACL; Schema: stepwise; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE stepwise.knowledge_usage_daily TO stepwise_tenant;

--
-- Name: TABLE log_levels; Type: ACL; Schema: stepwise; Owner: -
--

GRANT SELECT ON TABLE stepwise.log_levels TO stepwise_tenant;

--
-- Name: TABLE maintenance_leases; Type: ACL; Schema: stepwise; Owner: -
--

GRANT SELECT ON TABLE stepwise.maintenance_leases TO stepwise_tenant;

--
-- Name: TABLE organizations; Type: ACL; Schema: stepwise; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE stepwise.organizations TO stepwise_tenant;

--
-- Name: TABLE phi_audit_log; Type: ACL; Schema: stepwise; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE stepwise.phi_audit_log TO stepwise_tenant;

--
-- Name: TABLE rate_limit_buckets; Type: ACL; Schema: stepwise; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE stepwise.rate_limit_buckets TO stepwise_tenant;

--
-- Name: TABLE read_model_failures; Type: ACL; Schema: stepwise; Owner: -
--

GRANT SELECT ON TABLE stepwise.read_model_failures TO stepwise_tenant;

--
-- Name: TABLE retention_policies; Type: ACL; Schema: stepwise; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE stepwise.retention_policies TO stepwise_tenant;

--
-- Name: TABLE retrieval_documents; Type: ACL; Schema: stepwise; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE stepwise.retrieval_documents TO stepwise_tenant;

--
-- Name: TABLE retrievals; Type: ACL; Schema: stepwise; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE stepwise.retrievals TO stepwise_tenant;

--
-- Name: TABLE saved_views; Type: ACL; Schema: stepwise; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE stepwise.saved_views TO stepwise_tenant;

--
-- Name: TABLE schedule_audit_log; Type: ACL; Schema: stepwise; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE stepwise.schedule_audit_log TO stepwise_tenant;

--
-- Name: TABLE schedules; Type: ACL; Schema: stepwise; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE stepwise.schedules TO stepwise_tenant;

--
-- Name: TABLE screenshot_blobs; Type: ACL; Schema: stepwise; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE stepwise.screenshot_blobs TO stepwise_tenant;

--
-- Name: TABLE step_metrics; Type: ACL; Schema: stepwise; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE stepwise.step_metrics TO stepwise_tenant;

--
-- Name: TABLE stream_kinds; Type: ACL; Schema: stepwise; Owner: -
--

GRANT SELECT ON TABLE stepwise.stream_kinds TO stepwise_tenant;

--
-- Name: TABLE template_ratings; Type: ACL; Schema: stepwise; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE stepwise.template_ratings TO stepwise_tenant;

--
-- Name: TABLE templates; Type: ACL; Schema: stepwise; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE stepwise.templates TO stepwise_tenant;

--
-- Name: TABLE usage_records; Type: ACL; Schema: stepwise; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE stepwise.usage_records TO stepwise_tenant;

--
-- Name: TABLE user_invitations; Type: ACL; Schema: stepwise; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE stepwise.user_invitations TO stepwise_tenant;

--
-- Name: TABLE users; Type: ACL; Schema: stepwise; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE stepwise.users TO stepwise_tenant;

--
-- Name: TABLE web_sessions; Type: ACL; Schema: stepwise; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE stepwise.web_sessions TO stepwise_tenant;

--
-- Name: TABLE webhook_deliveries; Type: ACL; Schema: stepwise; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE stepwise.webhook_deliveries TO stepwise_tenant;

--
-- Name: TABLE webhook_triggers; Type: ACL; Schema: stepwise; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE stepwise.webhook_triggers TO stepwise_tenant;

--
-- Name: TABLE workflow_versions; Type: ACL; Schema: stepwise; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE stepwise.workflow_versions TO stepwise_tenant;

--
-- Name: TABLE workflows; Type: ACL; Schema: stepwise; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE stepwise.workflows TO stepwise_tenant;

--
-- PostgreSQL database dump complete
--
