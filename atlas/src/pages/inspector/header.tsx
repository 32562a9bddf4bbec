import type { ComponentChildren } from 'preact';
import { Link } from '../../components/link.js';
import { StatusBadge } from '../../components/status-badge.js';
import { formatDuration, formatTime, useZone } from '../../time.js';
import type { JobJson, JobListItemJson } from './data.js';

function Fact(props: { label: string; children: ComponentChildren }) {
  return (
    <div class="fact">
      <dt>{props.label}</dt>
      <dd>{props.children}</dd>
    </div>
  );
}

/** The run's name, status, badges, timing, people and links; the actions and PHI controls come in as children. */
export function RunHeader(props: {
  job: JobJson;
  item: JobListItemJson | null | undefined;
  workflowName: string | undefined;
  archived: boolean;
  phiMasked: boolean;
  revealed: boolean;
  retriedAs: readonly JobListItemJson[];
  now: number;
  phiControl: ComponentChildren;
  actions: ComponentChildren;
}) {
  const zone = useZone();
  const { job } = props;
  const name = props.item?.workflowName ?? props.workflowName ?? 'Run';
  const started = job.startedAt ?? null;
  const running = !job.completedAt && started;
  const duration = job.durationMs ?? (running ? props.now - Date.parse(started) : null);
  return (
    <header class="run-head">
      <div class="run-title">
        <h1>
          <Link href={`/workflows/${job.workflowId}`} title="Open the workflow">
            {name}
          </Link>{' '}
          <span class="run-no">#{job.runNumber}</span>
        </h1>
        <StatusBadge status={job.status} />
        {props.archived && (
          <span class="badge badge-archived" title="Some of this run's stream was read back from the archive">
            Archived
          </span>
        )}
        {props.phiMasked && !props.revealed && (
          <span class="badge badge-phi" title="Protected values are masked">
            PHI masked
          </span>
        )}
        {props.revealed && (
          <span class="badge badge-revealed" title="Protected values are shown; each read is audited">
            PHI revealed
          </span>
        )}
        {props.phiControl}
        <div class="run-title-end">{props.actions}</div>
      </div>
      <dl class="run-meta">
        <Fact label="Started">{formatTime(started ?? job.createdAt, zone, { ms: true })}</Fact>
        <Fact label="Ended">{job.completedAt ? formatTime(job.completedAt, zone, { ms: true }) : <span class="muted">running</span>}</Fact>
        <Fact label="Duration">{formatDuration(duration)}</Fact>
        <Fact label="Steps">
          {job.stepsCompleted ?? 0} / {job.stepsTotal ?? 0}
        </Fact>
        <Fact label="Initiator">
          {(job.initiatorType ?? '').toLowerCase() || '—'}
          {job.initiatedBy ? <span class="muted mono small" title={job.initiatedBy}> {job.initiatedBy.slice(0, 8)}</span> : null}
        </Fact>
        <Fact label="Client">{props.item?.clientName ?? (job.clientId ? <span class="mono small">{job.clientId.slice(0, 8)}</span> : '—')}</Fact>
        {job.retryOfJobId && (
          <Fact label="Retry of">
            <Link href={`/runs/${job.retryOfJobId}`}>previous run</Link>
          </Fact>
        )}
        {props.retriedAs.length > 0 && (
          <Fact label="Retried as">
            {props.retriedAs.map((r, i) => (
              <>
                {i > 0 && ', '}
                <Link key={r.id} href={`/runs/${r.id}`}>
                  #{r.runNumber}
                </Link>{' '}
                <span class={`status-${r.status.toLowerCase()} small`}>{r.status.toLowerCase()}</span>
              </>
            ))}
          </Fact>
        )}
        {job.parentJobId && (
          <Fact label="Parent">
            <Link href={`/runs/${job.parentJobId}${job.parentStepPath ? `?step=${encodeURIComponent(job.parentStepPath)}` : ''}`}>parent run</Link>
            {job.parentStepPath && <span class="muted mono small"> {job.parentStepPath}</span>}
          </Fact>
        )}
        <Fact label="Run id">
          <span class="mono small">{job.id}</span>
        </Fact>
      </dl>
      {job.error && (
        <div class="run-error" role="note">
          <strong>{job.error.code}</strong> {job.error.message}
          {job.error.step && <span class="muted"> · at step <code>{job.error.step}</code></span>}
        </div>
      )}
    </header>
  );
}
