import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { apiUrl, ApiError } from '../../api.js';
import { ErrorBox } from '../../components/error-box.js';
import { formatTime, useZone } from '../../time.js';
import { computeWindow, scrollTopFor, SeqPageCache, SequentialCache } from '../../view/stream-window.js';
import { loadStream, phiQuery, type ScreenshotJson, type StreamEntryJson } from './data.js';
import { JsonView } from './json-view.js';

const ROW_HEIGHT = 24;
const VIEWPORT = 384;
const PAGE = 1000;

const LEVELS = [
  { value: '', label: 'All levels' },
  { value: 'DEBUG', label: 'Debug and above' },
  { value: 'INFO', label: 'Info and above' },
  { value: 'WARN', label: 'Warnings and errors' },
  { value: 'ERROR', label: 'Errors only' },
] as const;
const LEVEL_RANK: Record<string, number> = { TRACE: 1, DEBUG: 2, INFO: 3, WARN: 4, ERROR: 5, FATAL: 6 };

export interface StreamEvents {
  /** Rows that arrived (the first page, live rows), for the Gantt's attempts and waits. */
  onRows: (rows: readonly StreamEntryJson[], live: boolean) => void;
  /** The last seq known grew (the time-travel slider's end). */
  onLastSeq: (seq: number) => void;
  /** The live stream said the status changed. */
  onStatus: (status: string) => void;
  onMeta: (meta: { archived?: boolean; phiMasked?: boolean }) => void;
  onTravel: (seq: number) => void;
  onOpenScreenshot: (s: ScreenshotJson) => void;
  /** The row of focusSeq is here (its time places the time-travel cursor). */
  onFocusRow: (row: StreamEntryJson) => void;
}

type LiveState = 'off' | 'connecting' | 'live' | 'reconnecting' | 'ended';

/**
 * The run's stream: a windowed list (a 50,000-row stream keeps about 40 rows
 * in the DOM) over a cache of 1,000-row pages fetched as they scroll into
 * view; a level filter; "Follow" tails the live stream and resumes from the
 * last seq after a reconnect.
 */
