import { useState } from 'preact/hooks';
import { api } from '../../api.js';
import { ConfirmDialog } from '../../components/confirm-dialog.js';
import { ErrorBox } from '../../components/error-box.js';
import { Loading } from '../../components/loading.js';
import { useQuery } from '../../hooks.js';
import { useCan } from '../../session.js';
import { formatTime, useZone } from '../../time.js';
import { FormError, parseJsonField, SelectField, SubmitOrCancel, useMutation } from '../settings/kit.js';
import type { Page, Schedule, Workflow } from './types.js';

/** IANA zones the browser knows, for the timezone field's suggestions (the server validates). */
function zones(): string[] {
  try {
    return (Intl as unknown as { supportedValuesOf?: (k: string) => string[] }).supportedValuesOf?.('timeZone') ?? ['UTC'];
  } catch {
    return ['UTC'];
  }
}

/** "in 8 h", "in 12 min", "overdue": how far the next firing is (the absolute time is next to it). */
function fromNow(iso: string | null, now: number): string {
  if (!iso) return '';
  const ms = new Date(iso).getTime() - now;
  if (ms < 0) return 'due now';
  const min = Math.round(ms / 60_000);
  if (min < 60) return `in ${Math.max(1, min)} min`;
  const h = Math.round(min / 60);
  return h < 48 ? `in ${h} h` : `in ${Math.round(h / 24)} days`;
}

