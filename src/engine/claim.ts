import type { Db } from '../db/index.js';
import { metrics } from '../metrics/index.js';
import { claimJobs, claimJobsLimited, NIL_UUID, nextClaimCursor, type ClaimedJob, type ConcurrencyLimits } from '../store/index.js';

/** What a worker keeps between claims: the organization its last claim served last (claims go round). */
export interface ClaimState {
  after: string;
}

export function newClaimState(): ClaimState {
  return { after: NIL_UUID };
}

/**
 * One claim round of a worker: up to `want` jobs.
 *
 * - Plain runs (no concurrency keys) come from the one-statement fair claim,
 *   or from the counting claim while some organization or workflow has a
 *   concurrency limit (store/flow-claim.ts).
 * - Runs with concurrency keys come from the keyed claim, only while some
 *   are queued (`limits.keyed`). It goes first with half the batch, so
 *   neither kind holds the other back, and tops the batch up when plain
 *   runs left room.
 *
 * Recorded into the metrics once per round: its time, its size, and the
 * jobs it took over from a worker that let their lease expire. A takeover is
 * seen when the job was RUNNING: its previous worker committed its start
 * and never its end (a job waiting or retrying is PENDING or WAITING, and a
 * worker's own expired lease is never claimed). A worker that died before
 * its first flush of a claim left the job looking new, so that takeover is
 * not counted.
 */
export async function claimRound(
  db: Db,
  workerId: string,
  want: number,
  leaseMs: number,
  limits: ConcurrencyLimits,
  state: ClaimState,
): Promise<ClaimedJob[]> {
  const began = performance.now();
  const limited = limits.organizations.size > 0 || limits.workflows.size > 0;
  const plain = (n: number) =>
    limited ? claimJobsLimited(db, workerId, n, leaseMs, limits, { keyed: false, after: state.after }) : claimJobs(db, workerId, n, leaseMs, state.after);
  const keyed = (n: number) => claimJobsLimited(db, workerId, n, leaseMs, limits, { keyed: true, after: state.after });
  let jobs: ClaimedJob[];
  if (!limits.keyed) {
    jobs = await plain(want);
  } else {
    const half = Math.ceil(want / 2);
    const first = await keyed(half);
    jobs = want > first.length ? first.concat(await plain(want - first.length)) : first;
    // Plain runs left room and the keyed claim filled its half (it may have more).
    if (jobs.length < want && first.length === half) jobs = jobs.concat(await keyed(want - jobs.length));
  }
  state.after = nextClaimCursor(
    jobs.map((j) => j.organizationId),
    state.after,
  );
  let takeovers = 0;
  for (const j of jobs) if (j.priorStatus === 'RUNNING') takeovers++;
  metrics.recordClaim((performance.now() - began) / 1000, jobs.length, takeovers);
  return jobs;
}
