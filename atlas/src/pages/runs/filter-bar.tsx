import { useEffect, useState } from 'preact/hooks';
import type { ApiError } from '../../api.js';
import { StatusBadge } from '../../components/status-badge.js';
import type { Zone } from '../../time.js';
import {
  emptyFilters,
  hasFilters,
  inputFromIso,
  INITIATOR_TYPES,
  isoFromInput,
  isSearchKey,
  JOB_STATUSES,
  MAX_ERROR_CODE_LENGTH,
  MAX_SEARCH_TERMS,
  MAX_SEARCH_VALUE_LENGTH,
  WINDOW_PRESETS,
  type InitiatorType,
  type JobStatus,
  type RunFilters,
  type SearchTerm,
  type WindowPreset,
} from '../../view/run-filters.js';
import { Dropdown } from './dropdown.js';
import type { ClientSummary, WorkflowSummary } from './types.js';

/** The id "/" focuses: the first filter. */
export const FIRST_FILTER_ID = 'runs-filter-workflow';

const WINDOW_LABELS: Record<WindowPreset, string> = { '1h': 'Last hour', '24h': 'Last 24 hours', '7d': 'Last 7 days', '30d': 'Last 30 days' };
const offset = (d: Date) => d.getTimezoneOffset();
const label = (s: string) => s.replace(/_/g, ' ').toLowerCase().replace(/^./, (c) => c.toUpperCase());

function StatusFilter(props: { value: JobStatus[]; onChange: (v: JobStatus[]) => void }) {
  const summary = props.value.length === 0 ? 'Any' : props.value.length <= 2 ? props.value.map(label).join(', ') : `${props.value.length} statuses`;
  const toggle = (s: JobStatus) => {
    const set = new Set(props.value);
    if (set.has(s)) set.delete(s);
    else set.add(s);
    props.onChange(JOB_STATUSES.filter((x) => set.has(x)));
  };
  return (
    <div class="filter">
      <span class="filter-label" id="runs-status-label">
        Status
      </span>
      <Dropdown label={<span id="runs-status-value">{summary}</span>} ariaLabel={`Status: ${summary}`}>
        {() => (
          <fieldset class="check-list">
            <legend class="sr-only">Status</legend>
            {JOB_STATUSES.map((s) => (
              <label class="inline" key={s}>
                <input type="checkbox" checked={props.value.includes(s)} onChange={() => toggle(s)} aria-label={label(s)} />
                <StatusBadge status={s} />
              </label>
            ))}
            {props.value.length > 0 && (
              <button type="button" class="small" onClick={() => props.onChange([])}>
                Any status
              </button>
            )}
          </fieldset>
        )}
      </Dropdown>
    </div>
  );
}

/** A text filter applied on Enter or when it loses focus (not per keystroke: each apply is a query). */
function TextFilter(props: { label: string; value: string; maxLength: number; placeholder?: string; onCommit: (v: string) => void; class?: string }) {
  const [draft, setDraft] = useState(props.value);
  useEffect(() => setDraft(props.value), [props.value]);
  return (
    <label class={`filter ${props.class ?? ''}`}>
      <span class="filter-label">{props.label}</span>
      <input
        type="search"
        value={draft}
        maxLength={props.maxLength}
        placeholder={props.placeholder}
        onInput={(e) => setDraft(e.currentTarget.value)}
        onChange={(e) => props.onCommit(e.currentTarget.value.trim())}
      />
    </label>
  );
}

