import { LOCK_KEYS, pgArray, type Queryable } from '../db/index.js';
import { LIMITS_CHANNEL, type EnqueuedJob, type JobStatus, type NewJob } from './jobs.js';
import { rewriteSearchKeys } from './search-keys.js';

/**
 * The enqueue's part of flow control: dedupe, debounce, and what the claim
 * needs on a queue row (concurrency keys, priority). The engine evaluates a
 * workflow's key expressions per run (engine/flow-keys.ts) and hands them in
 * through RunFlowPlan; runs of workflows without flow control never reach
 * this module.
 */

/** What a workflow's flow control gives one run. */
export interface RunFlowKeys {
  /** One concurrency key per rule that applies (64-bit, decimal text) and that rule's limit. */
  concurrency: { key: string; limit: number }[];
  /** Queue priority (higher first) from the definition's priority expression, when it gave one. */
  priority?: number | undefined;
  /** 128-bit key hashes (uuid text); absent when the workflow declares none or the run is exempt. */
  dedupeKey?: string | undefined;
  debounceKey?: string | undefined;
}

/** A workflow's flow control, as the enqueue needs it. */
export interface RunFlowPlan {
  dedupe?: { ttlMs: number } | undefined;
  debounce?: { delayMs: number; maxDelayMs: number } | undefined;
  /** Evaluate one run's keys; `path` names its input in errors (`input`, `runs/3/input`). */
  keysOf(job: NewJob, path: string): Promise<RunFlowKeys>;
}

interface FlowRun {
  job: NewJob;
  index: number;
}

/** The enqueue's decision for a batch after flow control. */
export interface FlowDecision {
  /** The runs still to insert (priority, start time and input adjusted). */
  fresh: FlowRun[];
  /** Array literals of each fresh run's concurrency keys and limits (for the queue insert), or null when none has any. */
  concurrencyKeys: string | null;
  concurrencyLimits: string | null;
  /**
   * After the insert (results holds the new jobs): record the dedupe and
   * debounce keys of the new jobs, answer the runs that matched an existing
   * job, and wake workers to the keyed claim when keyed rows were added.
   */
  finish(tx: Queryable, results: (EnqueuedJob | undefined)[]): Promise<void>;
}

/** Expired dedupe and debounce rows swept per row written (keeps the tables at their live size). */
const SWEEP_PER_ROW = 2;

function distinct(values: readonly (string | undefined)[]): string[] {
  return [...new Set(values.filter((v): v is string => v !== undefined))];
}

/**
 * Apply a workflow's flow control to the runs of one enqueue, inside its
 * transaction, before the run numbers are handed out:
 *
 * - dedupe: a run whose key has a job within the ttl is answered with that
 *   job (created: false); a key repeated in the batch runs once;
 * - debounce: a run whose key has a job that has not started yet (its queue
 *   row never leased) replaces that job's input and pushes its start back
 *   (never past its deadline, the first start plus maxDelayMs) and is
 *   answered with it; otherwise it becomes that job, starting after delayMs;
 *   a key repeated in the batch becomes one job with the last input;
 * - priority and concurrency keys go on the queue row.
 *
 * Two starts of one key serialise on an advisory lock per key (sorted, so
 * they cannot deadlock), so they cannot both create a job.
 */
