import { LOCK_KEYS, type Queryable } from '../db/index.js';
import { AGGREGATE_ALL_CLIENTS, AGGREGATE_ALL_INITIATORS, AGGREGATE_ALL_WORKFLOWS } from './aggregates.js';
import { TERMINAL_STATUSES } from './jobs.js';

/**
 * Admin-side SQL of the read model's drift check and repair (`stepwise
 * reconcile`). These read across tenants on purpose (optionally narrowed to
 * one organization); nothing on the API path calls them.
 */

/** How many rows of one kind drifted, with a few ids to look at. */
export interface DriftCount {
  count: number;
  sample: string[];
}

export interface MetadataDrift {
  /** Finished jobs with no execution_metadata row. */
  missing: DriftCount;
  /** Metadata rows whose job is gone or no longer finished (the read model holds finished jobs only). */
  orphaned: DriftCount;
  /** Metadata rows whose fields differ from their job's. */
  stale: DriftCount;
}

const SAMPLE = 10;

/** Finished (terminal) statuses as an SQL list of fixed names: the read model and the aggregates hold finished jobs only; live ones are listed from job_queue (migration 0011). */
const FINISHED = `(${TERMINAL_STATUSES.map((s) => `'${s}'`).join(', ')})`;

/** The columns metadata copies from jobs, compared field by field (parent_job_id since migration 0019). */
const COMPARED = `(m.organization_id, m.workflow_id, m.client_id, m.run_number, m.status, m.initiator_type, m.steps_total,
   m.steps_completed, m.attempts, m.retry_count, m.created_at, m.started_at, m.completed_at, m.duration_ms,
   m.error_code, m.error_message, m.error_step, m.parent_job_id)
  IS DISTINCT FROM
  (j.organization_id, j.workflow_id, j.client_id, j.run_number, j.status, j.initiator_type, j.steps_total,
   j.steps_completed, j.attempts, j.retry_count, j.created_at, j.started_at, j.completed_at, j.duration_ms,
   j.error_code, left(j.error_message, 500), j.error_step, j.parent_job_id)`;

async function drift(db: Queryable, sql: string, organizationId: string | null): Promise<DriftCount> {
  const { rows } = await db.query<{ n: number; sample: string[] | null }>(
    `SELECT count(*)::int AS n, (array_agg(id ORDER BY id))[1:${SAMPLE}]::text[] AS sample FROM (${sql}) d`,
    [organizationId],
  );
  return { count: rows[0]!.n, sample: rows[0]!.sample ?? [] };
}

/** Compare execution_metadata with jobs (all organizations, or one). */
export async function findMetadataDrift(db: Queryable, organizationId: string | null = null): Promise<MetadataDrift> {
  return {
    missing: await drift(
      db,
      `SELECT j.id FROM stepwise.jobs j LEFT JOIN stepwise.execution_metadata m ON m.job_id = j.id
        WHERE m.job_id IS NULL AND j.status IN ${FINISHED} AND ($1::uuid IS NULL OR j.organization_id = $1)`,
      organizationId,
    ),
    orphaned: await drift(
      db,
      `SELECT m.job_id AS id FROM stepwise.execution_metadata m LEFT JOIN stepwise.jobs j ON j.id = m.job_id
        WHERE (j.id IS NULL OR j.status NOT IN ${FINISHED}) AND ($1::uuid IS NULL OR m.organization_id = $1)`,
      organizationId,
    ),
    stale: await drift(
      db,
      `SELECT j.id FROM stepwise.jobs j JOIN stepwise.execution_metadata m ON m.job_id = j.id
        WHERE j.status IN ${FINISHED} AND ($1::uuid IS NULL OR j.organization_id = $1) AND ${COMPARED}`,
      organizationId,
    ),
  };
}

/**
 * Make execution_metadata match the finished jobs: insert missing rows,
 * rewrite stale ones, delete orphans and rows of jobs that are live again. Returns the rows written and deleted.
 */
export async function repairMetadata(tx: Queryable, organizationId: string | null = null): Promise<{ written: number; deleted: number }> {
  const written = await tx.query(
    `INSERT INTO stepwise.execution_metadata AS m
       (job_id, organization_id, workflow_id, client_id, run_number, status, initiator_type, steps_total, steps_completed,
        attempts, retry_count, created_at, started_at, completed_at, duration_ms, error_code, error_message, error_step,
        parent_job_id, last_synced_at)
     SELECT j.id, j.organization_id, j.workflow_id, j.client_id, j.run_number, j.status, j.initiator_type, j.steps_total,
            j.steps_completed, j.attempts, j.retry_count, j.created_at, j.started_at, j.completed_at, j.duration_ms,
            j.error_code, left(j.error_message, 500), j.error_step, j.parent_job_id, now()
       FROM stepwise.jobs j LEFT JOIN stepwise.execution_metadata m ON m.job_id = j.id
      WHERE j.status IN ${FINISHED} AND ($1::uuid IS NULL OR j.organization_id = $1) AND (m.job_id IS NULL OR ${COMPARED})
     ON CONFLICT (job_id) DO UPDATE SET
       organization_id = EXCLUDED.organization_id, workflow_id = EXCLUDED.workflow_id, client_id = EXCLUDED.client_id,
       run_number = EXCLUDED.run_number, status = EXCLUDED.status, initiator_type = EXCLUDED.initiator_type,
       steps_total = EXCLUDED.steps_total, steps_completed = EXCLUDED.steps_completed, attempts = EXCLUDED.attempts,
       retry_count = EXCLUDED.retry_count, created_at = EXCLUDED.created_at, started_at = EXCLUDED.started_at,
       completed_at = EXCLUDED.completed_at, duration_ms = EXCLUDED.duration_ms, error_code = EXCLUDED.error_code,
       error_message = EXCLUDED.error_message, error_step = EXCLUDED.error_step, parent_job_id = EXCLUDED.parent_job_id,
       last_synced_at = now()`,
    [organizationId],
  );
  const deleted = await tx.query(
    `DELETE FROM stepwise.execution_metadata m
      WHERE ($1::uuid IS NULL OR m.organization_id = $1)
        AND NOT EXISTS (SELECT 1 FROM stepwise.jobs j WHERE j.id = m.job_id AND j.status IN ${FINISHED})`,
    [organizationId],
  );
  return { written: written.rowCount, deleted: deleted.rowCount };
}

