import { useMemo, useState } from 'preact/hooks';
import { api } from '../../api.js';
import { useQuery, useTitle } from '../../hooks.js';
import { navigate, type Location } from '../../router.js';
import { formatTime, useZone } from '../../time.js';
import { RANGE_PRESETS, rangeFromQuery, rangeToQuery, type RangeId } from '../../view/analytics-range.js';
import { SelectField } from '../settings/kit.js';
import { DurationPanel } from './duration-panel.js';
import { StepsPanel } from './steps-panel.js';
import { TimeSeriesPanel } from './timeseries-panel.js';
import type { PanelQuery } from './types.js';
import { WorkflowTablePanel } from './workflow-table-panel.js';
import './analytics.css';

interface WorkflowName {
  id: string;
  name: string;
}

/**
 * Analytics over a range (presets or custom, in the URL) and an optional
 * workflow (?workflowId=). Each panel loads on its own and shows its own
 * loading and error state, so one failing query never blanks the page.
 */
export function AnalyticsPage(props: { loc: Location }) {
  useTitle('Analytics');
  const zone = useZone();
  const search = props.loc.query.toString();
  // "Now" is fixed per address (and per Refresh), so panels ask for the same range and re-renders don't re-query.
  const [tick, setTick] = useState(0);
  const range = useMemo(() => rangeFromQuery(props.loc.query, new Date()), [search, tick]);
  const workflowId = props.loc.query.get('workflowId');
  const workflows = useQuery((signal) => api<{ items: WorkflowName[] }>('/v1/workflows', { query: { limit: 500 }, signal }), []);
  const query: PanelQuery | null = range.error ? null : { from: range.from.toISOString(), to: range.to.toISOString(), workflowId };

  const go = (params: URLSearchParams) => {
    const qs = params.toString();
    navigate(`/analytics${qs ? `?${qs}` : ''}`, { replace: true });
  };
  const selectWorkflow = (id: string | null) => {
    const params = new URLSearchParams(props.loc.query);
    if (id) params.set('workflowId', id);
    else params.delete('workflowId');
    go(params);
  };
  const selectedName = workflows.data?.items.find((w) => w.id === workflowId)?.name;

  return (
    <div class="analytics-page">
      <h1>Analytics</h1>
      <div class="toolbar analytics-toolbar">
        <SelectField
          label="Range"
          value={range.id}
          onChange={(v) => {
            const id = v as RangeId;
            if (id === 'custom') {
              const day = (d: Date) => d.toISOString().slice(0, 10);
              go(rangeToQuery(props.loc.query, { id, from: day(range.from), to: day(new Date(range.to.getTime() - 1)) }));
            } else go(rangeToQuery(props.loc.query, { id }));
          }}
        >
            {RANGE_PRESETS.map((p) => (
              <option key={p.id} value={p.id}>
                {p.label}
              </option>
            ))}
            <option value="custom">Custom…</option>
        </SelectField>
        {range.id === 'custom' && <CustomRange key={search} from={range.fromText} to={range.toText} onApply={(from, to) => go(rangeToQuery(props.loc.query, { id: 'custom', from, to }))} />}
        <SelectField label="Workflow" value={workflowId ?? ''} onChange={(v) => selectWorkflow(v || null)}>
            <option value="">All workflows</option>
            {workflowId && !selectedName && <option value={workflowId}>{workflows.loading ? 'Loading…' : workflowId}</option>}
            {(workflows.data?.items ?? []).map((w) => (
              <option key={w.id} value={w.id}>
                {w.name}
              </option>
            ))}
        </SelectField>
        <button type="button" onClick={() => setTick((t) => t + 1)} disabled={!!range.error}>
          Refresh
        </button>
        {!range.error && (
          <span class="muted small">
            {formatTime(range.from, zone)} → {formatTime(range.to, zone)}
          </span>
        )}
      </div>
      {workflows.error && <p class="notice small">The workflow list could not be loaded ({workflows.error.message}); the panels below still work.</p>}
      {range.error || !query ? (
        <p class="form-error" role="alert">
          {range.error}
        </p>
      ) : (
        <>
          <div class="analytics-grid">
            <DurationPanel query={query} title={selectedName ?? (workflowId ? 'This workflow' : 'All workflows')} />
            <TimeSeriesPanel query={query} />
          </div>
          {workflowId && <StepsPanel query={query} workflowId={workflowId} />}
          <WorkflowTablePanel query={query} selected={workflowId} onSelect={selectWorkflow} />
        </>
      )}
    </div>
  );
}

function CustomRange(props: { from: string; to: string; onApply: (from: string, to: string) => void }) {
  const [from, setFrom] = useState(props.from);
  const [to, setTo] = useState(props.to);
  return (
    <form
      class="custom-range"
      onSubmit={(e) => {
        e.preventDefault();
        props.onApply(from.trim(), to.trim());
      }}
    >
      <label>
        From (UTC)
        <input value={from} placeholder="YYYY-MM-DD" size={16} onInput={(e) => setFrom((e.currentTarget as HTMLInputElement).value)} />
      </label>
      <label>
        To (UTC)
        <input value={to} placeholder="empty: now" size={16} onInput={(e) => setTo((e.currentTarget as HTMLInputElement).value)} />
      </label>
      <button type="submit">Apply range</button>
    </form>
  );
}
