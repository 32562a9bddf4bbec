/**
 * Stream rows written by SQL, counted into step_metrics as the engine counts
 * a flush (src/store/step-metrics.ts: STEP_COMPLETED / STEP_FAILED rows with
 * a step index, grouped by workflow, step, DAY and MONTH, added through
 * stepwise.add_step_metrics), here grouped in SQL over the rows just
 * inserted. The data generators of the benchmarks write the stream this way.
 *
 * `insertSql` is one INSERT INTO stepwise.execution_log without RETURNING;
 * the statement returned gives one row: `n`, the rows it wrote, and `groups`,
 * the step_metrics groups added (selecting from the `m` CTE is what runs it).
 */
export function withStepMetrics(insertSql: string): string {
  return `
WITH ins AS (${insertSql}
  RETURNING organization_id, job_id, ts, step_index, kind, message, data
), r AS (
  SELECT l.organization_id AS org, j.workflow_id AS wf, l.step_index AS idx, l.ts, l.kind = 11 AS ok,
         CASE WHEN l.kind = 11 THEN l.message END AS name, coalesce((l.data->>'durationMs')::double precision, 0) AS dur,
         CASE WHEN l.kind = 12 THEN coalesce(l.data->>'code', 'STEP_ERROR') END AS code,
         CASE WHEN l.kind = 12 THEN left(l.message, 200) END AS msg
    FROM ins l JOIN stepwise.jobs j ON j.id = l.job_id
   WHERE l.kind IN (11, 12) AND l.step_index IS NOT NULL AND l.data->'compensation' IS NULL
), g AS (
  SELECT r.org, r.wf, p.period, date_trunc(p.unit, r.ts, 'UTC') AS ps, r.idx, max(r.name) AS name, count(*)::int AS n,
         count(*) FILTER (WHERE r.ok)::int AS okn, count(*) FILTER (WHERE NOT r.ok)::int AS bad, sum(r.dur) AS dsum,
         array_agg(r.dur) AS durs, array_agg(r.code) AS codes, array_agg(r.msg) AS msgs
    FROM r CROSS JOIN (VALUES ('DAY', 'day'), ('MONTH', 'month')) AS p(period, unit)
   GROUP BY 1, 2, 3, 4, 5
), m AS (
  SELECT stepwise.add_step_metrics(
           array_agg(org), array_agg(wf), array_agg(period), array_agg(ps), array_agg(idx), array_agg(name), array_agg(n),
           array_agg(okn), array_agg(bad), array_agg(dsum),
           array_agg((SELECT jsonb_object_agg(b, c) FROM (SELECT stepwise.duration_bucket(x) AS b, count(*) AS c
                                                            FROM unnest(durs) AS x GROUP BY 1) h)),
           array_agg((SELECT coalesce(jsonb_agg(jsonb_build_object('code', c, 'message', e, 'count', k)), '[]')
                        FROM (SELECT c, e, count(*) AS k FROM unnest(codes, msgs) AS u(c, e) WHERE c IS NOT NULL GROUP BY 1, 2) x)))
    FROM g HAVING count(*) > 0
)
SELECT (SELECT count(*) FROM ins)::int AS n, (SELECT count(*) FROM m)::int AS groups`;
}
