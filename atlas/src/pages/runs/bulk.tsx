import { useEffect, useRef, useState } from 'preact/hooks';
import { api, ApiError } from '../../api.js';
import { ConfirmDialog } from '../../components/confirm-dialog.js';
import { ErrorBox } from '../../components/error-box.js';
import { Link } from '../../components/link.js';
import { bulkFilterFromFilters, type RunFilters } from '../../view/run-filters.js';
import { Dropdown } from './dropdown.js';
import type { JobCount, Operation } from './types.js';

/** The API's limit on ids per request; more go by filter. */
const MAX_IDS = 1000;

type Action = 'cancel' | 'retry';
type From = 'failed-step' | 'start';
type Target = { ids: string[] } | { filter: Record<string, string | string[]> };

interface Plan {
  action: Action;
  from: From | null;
  target: Target;
  count: number;
  selected: number | null;
}

const runs = (n: number) => `${n.toLocaleString('en-US')} run${n === 1 ? '' : 's'}`;
const fromText = (from: From | null) => (from === 'start' ? 'from the start' : from === 'failed-step' ? 'from the failed step' : '');

function question(p: Plan): string {
  return p.action === 'cancel' ? `Cancel ${runs(p.count)}?` : `Retry ${runs(p.count)} ${fromText(p.from)}?`;
}

function asApiError(err: unknown): ApiError {
  return err instanceof ApiError ? err : new ApiError(0, 'CLIENT_ERROR', String(err));
}

/** `1,234 runs` / `10,000+ runs`, for "Select all N runs matching this filter". */
export function countText(count: JobCount | null): string {
  if (!count) return 'runs';
  return count.capped ? `${count.count.toLocaleString('en-US')}+ runs` : runs(count.count);
}

/**
 * The selection bar and the bulk flow: a dry run counts what the action
 * would touch, a dialog asks with that count, then the operation runs on the
 * server and its progress is polled every second until it is finished.
 */
export function BulkActions(props: {
  selectedIds: string[];
  allMatching: boolean;
  loadedCount: number;
  allOnPageSelected: boolean;
  hasMore: boolean;
  count: JobCount | null;
  filters: RunFilters;
  windowText: string;
  onSelectAllMatching: () => void;
  onClear: () => void;
  onFinished: () => void;
}) {
  const [plan, setPlan] = useState<Plan | null>(null);
  const [busy, setBusy] = useState<'counting' | 'starting' | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [operation, setOperation] = useState<Operation | null>(null);
  const [pollError, setPollError] = useState<ApiError | null>(null);
  const [pollTick, setPollTick] = useState(0);
  const finishedRef = useRef<string | null>(null);
  const onFinished = useRef(props.onFinished);
  onFinished.current = props.onFinished;

  const selecting = props.allMatching || props.selectedIds.length > 0;

  const start = async (action: Action, from: From | null) => {
    setError(null);
    setNotice(null);
    if (!props.allMatching && props.selectedIds.length > MAX_IDS) {
      setError(new ApiError(400, 'TOO_MANY_SELECTED', `At most ${MAX_IDS} runs can be picked one by one; use "Select all runs matching this filter" instead.`));
      return;
    }
    // A relative window is fixed now, so the count asked about is the set acted on.
    const target: Target = props.allMatching ? { filter: bulkFilterFromFilters(props.filters, new Date()) } : { ids: [...props.selectedIds] };
    setBusy('counting');
    try {
      const body = { ...target, action, ...(from ? { from } : {}), dryRun: true };
      const { count } = await api<{ count: number }>('/v1/jobs/bulk', { method: 'POST', body });
      if (count === 0) {
        setNotice(action === 'cancel' ? 'None of these runs can be cancelled: they have all finished.' : 'None of these runs can be retried: only failed, timed-out and cancelled runs can.');
      } else {
        setPlan({ action, from, target, count, selected: 'ids' in target ? target.ids.length : null });
      }
    } catch (err) {
      setError(asApiError(err));
    } finally {
      setBusy(null);
    }
  };

  const confirm = async () => {
    if (!plan) return;
    setBusy('starting');
    setError(null);
    try {
      const body = { ...plan.target, action: plan.action, ...(plan.from ? { from: plan.from } : {}) };
      const res = await api<{ operation: Operation }>('/v1/jobs/bulk', { method: 'POST', body });
      setPlan(null);
      setPollError(null);
      setOperation(res.operation);
      props.onClear();
    } catch (err) {
      setPlan(null);
      setError(asApiError(err));
    } finally {
      setBusy(null);
    }
  };

  // Progress: poll every second until the operation is finished, then reload the list once.
  useEffect(() => {
    if (!operation) return;
    if (operation.status !== 'RUNNING') {
      if (finishedRef.current !== operation.id) {
        finishedRef.current = operation.id;
        onFinished.current();
      }
      return;
    }
    const ctrl = new AbortController();
    const t = window.setTimeout(() => {
      api<Operation>(`/v1/operations/${operation.id}`, { signal: ctrl.signal }).then(
        (op) => setOperation(op),
        (err: unknown) => {
          if ((err as Error)?.name !== 'AbortError') setPollError(asApiError(err));
        },
      );
    }, 1000);
    return () => {
      window.clearTimeout(t);
      ctrl.abort();
    };
  }, [operation, pollTick]);

  const dryRunText = (p: Plan): string => {
    const verb = p.action === 'cancel' ? 'cancelled' : 'retried';
    if (p.selected === null) {
      return p.action === 'cancel'
        ? `Every run matching this filter in ${props.windowText} that has not finished will be cancelled.`
        : `Every failed, timed-out or cancelled run matching this filter in ${props.windowText} will be retried ${fromText(p.from)}, each as a new run.`;
    }
    const part = p.count < p.selected ? `${p.count.toLocaleString('en-US')} of the ${runs(p.selected)} selected can be ${verb}; the others are left as they are.` : '';
    const how = p.action === 'cancel' ? 'Running and waiting runs stop; finished runs are not touched.' : `Each is started again ${fromText(p.from)} as a new run.`;
    return `${part} ${how}`.trim();
  };

  return (
    <>
      {selecting && (
        <div class="bulk-bar" role="region" aria-label="Selection">
          <span class="bulk-count">{props.allMatching ? `All ${countText(props.count)} matching this filter selected` : `${runs(props.selectedIds.length)} selected`}</span>
          {!props.allMatching && props.allOnPageSelected && (props.hasMore || (props.count && (props.count.capped || props.count.count > props.loadedCount))) && (
            <button type="button" class="link-button" onClick={props.onSelectAllMatching}>
              Select all {countText(props.count)} matching this filter
            </button>
          )}
          <span class="bulk-actions">
            <button type="button" onClick={() => start('cancel', null)} disabled={busy !== null}>
              Cancel runs
            </button>
            <Dropdown label="Retry runs" align="right">
              {(close) => (
                <div class="menu" role="group" aria-label="Retry runs">
                  <button type="button" onClick={() => (close(), void start('retry', 'failed-step'))} disabled={busy !== null}>
                    Retry from the failed step
                  </button>
                  <button type="button" onClick={() => (close(), void start('retry', 'start'))} disabled={busy !== null}>
                    Retry from the start
                  </button>
                </div>
              )}
            </Dropdown>
            <button type="button" class="ghost" onClick={props.onClear}>
              Clear selection
            </button>
          </span>
          {busy === 'counting' && (
            <span class="muted small" role="status">
              Counting…
            </span>
          )}
        </div>
      )}
      {notice && (
        <p class="notice" role="status">
          {notice}{' '}
          <button type="button" class="small" onClick={() => setNotice(null)}>
            OK
          </button>
        </p>
      )}
      {error && (
        <div class="bulk-error">
          <ErrorBox error={error} what="the bulk action" />
          <button type="button" class="small" onClick={() => setError(null)}>
            Dismiss
          </button>
        </div>
      )}
      {plan && (
        <ConfirmDialog
          title={question(plan)}
          confirmLabel={plan.action === 'cancel' ? `Cancel ${runs(plan.count)}` : `Retry ${runs(plan.count)}`}
          danger={plan.action === 'cancel'}
          busy={busy === 'starting'}
          onConfirm={confirm}
          onCancel={() => setPlan(null)}
        >
          <p>{dryRunText(plan)}</p>
        </ConfirmDialog>
      )}
      {operation && <OperationProgress op={operation} pollError={pollError} onRetry={() => (setPollError(null), setPollTick((t) => t + 1))} onClose={() => setOperation(null)} />}
    </>
  );
}