function WindowFilter(props: { filters: RunFilters; zone: Zone; onChange: (f: RunFilters) => void }) {
  const w = props.filters.window;
  const custom = !('preset' in w);
  const [fromDraft, setFromDraft] = useState(custom ? inputFromIso(w.from, props.zone, offset) : '');
  const [toDraft, setToDraft] = useState(custom ? inputFromIso(w.to, props.zone, offset) : '');
  const [problem, setProblem] = useState<string | null>(null);
  useEffect(() => {
    if (!('preset' in w)) {
      setFromDraft(inputFromIso(w.from, props.zone, offset));
      setToDraft(inputFromIso(w.to, props.zone, offset));
    }
  }, [custom ? w.from : null, custom ? w.to : null, props.zone]);

  const apply = (fromText: string, toText: string) => {
    const from = fromText ? isoFromInput(fromText, props.zone, offset) : null;
    const to = toText ? isoFromInput(toText, props.zone, offset) : null;
    if (!from && !to) return setProblem('Give a start, an end, or both.');
    if (from && to && from >= to) return setProblem('The start must be before the end.');
    setProblem(null);
    props.onChange({ ...props.filters, window: { from, to } });
  };

  const onSelect = (value: string) => {
    if (value === 'custom') {
      // Start the custom window from the one shown, so the list does not jump.
      const now = Date.now();
      const span = 'preset' in w ? WINDOW_PRESETS[w.preset] : WINDOW_PRESETS['7d'];
      const from = inputFromIso(new Date(now - span).toISOString(), props.zone, offset);
      setFromDraft(from);
      setToDraft('');
      apply(from, '');
    } else {
      setProblem(null);
      props.onChange({ ...props.filters, window: { preset: value as WindowPreset } });
    }
  };

  const zoneName = props.zone === 'utc' ? 'UTC' : 'local time';
  return (
    <>
      <label class="filter">
        <span class="filter-label">Time window</span>
        <select value={custom ? 'custom' : (w as { preset: WindowPreset }).preset} onChange={(e) => onSelect(e.currentTarget.value)}>
          {(Object.keys(WINDOW_LABELS) as WindowPreset[]).map((p) => (
            <option key={p} value={p}>
              {WINDOW_LABELS[p]}
            </option>
          ))}
          <option value="custom">Custom…</option>
        </select>
      </label>
      {custom && (
        <>
          <label class="filter">
            <span class="filter-label">From ({zoneName})</span>
            <input type="datetime-local" value={fromDraft} onInput={(e) => setFromDraft(e.currentTarget.value)} onChange={(e) => apply(e.currentTarget.value, toDraft)} />
          </label>
          <label class="filter">
            <span class="filter-label">To ({zoneName})</span>
            <input type="datetime-local" value={toDraft} onInput={(e) => setToDraft(e.currentTarget.value)} onChange={(e) => apply(fromDraft, e.currentTarget.value)} />
          </label>
          {problem && (
            <span class="filter-problem" role="alert">
              {problem}
            </span>
          )}
        </>
      )}
    </>
  );
}

