import { formatTime, useZone } from '../../time.js';
import type { StateChange } from '../../view/state-diff.js';
import type { JobStateJson, StepJson } from '../../view/timeline-types.js';
import { stepPathOf } from '../../view/timeline-types.js';
import { StatusBadge } from '../../components/status-badge.js';
import { ErrorBox } from '../../components/error-box.js';
import type { ApiError } from '../../api.js';

/** The slider over the run's sequence numbers (?seq=). */
export function TimeTravelBar(props: { seq: number | null; lastSeq: number; ts: string | null; onSeq: (seq: number | null) => void }) {
  const zone = useZone();
  const value = props.seq ?? props.lastSeq;
  const max = Math.max(props.lastSeq, 1);
  return (
    <div class="time-travel">
      <label class="inline tt-label">
        Time travel
        <input
          type="range"
          min={0}
          max={max}
          step={1}
          value={value}
          aria-valuetext={`sequence number ${value} of ${props.lastSeq}`}
          disabled={props.lastSeq === 0}
          onInput={(e) => props.onSeq(Number((e.target as HTMLInputElement).value))}
        />
      </label>
      <button type="button" class="small" aria-label="One row back" disabled={value <= 0} onClick={() => props.onSeq(Math.max(0, value - 1))}>
        ◀
      </button>
      <button type="button" class="small" aria-label="One row forward" disabled={value >= props.lastSeq} onClick={() => props.onSeq(Math.min(props.lastSeq, value + 1))}>
        ▶
      </button>
      <span class="tt-pos mono">
        seq {value.toLocaleString('en-US')} / {props.lastSeq.toLocaleString('en-US')}
        {props.seq !== null && props.ts ? ` · ${formatTime(props.ts, zone, { ms: true })}` : ''}
      </span>
      {props.seq !== null && (
        <button type="button" class="small" onClick={() => props.onSeq(null)}>
          Latest
        </button>
      )}
    </div>
  );
}

interface FlatRow {
  path: string;
  label: string;
  depth: number;
  status: string;
  attempts: number;
}

function flat(steps: readonly StepJson[], depth: number, out: FlatRow[]): FlatRow[] {
  for (const s of steps) {
    if (out.length >= 400) return out;
    out.push({ path: stepPathOf(s), label: s.name ?? stepPathOf(s), depth, status: s.status, attempts: s.attempts });
    for (const b of s.branches ?? []) flat(b.steps, depth + 1, out);
    for (const it of s.iterations ?? []) {
      out.push({ path: it.path, label: `[${it.index}]`, depth: depth + 1, status: it.status, attempts: 0 });
      flat(it.steps, depth + 2, out);
    }
  }
  return out;
}

function short(v: unknown): string {
  if (v === undefined) return '—';
  const t = typeof v === 'string' ? v : JSON.stringify(v);
  return t.length > 80 ? `${t.slice(0, 77)}…` : t;
}

/** The state at the slider's seq, with what changed since the slider's previous position. */
export function StatePanel(props: {
  state: JobStateJson | undefined;
  error: ApiError | null;
  loading: boolean;
  changes: readonly StateChange[];
  fromSeq: number | null;
  onRetry: () => void;
  onSelect: (path: string) => void;
}) {
  const { state } = props;
  if (props.error) return <ErrorBox error={props.error} what="the state at this point" onRetry={props.onRetry} />;
  if (!state) return <p class="muted">{props.loading ? 'Loading the state…' : 'Move the time-travel slider to see the run at any row of its stream.'}</p>;
  const changed = new Set(props.changes.map((c) => c.path));
  const rows = flat(state.steps, 0, []);
  return (
    <div class={`state-panel${props.loading ? ' stale' : ''}`}>
      <div class="step-title">
        <h2>State at seq {state.atSeq.toLocaleString('en-US')}</h2>
        <StatusBadge status={state.status} />
      </div>
      <p class="small muted">
        {state.currentPath ? `At ${state.currentPath}` : state.currentStep !== null && state.currentStep !== undefined ? `At step #${state.currentStep}` : 'No step running'}
        {state.error ? ` · ${state.error.code}: ${state.error.message}` : ''}
      </p>
      <h3>
        Changed {props.fromSeq !== null ? `since seq ${props.fromSeq.toLocaleString('en-US')}` : ''} ({props.changes.length})
      </h3>
      {props.changes.length === 0 ? (
        <p class="muted small">Nothing changed.</p>
      ) : (
        <ul class="changes">
          {props.changes.slice(0, 60).map((c, i) => (
            <li key={i} class={`chg-${c.kind}`}>
              <span class="mono">{c.path || 'run'}</span>{' '}
              {c.kind === 'changed' ? (
                <>
                  <span class="muted">{c.field}</span> <del>{short(c.before)}</del> → <ins>{short(c.after)}</ins>
                </>
              ) : (
                <span class="muted">{c.kind}</span>
              )}
            </li>
          ))}
          {props.changes.length > 60 && <li class="muted">and {props.changes.length - 60} more</li>}
        </ul>
      )}
      <h3>Steps</h3>
      <table class="grid state-steps">
        <thead>
          <tr>
            <th>Step</th>
            <th>Status</th>
            <th class="num">Attempts</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => (
            <tr key={r.path} class={changed.has(r.path) ? 'changed' : ''}>
              <td style={{ paddingLeft: `${8 + r.depth * 12}px` }}>
                <button type="button" class="linkish" onClick={() => props.onSelect(r.path)}>
                  {r.label}
                </button>
                {changed.has(r.path) && <span class="g-changed">changed</span>}
              </td>
              <td>
                <StatusBadge status={r.status} />
              </td>
              <td class="num">{r.attempts || ''}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
