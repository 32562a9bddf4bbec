import { describe, expect, it } from 'vitest';
import { assessReplica, parseLsn, replicaLagMs, type ReplicaSample } from '../../src/db/replica-lag.js';

const standby = (replayLsn: string | null, replayAgeMs: number | null): ReplicaSample => ({ inRecovery: true, replayLsn, replayAgeMs });

describe('parseLsn', () => {
  it('reads both hex halves of a WAL position into one comparable number', () => {
    expect(parseLsn('0/3016060')).toBe(0x3016060n);
    expect(parseLsn('16/B374D848')).toBe((0x16n << 32n) | 0xb374d848n);
    expect(parseLsn('1/0') > parseLsn('0/FFFFFFFF')).toBe(true);
    expect(parseLsn('A/1') > parseLsn('9/FFFFFFFF')).toBe(true);
  });

  it('refuses what is not a WAL position', () => {
    expect(() => parseLsn('')).toThrow(/WAL position/);
    expect(() => parseLsn('0/xyz')).toThrow(/WAL position/);
    expect(() => parseLsn('123')).toThrow(/WAL position/);
  });
});

describe('replicaLagMs', () => {
  it('is 0 when the replica has replayed what the primary had written at the probe before, however old its last transaction', () => {
    // A quiet primary: nothing committed for an hour, nothing missing.
    expect(replicaLagMs(standby('0/5000000', 3_600_000), '0/5000000')).toBe(0);
    expect(replicaLagMs(standby('0/5000100', 3_600_000), '0/5000000')).toBe(0);
  });

  it('is the age of the last replayed transaction when the replica is behind that position', () => {
    expect(replicaLagMs(standby('0/4FFFFFF', 2_500), '0/5000000')).toBe(2_500);
    expect(replicaLagMs(standby('0/FFFFFFFF', 800), '1/0')).toBe(800);
  });

  it('uses the age alone before any primary position is known, and treats a replay "from the future" (clock skew) as no lag', () => {
    expect(replicaLagMs(standby('0/5000000', 40), null)).toBe(40);
    expect(replicaLagMs(standby('0/4000000', -12), '0/5000000')).toBe(0);
  });

  it('is unknown when the replica is behind and has replayed no transaction yet, or is no standby', () => {
    expect(replicaLagMs(standby('0/4000000', null), '0/5000000')).toBeNull();
    expect(replicaLagMs(standby(null, null), '0/5000000')).toBeNull();
    expect(replicaLagMs({ inRecovery: false, replayLsn: null, replayAgeMs: null }, '0/5000000')).toBeNull();
  });
});

describe('assessReplica', () => {
  it('is usable while the lag is within the bound, the bound itself included', () => {
    expect(assessReplica(standby('0/5000000', 9_999), '0/5000000', 5_000)).toEqual({ lagMs: 0, usable: true });
    expect(assessReplica(standby('0/4000000', 5_000), '0/5000000', 5_000)).toEqual({ lagMs: 5_000, usable: true });
    expect(assessReplica(standby('0/4000000', 5_001), '0/5000000', 5_000)).toEqual({ lagMs: 5_001, usable: false });
  });

  it('is unusable when unreachable, promoted, or of unknown lag', () => {
    expect(assessReplica(null, '0/5000000', 5_000)).toEqual({ lagMs: null, usable: false });
    expect(assessReplica({ inRecovery: false, replayLsn: null, replayAgeMs: 0 }, '0/5000000', 5_000)).toEqual({ lagMs: null, usable: false });
    expect(assessReplica(standby('0/4000000', null), '0/5000000', 5_000)).toEqual({ lagMs: null, usable: false });
  });
});
