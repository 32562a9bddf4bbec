import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { metrics } from '../../src/metrics/index.js';

const DASHBOARD = new URL('../../docs/grafana/stepwise.json', import.meta.url);

interface Target {
  expr: string;
  datasource?: { type?: string; uid?: string };
}
interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { type?: string; uid?: string };
  targets?: Target[];
  gridPos: { h: number; w: number; x: number; y: number };
}
interface Dashboard {
  title: string;
  uid: string;
  panels: Panel[];
  templating: { list: { name: string; type: string; query: string }[] };
}

async function load(): Promise<Dashboard> {
  return JSON.parse(await readFile(DASHBOARD, 'utf8')) as Dashboard;
}

/** Metric names a PromQL expression reads (ours and the process metrics'). */
function metricNames(expr: string): string[] {
  return [...expr.matchAll(/\b((?:stepwise|process|nodejs)_[a-z0-9_]+)\b/g)].map((m) => m[1]!);
}

/** Name → type of every metric in the process's registry. */
async function registered(): Promise<Map<string, string>> {
  return new Map((await metrics.registry.getMetricsAsJSON()).map((m) => [m.name, String(m.type)]));
}

/** The registry metric a series name belongs to: itself, or a histogram's _bucket/_sum/_count. */
function owner(series: string, known: Map<string, string>): string | undefined {
  if (known.has(series)) return series;
  const m = /^(.*)_(bucket|sum|count)$/.exec(series);
  return m && known.get(m[1]!) === 'histogram' ? m[1] : undefined;
}

describe('docs/grafana/stepwise.json', () => {
  it('is an importable dashboard whose panels read from a Prometheus datasource variable', async () => {
    const d = await load();
    expect(d.title).toBe('Stepwise');
    expect(d.templating.list).toContainEqual(expect.objectContaining({ name: 'datasource', type: 'datasource', query: 'prometheus' }));
    const ids = d.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of d.panels.filter((p) => p.type !== 'row')) {
      expect(p.datasource, p.title).toEqual({ type: 'prometheus', uid: '${datasource}' });
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
      for (const t of p.targets!) expect(t.datasource, p.title).toEqual({ type: 'prometheus', uid: '${datasource}' });
      expect(p.gridPos.x + p.gridPos.w, p.title).toBeLessThanOrEqual(24);
    }
  });

  it('queries only metrics the code defines, with histogram suffixes only on histograms', async () => {
    const d = await load();
    const known = await registered();
    const queried = d.panels.flatMap((p) => (p.targets ?? []).flatMap((t) => metricNames(t.expr)));
    expect(queried.length).toBeGreaterThan(40);
    for (const name of queried) expect(owner(name, known), name).toBeDefined();
    // histogram_quantile over buckets of a histogram only.
    for (const t of d.panels.flatMap((p) => p.targets ?? [])) {
      for (const m of t.expr.matchAll(/histogram_quantile\([^,]+,\s*sum by \(le[^)]*\) \(rate\(([a-z0-9_]+)\[/g)) {
        expect(m[1]!.endsWith('_bucket'), t.expr).toBe(true);
        expect(known.get(m[1]!.slice(0, -'_bucket'.length)), t.expr).toBe('histogram');
      }
    }
  });

  it('shows every stepwise_ metric somewhere, so a new one gets a panel', async () => {
    const d = await load();
    const known = await registered();
    const shown = new Set(d.panels.flatMap((p) => (p.targets ?? []).flatMap((t) => metricNames(t.expr))).map((n) => owner(n, known)));
    const ours = [...known.keys()].filter((n) => n.startsWith('stepwise_'));
    expect(ours.length).toBeGreaterThan(25);
    expect(ours.filter((n) => !shown.has(n))).toEqual([]);
  });
});
