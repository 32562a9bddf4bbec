import { useState } from 'preact/hooks';
import { api } from '../../api.js';
import { ConfirmDialog } from '../../components/confirm-dialog.js';
import { ErrorBox } from '../../components/error-box.js';
import { Loading } from '../../components/loading.js';
import { useQuery } from '../../hooks.js';
import { useCan } from '../../session.js';
import { formatTime, useZone } from '../../time.js';
import { CopyField, FormError, ShownOnce, useMutation } from '../settings/kit.js';
import { JobTable } from './job-table.js';
import type { JobRow, Page, WebhookIssued, WebhookState, Workflow } from './types.js';

/**
 * The workflow's webhook: whether it is on, where senders POST, and the
 * last runs it started (the API keeps no separate delivery log: a delivery
 * that was accepted is a run with initiator WEBHOOK; refused ones are 401s
 * the sender sees). ADMIN turns it on, rotates the secret and turns it off.
 */
export function WebhookTab(props: { workflow: Workflow }) {
  const w = props.workflow;
  const zone = useZone();
  const canManage = useCan('manageWorkflows');
  const state = useQuery((signal) => api<WebhookState>(`/v1/workflows/${w.id}/webhook`, { signal }), [w.id]);
  const deliveries = useQuery(
    (signal) => api<Page<JobRow>>('/v1/jobs', { query: { workflowId: w.id, initiatorType: 'WEBHOOK', limit: 10, phi: 'mask' }, signal }),
    [w.id],
  );
  const [issued, setIssued] = useState<WebhookIssued | null>(null);
  const [confirm, setConfirm] = useState<'rotate' | 'disable' | null>(null);
  const m = useMutation();
  const url = `${window.location.origin}/v1/hooks/${w.id}`;

  const enable = async () => {
    const got = await m.run(() => api<WebhookIssued>(`/v1/workflows/${w.id}/webhook`, { method: 'POST' }));
    if (got) {
      setIssued(got);
      state.reload();
    }
  };
  const confirmed = async () => {
    if (confirm === 'rotate') {
      const got = await m.run(() => api<WebhookIssued>(`/v1/workflows/${w.id}/webhook/rotate`, { method: 'POST' }));
      if (got) {
        setIssued(got);
        setConfirm(null);
        state.reload();
      }
    } else if (confirm === 'disable') {
      const ok = await m.run(async () => (await api(`/v1/workflows/${w.id}/webhook`, { method: 'DELETE' }), true));
      if (ok) {
        setIssued(null);
        setConfirm(null);
        state.reload();
      }
    }
  };

  return (
    <section aria-label="Webhook">
      {state.error ? (
        <ErrorBox error={state.error} what="the webhook" onRetry={state.reload} />
      ) : !state.data ? (
        <Loading what="the webhook" />
      ) : (
        <div class="card webhook-card">
          <p>
            Webhook:{' '}
            <span class={`badge ${state.data.enabled ? 'status-completed' : 'status-cancelled'}`}>{state.data.enabled ? 'ENABLED' : 'DISABLED'}</span>
            {state.data.createdAt && <span class="muted small"> · created {formatTime(state.data.createdAt, zone)}</span>}
            {state.data.rotatedAt && <span class="muted small"> · secret rotated {formatTime(state.data.rotatedAt, zone)}</span>}
          </p>
          {state.data.enabled && <CopyField label="Delivery URL (POST, signed)" value={issued ? new URL(issued.url, window.location.origin).href : url} />}
          <p class="muted small">
            Senders sign each body with the secret: <code>Stepwise-Timestamp</code> and <code>Stepwise-Signature: v1=&lt;HMAC-SHA256&gt;</code> (see the
            API reference). The body becomes the run's input.
          </p>
          {issued && (
            <ShownOnce title="Webhook secret" label="Webhook secret" value={issued.secret} onDone={() => setIssued(null)}>
              <p class="small">The previous secret, if there was one, is refused from now on.</p>
            </ShownOnce>
          )}
          {canManage && (
            <div class="toolbar">
              {!state.data.enabled ? (
                <button type="button" class="primary" onClick={enable} disabled={m.busy}>
                  Enable webhook
                </button>
              ) : (
                <>
                  <button type="button" onClick={() => (m.clear(), setConfirm('rotate'))}>
                    Rotate secret
                  </button>
                  <button type="button" onClick={() => (m.clear(), setConfirm('disable'))}>
                    Disable webhook
                  </button>
                </>
              )}
            </div>
          )}
          {!confirm && <FormError error={m.error} />}
        </div>
      )}
      <h2>Last deliveries</h2>
      {deliveries.error ? (
        <ErrorBox error={deliveries.error} what="the runs started by the webhook" onRetry={deliveries.reload} />
      ) : !deliveries.data ? (
        <Loading what="deliveries" />
      ) : deliveries.data.items.length === 0 ? (
        <p class="muted">No runs started by the webhook in the runs list's default time window.</p>
      ) : (
        <JobTable jobs={deliveries.data.items} caption="Runs started by the webhook" />
      )}
      {confirm && (
        <ConfirmDialog
          title={confirm === 'rotate' ? 'Rotate the webhook secret' : 'Disable the webhook'}
          confirmLabel={confirm === 'rotate' ? 'Rotate secret' : 'Disable webhook'}
          danger
          busy={m.busy}
          onConfirm={confirmed}
          onCancel={() => setConfirm(null)}
        >
          <p>
            {confirm === 'rotate'
              ? 'A new secret replaces the current one at once: senders using the old secret get 401 until they are given the new one.'
              : 'Deliveries are refused (401) until the webhook is enabled again, which issues a new secret.'}
          </p>
          <FormError error={m.error} />
        </ConfirmDialog>
      )}
    </section>
  );
}
