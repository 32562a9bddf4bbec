import { useState } from 'preact/hooks';
import { api, ApiError } from '../../api.js';
import { ConfirmDialog } from '../../components/confirm-dialog.js';
import { navigate } from '../../router.js';
import { hasMasked } from './json-view.js';
import { RETRYABLE, TERMINAL, type ApprovalJson, type JobJson } from './data.js';

type Dialog =
  | { kind: 'cancel' }
  | { kind: 'signal' }
  | { kind: 'retry'; from: 'failed-step' | 'start' }
  | { kind: 'retry-input' }
  | { kind: 'decide'; approval: ApprovalJson; decision: 'approve' | 'reject' };

function message(err: unknown): string {
  if (err instanceof ApiError) return `${err.message} (${err.code})`;
  return err instanceof Error ? err.message : String(err);
}

/** A JSON text → the value, or the parse error to show. */
export function parseJson(text: string): { ok: true; value: unknown } | { ok: false; error: string } {
  if (text.trim() === '') return { ok: true, value: undefined };
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (err) {
    return { ok: false, error: `Not valid JSON: ${(err as Error).message}` };
  }
}

/**
 * The run's actions, for MEMBER and above (the caller decides; a VIEWER gets
 * none): cancel, signal, the three retries, and decisions on approvals that
 * wait for this user. Each confirms, shows the server's refusal inline, and
 * a retry opens the new run.
 */
