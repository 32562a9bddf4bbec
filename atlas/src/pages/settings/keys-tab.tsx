import { useMemo, useState } from 'preact/hooks';
import { api } from '../../api.js';
import { ConfirmDialog } from '../../components/confirm-dialog.js';
import { ErrorBox } from '../../components/error-box.js';
import { Loading } from '../../components/loading.js';
import { useQuery } from '../../hooks.js';
import { ROLES, roleAtLeast, useCan, useSession, type Role } from '../../session.js';
import { formatTime, useZone } from '../../time.js';
import { FormError, SelectField, ShownOnce, SubmitOrCancel, useMutation } from './kit.js';
import type { ApiKey, Page, User } from './types.js';

const EXPIRY = [
  { id: 'never', label: 'Never' },
  { id: '30', label: '30 days' },
  { id: '90', label: '90 days' },
  { id: '365', label: '1 year' },
  { id: 'date', label: 'On a date…' },
] as const;

function keyState(k: ApiKey, now: number): { word: string; cls: string } {
  if (k.revokedAt) return { word: 'REVOKED', cls: 'status-cancelled' };
  if (k.expiresAt && new Date(k.expiresAt).getTime() <= now) return { word: 'EXPIRED', cls: 'status-cancelled' };
  return { word: 'ACTIVE', cls: 'status-completed' };
}

/**
 * API keys: one's own (anyone may create and revoke them, at most at their
 * own role), or everyone's for OWNER. The key itself is shown once.
 */
