import type { PgCluster } from './pg-cluster.js';

/**
 * What a database-restart test or benchmark does to the server under load,
 * each recorded as a window: from the moment it began to the moment the
 * server accepted connections again. Requests inside a window may be
 * answered 503; outside, they must not be.
 */
export type DisruptionKind = 'restart' | 'crash-restart' | 'terminate-backends';

export interface Disruption {
  kind: DisruptionKind;
  /** Epoch ms when it began. */
  startedAt: number;
  /** Epoch ms when the server accepted a connection again (for terminate-backends: when the last was terminated). */
  backAt: number;
  /** terminate-backends: how many Stepwise backends were terminated. */
  terminated?: number;
}

/**
 * `pg_ctl stop -m fast` then start: every session is told (57P01) and
 * disconnected, in-flight transactions roll back, a shutdown checkpoint is
 * written. What a planned restart or a failover with a clean stop looks like.
 */
export async function restartFast(cluster: PgCluster): Promise<Disruption> {
  const startedAt = Date.now();
  await cluster.stop('fast');
  await cluster.start();
  return { kind: 'restart', startedAt, backAt: Date.now() };
}

/**
 * `pg_ctl stop -m immediate` then start: the postmaster kills every backend
 * without a checkpoint, as a crash would, and the next start replays the WAL
 * (crash recovery) before it accepts connections.
 */
export async function crashRestart(cluster: PgCluster): Promise<Disruption> {
  const startedAt = Date.now();
  await cluster.stop('immediate');
  await cluster.start();
  return { kind: 'crash-restart', startedAt, backAt: Date.now() };
}

/**
 * pg_terminate_backend of every Stepwise connection (application_name
 * `stepwise%`: pools, LISTEN connections, sessions), the server itself
 * staying up: what an operator's kill, a pooler's reset or a server-side
 * idle timeout does to the processes' connections all at once.
 */
export async function terminateStepwiseBackends(cluster: PgCluster): Promise<Disruption> {
  const startedAt = Date.now();
  const rows = await cluster.query<{ terminated: number }>(
    `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))::int AS terminated
       FROM pg_stat_activity WHERE application_name LIKE 'stepwise%' AND application_name <> 'stepwise-test-cluster' AND pid <> pg_backend_pid()`,
  );
  return { kind: 'terminate-backends', startedAt, backAt: Date.now(), terminated: rows[0]?.terminated ?? 0 };
}
