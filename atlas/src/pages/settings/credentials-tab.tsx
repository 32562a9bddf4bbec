import { useState } from 'preact/hooks';
import { api } from '../../api.js';
import { ConfirmDialog } from '../../components/confirm-dialog.js';
import { ErrorBox } from '../../components/error-box.js';
import { Loading } from '../../components/loading.js';
import { useQuery } from '../../hooks.js';
import { useCan } from '../../session.js';
import { formatTime, useZone } from '../../time.js';
import { FormError, parseJsonField, SubmitOrCancel, useMutation } from './kit.js';
import type { Credential } from './types.js';

/**
 * Integration credentials. The API never returns a secret (not even its
 * field names), so the secret field is write-only: always empty, replaced
 * whole on save.
 */
export function CredentialsTab() {
  const zone = useZone();
  const canManage = useCan('manageCredentials');
  const list = useQuery((signal) => api<{ items: Credential[] }>('/v1/credentials', { signal }), []);
  const [editing, setEditing] = useState<Credential | 'new' | null>(null);
  const [deleting, setDeleting] = useState<Credential | null>(null);
  const m = useMutation();
  const remove = async () => {
    if (!deleting) return;
    const ok = await m.run(async () => (await api(`/v1/credentials/${deleting.id}`, { method: 'DELETE' }), true));
    if (ok) {
      setDeleting(null);
      list.reload();
    }
  };
  return (
    <section aria-label="Credentials">
      <p class="muted small">
        Steps use a credential as <code>{'{{ credentials.<name>.<field> }}'}</code>. Secrets are sealed on the server and never shown here.
      </p>
      {canManage && editing === null && (
        <div class="toolbar">
          <button type="button" class="primary" onClick={() => setEditing('new')}>
            New credential
          </button>
        </div>
      )}
      {editing !== null && (
        <CredentialForm
          key={editing === 'new' ? 'new' : editing.id}
          existing={editing === 'new' ? null : editing}
          onDone={(saved) => {
            setEditing(null);
            if (saved) list.reload();
          }}
        />
      )}
      {list.error ? (
        <ErrorBox error={list.error} what="the credentials" onRetry={list.reload} />
      ) : !list.data ? (
        <Loading what="credentials" />
      ) : list.data.items.length === 0 ? (
        <p class="muted">No credentials yet.</p>
      ) : (
        <table class="grid">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Provider</th>
              <th scope="col">Secret</th>
              <th scope="col">Created</th>
              <th scope="col">Updated</th>
              {canManage && <th scope="col">Actions</th>}
            </tr>
          </thead>
          <tbody>
            {list.data.items.map((c) => (
              <tr key={c.id}>
                <td class="mono">{c.name}</td>
                <td>{c.provider}</td>
                <td class="muted">•••••• (write-only)</td>
                <td class="mono small">{formatTime(c.createdAt, zone)}</td>
                <td class="mono small">{formatTime(c.updatedAt, zone)}</td>
                {canManage && (
                  <td class="actions">
                    <button type="button" class="small" onClick={() => setEditing(c)} aria-label={`Replace credential ${c.name}`}>
                      Replace
                    </button>{' '}
                    <button type="button" class="small" onClick={() => (m.clear(), setDeleting(c))} aria-label={`Delete credential ${c.name}`}>
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
        <ConfirmDialog title="Delete credential" confirmLabel="Delete credential" danger busy={m.busy} onConfirm={remove} onCancel={() => setDeleting(null)}>
          <p>
            Delete <strong>{deleting.name}</strong> ({deleting.provider})? Steps that use it fail from now on. Its audit trail stays.
          </p>
          <FormError error={m.error} />
        </ConfirmDialog>
      )}
    </section>
  );
}

function CredentialForm(props: { existing: Credential | null; onDone: (saved: boolean) => void }) {
  const [provider, setProvider] = useState(props.existing?.provider ?? '');
  const [name, setName] = useState(props.existing?.name ?? '');
  const [secret, setSecret] = useState('');
  const m = useMutation();
  const parsed = parseJsonField(secret, { object: true });
  const [touched, setTouched] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setTouched(true);
    if (parsed.error) return;
    const body = { provider: provider.trim(), name: name.trim(), secret: parsed.value };
    const saved = await m.run(() =>
      props.existing
        ? api<Credential>(`/v1/credentials/${props.existing.id}`, { method: 'PUT', body })
        : api<Credential>('/v1/credentials', { method: 'POST', body }),
    );
    if (saved) {
      setSecret('');
      props.onDone(true);
    }
  };
  const title = props.existing ? `Replace credential ${props.existing.name}` : 'New credential';
  return (
    <form class="card form-card" onSubmit={submit} aria-label={title} autocomplete="off">
      <h2>{title}</h2>
      <div class="field-row">
        <label>
          Provider
          <input required maxLength={100} value={provider} placeholder="e.g. availity" onInput={(e) => setProvider((e.currentTarget as HTMLInputElement).value)} />
        </label>
        <label>
          Name
          <input
            required
            maxLength={100}
            pattern="[A-Za-z_][A-Za-z0-9_]*"
            title="Letters, digits and _, not starting with a digit"
            class="mono"
            value={name}
            onInput={(e) => setName((e.currentTarget as HTMLInputElement).value)}
          />
        </label>
      </div>
      <label class="block">
        Secret (JSON object, write-only{props.existing ? '; replaces the whole secret' : ''})
        <textarea
          rows={5}
          spellcheck={false}
          autocomplete="off"
          value={secret}
          placeholder={'{ "username": "…", "password": "…" }'}
          aria-invalid={touched && parsed.error ? 'true' : 'false'}
          onInput={(e) => setSecret((e.currentTarget as HTMLTextAreaElement).value)}
        />
      </label>
      <p class="muted small">Flat fields with string, number or boolean values, up to 16 KiB. It is sealed on save and never shown again.</p>
      {touched && parsed.error && (
        <p class="form-error small" role="alert">
          {parsed.error}
        </p>
      )}
      <FormError error={m.error} />
      <div class="toolbar">
        <SubmitOrCancel
          label={props.existing ? 'Replace credential' : 'Create credential'}
          busyLabel="Saving…"
          busy={m.busy}
          onCancel={() => props.onDone(false)}
        />
      </div>
    </form>
  );
}
