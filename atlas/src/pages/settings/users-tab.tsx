import { useState } from 'preact/hooks';
import { api } from '../../api.js';
import { ConfirmDialog } from '../../components/confirm-dialog.js';
import { ErrorBox } from '../../components/error-box.js';
import { Loading } from '../../components/loading.js';
import { useQuery } from '../../hooks.js';
import { ROLES, roleAtLeast, useCan, useSession, type Role } from '../../session.js';
import { formatTime, useZone } from '../../time.js';
import { FormError, SelectField, ShownOnce, SubmitOrCancel, useMutation } from './kit.js';
import type { Invitation, Page, User } from './types.js';

type Pending =
  | { kind: 'role'; user: User; role: Role }
  | { kind: 'disable'; user: User; disabled: boolean }
  | { kind: 'delete'; user: User };

function inviteLink(inv: Invitation): string {
  return `${window.location.origin}/invite/${inv.token}`;
}

/**
 * Users of the organization. ADMIN reads them and issues invitation links
 * for existing users; OWNER also creates users (then invites them), changes
 * roles, disables and deletes. The server enforces all of it (and refuses
 * to demote, disable or delete the last OWNER).
 */
export function UsersTab() {
  const session = useSession();
  const zone = useZone();
  const canManage = useCan('manageUsers');
  const canInvite = useCan('inviteUsers');
  const [pages, setPages] = useState(1);
  const users = useQuery(async (signal) => {
    const items: User[] = [];
    let cursor: string | null = null;
    for (let i = 0; i < pages; i++) {
      const page: Page<User> = await api<Page<User>>('/v1/users', { query: { limit: 200, cursor }, signal });
      items.push(...page.items);
      cursor = page.nextCursor;
      if (!cursor) break;
    }
    return { items, more: cursor !== null };
  }, [pages]);
  const [pending, setPending] = useState<Pending | null>(null);
  const [invite, setInvite] = useState<{ email: string; link: string; expiresAt: string } | null>(null);
  const [adding, setAdding] = useState(false);
  const m = useMutation();

  const issueInvite = async (u: User) => {
    const inv = await m.run(() => api<Invitation>(`/v1/users/${u.id}/invitations`, { method: 'POST' }));
    if (inv) setInvite({ email: u.email, link: inviteLink(inv), expiresAt: inv.expiresAt });
  };

  const confirmPending = async () => {
    if (!pending) return;
    const u = pending.user;
    const ok = await m.run(async () => {
      if (pending.kind === 'role') await api(`/v1/users/${u.id}`, { method: 'PATCH', body: { role: pending.role } });
      else if (pending.kind === 'disable') await api(`/v1/users/${u.id}`, { method: 'PATCH', body: { disabled: pending.disabled } });
      else await api(`/v1/users/${u.id}`, { method: 'DELETE' });
      return true;
    });
    if (ok) {
      setPending(null);
      users.reload();
    }
  };

  const grantable = ROLES.filter((r) => roleAtLeast(session.role, r));

  return (
    <section aria-label="Users">
      {canInvite && !adding && (
        <div class="toolbar">
          <button type="button" class="primary" onClick={() => (setAdding(true), setInvite(null))}>
            Invite user
          </button>
        </div>
      )}
      {adding && (
        <InviteForm
          roles={grantable}
          onCancel={() => setAdding(false)}
          onInvited={(email, inv) => {
            setAdding(false);
            setInvite({ email, link: inviteLink(inv), expiresAt: inv.expiresAt });
            users.reload();
          }}
        />
      )}
      {invite && (
        <ShownOnce title={`Invitation link for ${invite.email}`} label="Invitation link" value={invite.link} onDone={() => setInvite(null)}>
          <p class="small">
            Single use, valid until {formatTime(invite.expiresAt, zone)}. Send it to {invite.email}: they choose a password with it.
          </p>
        </ShownOnce>
      )}
      {!pending && <FormError error={m.error} />}
      {users.error ? (
        <ErrorBox error={users.error} what="the users" onRetry={users.reload} />
      ) : !users.data ? (
        <Loading what="users" />
      ) : (
        <>
          <table class="grid">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Email</th>
                <th scope="col">Role</th>
                <th scope="col">State</th>
                <th scope="col">Created</th>
                {(canManage || canInvite) && <th scope="col">Actions</th>}
              </tr>
            </thead>
            <tbody>
              {users.data.items.map((u) => (
                <tr key={u.id}>
                  <td>
                    {u.name ?? <span class="muted">—</span>}
                    {u.id === session.user.id && <span class="muted small"> (you)</span>}
                  </td>
                  <td>{u.email}</td>
                  <td>
                    {canManage ? (
                      <>
                        <label htmlFor={`role-${u.id}`} class="sr-only">
                          Role of {u.email}
                        </label>
                        <select
                          id={`role-${u.id}`}
                          value={u.role}
                          onChange={(e) => {
                            const role = (e.currentTarget as HTMLSelectElement).value as Role;
                            (e.currentTarget as HTMLSelectElement).value = u.role; // unchanged until confirmed
                            m.clear();
                            setPending({ kind: 'role', user: u, role });
                          }}
                        >
                          {ROLES.map((r) => (
                            <option key={r} value={r} disabled={!grantable.includes(r)}>
                              {r}
                            </option>
                          ))}
                        </select>
                      </>
                    ) : (
                      u.role
                    )}
                  </td>
                  <td>
                    <span class={`badge ${u.disabledAt ? 'status-cancelled' : 'status-completed'}`}>{u.disabledAt ? 'DISABLED' : 'ACTIVE'}</span>
                  </td>
                  <td class="mono small">{formatTime(u.createdAt, zone)}</td>
                  {(canManage || canInvite) && (
                    <td class="actions">
                      {canInvite && !u.disabledAt && roleAtLeast(session.role, u.role) && (
                        <button type="button" class="small" disabled={m.busy} onClick={() => issueInvite(u)} aria-label={`Create an invitation link for ${u.email}`}>
                          Invitation link
                        </button>
                      )}{' '}
                      {canManage && (
                        <>
                          <button
                            type="button"
                            class="small"
                            onClick={() => (m.clear(), setPending({ kind: 'disable', user: u, disabled: !u.disabledAt }))}
                            aria-label={`${u.disabledAt ? 'Enable' : 'Disable'} ${u.email}`}
                          >
                            {u.disabledAt ? 'Enable' : 'Disable'}
                          </button>{' '}
                          <button type="button" class="small" onClick={() => (m.clear(), setPending({ kind: 'delete', user: u }))} aria-label={`Delete ${u.email}`}>
                            Delete
                          </button>
                        </>
                      )}
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
          {users.data.more && (
            <button type="button" onClick={() => setPages((p) => p + 1)} disabled={users.loading}>
              Load more users
            </button>
          )}
        </>
      )}
      {pending && (
        <ConfirmDialog
          title={pending.kind === 'role' ? 'Change role' : pending.kind === 'disable' ? (pending.disabled ? 'Disable user' : 'Enable user') : 'Delete user'}
          confirmLabel={pending.kind === 'role' ? `Make ${pending.role}` : pending.kind === 'disable' ? (pending.disabled ? 'Disable user' : 'Enable user') : 'Delete user'}
          danger={pending.kind !== 'role' && !(pending.kind === 'disable' && !pending.disabled)}
          busy={m.busy}
          onConfirm={confirmPending}
          onCancel={() => setPending(null)}
        >
          <p>
            {pending.kind === 'role' && (
              <>
                Change the role of <strong>{pending.user.email}</strong> from {pending.user.role} to {pending.role}? Their keys act at most at the new role.
              </>
            )}
            {pending.kind === 'disable' &&
              (pending.disabled ? (
                <>
                  Disable <strong>{pending.user.email}</strong>? They can no longer sign in, and their sessions and keys stop working.
                </>
              ) : (
                <>
                  Enable <strong>{pending.user.email}</strong> again?
                </>
              ))}
            {pending.kind === 'delete' && (
              <>
                Delete <strong>{pending.user.email}</strong>? Their API keys are revoked and their sessions end. This cannot be undone.
              </>
            )}
          </p>
          <FormError error={m.error} />
        </ConfirmDialog>
      )}
    </section>
  );
}

/** ADMIN or OWNER: create the user and issue their invitation link in one request (POST /v1/invitations: both or neither). */
function InviteForm(props: { roles: Role[]; onCancel: () => void; onInvited: (email: string, inv: Invitation) => void }) {
  const [email, setEmail] = useState('');
  const [name, setName] = useState('');
  const [role, setRole] = useState<Role>('MEMBER');
  const m = useMutation();
  const submit = async (e: Event) => {
    e.preventDefault();
    const body = { email: email.trim(), role, ...(name.trim() ? { name: name.trim() } : {}) };
    const res = await m.run(() => api<Invitation & { user: User }>('/v1/invitations', { method: 'POST', body }));
    if (res) props.onInvited(res.user.email, res);
  };
  return (
    <form class="card form-card" onSubmit={submit} aria-label="Invite user">
      <h2>Invite user</h2>
      <div class="field-row">
        <label>
          Email
          <input type="email" required maxLength={254} value={email} onInput={(e) => setEmail((e.currentTarget as HTMLInputElement).value)} />
        </label>
        <label>
          Name (optional)
          <input maxLength={200} value={name} onInput={(e) => setName((e.currentTarget as HTMLInputElement).value)} />
        </label>
        <SelectField label="Role" value={role} onChange={(v) => setRole(v as Role)}>
            {props.roles.map((r) => (
              <option key={r} value={r}>
                {r}
              </option>
            ))}
        </SelectField>
      </div>
      <FormError error={m.error} />
      <div class="toolbar">
        <SubmitOrCancel label="Create user and invitation link" busyLabel="Working…" busy={m.busy} onCancel={props.onCancel} />
      </div>
    </form>
  );
}
