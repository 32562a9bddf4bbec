import { useCallback, useEffect, useMemo, useRef, useState } from 'preact/hooks';
import './inspector.css';
import { ConfirmDialog } from '../../components/confirm-dialog.js';
import { ErrorBox } from '../../components/error-box.js';
import { Link } from '../../components/link.js';
import { Loading } from '../../components/loading.js';
import { useQuery, useTitle } from '../../hooks.js';
import { navigate, type Location } from '../../router.js';
import { useCan } from '../../session.js';
import { changedPaths, diffStates, type StateChange } from '../../view/state-diff.js';
import { layoutTimeline, type StepEvent } from '../../view/timeline-layout.js';
import type { JobStateJson } from '../../view/timeline-types.js';
import { RunActions } from './actions.js';
import {
  definitionSteps,
  failingPathOf,
  findStep,
  loadApprovals,
  loadChildren,
  loadFailureRows,
  loadJob,
  loadListItem,
  loadRetriedAs,
  loadScreenshots,
  loadState,
  loadTimeline,
  loadRunDefinition,
  loadWorkflow,
  RETRYABLE,
  stepEventsOf,
  TERMINAL,
  waitStepIds,
  type LoopPaging,
  type ScreenshotJson,
  type StreamEntryJson,
} from './data.js';
import { Gantt, type AxisMarker } from './gantt.js';
import { JsonView } from './json-view.js';
import { RunHeader } from './header.js';
import { ScreenshotViewer } from './screenshot-viewer.js';
import { StepPanel } from './step-panel.js';
import { StreamPanel } from './stream.js';
import { StatePanel, TimeTravelBar } from './time-travel.js';

/** Kinds of stream rows the Gantt places (attempts, back-offs, waits). */
const GANTT_KINDS = new Set(['STEP_FAILED', 'RETRY_SCHEDULED', 'WAITING', 'SIGNAL_RECEIVED']);

function useDebounced<T>(value: T, ms: number): T {
  const [v, set] = useState(value);
  useEffect(() => {
    const t = setTimeout(() => set(value), ms);
    return () => clearTimeout(t);
  }, [value, ms]);
  return v;
}

function seqParam(loc: Location): number | null {
  const raw = loc.query.get('seq');
  if (raw === null || !/^\d{1,10}$/.test(raw)) return null;
  return Number(raw);
}

/**
 * The run inspector at /runs/<id> (?step= selects a step, ?seq= travels to
 * a row): header and actions, the Gantt with the selected step beside it,
 * time travel over /state?at=, and the stream, virtualized and live.
 * Everything is read with phi=mask until an audited "Reveal PHI".
 */
