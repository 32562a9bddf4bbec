import { useMemo, useState } from 'preact/hooks';
import { api } from '../../api.js';
import { ErrorBox } from '../../components/error-box.js';
import { Link } from '../../components/link.js';
import { Loading } from '../../components/loading.js';
import { useQuery } from '../../hooks.js';
import { navigate, type Location } from '../../router.js';
import { formatTime, useZone } from '../../time.js';
import { FormError, useMutation } from './kit.js';
import type { CredentialAuditEntry, Page, PhiAuditEntry, User } from './types.js';

type Log = 'phi' | 'credentials';
const PAGE = 50;
/** The API's largest CSV page. */
const CSV_LIMIT = 10_000;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

interface Filters {
  from: string;
  to: string;
  actor: string;
  jobId: string;
  credentialId: string;
}

function filtersOf(q: URLSearchParams): Filters {
  return { from: q.get('from') ?? '', to: q.get('to') ?? '', actor: q.get('actor') ?? '', jobId: q.get('jobId') ?? '', credentialId: q.get('credentialId') ?? '' };
}

/** The API query of the filters: dates are whole UTC days, `to` inclusive in the form (exclusive on the wire). */
function apiQuery(log: Log, f: Filters): Record<string, string | undefined> {
  const day = (s: string) => (/^\d{4}-\d{2}-\d{2}$/.test(s) ? new Date(`${s}T00:00:00Z`) : null);
  const from = day(f.from);
  const to = day(f.to);
  return {
    from: from ? from.toISOString() : undefined,
    to: to ? new Date(to.getTime() + 86_400_000).toISOString() : undefined,
    actor: f.actor.trim() || undefined,
    jobId: f.jobId.trim() || undefined,
    credentialId: log === 'credentials' ? f.credentialId.trim() || undefined : undefined,
  };
}

