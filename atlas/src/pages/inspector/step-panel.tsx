import { Link } from '../../components/link.js';
import { StatusBadge } from '../../components/status-badge.js';
import { formatDuration, formatTime, useZone } from '../../time.js';
import type { StepEvent } from '../../view/timeline-layout.js';
import type { StepJson } from '../../view/timeline-types.js';
import { JsonView } from './json-view.js';

/** The selected step: status, timing, attempts with their errors, its definition (input) and output. */
export function StepPanel(props: {
  path: string;
  step: StepJson | null;
  definition: Record<string, unknown> | undefined;
  /** The run's definition is still on its way. */
  definitionLoading: boolean;
  events: readonly StepEvent[];
  masked: boolean;
  /** The run has ended: a step still "running" in the stream has no end row. */
  runEnded: boolean;
}) {
  const zone = useZone();
  const { step } = props;
  if (!step) {
    return (
      <div class="step-panel">
        <h2>{props.path}</h2>
        <p class="muted">This step is not on the timeline (yet, or on another page of its loop).</p>
      </div>
    );
  }
  const failures = props.events.filter((e) => e.kind === 'STEP_FAILED');
  const retries = props.events.filter((e) => e.kind === 'RETRY_SCHEDULED');
  const { id: _id, type, ...config } = props.definition ?? {};
  return (
    <div class="step-panel">
      <div class="step-title">
        <h2 title={props.path}>{step.name ?? props.path}</h2>
        <StatusBadge status={props.runEnded && ['RUNNING', 'RETRYING', 'WAITING'].includes(step.status) ? 'NO_END_ROW' : step.status} />
        {type !== undefined && <span class="badge muted-badge">{String(type)}</span>}
      </div>
      {step.path && <p class="mono small muted">{step.path}</p>}
      <dl class="facts">
        <dt>Started</dt>
        <dd>{formatTime(step.startedAt ?? null, zone, { ms: true })}</dd>
        <dt>Ended</dt>
        <dd>{formatTime(step.endedAt ?? null, zone, { ms: true })}</dd>
        <dt>Duration</dt>
        <dd>{formatDuration(step.durationMs ?? null)}{step.attempts > 1 ? ' (last attempt)' : ''}</dd>
        <dt>Attempts</dt>
        <dd>{step.attempts}</dd>
        {step.branch !== undefined && (
          <>
            <dt>Branch</dt>
            <dd>{String(step.branch)}</dd>
          </>
        )}
        {step.progress && (
          <>
            <dt>Items</dt>
            <dd>
              {step.progress.total.toLocaleString('en-US')} · {step.progress.succeeded.toLocaleString('en-US')} ok · {step.progress.failed.toLocaleString('en-US')} failed
              {step.progress.running ? ` · ${step.progress.running} running` : ''}
            </dd>
          </>
        )}
        {step.childJob && (
          <>
            <dt>Child run</dt>
            <dd>
              <Link href={`/runs/${step.childJob.jobId}`}>#{step.childJob.runNumber ?? step.childJob.jobId.slice(0, 8)}</Link> {step.childJob.status ?? 'running'}
            </dd>
          </>
        )}
        {step.compensated !== undefined && (
          <>
            <dt>Compensation</dt>
            <dd>{step.compensated ? 'ran' : 'failed'}</dd>
          </>
        )}
      </dl>
      {step.error && (
        <div class="step-error" role="note">
          <strong>{step.error.code}</strong> {step.error.message}
          {step.error.path && step.error.path !== props.path && <p class="small mono">at {step.error.path}</p>}
        </div>
      )}
      {failures.length > 0 && (
        <>
          <h3>Attempts</h3>
          <ol class="attempts">
            {failures.map((f, i) => {
              const retry = retries.find((r) => r.attempt === (f.attempt ?? i + 1) + 1);
              return (
                <li key={i}>
                  <span class="status-failed">attempt {f.attempt ?? i + 1} failed</span> after {formatDuration(f.durationMs ?? null)} ·{' '}
                  <code>{f.code ?? 'ERROR'}</code> {f.message}
                  {retry && <span class="muted"> · retried after {formatDuration(retry.delayMs ?? null)}</span>}
                </li>
              );
            })}
            {step.status !== 'FAILED' && step.attempts > failures.length && (
              <li>
                attempt {step.attempts} {step.status.toLowerCase()}
              </li>
            )}
          </ol>
        </>
      )}
      <h3>Input (definition)</h3>
      {props.definition ? (
        <JsonView value={config} label="Step definition" />
      ) : (
        <p class="muted small">{props.definitionLoading ? 'Loading…' : 'The definition of this step is not available.'}</p>
      )}
      <h3>Output</h3>
      {step.output !== undefined ? (
        <JsonView value={step.output} label="Step output" />
      ) : (
        <p class="muted small">{step.status === 'COMPLETED' ? 'Not kept in the stream (too large, or none).' : 'None yet.'}</p>
      )}
      {props.masked && <p class="muted small">PHI values are masked. “Reveal PHI” shows them (the read is recorded in the audit log).</p>}
    </div>
  );
}