export function InspectorPage(props: { jobId: string; loc: Location }) {
  const { jobId, loc } = props;
  const canControl = useCan('controlJobs');
  const [masked, setMasked] = useState(true);
  const [revealAsk, setRevealAsk] = useState(false);
  const [paging, setPaging] = useState<LoopPaging | null>(null);
  const [toggled, setToggled] = useState<ReadonlySet<string>>(new Set());
  const [tick, setTick] = useState(0);
  const [tab, setTab] = useState<'step' | 'state' | 'run'>('step');
  const [meta, setMeta] = useState<{ archived: boolean; phiMasked: boolean }>({ archived: false, phiMasked: false });
  const [lastSeq, setLastSeq] = useState(0);
  const [shotIndex, setShotIndex] = useState<number | null>(null);
  const [focusTs, setFocusTs] = useState<string | null>(null);
  const [now, setNow] = useState(() => Date.now());
  // Stream rows the Gantt needs, by seq (a few per step at most).
  const ganttRows = useRef(new Map<number, StreamEntryJson>());
  const [ganttVersion, setGanttVersion] = useState(0);

  // A new run (a retry navigated here) or a new masking starts clean.
  useEffect(() => {
    setPaging(null);
    setToggled(new Set());
    setLastSeq(0);
    setMeta({ archived: false, phiMasked: false });
    setShotIndex(null);
  }, [jobId]);
  useEffect(() => {
    ganttRows.current = new Map();
    setGanttVersion((v) => v + 1);
  }, [jobId, masked]);

  const job = useQuery((s) => loadJob(jobId, masked, s), [jobId, masked, tick]);
  const timeline = useQuery((s) => loadTimeline(jobId, masked, paging, s), [jobId, masked, paging, tick]);
  // What the first screen needs goes first (the job, its timeline, the stream's first page); the rest waits
  // for the timeline, so on a single-connection database it does not queue in front of it.
  const primary = !!(timeline.data || timeline.error);
  // The previous run's timeline stays in the query until this run's arrives: never show it for this one.
  const tl = timeline.data && timeline.data.jobId === jobId ? timeline.data : undefined;
  const later = <T,>(load: () => Promise<T>): Promise<T | undefined> => (primary ? load() : Promise.resolve(undefined));
  const failures = useQuery((s) => later(() => loadFailureRows(jobId, masked, s)), [jobId, masked, primary]);
  const children = useQuery((s) => later(() => loadChildren(jobId, s)), [jobId, tick, primary]);
  const screenshots = useQuery((s) => later(() => loadScreenshots(jobId, s)), [jobId, tick, primary]);
  const approvals = useQuery((s) => later(() => (canControl ? loadApprovals(jobId, s) : Promise.resolve([]))), [jobId, tick, canControl, primary]);
  const j = job.data && job.data.id === jobId ? job.data : undefined;
  const workflow = useQuery((s) => (j && primary ? loadWorkflow(j.workflowId, s) : Promise.resolve(undefined)), [j?.workflowId, primary]);
  const runDefinition = useQuery(
    (s) => (j && primary ? loadRunDefinition(j.workflowId, j.workflowVersion, s) : Promise.resolve(undefined)),
    [j?.workflowId, j?.workflowVersion, primary],
  );
  const listItem = useQuery((s) => (j && primary ? loadListItem(j, s) : Promise.resolve(null)), [j?.id, primary]);
  const retriedAs = useQuery((s) => (j && primary && RETRYABLE.has(j.status) ? loadRetriedAs(j, s) : Promise.resolve([])), [j?.id, j?.status, tick, primary]);

  const finished = j ? TERMINAL.has(j.status) : true;
  useTitle(j ? `${listItem.data?.workflowName ?? workflow.data?.name ?? 'Run'} #${j.runNumber}` : 'Run');

  // Running bars grow to "now".
  useEffect(() => {
    if (finished) return;
    const t = setInterval(() => setNow(Date.now()), 2000);
    return () => clearInterval(t);
  }, [finished]);

  // Live rows change the run: reload its job and timeline at most every 2 s (once per change, not per row).
  const reloadTimer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  const scheduleReload = useCallback(() => {
    if (reloadTimer.current) return;
    reloadTimer.current = setTimeout(() => {
      reloadTimer.current = undefined;
      setTick((t) => t + 1);
      setNow(Date.now());
    }, 2000);
  }, []);
  useEffect(() => () => clearTimeout(reloadTimer.current), []);

  const addGanttRows = (rows: readonly StreamEntryJson[]) => {
    let added = false;
    for (const r of rows) {
      if (GANTT_KINDS.has(r.kind) && !ganttRows.current.has(r.seq)) {
        ganttRows.current.set(r.seq, r);
        added = true;
      }
    }
    if (added) setGanttVersion((v) => v + 1);
  };
  useEffect(() => {
    if (failures.data) addGanttRows(failures.data);
  }, [failures.data]);

  const events: StepEvent[] = useMemo(() => stepEventsOf([...ganttRows.current.values()].sort((a, b) => a.seq - b.seq)), [ganttVersion]);
  const defSteps = useMemo(() => definitionSteps(runDefinition.data), [runDefinition.data]);
  const waitSteps = useMemo(() => waitStepIds(defSteps), [defSteps]);
  // A top-level step whose start row was not written (past the stream's row cap) has no name: the definition has it.
  const steps = useMemo(() => {
    const list = tl?.steps ?? [];
    const top = (runDefinition.data as { steps?: { id?: unknown }[] } | undefined)?.steps;
    if (!Array.isArray(top)) return list;
    return list.map((s) => (s.name || s.index === undefined || typeof top[s.index]?.id !== 'string' ? s : { ...s, name: top[s.index]!.id as string }));
  }, [tl, runDefinition.data]);
  const failingPath = failingPathOf(j, steps);
  const stepNames = useMemo(() => new Map(steps.filter((s) => s.index !== undefined && s.name).map((s) => [s.index!, s.name!] as const)), [steps]);

  // Selection: ?step=, else the failing step of a failed run (the inner step when it is on this page, else its top-level block).
  const stepQuery = loc.query.get('step');
  const selectedPath = useMemo(() => {
    if (stepQuery) return stepQuery;
    if (!failingPath) return null;
    if (findStep(steps, failingPath)) return failingPath;
    const top = failingPath.split(/[.[]/)[0] ?? '';
    return findStep(steps, top) ? top : failingPath;
  }, [stepQuery, failingPath, steps]);
  const selectedStep = selectedPath ? findStep(steps, selectedPath) : null;

  const layout = useMemo(
    () =>
      layoutTimeline({
        steps,
        jobStart: j?.startedAt ?? null,
        jobEnd: j?.completedAt ?? null,
        now,
        events,
        waitSteps,
        children: children.data ?? [],
        toggled,
        focusPath: selectedPath,
        failingPath,
      }),
    [steps, j?.startedAt, j?.completedAt, now, events, waitSteps, children.data, toggled, selectedPath, failingPath],
  );


  const seq = seqParam(loc);
  const setUrl = (changes: Record<string, string | null>) => {
    const q = new URLSearchParams(loc.query);
    for (const [k, v] of Object.entries(changes)) {
      if (v === null) q.delete(k);
      else q.set(k, v);
    }
    const qs = q.toString();
    navigate(`/runs/${jobId}${qs ? `?${qs}` : ''}`, { replace: true });
  };
  const select = (path: string) => {
    setTab('step');
    setUrl({ step: path });
  };
  const travel = (to: number | null) => {
    if (to !== null) setTab('state');
    setUrl({ seq: to === null ? null : String(to) });
  };

  // Time travel: the state at ?seq=, fetched once the slider rests; what changed since its previous position.
  const restingSeq = useDebounced(seq, 250);
  const state = useQuery(
    (s) => (restingSeq === null ? Promise.resolve(undefined) : loadState(jobId, restingSeq, masked, paging, s)),
    [jobId, restingSeq, masked, paging],
  );
  const shown = useRef<JobStateJson | null>(null);
  const [diff, setDiff] = useState<{ changes: StateChange[]; from: number | null }>({ changes: [], from: null });
  useEffect(() => {
    const next = state.data;
    if (!next) {
      shown.current = null;
      setDiff({ changes: [], from: null });
      return;
    }
    if (shown.current && shown.current.atSeq === next.atSeq && shown.current === next) return;
    // The first position compares with the run as it is now (the timeline): where the slider came from.
    const prev: JobStateJson | null =
      shown.current ?? (tl && j ? { atSeq: lastSeq, status: j.status, steps } : null);
    setDiff({ changes: diffStates(prev, next), from: prev ? prev.atSeq : null });
    shown.current = next;
  }, [state.data]);
  const changed = useMemo(() => (seq !== null ? changedPaths(diff.changes) : new Set<string>()), [diff, seq !== null]);
  useEffect(() => {
    if (seq === null) setFocusTs(null);
  }, [seq]);

  // Screenshots: markers on the Gantt's axis and on their stream rows.
  const shots = screenshots.data ?? [];
  const shotsBySeq = useMemo(() => new Map(shots.filter((s) => s.streamSeq !== null).map((s) => [s.streamSeq!, s] as const)), [shots]);
  const stepLabelOf = (s: ScreenshotJson) => {
    const top = steps.find((x) => x.index === s.stepIndex);
    return top?.name ?? (s.stepIndex !== null ? `#${s.stepIndex}` : '—');
  };
  const markers: AxisMarker[] = shots.map((s, i) => ({
    key: s.id,
    pct: Math.min(100, Math.max(0, ((Date.parse(s.capturedAt) - layout.startMs) / layout.spanMs) * 100)),
    label: `Screenshot ${s.name ?? ''} of step ${stepLabelOf(s)}${s.streamSeq !== null ? ` at seq ${s.streamSeq}` : ''}`,
    onOpen: () => setShotIndex(i),
  }));
  const cursorPct = seq !== null && focusTs ? Math.min(100, Math.max(0, ((Date.parse(focusTs) - layout.startMs) / layout.spanMs) * 100)) : null;

  const phiMasked = !!(j?.phiMasked || tl?.phiMasked || meta.phiMasked);
  const archived = !!(tl?.archived || meta.archived);
  const selectedEvents = useMemo(() => {
    if (!selectedStep) return [];
    const key = selectedStep.path ?? null;
    return events.filter((e) => (key ? e.path === key : e.path === null && e.stepIndex === selectedStep.index));
  }, [events, selectedStep]);

  if (job.error && !j) {
    return (
      <div class="inspector-missing">
        <ErrorBox error={job.error} what="this run" onRetry={job.reload} />
        <p>
          <Link href="/runs">Back to runs</Link>
        </p>
      </div>
    );
  }
  if (!j) return <Loading what="the run" />;

  const phiControl = phiMasked && masked ? (
    <button type="button" class="small" onClick={() => setRevealAsk(true)}>
      Reveal PHI
    </button>
  ) : !masked ? (
    <button type="button" class="small" onClick={() => setMasked(true)}>
      Mask PHI
    </button>
  ) : null;

  return (
    <div class="inspector">
      <RunHeader
        job={j}
        item={listItem.data}
        workflowName={workflow.data?.name}
        archived={archived}
        phiMasked={phiMasked}
        revealed={!masked}
        retriedAs={retriedAs.data ?? []}
        now={now}
        phiControl={phiControl}
        actions={canControl ? <RunActions job={j} approvals={approvals.data ?? []} onChanged={() => setTick((t) => t + 1)} /> : null}
      />
      {revealAsk && (
        <ConfirmDialog
          title="Reveal protected health information?"
          confirmLabel="Reveal PHI"
          onConfirm={() => {
            setRevealAsk(false);
            setMasked(false);
          }}
          onCancel={() => setRevealAsk(false)}
        >
          <p>
            This run's input, outputs and stream are read again without masking. The read is recorded in the audit log under your name, as is every
            further read while PHI is revealed.
          </p>
        </ConfirmDialog>
      )}
      {job.error && <ErrorBox error={job.error} what="the run" onRetry={job.reload} />}
      <div class="inspector-grid">
        <div class="inspector-main">
          <section class="card gantt-card" aria-label="Timeline">
            <div class="panel-head">
              <h2>Timeline</h2>
              <span class="legend small" aria-hidden="true">
                <span class="lg lg-attempt" />
                attempt <span class="lg lg-wait" />
                wait <span class="lg lg-retry-gap" />
                back-off <span class="lg lg-child" />
                child run <span class="lg lg-failed" />
                failed
              </span>
            </div>
            <TimeTravelBar seq={seq} lastSeq={lastSeq} ts={focusTs} onSeq={travel} />
            {timeline.error && <ErrorBox error={timeline.error} what="the timeline" onRetry={timeline.reload} />}
            {failures.error && <ErrorBox error={failures.error} what="the run's failures" onRetry={failures.reload} />}
            {children.error && <ErrorBox error={children.error} what="the child runs" onRetry={children.reload} />}
            {screenshots.error && <ErrorBox error={screenshots.error} what="the screenshots" onRetry={screenshots.reload} />}
            {!tl && !timeline.error ? (
              <Loading what="the timeline" />
            ) : tl && layout.rows.length === 0 ? (
              <p class="muted">No step has started yet.</p>
            ) : (
              <Gantt
                layout={layout}
                selected={selectedPath}
                changed={changed}
                markers={markers}
                cursorPct={cursorPct}
                onSelect={select}
                onToggle={(key) =>
                  setToggled((c) => {
                    const n = new Set(c);
                    if (n.has(key)) n.delete(key);
                    else n.add(key);
                    return n;
                  })
                }
                onPage={(loop, offset) => setPaging({ loop, offset })}
              />
            )}
          </section>
          <StreamPanel
            key={`${jobId}`}
            jobId={jobId}
            masked={masked}
            finished={finished}
            focusSeq={seq}
            selectedPath={selectedPath}
            selectedIndex={selectedStep && !selectedStep.path ? selectedStep.index ?? null : null}
            screenshots={shotsBySeq}
            stepNames={stepNames}
            events={{
              onRows: (rows, live) => {
                addGanttRows(rows);
                if (live && rows.some((r) => r.kind !== 'LOG')) scheduleReload();
              },
              onLastSeq: (s) => setLastSeq((l) => Math.max(l, s)),
              onStatus: () => scheduleReload(),
              onMeta: (m) => setMeta((old) => ({ archived: old.archived || !!m.archived, phiMasked: old.phiMasked || !!m.phiMasked })),
              onTravel: (s) => travel(s),
              onOpenScreenshot: (s) => setShotIndex(shots.findIndex((x) => x.id === s.id)),
              onFocusRow: (r) => setFocusTs(r.ts),
            }}
          />
        </div>
        <aside class="inspector-side card" aria-label="Details">
          <div class="tabs" role="tablist">
            <button type="button" role="tab" aria-selected={tab === 'step'} onClick={() => setTab('step')}>
              Step
            </button>
            <button type="button" role="tab" aria-selected={tab === 'state'} onClick={() => setTab('state')}>
              State{seq !== null ? ` at ${seq}` : ''}
            </button>
            <button type="button" role="tab" aria-selected={tab === 'run'} onClick={() => setTab('run')}>
              Input & result
            </button>
          </div>
          {tab === 'run' ? (
            <div class="step-panel">
              <h3>Run input</h3>
              <JsonView value={j.input} label="Run input" />
              <h3>Result</h3>
              {j.result !== null && j.result !== undefined ? <JsonView value={j.result} label="Run result" /> : <p class="muted small">{finished ? 'None.' : 'Not yet.'}</p>}
              {masked && phiMasked && <p class="muted small">PHI values are masked. “Reveal PHI” shows them (the read is recorded in the audit log).</p>}
            </div>
          ) : tab === 'step' ? (
            selectedPath ? (
              <StepPanel
                path={selectedPath}
                step={selectedStep}
                definition={selectedStep?.name ? defSteps.get(selectedStep.name) : undefined}
                definitionLoading={runDefinition.data === undefined && !runDefinition.error}
                events={selectedEvents}
                masked={masked && phiMasked}
                runEnded={!!j.completedAt}
              />
            ) : (
              <p class="muted">Select a step on the timeline to see its input, output and attempts.</p>
            )
          ) : (
            <StatePanel
              state={seq !== null ? state.data : undefined}
              error={state.error}
              loading={state.loading || seq !== restingSeq}
              changes={diff.changes}
              fromSeq={diff.from}
              onRetry={state.reload}
              onSelect={select}
            />
          )}
        </aside>
      </div>
      {shotIndex !== null && shots[shotIndex] && (
        <ScreenshotViewer
          shots={shots}
          index={shotIndex}
          stepLabel={stepLabelOf}
          onIndex={setShotIndex}
          onTravel={(s) => {
            setShotIndex(null);
            travel(s);
          }}
          onClose={() => setShotIndex(null)}
        />
      )}
    </div>
  );
}