export function KeysTab() {
  const session = useSession();
  const zone = useZone();
  const seeAll = useCan('manageKeys');
  const [onlyMine, setOnlyMine] = useState(false);
  const keys = useQuery(
    (signal) => api<Page<ApiKey>>('/v1/api-keys', { query: { limit: 500, userId: seeAll && !onlyMine ? undefined : session.user.id }, signal }),
    [seeAll, onlyMine, session.user.id],
  );
  // OWNER sees whose keys they are; the user list is a convenience, its failure only shows ids.
  const users = useQuery(async (signal) => (seeAll ? api<Page<User>>('/v1/users', { query: { limit: 500 }, signal }) : null), [seeAll]);
  const emailOf = useMemo(() => new Map((users.data?.items ?? []).map((u) => [u.id, u.email])), [users.data]);
  const [creating, setCreating] = useState(false);
  const [created, setCreated] = useState<(ApiKey & { key: string }) | null>(null);
  const [revoking, setRevoking] = useState<ApiKey | null>(null);
  const [showRevoked, setShowRevoked] = useState(false);
  const m = useMutation();
  const now = Date.now();

  const revoke = async () => {
    if (!revoking) return;
    const done = await m.run(() => api<ApiKey>(`/v1/api-keys/${revoking.id}`, { method: 'DELETE' }));
    if (done) {
      setRevoking(null);
      keys.reload();
    }
  };
  const shown = (keys.data?.items ?? []).filter((k) => showRevoked || keyState(k, now).word === 'ACTIVE');

  return (
    <section aria-label="API keys">
      <div class="toolbar">
        {!creating && (
          <button type="button" class="primary" onClick={() => (setCreating(true), setCreated(null))}>
            New API key
          </button>
        )}
        {seeAll && (
          <label class="inline">
            <input type="checkbox" checked={onlyMine} onChange={(e) => setOnlyMine((e.currentTarget as HTMLInputElement).checked)} />
            Only my keys
          </label>
        )}
        <label class="inline">
          <input type="checkbox" checked={showRevoked} onChange={(e) => setShowRevoked((e.currentTarget as HTMLInputElement).checked)} />
          Show revoked and expired
        </label>
      </div>
      {creating && (
        <KeyForm
          myRole={session.role}
          onCancel={() => setCreating(false)}
          onCreated={(k) => {
            setCreating(false);
            setCreated(k);
            keys.reload();
          }}
        />
      )}
      {created && (
        <ShownOnce title={`API key “${created.name}”`} label="API key" value={created.key} onDone={() => setCreated(null)}>
          <p class="small">
            Role {created.role}
            {created.expiresAt ? `, expires ${formatTime(created.expiresAt, zone)}` : ', does not expire'}. Send it as <code>Authorization: Bearer …</code>.
          </p>
        </ShownOnce>
      )}
      {keys.error ? (
        <ErrorBox error={keys.error} what="the API keys" onRetry={keys.reload} />
      ) : !keys.data ? (
        <Loading what="API keys" />
      ) : shown.length === 0 ? (
        <p class="muted">{keys.data.items.length === 0 ? 'No API keys yet.' : 'No active keys (revoked and expired ones are hidden).'}</p>
      ) : (
        <table class="grid">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Prefix</th>
              <th scope="col">Role</th>
              {seeAll && <th scope="col">User</th>}
              <th scope="col">State</th>
              <th scope="col">Created</th>
              <th scope="col">Expires</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {shown.map((k) => {
              const st = keyState(k, now);
              return (
                <tr key={k.id}>
                  <td>{k.name}</td>
                  <td class="mono">{k.prefix}…</td>
                  <td>{k.role}</td>
                  {seeAll && <td class="small">{k.userId ? (k.userId === session.user.id ? 'you' : (emailOf.get(k.userId) ?? k.userId)) : '—'}</td>}
                  <td>
                    <span class={`badge ${st.cls}`}>{st.word}</span>
                  </td>
                  <td class="mono small">{formatTime(k.createdAt, zone)}</td>
                  <td class="mono small">{k.expiresAt ? formatTime(k.expiresAt, zone) : 'never'}</td>
                  <td>
                    {!k.revokedAt && (
                      <button type="button" class="small" onClick={() => (m.clear(), setRevoking(k))} aria-label={`Revoke key ${k.name} (${k.prefix})`}>
                        Revoke
                      </button>
                    )}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      {revoking && (
        <ConfirmDialog title="Revoke API key" confirmLabel="Revoke key" danger busy={m.busy} onConfirm={revoke} onCancel={() => setRevoking(null)}>
          <p>
            Revoke <strong>{revoking.name}</strong> (<code>{revoking.prefix}…</code>)? It stops working at once, and sessions signed in with it end.
          </p>
          <FormError error={m.error} />
        </ConfirmDialog>
      )}
    </section>
  );
}

function KeyForm(props: { myRole: Role; onCancel: () => void; onCreated: (k: ApiKey & { key: string }) => void }) {
  const roles = ROLES.filter((r) => roleAtLeast(props.myRole, r));
  const [name, setName] = useState('');
  const [role, setRole] = useState<Role>(props.myRole);
  const [expiry, setExpiry] = useState<(typeof EXPIRY)[number]['id']>('90');
  const [date, setDate] = useState('');
  const [dateError, setDateError] = useState<string | null>(null);
  const m = useMutation();
  const submit = async (e: Event) => {
    e.preventDefault();
    let expiresAt: string | undefined;
    if (expiry === 'date') {
      const d = /^\d{4}-\d{2}-\d{2}$/.test(date) ? new Date(`${date}T00:00:00Z`) : null;
      if (!d || Number.isNaN(d.getTime())) return setDateError('Pick the day the key expires.');
      expiresAt = d.toISOString();
    } else if (expiry !== 'never') expiresAt = new Date(Date.now() + Number(expiry) * 86_400_000).toISOString();
    setDateError(null);
    const k = await m.run(() =>
      api<ApiKey & { key: string }>('/v1/api-keys', { method: 'POST', body: { name: name.trim() || 'API key', role, ...(expiresAt ? { expiresAt } : {}) } }),
    );
    if (k) props.onCreated(k);
  };
  return (
    <form class="card form-card" onSubmit={submit} aria-label="New API key">
      <h2>New API key</h2>
      <div class="field-row">
        <label>
          Key name
          <input required maxLength={200} value={name} placeholder="e.g. CI deploys" onInput={(e) => setName((e.currentTarget as HTMLInputElement).value)} />
        </label>
        <SelectField label="Key role" value={role} onChange={(v) => setRole(v as Role)}>
            {roles.map((r) => (
              <option key={r} value={r}>
                {r}
              </option>
            ))}
        </SelectField>
        <SelectField label="Expires" value={expiry} onChange={(v) => setExpiry(v as (typeof EXPIRY)[number]['id'])}>
            {EXPIRY.map((x) => (
              <option key={x.id} value={x.id}>
                {x.label}
              </option>
            ))}
        </SelectField>
        {expiry === 'date' && (
          <label>
            Expiry date (UTC)
            <input type="date" required value={date} onInput={(e) => setDate((e.currentTarget as HTMLInputElement).value)} />
          </label>
        )}
      </div>
      {dateError && <p class="form-error small" role="alert">{dateError}</p>}
      <FormError error={m.error} />
      <div class="toolbar">
        <SubmitOrCancel label="Create key" busyLabel="Creating…" busy={m.busy} onCancel={props.onCancel} />
      </div>
    </form>
  );
}
