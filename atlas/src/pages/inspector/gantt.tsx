import { useEffect, useRef, useState } from 'preact/hooks';
import { Link } from '../../components/link.js';
import { formatDuration } from '../../time.js';
import { computeWindow, scrollTopFor } from '../../view/stream-window.js';
import { axisTicks, iterationPageLabel, type GanttRow, type TimelineLayout } from '../../view/timeline-layout.js';
import { ITERATION_LIMIT } from './data.js';

const ROW_HEIGHT = 24;
const VIEWPORT = 360;

/** A marker on the time axis (a screenshot). */
export interface AxisMarker {
  key: string;
  pct: number;
  label: string;
  onOpen: () => void;
}

const STATUS_WORD: Record<string, string> = {
  COMPLETED: 'done',
  FAILED: 'failed',
  RUNNING: 'running',
  RETRYING: 'retrying',
  WAITING: 'waiting',
  PENDING: 'pending',
  CANCELLED: 'cancelled',
  TIMED_OUT: 'timed out',
  PARTIAL_SUCCESS: 'partial',
  UNKNOWN: 'no end',
};

function statusWord(s: string): string {
  return STATUS_WORD[s] ?? s.toLowerCase().replace(/_/g, ' ');
}

/**
 * The Gantt: one row per step (attempts, branches, iterations, child runs
 * nested under it), bars on a shared time axis. Rows are windowed like the
 * stream, so a run with thousands of rows renders a screenful.
 */