/** Save text as a file through a blob: URL and an <a download> (the CSP allows blob:, and no page is opened). */
function saveFile(name: string, text: string, type: string): void {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** PHI and credential audit logs (ADMIN+): filters in the URL, keyset pages, CSV export from the API. */
export function AuditTab(props: { loc: Location }) {
  const log: Log = props.loc.query.get('log') === 'credentials' ? 'credentials' : 'phi';
  const filters = filtersOf(props.loc.query);
  const key = `${log}|${JSON.stringify(filters)}`;
  const go = (next: Partial<Filters> & { log?: Log }) => {
    const params = new URLSearchParams();
    const l = next.log ?? log;
    if (l === 'credentials') params.set('log', l);
    const f = { ...filters, ...next };
    for (const k of ['from', 'to', 'actor', 'jobId', 'credentialId'] as const) if (f[k].trim() && (k !== 'credentialId' || l === 'credentials')) params.set(k, f[k].trim());
    const qs = params.toString();
    navigate(`/settings/audit${qs ? `?${qs}` : ''}`, { replace: true });
  };
  return (
    <section aria-label="Audit">
      <div class="tabs subtabs" role="group" aria-label="Audit log">
        <button type="button" aria-pressed={log === 'phi'} aria-selected={log === 'phi'} onClick={() => go({ log: 'phi' })}>
          PHI reads
        </button>
        <button type="button" aria-pressed={log === 'credentials'} aria-selected={log === 'credentials'} onClick={() => go({ log: 'credentials' })}>
          Credential use
        </button>
      </div>
      <FilterForm key={key} log={log} filters={filters} onApply={go} />
      <AuditTable key={key} log={log} filters={filters} />
    </section>
  );
}

function FilterForm(props: { log: Log; filters: Filters; onApply: (f: Filters) => void }) {
  const [f, setF] = useState(props.filters);
  const [error, setError] = useState<string | null>(null);
  const exporting = useMutation();
  const field = (k: keyof Filters, label: string, type = 'text', placeholder = '') => (
    <label>
      {label}
      <input type={type} value={f[k]} placeholder={placeholder} size={k === 'jobId' || k === 'credentialId' ? 36 : k === 'actor' ? 30 : 18} onInput={(e) => setF({ ...f, [k]: (e.currentTarget as HTMLInputElement).value })} />
    </label>
  );
  const submit = (e: Event) => {
    e.preventDefault();
    if (f.jobId.trim() && !UUID.test(f.jobId.trim())) return setError('Job id: enter a run id (a UUID).');
    if (props.log === 'credentials' && f.credentialId.trim() && !UUID.test(f.credentialId.trim())) return setError('Credential id: enter a UUID.');
    if (f.from && f.to && f.from > f.to) return setError('From must be on or before To.');
    setError(null);
    props.onApply(f);
  };
  const exportCsv = async () => {
    const csv = await exporting.run(() =>
      api<string>(`/v1/audit/${props.log}`, { query: { ...apiQuery(props.log, props.filters), format: 'csv', limit: CSV_LIMIT }, text: true }),
    );
    if (csv !== undefined) saveFile(`${props.log === 'phi' ? 'phi' : 'credential'}-audit-${new Date().toISOString().slice(0, 10)}.csv`, csv, 'text/csv');
  };
  return (
    <form class="audit-filters" onSubmit={submit} aria-label="Audit filters">
      <div class="field-row">
        {field('from', 'From (UTC day)', 'date')}
        {field('to', 'To (UTC day, inclusive)', 'date')}
        {field('actor', 'Actor', 'text', 'user:<id>, key:<id>, worker:<id>')}
        {field('jobId', 'Job id')}
        {props.log === 'credentials' && field('credentialId', 'Credential id')}
        <button type="submit" class="primary">
          Apply filters
        </button>
        <button type="button" onClick={() => props.onApply({ from: '', to: '', actor: '', jobId: '', credentialId: '' })}>
          Clear
        </button>
        <button type="button" onClick={exportCsv} disabled={exporting.busy}>
          {exporting.busy ? 'Exporting…' : 'Export CSV'}
        </button>
      </div>
      {error && (
        <p class="form-error small" role="alert">
          {error}
        </p>
      )}
      <FormError error={exporting.error} />
      <p class="muted small">Export CSV downloads up to {CSV_LIMIT.toLocaleString('en-US')} rows matching the applied filters, newest first; narrow the dates for more.</p>
    </form>
  );
}

/** `user:<id>` as the user's email when known (the raw actor stays in the tooltip and the CSV). */
function Actor(props: { actor: string; emails: Map<string, string> }) {
  const email = props.actor.startsWith('user:') ? props.emails.get(props.actor.slice(5)) : undefined;
  return <span title={props.actor}>{email ?? props.actor}</span>;
}

function AuditTable(props: { log: Log; filters: Filters }) {
  const zone = useZone();
  // Names for actors; a convenience whose failure leaves the raw ids.
  const users = useQuery((signal) => api<Page<User>>('/v1/users', { query: { limit: 500 }, signal }), []);
  const emails = useMemo(() => new Map((users.data?.items ?? []).map((u) => [u.id, u.email])), [users.data]);
  // Keyset pages: the cursors of the pages seen so far, to go back.
  const [cursors, setCursors] = useState<(string | null)[]>([null]);
  const cursor = cursors[cursors.length - 1] ?? null;
  const page = useQuery(
    (signal) =>
      api<Page<PhiAuditEntry | CredentialAuditEntry>>(`/v1/audit/${props.log}`, {
        query: { ...apiQuery(props.log, props.filters), limit: PAGE, cursor },
        signal,
      }),
    [cursor],
  );
  if (page.error) return <ErrorBox error={page.error} what="the audit log" onRetry={page.reload} />;
  if (!page.data) return <Loading what="the audit log" />;
  const items = page.data.items;
  const next = page.data.nextCursor;
  return (
    <div>
      {items.length === 0 ? (
        <p class="muted">No audit entries match.</p>
      ) : props.log === 'phi' ? (
        <table class="grid audit">
          <thead>
            <tr>
              <th scope="col">Time</th>
              <th scope="col">Actor</th>
              <th scope="col">Read</th>
              <th scope="col">Job</th>
              <th scope="col">Fields</th>
              <th scope="col">IP</th>
            </tr>
          </thead>
          <tbody>
            {(items as PhiAuditEntry[]).map((e) => (
              <tr key={e.id}>
                <td class="mono small">{formatTime(e.at, zone)}</td>
                <td class="small">
                  <Actor actor={e.actor} emails={emails} />
                </td>
                <td class="small">{e.resourceType}</td>
                <td class="mono small">{e.jobId ? <Link href={`/runs/${e.jobId}`}>{e.jobId.slice(0, 8)}…</Link> : '—'}</td>
                <td class="small">{e.fields.join(', ')}</td>
                <td class="mono small" title={e.userAgent ?? undefined}>
                  {e.ip ?? '—'}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : (
        <table class="grid audit">
          <thead>
            <tr>
              <th scope="col">Time</th>
              <th scope="col">Action</th>
              <th scope="col">Credential</th>
              <th scope="col">Actor</th>
              <th scope="col">Job</th>
              <th scope="col">Step</th>
            </tr>
          </thead>
          <tbody>
            {(items as CredentialAuditEntry[]).map((e) => (
              <tr key={e.id}>
                <td class="mono small">{formatTime(e.at, zone)}</td>
                <td>{e.action}</td>
                <td class="mono small">{e.credentialName}</td>
                <td class="small">
                  <Actor actor={e.actor} emails={emails} />
                </td>
                <td class="mono small">{e.jobId ? <Link href={`/runs/${e.jobId}`}>{e.jobId.slice(0, 8)}…</Link> : '—'}</td>
                <td class="small">{e.stepId ?? '—'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <div class="toolbar pager">
        <button type="button" disabled={cursors.length <= 1 || page.loading} onClick={() => setCursors((c) => c.slice(0, -1))}>
          Newer
        </button>
        <span class="muted small">
          Page {cursors.length}
          {page.loading ? ' · loading…' : ''}
        </span>
        <button type="button" disabled={!next || page.loading} onClick={() => next && setCursors((c) => [...c, next])}>
          Older
        </button>
      </div>
    </div>
  );
}
