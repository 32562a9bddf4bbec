import { useMemo, useState } from 'preact/hooks';
import { api } from '../../api.js';
import { ErrorBox } from '../../components/error-box.js';
import { Loading } from '../../components/loading.js';
import { useQuery } from '../../hooks.js';
import { navigate, type Location } from '../../router.js';
import { formatTime, useZone } from '../../time.js';
import { diffJson, foldUnchanged, prettyJson, summarize, toSideBySide, type DiffRow } from '../../view/json-diff.js';
import { SelectField } from '../settings/kit.js';
import { withQuery } from './query.js';
import type { Workflow, WorkflowVersion } from './types.js';

/** A version's definition: the current one comes with the workflow; older ones from the versions route. */
function useVersion(w: Workflow, version: number | null) {
  return useQuery(async (signal): Promise<WorkflowVersion | null> => {
    if (version === null) return null;
    if (version === w.version) return { workflowId: w.id, version, definition: w.definition, createdAt: null };
    return api<WorkflowVersion>(`/v1/workflows/${w.id}/versions/${version}`, { signal });
  }, [w.id, w.version, version]);
}

function parseVersion(text: string | null, max: number): number | null {
  if (text === null) return null;
  const n = Number(text);
  return Number.isInteger(n) && n >= 1 && n <= max ? n : null;
}

export function DefinitionTab(props: { workflow: Workflow; loc: Location }) {
  const w = props.workflow;
  const zone = useZone();
  const shown = parseVersion(props.loc.query.get('v'), w.version) ?? w.version;
  const base = parseVersion(props.loc.query.get('diff'), w.version);
  const right = useVersion(w, shown);
  const left = useVersion(w, base);
  const versions = Array.from({ length: w.version }, (_, i) => w.version - i);
  const go = (changes: Record<string, string | null>) => navigate(withQuery(props.loc, changes), { replace: true });

  return (
    <section aria-label="Definition">
      <div class="toolbar">
        <SelectField label="Version" value={String(shown)} onChange={(v) => go({ v: v === String(w.version) ? null : v })}>
            {versions.map((v) => (
              <option key={v} value={String(v)}>
                v{v}
                {v === w.version ? ' (current)' : ''}
              </option>
            ))}
        </SelectField>
        <SelectField label="Compare with" value={base === null ? '' : String(base)} onChange={(v) => go({ diff: v || null })} disabled={w.version < 2}>
            <option value="">— no comparison —</option>
            {versions
              .filter((v) => v !== shown)
              .map((v) => (
                <option key={v} value={String(v)}>
                  v{v}
                </option>
              ))}
        </SelectField>
        {w.version < 2 && <span class="muted small">Only one version so far: nothing to compare.</span>}
        {right.data?.createdAt && <span class="muted small">v{right.data.version} saved {formatTime(right.data.createdAt, zone)}</span>}
      </div>
      {right.error ? (
        <ErrorBox error={right.error} what={`version ${shown}`} onRetry={right.reload} />
      ) : base !== null && base !== shown ? (
        left.error ? (
          <ErrorBox error={left.error} what={`version ${base}`} onRetry={left.reload} />
        ) : !left.data || !right.data ? (
          <Loading what="both versions" />
        ) : (
          <DiffView before={left.data} after={right.data} />
        )
      ) : !right.data ? (
        <Loading what="the definition" />
      ) : (
        <pre class="json-view" tabIndex={0} aria-label={`Definition, version ${right.data.version}`}>
          {prettyJson(right.data.definition)}
        </pre>
      )}
    </section>
  );
}

function Side(props: { cell: DiffRow['left'] | DiffRow['right'] }) {
  const c = props.cell;
  if (!c) return <><td class="ln" /><td class="sign" /><td class="code blank" /></>;
  const sign = c.kind === 'del' ? '−' : c.kind === 'add' ? '+' : '';
  return (
    <>
      <td class="ln">{c.line}</td>
      <td class={`sign ${c.kind}`} aria-label={c.kind === 'del' ? 'removed' : c.kind === 'add' ? 'added' : undefined}>
        {sign}
      </td>
      <td class={`code ${c.kind}`}>{c.text}</td>
    </>
  );
}

/** Two versions side by side: the older on the left; removed lines marked − and added lines + (and coloured). */
function DiffView(props: { before: WorkflowVersion; after: WorkflowVersion }) {
  const [all, setAll] = useState(false);
  const { rows, summary } = useMemo(() => {
    const lines = diffJson(props.before.definition, props.after.definition);
    return { rows: toSideBySide(lines), summary: summarize(lines) };
  }, [props.before, props.after]);
  const shown = all ? rows : foldUnchanged(rows, 3);
  const a = `v${props.before.version}`;
  const b = `v${props.after.version}`;
  return (
    <div>
      <div class="toolbar">
        <span role="status">
          {a} → {b}: <span class="diff-add-count">+{summary.added} added</span>, <span class="diff-del-count">−{summary.removed} removed</span>,{' '}
          {summary.same} unchanged lines
        </span>
        <label class="inline">
          <input type="checkbox" checked={all} onChange={(e) => setAll((e.currentTarget as HTMLInputElement).checked)} />
          Show unchanged lines
        </label>
      </div>
      {summary.added + summary.removed === 0 && <p class="notice">The two definitions are identical.</p>}
      <div class="diff-scroll">
        <table class="diff" aria-label={`Differences from ${a} to ${b}`}>
          <thead>
            <tr>
              <th scope="col" class="ln">
                Line
              </th>
              <th scope="col" class="sign">
                <span class="sr-only">Change</span>
              </th>
              <th scope="col">{a}</th>
              <th scope="col" class="ln">
                Line
              </th>
              <th scope="col" class="sign">
                <span class="sr-only">Change</span>
              </th>
              <th scope="col">{b}</th>
            </tr>
          </thead>
          <tbody>
            {shown.map((r, i) =>
              'skipped' in r ? (
                <tr key={`s${i}`} class="skipped">
                  <td colSpan={6}>
                    <button type="button" class="small ghost" onClick={() => setAll(true)}>
                      ⋯ {r.skipped} unchanged {r.skipped === 1 ? 'line' : 'lines'} (show)
                    </button>
                  </td>
                </tr>
              ) : (
                <tr key={i}>
                  <Side cell={r.left} />
                  <Side cell={r.right} />
                </tr>
              ),
            )}
          </tbody>
        </table>
      </div>
    </div>
  );
}
