/**
 * Every advisory-lock key Stepwise takes, in one place. PostgreSQL has one
 * advisory-lock namespace per database, so two concerns that pick the same
 * number silently serialise each other (partition upkeep once shared the
 * scheduler's key, and ticks and partition creation blocked each other).
 * A unit test fails when two names share a key or when a key is written
 * out as a literal anywhere else in src.
 *
 * The 727_xxx prefix keeps Stepwise's keys clear of small numbers other
 * software on the same database tends to use.
 */
export const LOCK_KEYS = {
  /** Migrations: held (session-level) for a whole run, so concurrent starts apply each one exactly once. */
  migrations: 727_001,
  /** The scheduler leader for one tick (try-lock: the other processes skip the tick). */
  schedulerLeader: 727_002,
  /**
   * Claims that count running jobs (organization and workflow limits,
   * concurrency keys): the class of their per-scope locks, taken in the
   * two-int form (this, hash of the organization, workflow or key) in sorted
   * order, so claims of different scopes never wait for each other.
   */
  limitedClaim: 727_003,
  /** Creating month partitions ahead (several processes run the upkeep). */
  partitionMaintenance: 727_004,
  /** Starts of runs with a dedupe or debounce key: the class of the per-key locks (two-int form), so two starts of one key cannot both create a run. */
  runKeys: 727_005,
  /**
   * Rolling finished jobs from aggregate_outbox into aggregate_metrics: one
   * roll-up at a time (workers try and skip; a repair waits), so the rows
   * shared by every flush are written by one transaction, never contended.
   */
  aggregateRollup: 727_006,
} as const;

/** Name of an advisory lock in the registry. */
export type LockName = keyof typeof LOCK_KEYS;

/** Pairs of names that share a key (empty when the registry is sound). */
export function findLockKeyCollisions(keys: Readonly<Record<string, number>> = LOCK_KEYS): [string, string][] {
  const byKey = new Map<number, string>();
  const collisions: [string, string][] = [];
  for (const [name, key] of Object.entries(keys)) {
    const first = byKey.get(key);
    if (first !== undefined) collisions.push([first, name]);
    else byKey.set(key, name);
  }
  return collisions;
}