/**
 * Organizations whose daily "all" aggregate rows disagree with a recount of
 * their finished jobs per UTC day (counts per outcome and duration sums).
 */
export async function findAggregateDrift(db: Queryable, organizationId: string | null = null): Promise<DriftCount> {
  return drift(
    db,
    `WITH recount AS (
       SELECT organization_id, date_trunc('day', completed_at, 'UTC') AS ps, count(*) AS n,
              count(*) FILTER (WHERE status = 'COMPLETED') AS c, count(*) FILTER (WHERE status = 'FAILED') AS f,
              count(duration_ms) AS dn, coalesce(sum(duration_ms), 0) AS ds
         FROM stepwise.jobs
        WHERE status IN ${FINISHED} AND completed_at IS NOT NULL
          AND ($1::uuid IS NULL OR organization_id = $1)
        GROUP BY 1, 2
     ), stored AS (
       -- Rolled up or still in the outbox (migration 0027): a job counts once either way.
       SELECT organization_id, period_start AS ps, sum(total_count) AS n, sum(completed_count) AS c, sum(failed_count) AS f,
              sum(duration_count) AS dn, sum(total_duration_ms) AS ds
         FROM stepwise.aggregate_metrics_live
        WHERE period = 'DAY' AND workflow_id = '${AGGREGATE_ALL_WORKFLOWS}'
          AND client_id = '${AGGREGATE_ALL_CLIENTS}' AND initiator_type = '${AGGREGATE_ALL_INITIATORS}'
          AND ($1::uuid IS NULL OR organization_id = $1)
        GROUP BY 1, 2
     )
     SELECT DISTINCT coalesce(r.organization_id, s.organization_id) AS id
       FROM recount r FULL JOIN stored s ON s.organization_id = r.organization_id AND s.ps = r.ps
      WHERE (r.n, r.c, r.f, r.dn, r.ds) IS DISTINCT FROM (s.n, s.c, s.f, s.dn, s.ds)`,
    organizationId,
  );
}

/**
 * Rebuild one organization's aggregate_metrics from its finished jobs
 * (delete, then one batched add). Its jobs still in aggregate_outbox are
 * recounted from jobs too, so they leave the outbox; the roll-up's lock
 * keeps a roll-up from adding them a second time meanwhile.
 */
export async function rebuildAggregates(tx: Queryable, organizationId: string): Promise<number> {
  await tx.query('SELECT pg_advisory_xact_lock($1)', [LOCK_KEYS.aggregateRollup]);
  await tx.query(`DELETE FROM stepwise.aggregate_outbox WHERE organization_id = $1`, [organizationId]);
  await tx.query(`DELETE FROM stepwise.aggregate_metrics WHERE organization_id = $1`, [organizationId]);
  const { rows } = await tx.query<{ n: number }>(
    `WITH added AS (
       SELECT stepwise.add_to_aggregates(
         array_agg(organization_id), array_agg(workflow_id), array_agg(client_id), array_agg(initiator_type::text),
         array_agg(status::text), array_agg(completed_at), array_agg(duration_ms)), count(*) AS n
         FROM stepwise.jobs
        WHERE organization_id = $1 AND status IN ${FINISHED}
          AND completed_at IS NOT NULL
       HAVING count(*) > 0
     )
     SELECT coalesce((SELECT n FROM added), 0)::int AS n`,
    [organizationId],
  );
  return rows[0]!.n;
}

export interface ReadModelFailure {
  id: number;
  occurredAt: Date;
  source: string;
  sqlstate: string | null;
  message: string;
  rowCount: number;
}

/** Trigger failures not yet resolved by a repair, oldest first (at most `limit`). */
export async function listReadModelFailures(db: Queryable, limit = 20): Promise<{ count: number; items: ReadModelFailure[] }> {
  const { rows } = await db.query<{ id: string; occurred_at: Date; source: string; sqlstate: string | null; message: string; row_count: number; total: number }>(
    `SELECT id, occurred_at, source, sqlstate, message, row_count, count(*) OVER ()::int AS total
       FROM stepwise.read_model_failures WHERE resolved_at IS NULL ORDER BY id LIMIT $1`,
    [limit],
  );
  return {
    count: rows[0]?.total ?? 0,
    items: rows.map((r) => ({ id: Number(r.id), occurredAt: r.occurred_at, source: r.source, sqlstate: r.sqlstate, message: r.message, rowCount: r.row_count })),
  };
}

/** Mark every unresolved trigger failure resolved (after a repair). */
export async function resolveReadModelFailures(tx: Queryable): Promise<number> {
  const { rowCount } = await tx.query(`UPDATE stepwise.read_model_failures SET resolved_at = now() WHERE resolved_at IS NULL`);
  return rowCount;
}
