import type { TrackedRun } from './api-traffic.js';
import type { PgCluster } from './pg-cluster.js';
import type { SideEffectServer } from './side-effect-server.js';

/**
 * What must hold of the runs a traffic started once the dust has settled,
 * whatever the database went through meanwhile:
 * - every run whose start was answered 2xx ended, COMPLETED, or CANCELLED if
 *   the traffic cancelled it;
 * - a completed run made its call exactly once, a cancelled one never;
 * - the database holds no job the traffic does not know by its key (a start
 *   answered 503 that had committed was sent again with the same key);
 * - every run's stream is seq 1..n with no gap and no duplicate, ending at
 *   the job's last_seq.
 */
export interface RunsReport {
  /** Runs whose start was answered 2xx. */
  accepted: number;
  completed: number;
  cancelled: number;
  /** Runs still not ended (a sample of keys with their status). */
  notEnded: { key: string; status: string }[];
  /** Ended otherwise than expected (a sample). */
  wrongOutcome: { key: string; status: string; expected: string; error: string | null }[];
  /** Completed runs whose call was made more than once, with the count (a sample), and how many in all. */
  duplicateEffects: { key: string; calls: number }[];
  duplicateEffectCount: number;
  /** Completed runs whose call never arrived (a sample). */
  missingEffects: string[];
  /** Cancelled runs that made their call anyway (a sample). */
  effectsOfCancelled: string[];
  /** Jobs in the database whose key the traffic never had answered. */
  unknownJobs: number;
  /** Keys the traffic started but never had answered 2xx, even in settle (none expected). */
  neverAccepted: number;
  /** Streams with a gap, a duplicate seq, or an end other than last_seq (a sample), and how many in all. */
  streamFaults: { jobId: string; rows: number; distinct: number; maxSeq: number; lastSeq: number }[];
  streamFaultCount: number;
  /** True when every invariant above holds. */
  ok: boolean;
}

const SAMPLE = 10;
const TERMINAL = ['COMPLETED', 'PARTIAL_SUCCESS', 'FAILED', 'CANCELLED', 'TIMED_OUT'];

/** What a run must end as: its status and how many calls its key must have made. */
function expectedEnd(run: TrackedRun): { status: string; calls: number } {
  return run.workflow === 'gated' && run.fate === 'cancel' ? { status: 'CANCELLED', calls: 0 } : { status: 'COMPLETED', calls: 1 };
}

/** Statuses of the given jobs, by id (one statement). */
async function statuses(cluster: PgCluster, database: string, jobIds: string[]): Promise<Map<string, { status: string; error: string | null }>> {
  const rows = await cluster.query<{ id: string; status: string; error: string | null }>(
    `SELECT id::text, status, coalesce(error_code || ': ' || error_message, error_code) AS error FROM stepwise.jobs WHERE id = ANY($1::uuid[])`,
    [jobIds],
    database,
  );
  return new Map(rows.map((r) => [r.id, { status: r.status, error: r.error }]));
}

/**
 * Wait (polling, bounded) until every accepted run has ended. Resolves with
 * how many have not when `timeoutMs` ran out (0 when all ended): the caller's
 * report then names them.
 */
export async function waitForRunsToEnd(cluster: PgCluster, database: string, runs: Iterable<TrackedRun>, timeoutMs: number): Promise<number> {
  const ids = [...runs].flatMap((r) => (r.jobId ? [r.jobId] : []));
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const rows = await cluster.query<{ open: number }>(
      `SELECT count(*)::int AS open FROM stepwise.jobs WHERE id = ANY($1::uuid[]) AND status <> ALL($2::text[])`,
      [ids, TERMINAL],
      database,
    );
    const open = rows[0]!.open;
    if (open === 0 || Date.now() > deadline) return open;
    await new Promise((r) => setTimeout(r, 250));
  }
}

export async function checkRuns(cluster: PgCluster, database: string, runs: Iterable<TrackedRun>, effects: SideEffectServer): Promise<RunsReport> {
  const all = [...runs];
  const accepted = all.filter((r) => r.jobId !== undefined);
  const byId = await statuses(cluster, database, accepted.map((r) => r.jobId!));
  const report: RunsReport = {
    accepted: accepted.length,
    completed: 0,
    cancelled: 0,
    notEnded: [],
    wrongOutcome: [],
    duplicateEffects: [],
    duplicateEffectCount: 0,
    missingEffects: [],
    effectsOfCancelled: [],
    unknownJobs: 0,
    neverAccepted: all.length - accepted.length,
    streamFaults: [],
    streamFaultCount: 0,
    ok: false,
  };
  for (const run of accepted) {
    const found = byId.get(run.jobId!);
    const status = found?.status ?? 'MISSING';
    const calls = effects.calls.get(run.key) ?? 0;
    const expected = expectedEnd(run);
    if (!TERMINAL.includes(status)) {
      if (report.notEnded.length < SAMPLE) report.notEnded.push({ key: run.key, status });
      continue;
    }
    if (status !== expected.status) {
      if (report.wrongOutcome.length < SAMPLE) report.wrongOutcome.push({ key: run.key, status, expected: expected.status, error: found?.error ?? null });
      continue;
    }
    if (status === 'COMPLETED') report.completed++;
    else report.cancelled++;
    if (expected.calls === 1 && calls > 1) {
      report.duplicateEffectCount++;
      if (report.duplicateEffects.length < SAMPLE) report.duplicateEffects.push({ key: run.key, calls });
    } else if (expected.calls === 1 && calls === 0 && report.missingEffects.length < SAMPLE) report.missingEffects.push(run.key);
    else if (expected.calls === 0 && calls > 0 && report.effectsOfCancelled.length < SAMPLE) report.effectsOfCancelled.push(run.key);
  }
  const missingEffects = accepted.filter((r) => expectedEnd(r).calls === 1 && byId.get(r.jobId!)?.status === 'COMPLETED' && !effects.calls.has(r.key)).length;
  const effectsOfCancelled = accepted.filter((r) => expectedEnd(r).calls === 0 && effects.calls.has(r.key)).length;
  const [{ total }] = (await cluster.query<{ total: number }>('SELECT count(*)::int AS total FROM stepwise.jobs', [], database)) as [{ total: number }];
  report.unknownJobs = total - accepted.length;
  const faults = await cluster.query<{ job_id: string; rows: number; distinct: number; max_seq: number; last_seq: number }>(
    `SELECT j.id::text AS job_id, count(l.seq)::int AS rows, count(DISTINCT l.seq)::int AS distinct,
            coalesce(max(l.seq), 0)::int AS max_seq, j.last_seq
       FROM stepwise.jobs j LEFT JOIN stepwise.execution_log l ON l.job_id = j.id
      GROUP BY j.id, j.last_seq
     HAVING count(l.seq) <> count(DISTINCT l.seq) OR coalesce(max(l.seq), 0) <> count(l.seq) OR coalesce(max(l.seq), 0) <> j.last_seq`,
    [],
    database,
  );
  report.streamFaultCount = faults.length;
  report.streamFaults = faults.slice(0, SAMPLE).map((f) => ({ jobId: f.job_id, rows: f.rows, distinct: f.distinct, maxSeq: f.max_seq, lastSeq: f.last_seq }));
  report.ok =
    report.notEnded.length === 0 &&
    report.wrongOutcome.length === 0 &&
    report.duplicateEffectCount === 0 &&
    missingEffects === 0 &&
    effectsOfCancelled === 0 &&
    report.unknownJobs === 0 &&
    report.neverAccepted === 0 &&
    report.streamFaultCount === 0 &&
    effects.unkeyed === 0;
  return report;
}
