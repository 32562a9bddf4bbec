import { useState } from 'preact/hooks';
import { api } from '../../api.js';
import { ErrorBox } from '../../components/error-box.js';
import { Loading } from '../../components/loading.js';
import { useQuery } from '../../hooks.js';
import { useCan } from '../../session.js';
import { formatTime, useZone } from '../../time.js';
import { FormError, SubmitOrCancel, useMutation } from './kit.js';
import type { RetentionPolicy } from './types.js';

const LABELS: Record<string, string> = {
  execution_log: 'Run streams',
  screenshot: 'Screenshots',
  job: 'Runs',
  job_result: 'Run results',
  phi_audit: 'PHI audit log',
};

/** Retention policies per resource type; ADMIN edits one row at a time (the server checks the limits, e.g. PHI audit ≥ 6 years). */
export function RetentionTab() {
  const zone = useZone();
  const canManage = useCan('manageRetention');
  const list = useQuery((signal) => api<{ items: RetentionPolicy[] }>('/v1/retention-policies', { signal }), []);
  const [editing, setEditing] = useState<string | null>(null);
  return (
    <section aria-label="Retention">
      <p class="muted small">
        Days of age: a run's data stays hot (in the database) for the hot period, is then archived to blob storage and kept at least the archive period,
        and is deleted after the delete period (never, when empty).
      </p>
      {list.error ? (
        <ErrorBox error={list.error} what="the retention policies" onRetry={list.reload} />
      ) : !list.data ? (
        <Loading what="retention policies" />
      ) : (
        <table class="grid">
          <thead>
            <tr>
              <th scope="col">Data</th>
              <th scope="col" class="num">
                Hot (days)
              </th>
              <th scope="col" class="num">
                Archive (days)
              </th>
              <th scope="col" class="num">
                Delete after (days)
              </th>
              <th scope="col">Source</th>
              {canManage && <th scope="col">Actions</th>}
            </tr>
          </thead>
          <tbody>
            {list.data.items.map((p) =>
              editing === p.resourceType ? (
                <PolicyEditor
                  key={p.resourceType}
                  policy={p}
                  onDone={(saved) => {
                    setEditing(null);
                    if (saved) list.reload();
                  }}
                />
              ) : (
                <tr key={p.resourceType}>
                  <td>
                    {LABELS[p.resourceType] ?? p.resourceType} <span class="muted small mono">{p.resourceType}</span>
                  </td>
                  <td class="num">{p.hotRetentionDays}</td>
                  <td class="num">{p.archiveRetentionDays}</td>
                  <td class="num">{p.deleteAfterDays ?? 'never'}</td>
                  <td class="small">{p.isDefault ? 'default' : `set ${formatTime(p.updatedAt, zone)}`}</td>
                  {canManage && (
                    <td>
                      <button type="button" class="small" onClick={() => setEditing(p.resourceType)} aria-label={`Edit the retention of ${LABELS[p.resourceType] ?? p.resourceType}`}>
                        Edit
                      </button>
                    </td>
                  )}
                </tr>
              ),
            )}
          </tbody>
        </table>
      )}
    </section>
  );
}

function PolicyEditor(props: { policy: RetentionPolicy; onDone: (saved: boolean) => void }) {
  const p = props.policy;
  const [hot, setHot] = useState(String(p.hotRetentionDays));
  const [archive, setArchive] = useState(String(p.archiveRetentionDays));
  const [del, setDel] = useState(p.deleteAfterDays === null ? '' : String(p.deleteAfterDays));
  const m = useMutation();
  const name = LABELS[p.resourceType] ?? p.resourceType;
  const save = async (e: Event) => {
    e.preventDefault();
    const ok = await m.run(() =>
      api<RetentionPolicy>(`/v1/retention-policies/${encodeURIComponent(p.resourceType)}`, {
        method: 'PUT',
        body: { hotRetentionDays: Number(hot), archiveRetentionDays: Number(archive), deleteAfterDays: del.trim() === '' ? null : Number(del) },
      }),
    );
    if (ok) props.onDone(true);
  };
  const num = (label: string, value: string, set: (v: string) => void, required = true) => (
    <label>
      {label}
      <input type="number" min={0} step={1} required={required} value={value} onInput={(e) => set((e.currentTarget as HTMLInputElement).value)} />
    </label>
  );
  return (
    <tr class="editing">
      <td colSpan={6}>
        <form onSubmit={save} aria-label={`Retention of ${name}`}>
          <strong>{name}</strong>
          <div class="field-row">
            {num('Hot (days)', hot, setHot)}
            {num('Archive (days)', archive, setArchive)}
            {num('Delete after (days, empty: never)', del, setDel, false)}
            <SubmitOrCancel label="Save policy" busyLabel="Saving…" busy={m.busy} onCancel={() => props.onDone(false)} />
          </div>
          <FormError error={m.error} />
        </form>
      </td>
    </tr>
  );
}