export function StreamPanel(props: {
  jobId: string;
  masked: boolean;
  finished: boolean;
  focusSeq: number | null;
  selectedPath: string | null;
  /** Top-level step index of the selected step (its rows carry no path). */
  selectedIndex: number | null;
  screenshots: ReadonlyMap<number, ScreenshotJson>;
  /** Top-level step ids by index: rows of top-level steps carry only the index. */
  stepNames: ReadonlyMap<number, string>;
  events: StreamEvents;
}) {
  const zone = useZone();
  const [level, setLevel] = useState('');
  const [follow, setFollow] = useState(!props.finished);
  useEffect(() => {
    if (props.finished && live === 'off') setFollow(false);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [props.finished]);
  const [live, setLive] = useState<LiveState>('off');
  const [error, setError] = useState<ApiError | null>(null);
  const [selectedSeq, setSelectedSeq] = useState<number | null>(props.focusSeq);
  const [, setTick] = useState(0);
  const [scrollTop, setScrollTop] = useState(0);
  const scroller = useRef<HTMLDivElement>(null);
  const events = useRef(props.events);
  events.current = props.events;

  // One cache per (job, masking, filter): a new one starts empty.
  const cache = useMemo(
    () => (level === '' ? { dense: new SeqPageCache<StreamEntryJson>(PAGE) } : { seq: new SequentialCache<StreamEntryJson>(PAGE) }),
    [props.jobId, props.masked, level],
  );
  const [ready, setReady] = useState(false);
  /** Bumped by "Try again" when the first page failed: loads it again. */
  const [firstTry, setFirstTry] = useState(0);
  // The last seq of a long stream is being looked for (the count shows "1,000+" meanwhile).
  const [sizing, setSizing] = useState(true);
  const rerender = useRef(0);
  const bump = () => {
    if (rerender.current) return;
    rerender.current = requestAnimationFrame(() => {
      rerender.current = 0;
      setTick((t) => t + 1);
    });
  };
  useEffect(() => () => cancelAnimationFrame(rerender.current), []);

  const count = cache.dense ? cache.dense.count : cache.seq!.count;
  // A short stream gets a short box (at least a few rows, for the loading and live rows to come).
  const viewport = Math.min(VIEWPORT, Math.max(6, count + 1) * ROW_HEIGHT);
  const win = computeWindow({ count, rowHeight: ROW_HEIGHT, viewportHeight: viewport, scrollTop, overscan: 10 });

  // First page, and for a long stream its last seq (the state route's atSeq), so the scrollbar spans it all.
  useEffect(() => {
    const ctrl = new AbortController();
    setReady(false);
    setSizing(true);
    setError(null);
    const first = async () => {
      if (cache.dense) {
        cache.dense.begin(0);
        const page = await loadStream(props.jobId, cache.dense.pageQuery(0), props.masked, ctrl.signal);
        if (ctrl.signal.aborted) return;
        cache.dense.put(0, page.items);
        events.current.onMeta({ archived: page.archived, phiMasked: page.phiMasked });
        events.current.onRows(page.items, false);
        events.current.onLastSeq(cache.dense.count);
        setReady(true);
        if (page.items.length >= PAGE) {
          // A long stream: the page says how long it is (lastSeq), so the scrollbar spans it all at once.
          cache.dense.noteSeq(page.lastSeq);
          events.current.onLastSeq(cache.dense.count);
          bump();
        }
        setSizing(false);
        return;
      } else {
        const q = cache.seq!.next(0)!;
        const page = await loadStream(props.jobId, { ...q, level }, props.masked, ctrl.signal);
        if (ctrl.signal.aborted) return;
        cache.seq!.put(page.items, q.limit);
      }
      setSizing(false);
      setReady(true);
    };
    first().catch((err: unknown) => {
      if (ctrl.signal.aborted) return;
      cache.dense?.fail(0);
      cache.seq?.fail();
      setError(err instanceof ApiError ? err : new ApiError(0, 'CLIENT_ERROR', String(err)));
    });
    return () => ctrl.abort();
  }, [cache, firstTry]);

  // Pages the window needs, on demand. Not while an error is shown: a failed page is asked for again
  // only through "Try again", never in a loop of renders.
  useEffect(() => {
    if (!ready || error) return;
    if (cache.dense) {
      const dense = cache.dense;
      for (const p of dense.missing(win.first, win.last)) {
        dense.begin(p);
        loadStream(props.jobId, dense.pageQuery(p), props.masked).then(
          (page) => {
            dense.put(p, page.items);
            bump();
          },
          (err: unknown) => {
            dense.fail(p);
            setError(err instanceof ApiError ? err : new ApiError(0, 'CLIENT_ERROR', String(err)));
          },
        );
      }
    } else {
      const seq = cache.seq!;
      const q = seq.next(win.last);
      if (q) {
        loadStream(props.jobId, { ...q, level }, props.masked).then(
          (page) => {
            seq.put(page.items, q.limit);
            bump();
          },
          (err: unknown) => {
            seq.fail();
            setError(err instanceof ApiError ? err : new ApiError(0, 'CLIENT_ERROR', String(err)));
          },
        );
      }
    }
  });

  // ?seq= (and time travel) scrolls the stream to that row.
  useEffect(() => {
    if (props.focusSeq === null || !ready) return;
    setSelectedSeq(props.focusSeq);
    const el = scroller.current;
    if (!el) return;
    let index = -1;
    if (cache.dense) index = Math.min(props.focusSeq, cache.dense.count) - 1;
    else index = cache.seq!.rows.findIndex((r) => r.seq >= props.focusSeq!);
    if (index >= 0) {
      el.scrollTop = scrollTopFor(index, ROW_HEIGHT, el.clientHeight || VIEWPORT);
      setScrollTop(el.scrollTop);
    }
  }, [props.focusSeq, ready, sizing, cache]);

  // Follow: tail the live stream from the last seq known.
  // A run that finishes while followed keeps its connection until the server's `end`: the last rows come before it.
  const finishedAtStart = useRef(props.finished);
  useEffect(() => {
    if (!follow || !ready || sizing || finishedAtStart.current) {
      setLive(finishedAtStart.current && follow ? 'ended' : 'off');
      return;
    }
    let source: EventSource | null = null;
    let retry: ReturnType<typeof setTimeout> | undefined;
    let closed = false;
    const lastSeq = () => (cache.dense ? cache.dense.count : cache.seq!.rows.at(-1)?.seq ?? 0);
    const connect = () => {
      setLive(source ? 'reconnecting' : 'connecting');
      // A new EventSource resumes with afterSeq; the browser's own reconnects send Last-Event-ID.
      source = new EventSource(apiUrl(`/v1/jobs/${props.jobId}/stream/live`, { afterSeq: lastSeq(), ...phiQuery(props.masked) }), { withCredentials: true });
      const batch: StreamEntryJson[] = [];
      let flush = 0;
      source.onopen = () => setLive('live');
      source.addEventListener('entry', (e) => {
        try {
          batch.push(JSON.parse((e as MessageEvent<string>).data) as StreamEntryJson);
        } catch {
          return;
        }
        if (flush) return;
        flush = requestAnimationFrame(() => {
          flush = 0;
          const rows = batch.splice(0);
          if (cache.dense) cache.dense.append(rows);
          else cache.seq!.append(rows.filter((r) => (LEVEL_RANK[r.level] ?? 0) >= (LEVEL_RANK[level] ?? 0)));
          events.current.onRows(rows, true);
          events.current.onLastSeq(rows.at(-1)?.seq ?? 0);
          bump();
          // Tail: keep the newest row in view.
          const el = scroller.current;
          if (el) requestAnimationFrame(() => (el.scrollTop = el.scrollHeight));
        });
      });
      source.addEventListener('status', (e) => {
        try {
          events.current.onStatus((JSON.parse((e as MessageEvent<string>).data) as { status: string }).status);
        } catch {
          // a malformed event: the next one says it again
        }
      });
      source.addEventListener('end', () => {
        closed = true;
        source?.close();
        setLive('ended');
        // Everything was sent: the page reads the run's final state once more.
        events.current.onStatus('end');
      });
      source.onerror = () => {
        if (closed) return;
        if (source && source.readyState === EventSource.CLOSED) {
          // The browser gave up (an error answer): start again from the last seq we hold.
          setLive('reconnecting');
          retry = setTimeout(connect, 3000);
        } else {
          setLive('reconnecting');
        }
      };
    };
    connect();
    return () => {
      closed = true;
      clearTimeout(retry);
      source?.close();
    };
  }, [follow, ready, sizing, cache]);

  // Tell the page the time of the focused row once its page is here.
  const reportedFocus = useRef<number | null>(null);
  useEffect(() => {
    if (props.focusSeq === null) {
      reportedFocus.current = null;
      return;
    }
    if (reportedFocus.current === props.focusSeq) return;
    const row = cache.dense ? cache.dense.get(props.focusSeq - 1) : cache.seq!.rows.find((r) => r.seq === props.focusSeq);
    if (row) {
      reportedFocus.current = props.focusSeq;
      events.current.onFocusRow(row);
    }
  });

  const rowAt = (i: number) => (cache.dense ? cache.dense.get(i) : cache.seq!.get(i));
  const selectedRow = useMemo(() => {
    if (selectedSeq === null) return undefined;
    if (cache.dense) return cache.dense.get(selectedSeq - 1);
    return cache.seq!.rows.find((r) => r.seq === selectedSeq);
  }, [selectedSeq, cache, count, win.first]);

  const ofSelectedStep = (r: StreamEntryJson) =>
    props.selectedPath !== null &&
    ((r.path ?? null) === props.selectedPath || (!r.path && props.selectedIndex !== null && r.stepIndex === props.selectedIndex) || (r.path ?? '').startsWith(`${props.selectedPath}.`) || (r.path ?? '').startsWith(`${props.selectedPath}[`));

  return (
    <section class="stream card" aria-label="Stream">
      <div class="panel-head">
        <h2>Stream</h2>
        <span class="muted small">{count.toLocaleString('en-US')}
          {(cache.seq && !cache.seq.done) || (cache.dense && sizing) ? '+' : ''} rows</span>
        <label class="inline">
          Level
          <select value={level} onChange={(e) => setLevel((e.target as HTMLSelectElement).value)}>
            {LEVELS.map((l) => (
              <option key={l.value} value={l.value}>
                {l.label}
              </option>
            ))}
          </select>
        </label>
        <label class="inline">
          <input type="checkbox" checked={follow} disabled={props.finished} onChange={(e) => setFollow((e.target as HTMLInputElement).checked)} />
          Follow
        </label>
        <span class={`live live-${live}`} role="status" aria-live="polite">
          {live === 'live' ? '● live' : live === 'connecting' ? 'connecting…' : live === 'reconnecting' ? 'reconnecting…' : live === 'ended' ? 'run finished' : ''}
        </span>
      </div>
      {error && <ErrorBox error={error} what="the stream" onRetry={() => (setError(null), ready ? bump() : setFirstTry((n) => n + 1))} />}
      <div class="s-head" aria-hidden="true">
        <span class="s-seq">seq</span>
        <span class="s-time">time</span>
        <span class="s-level">level</span>
        <span class="s-kind">event</span>
        <span class="s-step">step</span>
        <span class="s-msg">message</span>
      </div>
      <div
        class="s-body"
        ref={scroller}
        role="list"
        aria-label="Stream rows"
        tabIndex={0}
        style={{ height: `${viewport}px` }}
        onScroll={(e) => setScrollTop((e.target as HTMLDivElement).scrollTop)}
      >
        <div style={{ height: `${win.padTop}px` }} />
        {Array.from({ length: win.last - win.first }, (_, k) => {
          const i = win.first + k;
          const r = rowAt(i);
          if (!r) {
            return (
              <div key={`i${i}`} class="s-row s-loading" role="listitem">
                <span class="s-seq">{cache.dense ? i + 1 : ''}</span>
                <span class="muted">{cache.seq && cache.seq.done ? '' : 'loading…'}</span>
              </div>
            );
          }
          const shot = props.screenshots.get(r.seq);
          const cls = ['s-row', `lv-${r.level.toLowerCase()}`, r.seq === selectedSeq ? 'selected' : '', ofSelectedStep(r) ? 'of-step' : ''].filter(Boolean).join(' ');
          return (
            <div key={r.seq} class={cls} role="listitem">
              <button type="button" class="s-hit" aria-label={`Row ${r.seq}: ${r.kind} ${r.message}`} aria-pressed={r.seq === selectedSeq} onClick={() => setSelectedSeq(r.seq === selectedSeq ? null : r.seq)} />
              <span class="s-seq">{r.seq}</span>
              <span class="s-time">{formatTime(r.ts, zone, { ms: true }).slice(11)}</span>
              <span class={`s-level lvl-${r.level.toLowerCase()}`}>{r.level}</span>
              <span class="s-kind">{r.kind === 'LOG' ? 'log' : r.kind}</span>
              <span class="s-step" title={r.path ?? undefined}>
                {r.path ?? (r.stepIndex !== null ? props.stepNames.get(r.stepIndex) ?? `#${r.stepIndex}` : '')}
              </span>
              <span class="s-msg">
                {shot && (
                  <button type="button" class="s-shot" aria-label={`Open screenshot ${shot.name ?? ''} at seq ${r.seq}`} onClick={() => props.events.onOpenScreenshot(shot)}>
                    ▣
                  </button>
                )}
                {r.message}
                {r.data !== null && r.data !== undefined && <span class="s-has-data" title="Has a payload: select the row"> {'{…}'}</span>}
              </span>
            </div>
          );
        })}
        <div style={{ height: `${win.padBottom}px` }} />
      </div>
      {selectedSeq !== null && (
        <div class="s-detail">
          {selectedRow ? (
            <>
              <div class="s-detail-head">
                <strong>Row {selectedRow.seq}</strong>
                <span class="muted small">
                  {formatTime(selectedRow.ts, zone, { ms: true })} · {selectedRow.level} · {selectedRow.kind}
                  {selectedRow.path ? ` · ${selectedRow.path}` : selectedRow.stepIndex !== null ? ` · step #${selectedRow.stepIndex}` : ''}
                </span>
                <button type="button" class="small" onClick={() => props.events.onTravel(selectedRow.seq)}>
                  Show state at this row
                </button>
                <button type="button" class="small ghost" aria-label="Close row details" onClick={() => setSelectedSeq(null)}>
                  ✕
                </button>
              </div>
              <p class="s-detail-msg">{selectedRow.message}</p>
              {selectedRow.data !== null && selectedRow.data !== undefined && <JsonView value={selectedRow.data} label={`Payload of row ${selectedRow.seq}`} />}
            </>
          ) : (
            <p class="muted small">Row {selectedSeq} is loading…</p>
          )}
        </div>
      )}
    </section>
  );
}