export async function prepareFlow(
  tx: Queryable,
  organizationId: string,
  workflowId: string,
  plan: RunFlowPlan,
  fresh: readonly FlowRun[],
  batchSize: number,
  /** The workflow's search keys: a debounced start that replaces a waiting run's input rewrites them. */
  searchKeys?: readonly string[] | undefined,
): Promise<FlowDecision> {
  const keys = await Promise.all(fresh.map((f) => plan.keysOf(f.job, batchSize === 1 ? 'input' : `runs/${f.index}/input`)));
  const runs = fresh.map((f, i) => {
    const k = keys[i]!;
    const job: NewJob = { ...f.job, priority: f.job.priority ?? k.priority };
    if (k.debounceKey !== undefined && plan.debounce) {
      const at = new Date(Date.now() + plan.debounce.delayMs);
      job.runAt = f.job.runAt && f.job.runAt > at ? f.job.runAt : at;
    }
    return { job, index: f.index, keys: k };
  });
  const resolved = new Map<number, EnqueuedJob>();
  /** Batch index → index of the run in the same batch it folds into. */
  const aliases = new Map<number, number>();

  const dedupeKeys = distinct(runs.map((r) => r.keys.dedupeKey));
  const debounceKeys = distinct(runs.map((r) => r.keys.debounceKey));
  if (dedupeKeys.length + debounceKeys.length > 0) {
    await tx.query(
      `SELECT count(pg_advisory_xact_lock($1, h)) FROM (SELECT DISTINCT uuid_hash(k) AS h FROM unnest($2::uuid[]) AS k ORDER BY 1) s`,
      [LOCK_KEYS.runKeys, [...dedupeKeys, ...debounceKeys]],
    );
  }

  // Dedupe: the job of a key within its ttl answers every later start.
  if (dedupeKeys.length > 0) {
    const { rows } = await tx.query<{ key_hash: string; id: string; run_number: number; status: JobStatus }>(
      `SELECT d.key_hash, j.id, j.run_number, j.status
         FROM stepwise.dedupe_keys d
         JOIN stepwise.jobs j ON j.id = d.job_id AND j.organization_id = d.organization_id
        WHERE d.organization_id = $1 AND d.workflow_id = $2 AND d.key_hash = ANY($3::uuid[]) AND d.expires_at > now()`,
      [organizationId, workflowId, dedupeKeys],
    );
    const byKey = new Map(rows.map((r) => [r.key_hash, { id: r.id, runNumber: Number(r.run_number), status: r.status, created: false }]));
    const leader = new Map<string, number>();
    for (const r of runs) {
      const key = r.keys.dedupeKey;
      if (key === undefined) continue;
      const found = byKey.get(key);
      if (found) resolved.set(r.index, found);
      else if (leader.has(key)) aliases.set(r.index, leader.get(key)!);
      else leader.set(key, r.index);
    }
  }

  // Debounce: fold into the key's job while it has not started.
  const live = runs.filter((r) => !resolved.has(r.index) && !aliases.has(r.index));
  const debounceRuns = live.filter((r) => r.keys.debounceKey !== undefined);
  if (debounceRuns.length > 0 && plan.debounce) {
    const last = new Map<string, (typeof runs)[number]>();
    const first = new Map<string, number>();
    for (const r of debounceRuns) {
      last.set(r.keys.debounceKey!, r);
      if (!first.has(r.keys.debounceKey!)) first.set(r.keys.debounceKey!, r.index);
    }
    // FOR UPDATE OF q waits for a claim holding the row; it is then leased
    // (lease_epoch > 0) and no longer matches: the start makes a new job.
    const { rows } = await tx.query<{ key_hash: string; job_id: string; run_number: number; status: JobStatus }>(
      `SELECT d.key_hash, d.job_id, j.run_number, j.status
         FROM stepwise.debounce_keys d
         JOIN stepwise.job_queue q ON q.job_id = d.job_id
         JOIN stepwise.jobs j ON j.id = d.job_id
        WHERE d.organization_id = $1 AND d.workflow_id = $2 AND d.key_hash = ANY($3::uuid[]) AND q.lease_epoch = 0
          FOR UPDATE OF q`,
      [organizationId, workflowId, distinct(debounceRuns.map((r) => r.keys.debounceKey))],
    );
    const waiting = new Map(rows.map((r) => [r.key_hash, r]));
    if (rows.length > 0) {
      const merges = rows.map((w) => ({ jobId: w.job_id, run: last.get(w.key_hash)! }));
      await tx.query(
        `WITH m AS (
           SELECT * FROM unnest($2::uuid[], $3::jsonb[], $4::smallint[], $5::text[], $6::text[]) AS m(job_id, input, priority, ck, cl)
         ),
         inputs AS (
           UPDATE stepwise.jobs j SET input = m.input, priority = m.priority
             FROM m WHERE j.organization_id = $1 AND j.id = m.job_id
           RETURNING j.id
         )
         UPDATE stepwise.job_queue q
            SET run_at = least(now() + make_interval(secs => $7::double precision / 1000), d.deadline_at),
                priority = m.priority, concurrency_keys = m.ck::bigint[], concurrency_limits = m.cl::integer[]
           FROM m JOIN stepwise.debounce_keys d ON d.organization_id = $1 AND d.workflow_id = $8 AND d.job_id = m.job_id
          WHERE q.job_id = m.job_id`,
        [
          organizationId,
          pgArray(merges.map((m) => m.jobId)),
          pgArray(merges.map((m) => (m.run.job.input === undefined ? null : JSON.stringify(m.run.job.input)))),
          pgArray(merges.map((m) => m.run.job.priority ?? 0)),
          pgArray(merges.map((m) => keyLiteral(m.run.keys))),
          pgArray(merges.map((m) => limitLiteral(m.run.keys))),
          plan.debounce.delayMs,
          workflowId,
        ],
      );
      if (searchKeys) {
        await rewriteSearchKeys(tx, organizationId, searchKeys, merges.map((m) => ({ jobId: m.jobId, input: m.run.job.input })));
      }
    }
    for (const r of debounceRuns) {
      const key = r.keys.debounceKey!;
      const w = waiting.get(key);
      if (w) resolved.set(r.index, { id: w.job_id, runNumber: Number(w.run_number), status: w.status, created: false });
      else if (first.get(key) !== r.index) aliases.set(r.index, first.get(key)!);
      else {
        // The burst's job starts with its last run's input (and what that input gives).
        const tail = last.get(key)!;
        r.job = { ...r.job, input: tail.job.input, priority: tail.job.priority };
        r.keys = { ...tail.keys, dedupeKey: r.keys.dedupeKey };
      }
    }
  }

  const remaining = runs.filter((r) => !resolved.has(r.index) && !aliases.has(r.index));
  const keyed = remaining.some((r) => r.keys.concurrency.length > 0);
  return {
    fresh: remaining.map((r) => ({ job: r.job, index: r.index })),
    concurrencyKeys: keyed ? pgArray(remaining.map((r) => keyLiteral(r.keys))) : null,
    concurrencyLimits: keyed ? pgArray(remaining.map((r) => limitLiteral(r.keys))) : null,
    async finish(db, results) {
      const made = remaining.map((r) => ({ run: r, id: results[r.index]!.id }));
      const dedupeMade = made.filter((m) => m.run.keys.dedupeKey !== undefined);
      if (dedupeMade.length > 0 && plan.dedupe) {
        // The key's lock is held: a row still here is expired (or its job was deleted), so it is replaced.
        await db.query(
          `WITH swept AS (
             DELETE FROM stepwise.dedupe_keys
              WHERE ctid = ANY (ARRAY(SELECT ctid FROM stepwise.dedupe_keys
                                       WHERE organization_id = $1 AND expires_at < now() ORDER BY expires_at LIMIT $6))
                AND NOT (workflow_id = $2 AND key_hash = ANY($3::uuid[]))
           )
           INSERT INTO stepwise.dedupe_keys (organization_id, workflow_id, key_hash, job_id, expires_at)
           SELECT $1, $2, k, j, now() + make_interval(secs => $5::double precision / 1000)
             FROM unnest($3::uuid[], $4::uuid[]) AS u(k, j)
           ON CONFLICT (organization_id, workflow_id, key_hash) DO UPDATE SET job_id = excluded.job_id, expires_at = excluded.expires_at`,
          [
            organizationId,
            workflowId,
            dedupeMade.map((m) => m.run.keys.dedupeKey!),
            dedupeMade.map((m) => m.id),
            plan.dedupe.ttlMs,
            dedupeMade.length * SWEEP_PER_ROW,
          ],
        );
      }
      const debounceMade = made.filter((m) => m.run.keys.debounceKey !== undefined);
      if (debounceMade.length > 0 && plan.debounce) {
        // Rows a day past their deadline belong to runs long started.
        await db.query(
          `WITH swept AS (
             DELETE FROM stepwise.debounce_keys
              WHERE ctid = ANY (ARRAY(SELECT ctid FROM stepwise.debounce_keys
                                       WHERE organization_id = $1 AND deadline_at < now() - interval '1 day' ORDER BY deadline_at LIMIT $6))
                AND NOT (workflow_id = $2 AND key_hash = ANY($3::uuid[]))
           )
           INSERT INTO stepwise.debounce_keys (organization_id, workflow_id, key_hash, job_id, deadline_at)
           SELECT $1, $2, k, j, now() + make_interval(secs => $5::double precision / 1000)
             FROM unnest($3::uuid[], $4::uuid[]) AS u(k, j)
           ON CONFLICT (organization_id, workflow_id, key_hash) DO UPDATE SET job_id = excluded.job_id, deadline_at = excluded.deadline_at`,
          [
            organizationId,
            workflowId,
            debounceMade.map((m) => m.run.keys.debounceKey!),
            debounceMade.map((m) => m.id),
            plan.debounce.maxDelayMs,
            debounceMade.length * SWEEP_PER_ROW,
          ],
        );
      }
      for (const [index, job] of resolved) results[index] = job;
      for (const [index, leader] of aliases) results[index] = { ...results[leader]!, created: false };
      // Workers claim keyed rows only while they know some exist (store/queue.ts findConcurrencyLimits).
      if (keyed) await db.query(`SELECT pg_notify($1, 'keys')`, [LIMITS_CHANNEL]);
    },
  };
}

function keyLiteral(keys: RunFlowKeys): string | null {
  return keys.concurrency.length === 0 ? null : pgArray(keys.concurrency.map((c) => c.key));
}

function limitLiteral(keys: RunFlowKeys): string | null {
  return keys.concurrency.length === 0 ? null : pgArray(keys.concurrency.map((c) => c.limit));
}
