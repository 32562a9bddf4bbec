import { useEffect, useRef, useState } from 'preact/hooks';
import { api, ApiError } from '../../api.js';
import { useQuery } from '../../hooks.js';
import { navigate } from '../../router.js';
import { roleAtLeast, useSession } from '../../session.js';
import { Dropdown } from './dropdown.js';
import type { SavedView } from './types.js';

const asApiError = (err: unknown) => (err instanceof ApiError ? err : new ApiError(0, 'CLIENT_ERROR', String(err)));

/** The views menu (apply, delete) and "Save view" (name, shared or not) for the runs list. */
export function SavedViews(props: { query: string }) {
  const session = useSession();
  const views = useQuery((signal) => api<{ items: SavedView[] }>('/v1/views', { query: { page: 'runs' }, signal }), []);
  const [saving, setSaving] = useState(false);
  const [deleteError, setDeleteError] = useState<string | null>(null);
  const items = views.data?.items ?? [];
  const current = items.find((v) => v.query === props.query);

  const remove = async (v: SavedView) => {
    setDeleteError(null);
    try {
      await api(`/v1/views/${v.id}`, { method: 'DELETE' });
      views.reload();
    } catch (err) {
      setDeleteError(`Could not delete "${v.name}": ${asApiError(err).message}`);
    }
  };
  const canDelete = (v: SavedView) => v.mine || (v.shared && roleAtLeast(session.role, 'ADMIN'));

  return (
    <div class="saved-views">
      <Dropdown label={current ? `View: ${current.name}` : 'Views'} ariaLabel={current ? `Saved views (showing ${current.name})` : 'Saved views'} align="right">
        {(close) => (
          <div class="menu views-menu">
            {views.error && (
              <p class="filter-problem" role="alert">
                Could not load the saved views: {views.error.message}{' '}
                <button type="button" class="small" onClick={views.reload}>
                  Try again
                </button>
              </p>
            )}
            {!views.data && !views.error && <p class="muted small">Loading…</p>}
            {views.data && items.length === 0 && <p class="muted small">No saved views yet. Set filters, then "Save view".</p>}
            {items.length > 0 && (
              <ul>
                {items.map((v) => (
                  <li key={v.id} class={v.id === current?.id ? 'current' : ''}>
                    <button type="button" class="view-apply" onClick={() => (close(), navigate(`/runs${v.query ? `?${v.query.replace(/^\?/, '')}` : ''}`))}>
                      {v.name}
                      {v.shared && <span class="tag">{v.mine ? 'shared' : 'shared with you'}</span>}
                    </button>
                    {canDelete(v) && (
                      <button type="button" class="ghost small" aria-label={`Delete view ${v.name}`} title="Delete this view" onClick={() => void remove(v)}>
                        ×
                      </button>
                    )}
                  </li>
                ))}
              </ul>
            )}
            {deleteError && (
              <p class="filter-problem" role="alert">
                {deleteError}
              </p>
            )}
          </div>
        )}
      </Dropdown>
      <button type="button" onClick={() => setSaving(true)}>
        Save view
      </button>
      {saving && (
        <SaveViewDialog
          query={props.query}
          onSaved={() => {
            setSaving(false);
            views.reload();
          }}
          onCancel={() => setSaving(false)}
        />
      )}
    </div>
  );
}

function SaveViewDialog(props: { query: string; onSaved: () => void; onCancel: () => void }) {
  const ref = useRef<HTMLDialogElement>(null);
  const [name, setName] = useState('');
  const [shared, setShared] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    const d = ref.current;
    if (d && !d.open) d.showModal();
    return () => d?.close();
  }, []);
  const submit = async (e: Event) => {
    e.preventDefault();
    const trimmed = name.trim();
    if (!trimmed) return setError('Give the view a name.');
    setBusy(true);
    setError(null);
    try {
      await api('/v1/views', { method: 'POST', body: { name: trimmed, page: 'runs', query: props.query, shared } });
      props.onSaved();
    } catch (err) {
      setError(asApiError(err).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <dialog ref={ref} class="dialog" aria-labelledby="save-view-title" onCancel={(e) => (e.preventDefault(), props.onCancel())}>
      <form onSubmit={submit}>
        <h2 id="save-view-title">Save view</h2>
        <div class="dialog-body save-view">
          <label>
            Name
            <input type="text" required maxLength={100} value={name} onInput={(e) => setName(e.currentTarget.value)} autoFocus />
          </label>
          <label class="inline">
            <input type="checkbox" checked={shared} onChange={(e) => setShared(e.currentTarget.checked)} />
            Share with the organization
          </label>
          <p class="muted small">
            Saves the filters and the time window{props.query ? '' : ' (none set: the default list)'}. Shared views are listed for everyone in the organization.
          </p>
          {error && (
            <p class="form-error" role="alert">
              {error}
            </p>
          )}
        </div>
        <div class="dialog-actions">
          <button type="button" onClick={props.onCancel} disabled={busy}>
            Cancel
          </button>
          <button type="submit" class="primary" disabled={busy}>
            {busy ? 'Saving…' : 'Save'}
          </button>
        </div>
      </form>
    </dialog>
  );
}