export function SchedulesTab(props: { workflow: Workflow }) {
  const w = props.workflow;
  const zone = useZone();
  const canManage = useCan('manageSchedules');
  const list = useQuery((signal) => api<Page<Schedule>>('/v1/schedules', { query: { workflowId: w.id, limit: 100 }, signal }), [w.id]);
  const [creating, setCreating] = useState(false);
  const [deleting, setDeleting] = useState<Schedule | null>(null);
  const rowAction = useMutation();
  const [rowError, setRowError] = useState<string | null>(null);

  const toggle = async (s: Schedule) => {
    setRowError(s.id);
    const done = await rowAction.run(() => api<Schedule>(`/v1/schedules/${s.id}/${s.enabled ? 'pause' : 'resume'}`, { method: 'POST' }));
    if (done) list.reload();
  };
  const remove = async () => {
    if (!deleting) return;
    setRowError(deleting.id);
    const done = await rowAction.run(async () => (await api(`/v1/schedules/${deleting.id}`, { method: 'DELETE' }), true));
    if (done) {
      setDeleting(null);
      list.reload();
    }
  };

  return (
    <section aria-label="Schedules">
      {canManage && !creating && (
        <div class="toolbar">
          <button type="button" class="primary" onClick={() => setCreating(true)}>
            New schedule
          </button>
        </div>
      )}
      {creating && <ScheduleForm workflow={w} onDone={(saved) => (setCreating(false), saved && list.reload())} />}
      {rowAction.error && !deleting && <FormError error={rowAction.error} />}
      {list.error ? (
        <ErrorBox error={list.error} what="the schedules" onRetry={list.reload} />
      ) : !list.data ? (
        <Loading what="schedules" />
      ) : list.data.items.length === 0 ? (
        <p class="muted">No schedules start this workflow.</p>
      ) : (
        <table class="grid">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Cron</th>
              <th scope="col">Time zone</th>
              <th scope="col">State</th>
              <th scope="col">Next run</th>
              <th scope="col">Last run</th>
              <th scope="col">Misfire</th>
              {canManage && <th scope="col">Actions</th>}
            </tr>
          </thead>
          <tbody>
            {list.data.items.map((s) => (
              <tr key={s.id}>
                <td>{s.name}</td>
                <td class="mono">{s.cron}</td>
                <td>{s.timezone}</td>
                <td>
                  <span class={`badge ${s.enabled ? 'status-completed' : 'status-cancelled'}`}>{s.enabled ? 'ACTIVE' : 'PAUSED'}</span>
                </td>
                <td class="small">
                  {s.enabled ? (
                    <>
                      <span class="mono">{formatTime(s.nextFireAt, zone)}</span> <span class="muted">{fromNow(s.nextFireAt, Date.now())}</span>
                    </>
                  ) : (
                    '— (paused)'
                  )}
                </td>
                <td class="mono small">{formatTime(s.lastFiredAt, zone)}</td>
                <td>{s.misfirePolicy === 'RUN_ONCE' ? 'Run once' : 'Skip'}</td>
                {canManage && (
                  <td class="actions">
                    <button type="button" class="small" disabled={rowAction.busy && rowError === s.id} onClick={() => toggle(s)} aria-label={`${s.enabled ? 'Pause' : 'Resume'} schedule ${s.name}`}>
                      {s.enabled ? 'Pause' : 'Resume'}
                    </button>{' '}
                    <button type="button" class="small" onClick={() => (rowAction.clear(), setDeleting(s))} aria-label={`Delete schedule ${s.name}`}>
                      Delete
                    </button>
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {deleting && (
        <ConfirmDialog title="Delete schedule" confirmLabel="Delete schedule" danger busy={rowAction.busy} onConfirm={remove} onCancel={() => setDeleting(null)}>
          <p>
            Delete <strong>{deleting.name}</strong> (<code>{deleting.cron}</code>)? It stops starting runs; its audit trail is kept.
          </p>
          <FormError error={rowAction.error} />
        </ConfirmDialog>
      )}
    </section>
  );
}

function ScheduleForm(props: { workflow: Workflow; onDone: (saved: boolean) => void }) {
  const [name, setName] = useState('');
  const [cron, setCron] = useState('0 * * * *');
  const [timezone, setTimezone] = useState('UTC');
  const [input, setInput] = useState('');
  const [misfire, setMisfire] = useState<'SKIP' | 'RUN_ONCE'>('SKIP');
  const [enabled, setEnabled] = useState(true);
  const m = useMutation();
  const parsed = parseJsonField(input, { allowEmpty: true });
  const submit = async (e: Event) => {
    e.preventDefault();
    if (parsed.error) return;
    const saved = await m.run(() =>
      api<Schedule>('/v1/schedules', {
        method: 'POST',
        body: {
          workflowId: props.workflow.id,
          name: name.trim(),
          cron: cron.trim(),
          timezone: timezone.trim() || 'UTC',
          enabled,
          misfirePolicy: misfire,
          ...(parsed.value !== undefined ? { input: parsed.value } : {}),
        },
      }),
    );
    if (saved) props.onDone(true);
  };
  return (
    <form class="card form-card" onSubmit={submit} aria-label="New schedule">
      <h2>New schedule</h2>
      <div class="field-row">
        <label>
          Name
          <input required maxLength={200} value={name} onInput={(e) => setName((e.currentTarget as HTMLInputElement).value)} />
        </label>
        <label>
          Cron expression
          <input required class="mono" value={cron} onInput={(e) => setCron((e.currentTarget as HTMLInputElement).value)} aria-describedby="cron-help" />
        </label>
        <label>
          Time zone
          <input required list="tz-list" value={timezone} onInput={(e) => setTimezone((e.currentTarget as HTMLInputElement).value)} />
        </label>
        <datalist id="tz-list">
          {zones().map((z) => (
            <option key={z} value={z} />
          ))}
        </datalist>
        <SelectField label="When runs were missed" value={misfire} onChange={(v) => setMisfire(v as 'SKIP' | 'RUN_ONCE')}>
          <option value="SKIP">Skip them</option>
          <option value="RUN_ONCE">Run once</option>
        </SelectField>
        <label class="inline">
          <input type="checkbox" checked={enabled} onChange={(e) => setEnabled((e.currentTarget as HTMLInputElement).checked)} />
          Enabled
        </label>
      </div>
      <p id="cron-help" class="muted small">
        Five fields (minute hour day-of-month month day-of-week), e.g. <code>*/15 * * * *</code>, or a nickname such as <code>@daily</code>.
      </p>
      <label class="block">
        Input for each run (JSON, optional)
        <textarea rows={4} spellcheck={false} value={input} aria-invalid={parsed.error ? 'true' : 'false'} onInput={(e) => setInput((e.currentTarget as HTMLTextAreaElement).value)} />
      </label>
      {parsed.error && <p class="form-error small">{parsed.error}</p>}
      <FormError error={m.error} />
      <div class="toolbar">
        <SubmitOrCancel label="Create schedule" busyLabel="Creating…" busy={m.busy} disabled={!!parsed.error} onCancel={() => props.onDone(false)} />
      </div>
    </form>
  );
}
