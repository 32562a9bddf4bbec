-- The read side: stream indexes within the byte budget, the
-- execution_metadata dashboard read model, hourly/daily aggregate_metrics with
-- a mergeable duration histogram, and daily step_metrics. All maintained by
-- STATEMENT-level triggers over transition tables, so a flush of 500
-- completions is one trigger call doing a few set-based upserts.

-- ---------------------------------------------------------------------------
-- Stream indexes. The obvious set is (job_id, level, ts DESC), (job_id, ts
-- DESC) and a partial (job_id, ts DESC) WHERE level IN (ERROR, WARN). Two
-- unique-per-row b-tree keys cost ~35–40 bytes a row each and would take a
-- row from 136 to over 210 bytes (budget: 170). The same access paths are
-- served by:
--   * (job_id, level): deduplicated — a job's rows share one or two keys
--     (mostly INFO), stored once with a posting list of 6-byte row pointers.
--     "A job's rows in order" = job_id = $1 (all levels) and "a job's rows at
--     level >= X" = job_id = $1 AND level >= $2, both index scans; the job's
--     few hundred rows are then sorted by seq in memory (a job writes ~60).
--     The time order of those ts keys is the seq order here (seq is the
--     per-job order; ts only bounds the partitions read).
--   * a partial (organization_id, ts DESC) WHERE level >= 4 (WARN, ERROR,
--     FATAL): "recent warnings and errors" of a tenant. Only those rows pay
--     for it (a few per cent of rows).
-- Replaces execution_log_job_idx (job_id), whose only reader is served by
-- the new key's prefix.
CREATE INDEX execution_log_job_level_idx ON stepwise.execution_log (job_id, level);
DROP INDEX stepwise.execution_log_job_idx;
CREATE INDEX execution_log_alerts_idx ON stepwise.execution_log (organization_id, ts DESC) WHERE level >= 4;

-- ---------------------------------------------------------------------------
-- Trigger failures: a read-model trigger never fails the job write (the
-- dashboard may lag, the execution record must not be lost). It records what
-- failed here and leaves the drift for `stepwise reconcile`.
CREATE TABLE stepwise.read_model_failures (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  occurred_at timestamptz NOT NULL DEFAULT now(),
  source      varchar(40) NOT NULL,
  sqlstate    varchar(5),
  message     text NOT NULL,
  row_count   integer NOT NULL,
  -- Set by `stepwise reconcile --repair` once the drift is repaired.
  resolved_at timestamptz
);

-- ---------------------------------------------------------------------------
-- Duration histogram: fixed log-scale buckets, sparse jsonb {"bucket": count}.
-- Bucket 0 holds durations below 0.01 ms; bucket k >= 1 holds
-- [0.01·1.1^(k-1), 0.01·1.1^k) ms and is represented by its geometric middle,
-- so any value read back is within sqrt(1.1) - 1 = 4.88 % of the truth.
-- 300 buckets reach 0.01·1.1^299 ≈ 2.4e10 ms (280 days); longer is clamped.
-- Mirrored by src/read/histogram.ts (a test checks both agree).
CREATE FUNCTION stepwise.duration_bucket(ms double precision) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN ms IS NULL THEN NULL
              WHEN ms < 0.01 THEN 0
              ELSE least(299, 1 + floor(ln(ms / 0.01) / ln(1.1))::integer) END
$$;