/** Business fields: the selected workflow's searchKeys as labelled inputs, or a free key + value pair. */
function BusinessFields(props: {
  filters: RunFilters;
  searchKeys: string[] | null;
  keyLoading: boolean;
  keyError: ApiError | null;
  knownKeys: string[];
  onChange: (f: RunFilters) => void;
}) {
  const { filters, searchKeys } = props;
  const [freeKey, setFreeKey] = useState('');
  const [freeValue, setFreeValue] = useState('');
  const [problem, setProblem] = useState<string | null>(null);

  const setTerm = (key: string, value: string) => {
    const rest = filters.search.filter((t) => t.key !== key);
    const at = filters.search.findIndex((t) => t.key === key);
    const search: SearchTerm[] = value ? [...rest] : rest;
    if (value) search.splice(at < 0 ? search.length : at, 0, { key, value });
    if (search.length > MAX_SEARCH_TERMS) return setProblem(`At most ${MAX_SEARCH_TERMS} business fields at once.`);
    setProblem(null);
    props.onChange({ ...filters, search });
  };

  const addFree = (e: Event) => {
    e.preventDefault();
    const key = freeKey.trim();
    if (!isSearchKey(key)) return setProblem('A business field is an input path like input.memberId.');
    if (!freeValue) return setProblem('Give the value to look for.');
    setTerm(key, freeValue);
    setFreeKey('');
    setFreeValue('');
  };

  const keyed = new Set(searchKeys ?? []);
  const chips = filters.search.filter((t) => !keyed.has(t.key));
  const value = (key: string) => filters.search.find((t) => t.key === key)?.value ?? '';

  return (
    <div class="filter-row business" role="group" aria-label="Search by business data">
      {filters.workflowId && props.keyLoading && <span class="muted small">Loading the workflow's business fields…</span>}
      {filters.workflowId && props.keyError && (
        <span class="filter-problem" role="alert">
          Could not load the workflow's business fields: {props.keyError.message}
        </span>
      )}
      {filters.workflowId && searchKeys && searchKeys.length === 0 && <span class="muted small">This workflow declares no searchKeys: it cannot be searched by business fields.</span>}
      {filters.workflowId &&
        searchKeys?.map((key) => <TextFilter key={key} label={key} value={value(key)} maxLength={MAX_SEARCH_VALUE_LENGTH} onCommit={(v) => setTerm(key, v)} class="mono-label" />)}
      {!filters.workflowId && (
        <form class="free-field" onSubmit={addFree}>
          <label class="filter">
            <span class="filter-label">Business field</span>
            <input type="text" list="runs-known-keys" placeholder="input.memberId" value={freeKey} onInput={(e) => setFreeKey(e.currentTarget.value)} />
          </label>
          <datalist id="runs-known-keys">
            {props.knownKeys.map((k) => (
              <option key={k} value={k} />
            ))}
          </datalist>
          <label class="filter">
            <span class="filter-label">Value</span>
            <input type="text" maxLength={MAX_SEARCH_VALUE_LENGTH} value={freeValue} onInput={(e) => setFreeValue(e.currentTarget.value)} />
          </label>
          <button type="submit" disabled={!freeKey || !freeValue}>
            Add field
          </button>
        </form>
      )}
      {chips.map((t) => (
        <span class="chip" key={t.key}>
          <code>{t.key}</code> = {t.value}
          <button type="button" class="ghost small" aria-label={`Remove ${t.key} = ${t.value}`} onClick={() => setTerm(t.key, '')}>
            ×
          </button>
        </span>
      ))}
      {problem && (
        <span class="filter-problem" role="alert">
          {problem}
        </span>
      )}
    </div>
  );
}

export function FilterBar(props: {
  filters: RunFilters;
  zone: Zone;
  workflows: WorkflowSummary[] | undefined;
  workflowsError: ApiError | null;
  clients: ClientSummary[] | undefined;
  clientsError: ApiError | null;
  searchKeys: string[] | null;
  keyLoading: boolean;
  keyError: ApiError | null;
  onChange: (f: RunFilters) => void;
}) {
  const { filters, onChange } = props;
  const knownKeys = [...new Set((props.workflows ?? []).flatMap((w) => w.definition?.searchKeys ?? []))].sort();
  const workflows = [...(props.workflows ?? [])].sort((a, b) => a.name.localeCompare(b.name));
  const clients = [...(props.clients ?? [])].sort((a, b) => a.name.localeCompare(b.name));
  const selectedMissing = filters.workflowId && props.workflows && !props.workflows.some((w) => w.id === filters.workflowId);
  const clientMissing = filters.clientId && props.clients && !props.clients.some((c) => c.id === filters.clientId);
  return (
    <section class="filters" aria-label="Filters">
      <div class="filter-row">
        <label class="filter">
          <span class="filter-label">Workflow</span>
          <select
            id={FIRST_FILTER_ID}
            value={filters.workflowId ?? ''}
            // Business fields belong to a workflow: a new workflow starts without the old one's.
            onChange={(e) => onChange({ ...filters, workflowId: e.currentTarget.value || null, search: [] })}
          >
            <option value="">{props.workflows ? 'All workflows' : props.workflowsError ? 'All workflows (list failed)' : 'All workflows (loading…)'}</option>
            {selectedMissing && <option value={filters.workflowId!}>{filters.workflowId}</option>}
            {workflows.map((w) => (
              <option key={w.id} value={w.id}>
                {w.name}
                {w.status !== 'ACTIVE' ? ` (${w.status.toLowerCase()})` : ''}
              </option>
            ))}
          </select>
        </label>
        <StatusFilter value={filters.statuses} onChange={(statuses) => onChange({ ...filters, statuses })} />
        <WindowFilter filters={filters} zone={props.zone} onChange={onChange} />
        <label class="filter">
          <span class="filter-label">Client</span>
          <select value={filters.clientId ?? ''} onChange={(e) => onChange({ ...filters, clientId: e.currentTarget.value || null })}>
            <option value="">{props.clients ? 'All clients' : props.clientsError ? 'All clients (list failed)' : 'All clients (loading…)'}</option>
            {clientMissing && <option value={filters.clientId!}>{filters.clientId}</option>}
            {clients.map((c) => (
              <option key={c.id} value={c.id}>
                {c.name}
              </option>
            ))}
          </select>
        </label>
        <label class="filter">
          <span class="filter-label">Initiator</span>
          <select value={filters.initiatorType ?? ''} onChange={(e) => onChange({ ...filters, initiatorType: (e.currentTarget.value || null) as InitiatorType | null })}>
            <option value="">Any</option>
            {INITIATOR_TYPES.map((t) => (
              <option key={t} value={t}>
                {label(t)}
              </option>
            ))}
          </select>
        </label>
        <TextFilter label="Error code" value={filters.errorCode ?? ''} maxLength={MAX_ERROR_CODE_LENGTH} placeholder="e.g. HTTP_STATUS" onCommit={(v) => onChange({ ...filters, errorCode: v || null })} />
        {hasFilters(filters) && (
          <button type="button" class="ghost clear-filters" onClick={() => onChange({ ...emptyFilters(), window: filters.window })}>
            Clear filters
          </button>
        )}
      </div>
      <BusinessFields filters={filters} searchKeys={props.searchKeys} keyLoading={props.keyLoading} keyError={props.keyError} knownKeys={knownKeys} onChange={onChange} />
    </section>
  );
}