function OperationProgress(props: { op: Operation; pollError: ApiError | null; onRetry: () => void; onClose: () => void }) {
  const { op } = props;
  const running = op.status === 'RUNNING';
  const what = op.action === 'cancel' ? 'Cancelling runs' : `Retrying runs ${fromText(op.from)}`;
  const pct = op.total > 0 ? Math.round((op.done / op.total) * 100) : running ? 0 : 100;
  return (
    <section class={`card operation ${op.status.toLowerCase()}`} aria-label="Bulk operation" aria-live="polite">
      <div class="operation-head">
        <strong>{what}</strong>
        <span class={`badge status-${running ? 'running' : op.status === 'COMPLETED' ? 'completed' : 'failed'}`}>{running ? 'In progress' : op.status === 'COMPLETED' ? 'Finished' : 'Failed'}</span>
        {!running && (
          <button type="button" class="ghost small" onClick={props.onClose}>
            Close
          </button>
        )}
      </div>
      <div class="operation-progress">
        <progress max={Math.max(op.total, 1)} value={op.total > 0 ? op.done : running ? 0 : 1} aria-label={`${what}: ${op.done} of ${op.total} done`} />
        <span class="mono">
          {op.done.toLocaleString('en-US')}/{op.total.toLocaleString('en-US')} ({pct}%)
        </span>
        <span>
          <strong class="ok-text">{op.succeeded.toLocaleString('en-US')}</strong> succeeded
        </span>
        <span>
          <strong class={op.failed > 0 ? 'danger-text' : ''}>{op.failed.toLocaleString('en-US')}</strong> failed
        </span>
      </div>
      {props.pollError && <ErrorBox error={props.pollError} what="the operation's progress" onRetry={props.onRetry} />}
      {op.errors.length > 0 && (
        <details class="operation-errors" open={op.errors.length <= 5}>
          <summary>
            {op.errors.length} error{op.errors.length === 1 ? '' : 's'}
            {op.failed > op.errors.length ? ` (first ${op.errors.length} of ${op.failed})` : ''}
          </summary>
          <ul>
            {op.errors.map((e) => (
              <li key={e.jobId}>
                <Link href={`/runs/${e.jobId}`} class="mono">
                  {e.jobId.slice(0, 8)}
                </Link>{' '}
                <code>{e.code}</code> {e.message}
              </li>
            ))}
          </ul>
        </details>
      )}
    </section>
  );
}
