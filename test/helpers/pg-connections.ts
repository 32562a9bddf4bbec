import type { PgCluster } from './pg-cluster.js';

/**
 * The server connections Stepwise processes hold now, by application_name
 * (`stepwise-api`, `stepwise-api-listen`, `stepwise-worker`, …), from
 * pg_stat_activity. Connections of tests and tools (`stepwise-test%`,
 * `stepwise-cli%`) are left out: they come and go with the checks.
 */
export async function stepwiseConnections(cluster: PgCluster): Promise<Record<string, number>> {
  const rows = await cluster.query<{ name: string; n: number }>(
    `SELECT application_name AS name, count(*)::int AS n
       FROM pg_stat_activity
      WHERE application_name LIKE 'stepwise%'
        AND application_name NOT LIKE 'stepwise-test%'
        AND application_name NOT LIKE 'stepwise-cli%'
      GROUP BY 1 ORDER BY 1`,
  );
  return Object.fromEntries(rows.map((r) => [r.name, r.n]));
}

/** The sum over every name. */
export function totalConnections(byName: Record<string, number>): number {
  return Object.values(byName).reduce((n, c) => n + c, 0);
}
