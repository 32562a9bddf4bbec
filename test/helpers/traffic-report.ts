import type { Operation, RequestSample } from './api-traffic.js';
import type { Disruption } from './db-disruptions.js';
import type { PgCluster } from './pg-cluster.js';

/**
 * Figures of a traffic run against the database's disruptions: latency
 * percentiles per route, answers by status inside and outside the
 * disruptions, and how soon things worked again after each.
 */

/**
 * After the server accepts connections again, requests that were already
 * waiting (for a connection, a retry) may still fail for a moment; they
 * count with the disruption for this long.
 */
export const OUTAGE_TAIL_MS = 2_000;

export interface Percentiles {
  count: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

/** Nearest-rank percentile of sorted values (ms, one decimal). */
function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return Math.round(sorted[i]! * 10) / 10;
}

export function percentiles(values: number[]): Percentiles {
  const sorted = [...values].sort((a, b) => a - b);
  return { count: sorted.length, p50: percentile(sorted, 50), p95: percentile(sorted, 95), p99: percentile(sorted, 99), max: percentile(sorted, 100) };
}

/** Whether a request overlapped a disruption (from its start to OUTAGE_TAIL_MS after the server was back). */
export function duringDisruption(sample: RequestSample, disruptions: readonly Disruption[]): boolean {
  const end = sample.at + sample.ms;
  return disruptions.some((d) => sample.at <= d.backAt + OUTAGE_TAIL_MS && end >= d.startedAt);
}

/** Latency per route of the requests answered 2xx outside the disruptions (what a user sees on a normal day). */
export function latencyByRoute(samples: readonly RequestSample[], disruptions: readonly Disruption[]): Partial<Record<Operation, Percentiles>> {
  const by = new Map<Operation, number[]>();
  for (const s of samples) {
    if (typeof s.status !== 'number' || s.status >= 300 || duringDisruption(s, disruptions)) continue;
    let list = by.get(s.op);
    if (!list) by.set(s.op, (list = []));
    list.push(s.ms);
  }
  return Object.fromEntries([...by].sort(([a], [b]) => a.localeCompare(b)).map(([op, ms]) => [op, percentiles(ms)]));
}

/** Answers by status ('timeout' and 'network' for none), inside the disruptions and outside them. */
export function statusCounts(samples: readonly RequestSample[], disruptions: readonly Disruption[]): { during: Record<string, number>; outside: Record<string, number> } {
  const during: Record<string, number> = {};
  const outside: Record<string, number> = {};
  for (const s of samples) {
    const into = duringDisruption(s, disruptions) ? during : outside;
    into[String(s.status)] = (into[String(s.status)] ?? 0) + 1;
  }
  return { during, outside };
}

/**
 * A 503 that says the API gave up waiting for a pooled connection
 * (DatabaseUnavailableError 'checkout-timeout'): load shedding by a saturated
 * API, which may happen outside any disruption on an overloaded machine.
 */
export function isCheckoutTimeout(sample: RequestSample): boolean {
  return sample.status === 503 && (sample.message ?? '').includes('(checkout timeout)');
}

/** 503s answered without a Retry-After header (none expected). */
export function unavailableWithoutRetryAfter(samples: readonly RequestSample[]): number {
  return samples.filter((s) => s.status === 503 && !(Number(s.retryAfter) > 0)).length;
}

export interface Recovery {
  kind: Disruption['kind'];
  /** How long the server was unavailable to new connections (start of the disruption to back). */
  outageMs: number;
  /** From back to the end of the first request sent since that was answered 2xx; null if none was. */
  firstOkMs: number | null;
  /** From back to the first run completed since (jobs.completed_at); null if none was. */
  firstCompletedRunMs: number | null;
  /** Requests of the window answered 503, and answered 5xx otherwise. */
  unavailable: number;
  otherErrors: number;
}

/** How soon the API answered and a run completed again after each disruption. */
export async function recoveries(samples: readonly RequestSample[], disruptions: readonly Disruption[], cluster: PgCluster, database: string): Promise<Recovery[]> {
  const out: Recovery[] = [];
  for (const d of disruptions) {
    const ok = samples.filter((s) => s.at >= d.backAt && typeof s.status === 'number' && s.status < 300).map((s) => s.at + s.ms - d.backAt);
    const [row] = await cluster.query<{ ms: number | null }>(
      `SELECT (extract(epoch FROM min(completed_at)) * 1000 - $1)::float8 AS ms FROM stepwise.jobs WHERE status = 'COMPLETED' AND completed_at >= to_timestamp($1 / 1000.0)`,
      [d.backAt],
      database,
    );
    const inWindow = samples.filter((s) => duringDisruption(s, [d]));
    out.push({
      kind: d.kind,
      outageMs: d.backAt - d.startedAt,
      firstOkMs: ok.length > 0 ? Math.round(Math.min(...ok)) : null,
      firstCompletedRunMs: row?.ms === null || row?.ms === undefined ? null : Math.round(row.ms),
      unavailable: inWindow.filter((s) => s.status === 503).length,
      otherErrors: inWindow.filter((s) => typeof s.status !== 'number' || (s.status >= 500 && s.status !== 503)).length,
    });
  }
  return out;
}
