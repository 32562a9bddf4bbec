import type { Registry } from 'prom-client';
import { metrics } from '../../src/metrics/index.js';

interface Sample {
  name: string;
  labels: Record<string, string | number>;
  value: number;
}

/**
 * Every sample of a registry at one moment (histograms as their `_bucket`,
 * `_sum` and `_count` series). The process's registry is shared by a test
 * file's tests, so tests compare two snapshots instead of absolute values.
 */
export class MetricsSnapshot {
  constructor(private readonly samples: readonly Sample[]) {}

  /** The sum of the samples named `name` whose labels include `labels` (0 when there is none). */
  value(name: string, labels: Record<string, string> = {}): number {
    let sum = 0;
    for (const s of this.samples) {
      if (s.name !== name) continue;
      if (Object.entries(labels).every(([k, v]) => String(s.labels[k]) === v)) sum += s.value;
    }
    return sum;
  }

  /** Whether any sample is named `name`. */
  has(name: string): boolean {
    return this.samples.some((s) => s.name === name);
  }

  /** The label sets of the samples named `name`. */
  labelSets(name: string): Record<string, string | number>[] {
    return this.samples.filter((s) => s.name === name).map((s) => s.labels);
  }
}

export async function snapshot(registry: Registry = metrics.registry): Promise<MetricsSnapshot> {
  const samples: Sample[] = [];
  for (const metric of await registry.getMetricsAsJSON()) {
    for (const v of metric.values) {
      const named = v as { metricName?: string; labels: Record<string, string | number>; value: number };
      samples.push({ name: named.metricName ?? metric.name, labels: named.labels, value: named.value });
    }
  }
  return new MetricsSnapshot(samples);
}

/** How much `name` (with `labels`) moved from `before` to `after`. */
export function delta(before: MetricsSnapshot, after: MetricsSnapshot, name: string, labels: Record<string, string> = {}): number {
  return after.value(name, labels) - before.value(name, labels);
}