export function RunActions(props: { job: JobJson; approvals: readonly ApprovalJson[]; onChanged: () => void }) {
  const { job } = props;
  const [dialog, setDialog] = useState<Dialog | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [signalName, setSignalName] = useState('');
  const [signalPayload, setSignalPayload] = useState('');
  const [input, setInput] = useState('');
  const [comment, setComment] = useState('');

  const open = (d: Dialog) => {
    setError(null);
    setBusy(false);
    if (d.kind === 'retry-input') setInput(JSON.stringify(job.input ?? {}, null, 2));
    if (d.kind === 'decide') setComment('');
    setDialog(d);
  };
  const close = () => {
    if (!busy) setDialog(null);
  };

  const run = async (action: () => Promise<void>) => {
    setBusy(true);
    setError(null);
    try {
      await action();
    } catch (err) {
      setError(message(err));
      setBusy(false);
    }
  };

  const retry = (body: Record<string, unknown>) =>
    run(async () => {
      const created = await api<{ jobId: string }>(`/v1/jobs/${job.id}/retry`, { method: 'POST', body });
      setDialog(null);
      navigate(`/runs/${created.jobId}`);
    });

  const confirm = () => {
    if (!dialog) return;
    switch (dialog.kind) {
      case 'cancel':
        return run(async () => {
          await api(`/v1/jobs/${job.id}/cancel`, { method: 'POST' });
          setDialog(null);
          props.onChanged();
        });
      case 'signal': {
        if (!/^[A-Za-z0-9_.:-]{1,100}$/.test(signalName)) {
          setError('The signal name is 1–100 letters, digits or _ . : -');
          return;
        }
        const payload = parseJson(signalPayload);
        if (!payload.ok) return setError(payload.error);
        return run(async () => {
          await api(`/v1/jobs/${job.id}/signals/${encodeURIComponent(signalName)}`, {
            method: 'POST',
            body: payload.value === undefined ? {} : { payload: payload.value },
          });
          setDialog(null);
          props.onChanged();
        });
      }
      case 'retry':
        return retry({ from: dialog.from });
      case 'retry-input': {
        const parsed = parseJson(input);
        if (!parsed.ok) return setError(parsed.error);
        if (parsed.value === null || typeof parsed.value !== 'object' || Array.isArray(parsed.value)) {
          return setError('The input must be a JSON object.');
        }
        return retry({ from: 'start', input: parsed.value });
      }
      case 'decide':
        return run(async () => {
          await api(`/v1/approvals/${dialog.approval.id}/decision`, {
            method: 'POST',
            body: { decision: dialog.decision, ...(comment.trim() ? { comment: comment.trim() } : {}) },
          });
          setDialog(null);
          props.onChanged();
        });
    }
  };

  const finished = TERMINAL.has(job.status);
  const retryable = RETRYABLE.has(job.status);
  const inputMasked = hasMasked(job.input);
  const errorLine = error && (
    <p class="form-error" role="alert">
      {error}
    </p>
  );

  return (
    <div class="run-actions" role="group" aria-label="Run actions">
      {props.approvals.map((a) => (
        <span class="approval-chip" key={a.id}>
          <span class="muted small" title={a.stepPath}>
            Approval: {a.title}
          </span>
          <button type="button" class="small primary" onClick={() => open({ kind: 'decide', approval: a, decision: 'approve' })}>
            Approve
          </button>
          <button type="button" class="small" onClick={() => open({ kind: 'decide', approval: a, decision: 'reject' })}>
            Reject
          </button>
        </span>
      ))}
      {!finished && (
        <>
          <button type="button" class="small" onClick={() => open({ kind: 'signal' })}>
            Send signal
          </button>
          <button type="button" class="small" disabled={!!job.cancelRequestedAt} onClick={() => open({ kind: 'cancel' })}>
            {job.cancelRequestedAt ? 'Cancelling…' : 'Cancel run'}
          </button>
        </>
      )}
      {retryable && (
        <>
          {job.status === 'FAILED' && (
            <button type="button" class="small primary" onClick={() => open({ kind: 'retry', from: 'failed-step' })}>
              Retry from failed step
            </button>
          )}
          <button type="button" class="small" onClick={() => open({ kind: 'retry', from: 'start' })}>
            Retry from start
          </button>
          <button type="button" class="small" onClick={() => open({ kind: 'retry-input' })}>
            Retry with edited input
          </button>
        </>
      )}

      {dialog?.kind === 'cancel' && (
        <ConfirmDialog title={`Cancel run #${job.runNumber}?`} confirmLabel="Cancel run" danger busy={busy} onConfirm={confirm} onCancel={close}>
          <p>The run stops at its current step; compensations run if the workflow has them.</p>
          {errorLine}
        </ConfirmDialog>
      )}
      {dialog?.kind === 'signal' && (
        <ConfirmDialog title={`Send a signal to run #${job.runNumber}`} confirmLabel="Send signal" busy={busy} onConfirm={confirm} onCancel={close}>
          <div class="form-stack">
            <label>
              Signal name
              <input value={signalName} onInput={(e) => setSignalName((e.target as HTMLInputElement).value)} placeholder="approved" required />
            </label>
            <label>
              Payload (JSON, optional)
              <textarea rows={6} value={signalPayload} onInput={(e) => setSignalPayload((e.target as HTMLTextAreaElement).value)} placeholder='{"ok": true}' />
            </label>
          </div>
          {errorLine}
        </ConfirmDialog>
      )}
      {dialog?.kind === 'retry' && (
        <ConfirmDialog
          title={dialog.from === 'start' ? `Retry run #${job.runNumber} from the start?` : `Retry run #${job.runNumber} from the failed step?`}
          confirmLabel={dialog.from === 'start' ? 'Retry from start' : 'Retry from failed step'}
          busy={busy}
          onConfirm={confirm}
          onCancel={close}
        >
          <p>
            {dialog.from === 'start'
              ? 'A new run starts with the same input and runs every step again.'
              : `A new run starts at ${job.error?.step ? `step ${job.error.step}` : 'the failed step'}, reusing the outputs of the steps that completed.`}{' '}
            You are taken to it.
          </p>
          {errorLine}
        </ConfirmDialog>
      )}
      {dialog?.kind === 'retry-input' && (
        <ConfirmDialog title={`Retry run #${job.runNumber} with edited input`} confirmLabel="Retry with this input" busy={busy} onConfirm={confirm} onCancel={close}>
          {inputMasked && (
            <p class="notice">
              The input holds masked PHI values (‹masked›). Reveal PHI first to edit the real input, or replace them here.
            </p>
          )}
          <label class="block-label">
            Input (JSON object)
            <textarea rows={14} value={input} spellcheck={false} onInput={(e) => setInput((e.target as HTMLTextAreaElement).value)} />
          </label>
          <p class="muted small">A new run starts from the start with this input; every step runs again.</p>
          {errorLine}
        </ConfirmDialog>
      )}
      {dialog?.kind === 'decide' && (
        <ConfirmDialog
          title={`${dialog.decision === 'approve' ? 'Approve' : 'Reject'}: ${dialog.approval.title}`}
          confirmLabel={dialog.decision === 'approve' ? 'Approve' : 'Reject'}
          danger={dialog.decision === 'reject'}
          busy={busy}
          onConfirm={confirm}
          onCancel={close}
        >
          <p>
            Run #{job.runNumber} waits at <code>{dialog.approval.stepPath ?? 'its approval step'}</code>
            {dialog.approval.required > 1 ? ` for ${dialog.approval.required} approvals (${dialog.approval.approvals ?? 0} so far)` : ''}.
          </p>
          <label class="block-label">
            Comment (optional)
            <textarea rows={3} value={comment} onInput={(e) => setComment((e.target as HTMLTextAreaElement).value)} />
          </label>
          {errorLine}
        </ConfirmDialog>
      )}
    </div>
  );
}
