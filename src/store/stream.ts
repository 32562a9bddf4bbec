import { pgArray, pgJsonArray, type Queryable } from '../db/index.js';
import { addStepMetrics, collectStepMetrics } from './step-metrics.js';
import { kindName, levelName, STREAM_KINDS, type LogLevel, type StreamKind } from './stream-codes.js';

/** One row of a job's stream as the engine writes it (codes, not names). */
export interface StreamRow {
  organizationId: string;
  jobId: string;
  /** The job's workflow: step results are counted into its step_metrics (not stored in the row). */
  workflowId: string;
  /** Epoch milliseconds with a fraction (util/clock.ts preciseNow): stored to the microsecond. */
  tsMs: number;
  seq: number;
  stepIndex: number | null;
  kind: number;
  level: number;
  message: string;
  data: unknown;
  /** The step's path inside its blocks (`inv[17].call`); absent or null for top-level rows. */
  path?: string | null;
}

/** One row as readers see it. */
export interface StreamEntry {
  seq: number;
  ts: Date;
  kind: StreamKind;
  level: LogLevel;
  stepIndex: number | null;
  message: string;
  data: unknown;
  /** The step's path inside its blocks; null for top-level rows. */
  path: string | null;
}

/**
 * Append rows in one multi-row INSERT over unnest'ed arrays: one round trip
 * and one plan for the whole batch instead of one INSERT per row. The step
 * results among them, and those of `countedOnly` (the step rows a loop's
 * quiet iterations did not write), are counted into step_metrics in the
 * same transaction (store/step-metrics.ts). appendStreamRows is the only
 * writer of new stream rows.
 *
 * A flush holds ~5 rows per job, so the job and organization ids travel once
 * per job and each row carries the 1-based position of its job: parsing
 * 36-character uuids was the biggest part of the server's bind time, and
 * this cut the server CPU of inserting 100k rows by ~20% here (760 → 610 ms
 * on a loaded 2-core machine), the worker's by half with pgArray.
 */
export async function insertStreamRows(tx: Queryable, rows: StreamRow[], countedOnly: readonly StreamRow[] = []): Promise<void> {
  await appendStreamRows(tx, rows);
  await addStepMetrics(tx, collectStepMetrics(countedOnly.length === 0 ? rows : [...rows, ...countedOnly]));
}

/**
 * The INSERT of insertStreamRows without the counting: for a caller that
 * counts the step results into step_metrics itself, later in the same
 * transaction (a recorder flush does it last, store/record-tx.ts).
 */
export async function appendStreamRows(tx: Queryable, rows: readonly StreamRow[]): Promise<void> {
  if (rows.length === 0) return;
  const jobIds: string[] = [];
  const orgIds: string[] = [];
  const position = new Map<string, number>();
  const jobOf: number[] = new Array(rows.length);
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i]!;
    let p = position.get(r.jobId);
    if (p === undefined) {
      jobIds.push(r.jobId);
      orgIds.push(r.organizationId);
      p = jobIds.length;
      position.set(r.jobId, p);
    }
    jobOf[i] = p;
  }
  await tx.query(
    // ts travels as epoch milliseconds (float8): formatting 100k ISO strings
    // with microseconds cost more than the conversion in SQL.
    // Paths travel as one more array only when some row has one (a NULL array
    // indexed gives NULL): most flushes hold top-level rows only.
    `INSERT INTO stepwise.execution_log (organization_id, job_id, ts, seq, step_index, kind, level, message, data, path)
     SELECT ($1::uuid[])[u.j], ($2::uuid[])[u.j], to_timestamp(u.ts / 1000), u.seq, u.step, u.kind, u.level, u.message, u.data,
            ($11::text[])[u.n]
       FROM unnest($3::int[], $4::float8[], $5::int[], $6::smallint[], $7::smallint[], $8::smallint[], $9::text[], $10::jsonb[])
         WITH ORDINALITY AS u(j, ts, seq, step, kind, level, message, data, n)`,
    [
      pgArray(orgIds),
      pgArray(jobIds),
      pgArray(jobOf),
      pgArray(rows.map((r) => r.tsMs)),
      pgArray(rows.map((r) => r.seq)),
      pgArray(rows.map((r) => r.stepIndex)),
      pgArray(rows.map((r) => r.kind)),
      pgArray(rows.map((r) => r.level)),
      pgArray(rows.map((r) => r.message)),
      pgJsonArray(rows.map((r) => r.data)),
      rows.some((r) => r.path) ? pgArray(rows.map((r) => r.path ?? null)) : null,
    ],
  );
}

export interface StreamQuery {
  afterSeq?: number | undefined;
  minLevel?: number | undefined;
  limit: number;
  /** Leave LOG rows out (a replay wants the typed events only: a long run's stream is mostly log lines). */
  withoutLogs?: boolean | undefined;
}

/**
 * Rows are stamped by the worker's clock; allow this much skew against the
 * job's created_at (stamped by the database) when bounding by time.
 */
export const STREAM_CLOCK_SKEW_MS = 24 * 3600 * 1000;

/**
 * The time range a job's rows can lie in: its creation and, once it ended,
 * its completion, each widened by the clock skew (ISO strings, 'infinity'
 * for a job still running). Bounding by it lets PostgreSQL read only the
 * month partitions of the job's lifetime.
 */
export function jobStreamBounds(job: { createdAt: Date; completedAt?: Date | null }): [string, string] {
  return [
    new Date(job.createdAt.getTime() - STREAM_CLOCK_SKEW_MS).toISOString(),
    job.completedAt ? new Date(job.completedAt.getTime() + STREAM_CLOCK_SKEW_MS).toISOString() : 'infinity',
  ];
}

/** A stream row as the database returns it. */
export interface StreamDbRow {
  seq: number;
  ts: Date;
  kind: number;
  level: number;
  step_index: number | null;
  message: string;
  data: unknown;
  /** Absent where a reader does not select it (rows written before paths existed read as null). */
  path?: string | null;
}

/** Codes to names for readers. */
export function toStreamEntry(r: StreamDbRow): StreamEntry {
  return {
    seq: r.seq,
    ts: r.ts,
    kind: kindName(r.kind),
    level: levelName(r.level),
    stepIndex: r.step_index,
    message: r.message,
    data: r.data,
    path: r.path ?? null,
  };
}

/**
 * A job's stream in sequence order. The time bounds (the job's creation
 * and, once it ended, its completion, each widened by the clock skew) let
 * PostgreSQL read only the month partitions of the job's lifetime. Served by
 * the (job_id, level) index; the job's rows are sorted by seq after.
 */
export async function listStream(
  db: Queryable,
  organizationId: string,
  job: { id: string; createdAt: Date; completedAt?: Date | null },
  q: StreamQuery,
): Promise<StreamEntry[]> {
  const [from, to] = jobStreamBounds(job);
  const { rows } = await db.query<StreamDbRow>(
    `SELECT seq, ts, kind, level, step_index, message, data, path
       FROM stepwise.execution_log
      WHERE organization_id = $1 AND job_id = $2 AND ts >= $3 AND ts < $7
        AND seq > $4 AND level >= $5${q.withoutLogs ? ` AND kind <> ${STREAM_KINDS.LOG}` : ''}
      ORDER BY seq
      LIMIT $6`,
    [organizationId, job.id, from, q.afterSeq ?? 0, q.minLevel ?? 1, q.limit, to],
  );
  return rows.map(toStreamEntry);
}
