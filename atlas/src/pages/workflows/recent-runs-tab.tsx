import { api } from '../../api.js';
import { ErrorBox } from '../../components/error-box.js';
import { Link } from '../../components/link.js';
import { Loading } from '../../components/loading.js';
import { useQuery } from '../../hooks.js';
import { JobTable } from './job-table.js';
import type { JobRow, Page, Workflow } from './types.js';

export function RecentRunsTab(props: { workflow: Workflow }) {
  const w = props.workflow;
  const runs = useQuery((signal) => api<Page<JobRow>>('/v1/jobs', { query: { workflowId: w.id, limit: 15, phi: 'mask' }, signal }), [w.id]);
  return (
    <section aria-label="Recent runs">
      <p>
        <Link href={`/runs?workflowId=${w.id}`}>All runs of {w.name} →</Link>
      </p>
      {runs.error ? (
        <ErrorBox error={runs.error} what="the runs" onRetry={runs.reload} />
      ) : !runs.data ? (
        <Loading what="runs" />
      ) : runs.data.items.length === 0 ? (
        <p class="muted">No runs yet in the runs list's default time window.</p>
      ) : (
        <JobTable jobs={runs.data.items} caption={`Recent runs of ${w.name}`} />
      )}
    </section>
  );
}