-- Merge two histograms by adding counts per bucket (mergeable: any set of
-- rows summed in any order gives the same histogram).
CREATE FUNCTION stepwise.histogram_merge(a jsonb, b jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT coalesce(jsonb_object_agg(k, n), '{}'::jsonb)
    FROM (SELECT k, sum(v::bigint) AS n
            FROM (SELECT * FROM jsonb_each_text(coalesce(a, '{}'::jsonb))
                  UNION ALL
                  SELECT * FROM jsonb_each_text(coalesce(b, '{}'::jsonb))) e(k, v)
           GROUP BY k) s
$$;

CREATE AGGREGATE stepwise.histogram_sum(jsonb) (
  SFUNC = stepwise.histogram_merge,
  STYPE = jsonb,
  INITCOND = '{}'
);

-- Top errors of a step: merge two [{code, message, count}] lists and keep the
-- 10 most frequent (bounded, so a step that fails with a new message every
-- time cannot grow its row without limit; counts of errors that drop off
-- the list are lost, which is the price of the bound).
CREATE FUNCTION stepwise.top_errors_merge(a jsonb, b jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT coalesce(jsonb_agg(jsonb_build_object('code', code, 'message', message, 'count', n) ORDER BY n DESC, code, message), '[]'::jsonb)
    FROM (SELECT code, message, sum(n) AS n
            FROM (SELECT e->>'code' AS code, e->>'message' AS message, (e->>'count')::bigint AS n
                    FROM jsonb_array_elements(coalesce(a, '[]'::jsonb) || coalesce(b, '[]'::jsonb)) e) x
           GROUP BY code, message
           ORDER BY sum(n) DESC, code, message
           LIMIT 10) t
$$;

-- ---------------------------------------------------------------------------
-- The dashboard read model: one slim row per job, so listing pages never
-- touch the wide jobs rows. Ids only (names are joined for the page shown),
-- error message cut to 500 characters. Target ≤ 500 bytes a row with indexes.
CREATE TABLE stepwise.execution_metadata (
  job_id          uuid PRIMARY KEY,
  organization_id uuid         NOT NULL,
  workflow_id     uuid         NOT NULL,
  client_id       uuid,
  run_number      bigint       NOT NULL,
  status          varchar(16)  NOT NULL,
  initiator_type  varchar(10)  NOT NULL,
  steps_total     integer      NOT NULL,
  steps_completed integer      NOT NULL,
  attempts        integer      NOT NULL,
  retry_count     integer      NOT NULL,
  created_at      timestamptz  NOT NULL,
  started_at      timestamptz,
  completed_at    timestamptz,
  duration_ms     integer,
  error_code      varchar(100),
  error_message   varchar(500),
  error_step      varchar(100),
  last_synced_at  timestamptz  NOT NULL DEFAULT now()
) WITH (fillfactor = 85);
-- Unfiltered newest-first listing and created-at ranges; run_number breaks
-- ties of one enqueue batch (same created_at) so the keyset is total.
CREATE INDEX execution_metadata_org_created_idx ON stepwise.execution_metadata (organization_id, created_at DESC, run_number DESC);
-- The dashboard's list filtered by status, newest first.
CREATE INDEX execution_metadata_org_status_created_idx ON stepwise.execution_metadata (organization_id, status, created_at DESC);
CREATE INDEX execution_metadata_org_workflow_created_idx ON stepwise.execution_metadata (organization_id, workflow_id, created_at DESC);

-- Fill from existing jobs (a database migrated with history).
INSERT INTO stepwise.execution_metadata
  (job_id, organization_id, workflow_id, client_id, run_number, status, initiator_type, steps_total, steps_completed,
   attempts, retry_count, created_at, started_at, completed_at, duration_ms, error_code, error_message, error_step)
SELECT id, organization_id, workflow_id, client_id, run_number, status, initiator_type, steps_total, steps_completed,
       attempts, retry_count, created_at, started_at, completed_at, duration_ms, error_code, left(error_message, 500), error_step
  FROM stepwise.jobs;

-- ---------------------------------------------------------------------------
-- Aggregate metrics: counts and durations for dashboards without scanning
-- jobs. One row per (organization, period, period start, workflow, client,
-- initiator). "All" is a sentinel, not NULL, so the primary key can be the
-- upsert target:
--   workflow_id = client_id = '00000000-0000-0000-0000-000000000000' (all)
--   client_id   = '00000000-0000-0000-0000-000000000001' (jobs with no client)
--   initiator_type = 'all'
-- (src/store/aggregates.ts AGGREGATE_ALL_* hold the same values.)
-- Rows kept per completed job and period: the detail row and the rollups
-- (workflow), (client), (initiator) and (all), i.e. five keys. Periods are
-- HOUR and DAY (the issue's) plus MONTH: a one-year range then reads 12
-- month rows plus the partial days and hours at its edges (≤ ~110 rows per
-- key) instead of 365 day rows, which keeps a year's percentiles per
-- workflow within the 20 ms budget.
CREATE TABLE stepwise.aggregate_metrics (
  organization_id       uuid        NOT NULL,
  period                varchar(5)  NOT NULL CHECK (period IN ('HOUR', 'DAY', 'MONTH')),
  workflow_id           uuid        NOT NULL DEFAULT '00000000-0000-0000-0000-000000000000',
  client_id             uuid        NOT NULL DEFAULT '00000000-0000-0000-0000-000000000000',
  initiator_type        varchar(10) NOT NULL DEFAULT 'all',
  period_start          timestamptz NOT NULL,
  total_count           integer     NOT NULL DEFAULT 0,
  completed_count       integer     NOT NULL DEFAULT 0,
  partial_success_count integer     NOT NULL DEFAULT 0,
  failed_count          integer     NOT NULL DEFAULT 0,
  cancelled_count       integer     NOT NULL DEFAULT 0,
  timed_out_count       integer     NOT NULL DEFAULT 0,
  -- Jobs with a duration (a job cancelled before it started has none).
  duration_count        integer     NOT NULL DEFAULT 0,
  total_duration_ms     bigint      NOT NULL DEFAULT 0,
  min_duration_ms       integer,
  max_duration_ms       integer,
  duration_histogram    jsonb       NOT NULL DEFAULT '{}',
  avg_duration_ms       double precision GENERATED ALWAYS AS
                          (CASE WHEN duration_count > 0 THEN total_duration_ms::double precision / duration_count END) STORED,
  -- COMPLETED over all terminal outcomes (PARTIAL_SUCCESS is not a success).
  success_rate          double precision GENERATED ALWAYS AS
                          (CASE WHEN total_count > 0 THEN completed_count::double precision / total_count END) STORED,
  updated_at            timestamptz NOT NULL DEFAULT now(),
  -- Dimensions before period_start: a range of one key combination is one
  -- index range scan, and "every workflow, all clients, all initiators"
  -- (the per-workflow stats) is one contiguous range too.
  PRIMARY KEY (organization_id, period, client_id, initiator_type, workflow_id, period_start)
);

-- ---------------------------------------------------------------------------
-- Step metrics: daily per (organization, workflow, step).
-- Keyed by the step's index in the definition; step_name is the step id last
-- seen completing there.
CREATE TABLE stepwise.step_metrics (
  organization_id    uuid             NOT NULL,
  workflow_id        uuid             NOT NULL,
  step_index         smallint         NOT NULL,
  period_start       timestamptz      NOT NULL,
  step_name          varchar(100),
  executions         integer          NOT NULL DEFAULT 0,
  successes          integer          NOT NULL DEFAULT 0,
  failures           integer          NOT NULL DEFAULT 0,
  total_duration_ms  double precision NOT NULL DEFAULT 0,
  duration_histogram jsonb            NOT NULL DEFAULT '{}',
  top_errors         jsonb            NOT NULL DEFAULT '[]',
  avg_duration_ms    double precision GENERATED ALWAYS AS
                       (CASE WHEN executions > 0 THEN total_duration_ms / executions END) STORED,
  updated_at         timestamptz      NOT NULL DEFAULT now(),
  PRIMARY KEY (organization_id, workflow_id, step_index, period_start)
);

-- ---------------------------------------------------------------------------
-- Aggregate upsert shared by the jobs triggers and `stepwise reconcile`: add
-- the given finished jobs (parallel arrays, one element per job) to their
-- hour, day and month rows, each under the five dimension keys. One
-- INSERT … ON CONFLICT for the whole batch.
CREATE FUNCTION stepwise.add_to_aggregates(
  p_org uuid[], p_workflow uuid[], p_client uuid[], p_initiator text[], p_status text[],
  p_completed_at timestamptz[], p_duration integer[]
) RETURNS void LANGUAGE sql AS $$
  -- First collapse the jobs to one row per (dimensions, hour, bucket): the
  -- jobs of one flush mostly finish in the same hour with similar
  -- durations, so 500 jobs become tens of rows before the 3 periods × 5
  -- keys expansion (measured: the expansion of raw jobs cost ~2/3 of the
  -- trigger's time).
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
  INSERT INTO stepwise.aggregate_metrics AS a
    (organization_id, period, workflow_id, client_id, initiator_type, period_start, total_count, completed_count,
     partial_success_count, failed_count, cancelled_count, timed_out_count, duration_count, total_duration_ms,
     min_duration_ms, max_duration_ms, duration_histogram)
  SELECT org, period, wf, cl, ini, ps, sum(n)::int, sum(c)::int, sum(ps_n)::int, sum(f)::int, sum(x)::int, sum(t)::int,
         sum(dn)::int, sum(dsum)::bigint, min(dmin), max(dmax),
         coalesce(jsonb_object_agg(bucket, dn) FILTER (WHERE bucket IS NOT NULL), '{}'::jsonb)
    FROM k
   GROUP BY org, period, wf, cl, ini, ps
   -- Rows are locked in key order, the same in every transaction: two
   -- workers flushing at once then wait for each other on the shared
   -- rollup rows instead of deadlocking (a deadlock here cost the loser's
   -- aggregate update and a 1 s deadlock_timeout).
   ORDER BY org, period, cl, ini, wf, ps
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

-- ---------------------------------------------------------------------------
-- Triggers on jobs. Each catches its own errors (the EXCEPTION block is one
-- subtransaction per statement, not per row) so the job write always
-- commits; the failure is recorded and reconcile repairs the drift.
-- Statements run through EXECUTE so each is planned for the transition
-- table it gets: PL/pgSQL caches the plan made for the first call (sized for
-- that call's rows), and a cached plan for the step metrics took 175 ms per
-- flush of 500 jobs against 24 ms planned fresh (planning costs ~1–8 ms).
CREATE FUNCTION stepwise.jobs_read_model_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  BEGIN
    EXECUTE $q$
    INSERT INTO stepwise.execution_metadata
      (job_id, organization_id, workflow_id, client_id, run_number, status, initiator_type, steps_total, steps_completed,
       attempts, retry_count, created_at, started_at, completed_at, duration_ms, error_code, error_message, error_step)
    SELECT id, organization_id, workflow_id, client_id, run_number, status, initiator_type, steps_total, steps_completed,
           attempts, retry_count, created_at, started_at, completed_at, duration_ms, error_code, left(error_message, 500), error_step
      FROM new_jobs
    ON CONFLICT (job_id) DO NOTHING $q$;
  EXCEPTION WHEN OTHERS THEN
    INSERT INTO stepwise.read_model_failures (source, sqlstate, message, row_count)
    VALUES ('execution_metadata', SQLSTATE, SQLERRM, (SELECT count(*) FROM new_jobs));
  END;
  -- A job inserted already finished (an import, the scale benchmark) enters
  -- its terminal status here, so it counts here.
  BEGIN
    EXECUTE $q$
    SELECT stepwise.add_to_aggregates(
      array_agg(n.organization_id), array_agg(n.workflow_id), array_agg(n.client_id), array_agg(n.initiator_type::text),
      array_agg(n.status::text), array_agg(n.completed_at), array_agg(n.duration_ms))
      FROM new_jobs n
     WHERE n.status IN ('COMPLETED', 'PARTIAL_SUCCESS', 'FAILED', 'CANCELLED', 'TIMED_OUT') AND n.completed_at IS NOT NULL
    HAVING count(*) > 0 $q$;
  EXCEPTION WHEN OTHERS THEN
    INSERT INTO stepwise.read_model_failures (source, sqlstate, message, row_count)
    VALUES ('aggregate_metrics', SQLSTATE, SQLERRM, (SELECT count(*) FROM new_jobs));
  END;
  RETURN NULL;
END $$;

CREATE FUNCTION stepwise.jobs_read_model_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  BEGIN
    EXECUTE $q$
    UPDATE stepwise.execution_metadata m
       SET status = n.status, steps_completed = n.steps_completed, attempts = n.attempts, retry_count = n.retry_count,
           started_at = n.started_at, completed_at = n.completed_at, duration_ms = n.duration_ms,
           error_code = n.error_code, error_message = left(n.error_message, 500), error_step = n.error_step,
           last_synced_at = now()
      FROM new_jobs n
     -- The = ANY(ARRAY(…)) makes the plan a primary-key probe of this
     -- flush's rows; with the join alone the planner hashed a sequential
     -- scan of the whole table (126 → 49 ms for 500 rows at 25k rows, and
     -- growing with the table).
     WHERE m.job_id = n.id AND m.job_id = ANY(ARRAY(SELECT id FROM new_jobs))
       AND (m.status, m.steps_completed, m.attempts, m.retry_count, m.started_at, m.completed_at, m.duration_ms,
            m.error_code, m.error_step)
           IS DISTINCT FROM
           (n.status, n.steps_completed, n.attempts, n.retry_count, n.started_at, n.completed_at, n.duration_ms,
            n.error_code, n.error_step) $q$;
  EXCEPTION WHEN OTHERS THEN
    INSERT INTO stepwise.read_model_failures (source, sqlstate, message, row_count)
    VALUES ('execution_metadata', SQLSTATE, SQLERRM, (SELECT count(*) FROM new_jobs));
  END;
  -- Aggregates count a job once: on the update that moves it from a
  -- non-terminal status INTO a terminal one. A job-level retry passes
  -- through PENDING (never terminal) so it is counted once at its end; a
  -- retry of a finished job is a new job and counts as its own execution.
  BEGIN
    EXECUTE $q$
    SELECT stepwise.add_to_aggregates(
      array_agg(n.organization_id), array_agg(n.workflow_id), array_agg(n.client_id), array_agg(n.initiator_type::text),
      array_agg(n.status::text), array_agg(n.completed_at), array_agg(n.duration_ms))
      FROM new_jobs n JOIN old_jobs o ON o.id = n.id
     WHERE n.status IN ('COMPLETED', 'PARTIAL_SUCCESS', 'FAILED', 'CANCELLED', 'TIMED_OUT')
       AND o.status NOT IN ('COMPLETED', 'PARTIAL_SUCCESS', 'FAILED', 'CANCELLED', 'TIMED_OUT')
       AND n.completed_at IS NOT NULL
    HAVING count(*) > 0 $q$;
  EXCEPTION WHEN OTHERS THEN
    INSERT INTO stepwise.read_model_failures (source, sqlstate, message, row_count)
    VALUES ('aggregate_metrics', SQLSTATE, SQLERRM, (SELECT count(*) FROM new_jobs));
  END;
  RETURN NULL;
END $$;

CREATE TRIGGER jobs_read_model_insert AFTER INSERT ON stepwise.jobs
  REFERENCING NEW TABLE AS new_jobs FOR EACH STATEMENT EXECUTE FUNCTION stepwise.jobs_read_model_insert();
CREATE TRIGGER jobs_read_model_update AFTER UPDATE ON stepwise.jobs
  REFERENCING OLD TABLE AS old_jobs NEW TABLE AS new_jobs FOR EACH STATEMENT EXECUTE FUNCTION stepwise.jobs_read_model_update();

-- ---------------------------------------------------------------------------
-- Step metrics from the stream rows the recorder already writes:
-- STEP_COMPLETED (11) and STEP_FAILED (12) carry durationMs (and code on a
-- failure); compensation attempts are left out. One statement per flush.
CREATE FUNCTION stepwise.execution_log_step_metrics() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  BEGIN
    -- Each step row's workflow by a primary-key probe: the planner has no
    -- statistics for a transition table and estimated 1 row after the kind
    -- filter, so a join chose a nested loop of 1,000 × 500 comparisons
    -- (346 ms for one flush); LIMIT 1 keeps the lateral subquery a probe.
    EXECUTE $q$
    WITH s AS (
      SELECT r.organization_id AS org, j.workflow_id AS wf, r.step_index AS idx, date_trunc('day', r.ts, 'UTC') AS ps,
             r.kind = 11 AS ok, CASE WHEN r.kind = 11 THEN left(r.message, 100) END AS name,
             coalesce((r.data->>'durationMs')::double precision, 0) AS dur,
             CASE WHEN r.kind = 12 THEN coalesce(r.data->>'code', 'STEP_ERROR') END AS code,
             CASE WHEN r.kind = 12 THEN left(r.message, 200) END AS msg
        FROM new_rows r
       CROSS JOIN LATERAL (SELECT x.workflow_id FROM stepwise.jobs x
                            WHERE x.id = r.job_id AND x.organization_id = r.organization_id LIMIT 1) j
       WHERE r.kind IN (11, 12) AND r.step_index IS NOT NULL AND r.data->'compensation' IS NULL
    ), b AS (
      SELECT org, wf, idx, ps, stepwise.duration_bucket(dur) AS bucket, count(*) AS n FROM s GROUP BY 1, 2, 3, 4, 5
    ), bh AS (
      SELECT org, wf, idx, ps, jsonb_object_agg(bucket, n) AS hist FROM b GROUP BY 1, 2, 3, 4
    ), e AS (
      SELECT org, wf, idx, ps, jsonb_agg(jsonb_build_object('code', code, 'message', msg, 'count', n)) AS errs
        FROM (SELECT org, wf, idx, ps, code, msg, count(*) AS n FROM s WHERE code IS NOT NULL GROUP BY 1, 2, 3, 4, 5, 6) x
       GROUP BY 1, 2, 3, 4
    ), t AS (
      SELECT org, wf, idx, ps, max(name) AS name, count(*) AS n, count(*) FILTER (WHERE ok) AS okn,
             count(*) FILTER (WHERE NOT ok) AS bad, sum(dur) AS dsum
        FROM s GROUP BY 1, 2, 3, 4
    )
    -- Histograms and errors are aggregated per group once and joined (as
    -- correlated subqueries they rescanned all of s per group: 1.3 s of a
    -- 1.7 s flush of 444 groups, measured with EXPLAIN of this body).
    INSERT INTO stepwise.step_metrics AS m
      (organization_id, workflow_id, step_index, period_start, step_name, executions, successes, failures,
       total_duration_ms, duration_histogram, top_errors)
    SELECT t.org, t.wf, t.idx, t.ps, t.name, t.n, t.okn, t.bad, t.dsum, bh.hist,
           CASE WHEN e.errs IS NULL THEN '[]'::jsonb ELSE stepwise.top_errors_merge('[]', e.errs) END
      FROM t
      JOIN bh ON (bh.org, bh.wf, bh.idx, bh.ps) = (t.org, t.wf, t.idx, t.ps)
      LEFT JOIN e ON (e.org, e.wf, e.idx, e.ps) = (t.org, t.wf, t.idx, t.ps)
     -- Key order, so concurrent flushes lock shared rows in the same order (no deadlock).
     ORDER BY t.org, t.wf, t.idx, t.ps
    ON CONFLICT (organization_id, workflow_id, step_index, period_start) DO UPDATE SET
      step_name = coalesce(EXCLUDED.step_name, m.step_name),
      executions = m.executions + EXCLUDED.executions,
      successes = m.successes + EXCLUDED.successes,
      failures = m.failures + EXCLUDED.failures,
      total_duration_ms = m.total_duration_ms + EXCLUDED.total_duration_ms,
      duration_histogram = stepwise.histogram_merge(m.duration_histogram, EXCLUDED.duration_histogram),
      top_errors = CASE WHEN EXCLUDED.top_errors = '[]'::jsonb THEN m.top_errors
                        ELSE stepwise.top_errors_merge(m.top_errors, EXCLUDED.top_errors) END,
      updated_at = now() $q$;
  EXCEPTION WHEN OTHERS THEN
    INSERT INTO stepwise.read_model_failures (source, sqlstate, message, row_count)
    VALUES ('step_metrics', SQLSTATE, SQLERRM, (SELECT count(*) FROM new_rows));
  END;
  RETURN NULL;
END $$;

CREATE TRIGGER execution_log_step_metrics AFTER INSERT ON stepwise.execution_log
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION stepwise.execution_log_step_metrics();

-- Count the jobs that finished before this migration.
SELECT stepwise.add_to_aggregates(
  array_agg(organization_id), array_agg(workflow_id), array_agg(client_id), array_agg(initiator_type::text),
  array_agg(status::text), array_agg(completed_at), array_agg(duration_ms))
  FROM stepwise.jobs
 WHERE status IN ('COMPLETED', 'PARTIAL_SUCCESS', 'FAILED', 'CANCELLED', 'TIMED_OUT') AND completed_at IS NOT NULL
HAVING count(*) > 0;
