import type { Queryable } from './types.js';

/**
 * How far a streaming read replica is behind its primary: the probes (one
 * statement on each) and the pure decision over what they return. The
 * monitor in db/replica.ts runs them about once a second.
 */

/** What one probe of the replica found. */
export interface ReplicaSample {
  /** pg_is_in_recovery(): false means it is not a standby (promoted, or the wrong server). */
  inRecovery: boolean;
  /** pg_last_wal_replay_lsn() as text (`16/B374D848`); null before it replayed anything. */
  replayLsn: string | null;
  /** Milliseconds since the primary committed the last transaction the replica replayed; null before the first. */
  replayAgeMs: number | null;
}

/** The replica's side: one statement, nothing tenant-scoped. */
const REPLICA_PROBE_SQL = `SELECT pg_is_in_recovery() AS in_recovery,
       pg_last_wal_replay_lsn()::text AS replay_lsn,
       (extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp()) * 1000)::float8 AS replay_age_ms`;

/** The primary's side: how far its WAL is written now. */
const PRIMARY_PROBE_SQL = 'SELECT pg_current_wal_lsn()::text AS lsn';

export async function probeReplica(replica: Queryable): Promise<ReplicaSample> {
  const { rows } = await replica.query<{ in_recovery: boolean; replay_lsn: string | null; replay_age_ms: number | null }>(REPLICA_PROBE_SQL);
  const row = rows[0]!;
  return { inRecovery: row.in_recovery, replayLsn: row.replay_lsn, replayAgeMs: row.replay_age_ms };
}

export async function probePrimaryLsn(primary: Queryable): Promise<string> {
  const { rows } = await primary.query<{ lsn: string }>(PRIMARY_PROBE_SQL);
  return rows[0]!.lsn;
}

/** A pg_lsn's text form (`X/Y`, two hex halves of a 64-bit position) as a comparable number. */
export function parseLsn(text: string): bigint {
  const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(text);
  if (!m) throw new Error(`not a WAL position: "${text}"`);
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`);
}

/**
 * The replica's lag in milliseconds, or null when it cannot be told.
 *
 * 0 when the replica has replayed everything the primary had written at
 * the probe before (`primaryLsnBefore`, about a second earlier): whatever
 * it lacks was written less than a probe interval ago. Otherwise the age of
 * the last transaction it replayed. The age alone would be wrong on a quiet
 * primary — nothing committed for an hour makes the replay timestamp an hour
 * old while the replica lacks nothing — hence the WAL comparison first.
 * Without a replay timestamp (a standby that has replayed no transaction
 * since it started) and not provably caught up, the lag is unknown.
 */
export function replicaLagMs(sample: ReplicaSample, primaryLsnBefore: string | null): number | null {
  if (!sample.inRecovery) return null;
  if (primaryLsnBefore !== null && sample.replayLsn !== null && parseLsn(sample.replayLsn) >= parseLsn(primaryLsnBefore)) return 0;
  // Clocks of two hosts may disagree by a little: a replay "in the future" is no lag.
  return sample.replayAgeMs === null ? null : Math.max(0, sample.replayAgeMs);
}

/** What the monitor concluded from one round of probes. */
export interface ReplicaAssessment {
  /** Lag in milliseconds; null when unreachable, not a standby, or unknown. */
  lagMs: number | null;
  /** Reachable, a standby, and lag ≤ the bound: reads may go there. */
  usable: boolean;
}

/**
 * One round's verdict. `sample` is null when the replica did not answer
 * (down, refusing connections, past the probe's timeout). A standby that
 * answers but is no longer in recovery has been promoted or is the wrong
 * server: unusable, since the writes of our primary no longer reach it.
 */
export function assessReplica(sample: ReplicaSample | null, primaryLsnBefore: string | null, maxLagMs: number): ReplicaAssessment {
  if (sample === null || !sample.inRecovery) return { lagMs: null, usable: false };
  const lagMs = replicaLagMs(sample, primaryLsnBefore);
  return { lagMs, usable: lagMs !== null && lagMs <= maxLagMs };
}
