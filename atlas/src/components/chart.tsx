import { useEffect, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { useZone } from '../time.js';

/**
 * A uPlot chart that fills its container's width (and follows it), draws in
 * the theme's colours (CSS variables, redrawn when light/dark flips), and
 * shows time in the dashboard's zone. Charts are `role="img"` with a name;
 * the numbers they draw are in a table on the same page, and uPlot's legend
 * (text, not colour alone) gives each series' value under the cursor.
 */

export interface ChartSeries {
  label: string;
  /** A theme variable (`--ok`) or a colour. */
  color: string;
  values: (number | null)[];
  /** Text for a value in the legend (default: the number). */
  format?: (v: number) => string;
  /** Lines only: a dashed line (told apart without colour). */
  dash?: boolean;
  /** Which y scale: 'y' (left, default) or 'y2' (right). */
  scale?: 'y' | 'y2';
}

export interface ChartProps {
  /** The accessible name, also shown as the caption. */
  title: string;
  /** X values: unix seconds for time charts, 0..n-1 with `categories` for a category chart. */
  x: number[];
  categories?: string[];
  series: ChartSeries[];
  kind: 'bars' | 'lines';
  /** Bars only: series stack up (the legend still shows each series' own value). */
  stacked?: boolean;
  height?: number;
  yLabel?: string;
  y2Label?: string;
  yFormat?: (v: number) => string;
  y2Format?: (v: number) => string;
}

function themeColor(name: string): string {
  if (!name.startsWith('--')) return name;
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || '#888';
}

/** Re-render when the colour scheme flips (the theme variables change with it). */
function useColorScheme(): boolean {
  const query = typeof window.matchMedia === 'function' ? window.matchMedia('(prefers-color-scheme: dark)') : null;
  const [dark, setDark] = useState(query?.matches ?? false);
  useEffect(() => {
    if (!query) return;
    const on = () => setDark(query.matches);
    query.addEventListener('change', on);
    return () => query.removeEventListener('change', on);
  }, []);
  return dark;
}

/** Cumulative sums for stacked bars: series i is drawn as the sum of series 0..i (the last drawn first, so each shows). */
function stack(series: ChartSeries[]): (number | null)[][] {
  const out: (number | null)[][] = [];
  let running: number[] | null = null;
  for (const s of series) {
    const next: number[] = s.values.map((v, i) => (running ? running[i]! : 0) + (v ?? 0));
    out.push(next);
    running = next;
  }
  return out;
}

function buildOptions(p: ChartProps, width: number, zone: 'utc' | 'local'): uPlot.Options {
  const fg = themeColor('--fg-muted');
  const grid = themeColor('--border');
  const axis = (scale: string, side: 0 | 1 | 2 | 3, label?: string, format?: (v: number) => string): uPlot.Axis => ({
    scale,
    side,
    stroke: fg,
    grid: { stroke: grid, width: 1, show: side !== 1 },
    ticks: { stroke: grid, width: 1 },
    ...(label ? { label, labelSize: 18 } : {}),
    // One width for every y axis, so charts stacked on a page share their x positions.
    size: 64,
    ...(format ? { values: (_u: uPlot, splits: number[]) => splits.map((v) => format(v)) } : {}),
  });
  const categories = p.categories;
  const xAxis: uPlot.Axis = {
    stroke: fg,
    grid: { show: false },
    ticks: { stroke: grid, width: 1 },
    ...(categories ? { values: (_u: uPlot, splits: number[]) => splits.map((v) => (Number.isInteger(v) ? (categories[v] ?? '') : '')) } : {}),
  };
  const step = p.x.length > 1 ? p.x[1]! - p.x[0]! : 3600;
  const bars = p.kind === 'bars' ? uPlot.paths.bars!({ size: [0.7, 60], gap: 1 }) : undefined;
  const hasY2 = p.series.some((s) => s.scale === 'y2');
  return {
    width,
    height: p.height ?? 240,
    ...(categories ? {} : { tzDate: (ts: number) => (zone === 'utc' ? uPlot.tzDate(new Date(ts * 1000), 'Etc/UTC') : new Date(ts * 1000)) }),
    scales: {
      x: categories
        ? { time: false, range: (_u, min, max) => [min - 0.6, max + 0.6] }
        : // Half a bucket of room at each end, so the first and last bars are whole (and stacked charts line up).
          { time: true, range: (_u, min, max) => [min - step / 2, max + step / 2] },
      y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] },
      ...(hasY2 ? { y2: { range: (_u: uPlot, _min: number, max: number): uPlot.Range.MinMax => [0, max > 0 ? max * 1.1 : 1] } } : {}),
    },
    axes: [xAxis, axis('y', 3, p.yLabel, p.yFormat), ...(hasY2 ? [axis('y2', 1, p.y2Label, p.y2Format)] : [])],
    legend: { show: true, live: true },
    cursor: { drag: { x: false, y: false } },
    series: [
      categories
        ? { label: 'Band', value: (_u, v) => (v === null || v === undefined ? '—' : (categories[v] ?? '')) }
        : { label: 'Time' },
      ...p.series.map((s): uPlot.Series => {
        const color = themeColor(s.color);
        const common: uPlot.Series = {
          label: s.label,
          scale: s.scale ?? 'y',
          stroke: color,
          // The legend shows each series' own value, also when bars are stacked.
          value: (_u, _v, _si, idx) => {
            const v = idx === null || idx === undefined ? null : s.values[idx];
            return v === null || v === undefined ? '—' : s.format ? s.format(v) : String(v);
          },
        };
        if (p.kind === 'bars') return { ...common, fill: color, width: 0, paths: bars, points: { show: false } };
        return { ...common, width: 2, ...(s.dash ? { dash: [6, 4] } : {}), points: { show: true, size: 4 }, spanGaps: false };
      }),
    ],
  };
}

export function Chart(props: ChartProps) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const zone = useZone();
  const dark = useColorScheme();

  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const data: uPlot.AlignedData =
      props.kind === 'bars' && props.stacked ? [props.x, ...stack(props.series)] : [props.x, ...props.series.map((s) => s.values)];
    let options = buildOptions(props, Math.max(200, el.clientWidth), zone);
    let series: uPlot.AlignedData = data;
    if (props.kind === 'bars' && props.stacked) {
      // Draw the tallest (cumulative) series first so the shorter ones sit on top of it.
      const order = props.series.map((_, i) => props.series.length - i);
      options = { ...options, series: [options.series[0]!, ...order.map((i) => options.series[i]!)] };
      series = [data[0]!, ...order.map((i) => data[i]!)] as unknown as uPlot.AlignedData;
    }
    const u = new uPlot(options, series, el);
    plot.current = u;
    const observer = new ResizeObserver(() => {
      const width = Math.max(200, el.clientWidth);
      if (width !== u.width) u.setSize({ width, height: props.height ?? 240 });
    });
    observer.observe(el);
    return () => {
      observer.disconnect();
      u.destroy();
      plot.current = null;
    };
    // Rebuilt when the data, the zone or the theme change; a rebuild is cheap at these sizes.
  }, [props.x, props.series, props.categories, props.kind, props.stacked, props.height, zone, dark]);

  return (
    <figure class="chart">
      <figcaption>{props.title}</figcaption>
      <div ref={box} class="chart-box" role="img" aria-label={props.title} />
    </figure>
  );
}