export function Gantt(props: {
  layout: TimelineLayout;
  selected: string | null;
  changed: ReadonlySet<string>;
  markers: readonly AxisMarker[];
  /** Time-travel cursor, percent of the axis (null: none). */
  cursorPct: number | null;
  onSelect: (path: string) => void;
  onToggle: (key: string) => void;
  onPage: (loop: string, offset: number) => void;
}) {
  const { rows } = props.layout;
  const scroller = useRef<HTMLDivElement>(null);
  const [scrollTop, setScrollTop] = useState(0);
  // At most VIEWPORT px, and at most 30% of the window (CSS): the stream stays in sight at 1280×800.
  const viewport = Math.min(VIEWPORT, Math.max(rows.length, 1) * ROW_HEIGHT, Math.max(ROW_HEIGHT * 8, Math.round(window.innerHeight * 0.3)));
  const win = computeWindow({ count: rows.length, rowHeight: ROW_HEIGHT, viewportHeight: viewport, scrollTop, overscan: 8 });

  // A linked or default-selected step scrolls into view once it is laid out.
  const selectedIndex = props.selected === null ? -1 : rows.findIndex((r) => r.kind === 'step' && r.path === props.selected);
  useEffect(() => {
    const el = scroller.current;
    if (!el || selectedIndex < 0) return;
    const top = selectedIndex * ROW_HEIGHT;
    if (top < el.scrollTop || top + ROW_HEIGHT > el.scrollTop + el.clientHeight) el.scrollTop = scrollTopFor(selectedIndex, ROW_HEIGHT, el.clientHeight);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [props.selected, selectedIndex >= 0]);

  const ticks = axisTicks(props.layout.spanMs, 6);

  const onKey = (e: KeyboardEvent, row: GanttRow) => {
    if (e.key === 'ArrowRight' && row.hasChildren && row.collapsed) props.onToggle(row.key);
    else if (e.key === 'ArrowLeft' && row.hasChildren && !row.collapsed) props.onToggle(row.key);
    else return;
    e.preventDefault();
  };

  return (
    <div class="gantt" role="table" aria-label="Steps on a time axis" aria-rowcount={rows.length}>
      <div class="gantt-head" role="row">
        <span class="g-label" role="columnheader">
          Step
        </span>
        <span class="g-status" role="columnheader">
          Status
        </span>
        <span class="g-dur" role="columnheader">
          Duration
        </span>
        <span class="g-track" role="columnheader" aria-label="Time">
          {ticks.map((t) => (
            <span key={t.offsetMs} class="g-tick" style={{ left: `${t.pct}%` }}>
              {t.offsetMs === 0 ? '0' : `+${formatDuration(t.offsetMs)}`}
            </span>
          ))}
          {props.markers.map((m) => (
            <button
              type="button"
              key={m.key}
              class="g-marker"
              style={{ left: `${m.pct}%` }}
              aria-label={m.label}
              title={m.label}
              onClick={m.onOpen}
            >
              ▾
            </button>
          ))}
        </span>
      </div>
      <div class="gantt-body" ref={scroller} style={{ height: `${viewport}px` }} onScroll={(e) => setScrollTop((e.target as HTMLDivElement).scrollTop)}>
        <div style={{ height: `${win.padTop}px` }} />
        {rows.slice(win.first, win.last).map((row) => (
          <Row
            key={row.key}
            row={row}
            selected={row.kind === 'step' && row.path === props.selected}
            changed={row.path !== '' && props.changed.has(row.path) && row.kind !== 'attempt'}
            collapsed={row.collapsed}
            onSelect={props.onSelect}
            onToggle={props.onToggle}
            onPage={props.onPage}
            onKey={onKey}
          />
        ))}
        <div style={{ height: `${win.padBottom}px` }} />
        {props.cursorPct !== null && <div class="g-cursor-lane" aria-hidden="true"><span class="g-cursor" style={{ left: `${props.cursorPct}%` }} /></div>}
      </div>
    </div>
  );
}

function Row(props: {
  row: GanttRow;
  selected: boolean;
  changed: boolean;
  collapsed: boolean;
  onSelect: (path: string) => void;
  onToggle: (key: string) => void;
  onPage: (loop: string, offset: number) => void;
  onKey: (e: KeyboardEvent, row: GanttRow) => void;
}) {
  const { row } = props;
  const cls = ['g-row', `k-${row.kind}`, row.failing ? 'failing' : '', props.selected ? 'selected' : '', props.changed ? 'changed' : ''].filter(Boolean).join(' ');
  const indent = { paddingLeft: `${4 + row.depth * 14}px` };
  const toggle = row.hasChildren ? (
    <button
      type="button"
      class="g-toggle"
      aria-expanded={!props.collapsed}
      aria-label={`${props.collapsed ? 'Expand' : 'Collapse'} ${row.label}`}
      onClick={(e) => (e.stopPropagation(), props.onToggle(row.key))}
    >
      {props.collapsed ? '▸' : '▾'}
    </button>
  ) : (
    <span class="g-toggle-space" />
  );

  if (row.kind === 'page' && row.loop) {
    const { page, shown, path } = row.loop;
    return (
      <div class={cls} role="row">
        <span class="g-label g-page" role="cell" style={indent}>
          <span class="g-toggle-space" />
          <span class="muted">{iterationPageLabel(page, shown)}</span>
          {page.offset > 0 && (
            <button type="button" class="linkish" onClick={() => props.onPage(path, Math.max(0, page.offset - ITERATION_LIMIT))}>
              previous page
            </button>
          )}
          {page.hasMore && page.nextOffset !== null && (
            <button type="button" class="linkish" onClick={() => props.onPage(path, page.nextOffset!)}>
              next page
            </button>
          )}
        </span>
      </div>
    );
  }

  const label =
    row.kind === 'child' && row.childJobId ? (
      <Link href={`/runs/${row.childJobId}`} title="Open the child run">
        ↳ {row.label}
      </Link>
    ) : row.kind === 'step' || row.kind === 'iteration' || row.kind === 'branch' ? (
      <button
        type="button"
        class="g-name"
        aria-pressed={props.selected}
        title={row.path}
        onClick={() => props.onSelect(row.path)}
        onKeyDown={(e) => props.onKey(e as unknown as KeyboardEvent, row)}
      >
        {row.label}
      </button>
    ) : (
      <span class="g-sub">{row.label}</span>
    );

  return (
    <div class={cls} role="row" onClick={row.kind === 'attempt' ? () => props.onSelect(row.path) : undefined}>
      <span class="g-label" role="cell" style={indent}>
        {toggle}
        {label}
        {row.attempts > 1 && row.kind === 'step' && <span class="g-attempts" title={`${row.attempts} attempts`}>×{row.attempts}</span>}
        {props.changed && <span class="g-changed" title="Changed at this point of time travel">changed</span>}
      </span>
      <span
        class={`g-status status-${row.status.toLowerCase()}`}
        role="cell"
        title={row.status === 'UNKNOWN' ? 'The stream has no end row for this: the run ended (cancelled) or its stream reached the row cap' : undefined}
      >
        {statusWord(row.status)}
      </span>
      <span class="g-dur" role="cell">
        {row.durationMs !== null ? formatDuration(row.durationMs) : ''}
      </span>
      <span class="g-track" role="cell">
        {row.kind !== 'step' && row.kind !== 'attempt' && row.widthPct > 0 && (
          <span class="g-extent" style={{ left: `${row.startPct}%`, width: `${row.widthPct}%` }} />
        )}
        {row.segments.map((s, i) => (
          <span
            key={i}
            class={`g-bar seg-${s.kind} st-${s.status.toLowerCase()}`}
            style={{ left: `${s.startPct}%`, width: `${s.widthPct}%` }}
            title={`${row.label}: ${s.label}`}
          />
        ))}
        {row.error && row.kind !== 'iteration' && (
          <span
            class={errorPlace(row) === 'inside' ? 'g-error inside' : 'g-error'}
            style={errorStyle(row)}
            title={`${row.error.code}: ${row.error.message}`}
          >
            {row.error.code}
          </span>
        )}
      </span>
    </div>
  );
}

/**
 * Where a row's error code goes so it stays readable and inside the track:
 * after the bar, before it when the bar ends near the right edge, or over the
 * bar's start when the bar spans nearly the whole track.
 */
function errorPlace(row: { startPct: number; widthPct: number }): 'after' | 'before' | 'inside' {
  if (row.startPct + row.widthPct <= 70) return 'after';
  return row.startPct >= 30 ? 'before' : 'inside';
}

function errorStyle(row: { startPct: number; widthPct: number }): Record<string, string> {
  switch (errorPlace(row)) {
    case 'after':
      return { left: `${row.startPct + row.widthPct}%` };
    case 'before':
      return { right: `${100 - row.startPct}%`, marginRight: '4px' };
    default:
      return { left: `${row.startPct}%` };
  }
}
