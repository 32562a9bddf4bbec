import { api } from '../../api.js';
import { ErrorBox } from '../../components/error-box.js';
import { Link } from '../../components/link.js';
import { Loading } from '../../components/loading.js';
import { useQuery, useTitle } from '../../hooks.js';
import { type Location } from '../../router.js';
import { useCan } from '../../session.js';
import { formatTime, useZone } from '../../time.js';
import { DefinitionTab } from './definition-tab.js';
import { RecentRunsTab } from './recent-runs-tab.js';
import { RunTab } from './run-tab.js';
import { SchedulesTab } from './schedules-tab.js';
import { withQuery } from './query.js';
import type { Workflow } from './types.js';
import { WebhookTab } from './webhook-tab.js';

const TABS = [
  { id: 'definition', label: 'Definition' },
  { id: 'run', label: 'Run now' },
  { id: 'schedules', label: 'Schedules' },
  { id: 'webhook', label: 'Webhook' },
  { id: 'runs', label: 'Recent runs' },
] as const;
type TabId = (typeof TABS)[number]['id'];

export function WorkflowPage(props: { workflowId: string; loc: Location }) {
  const zone = useZone();
  const canRun = useCan('runWorkflows');
  const wf = useQuery((signal) => api<Workflow>(`/v1/workflows/${encodeURIComponent(props.workflowId)}`, { signal }), [props.workflowId]);
  useTitle(wf.data?.name ?? 'Workflow');
  const tabs = TABS.filter((t) => t.id !== 'run' || canRun);
  const asked = props.loc.query.get('tab');
  const tab: TabId = tabs.some((t) => t.id === asked) ? (asked as TabId) : 'definition';

  if (wf.error) {
    return (
      <div>
        <p>
          <Link href="/workflows">← Workflows</Link>
        </p>
        <ErrorBox error={wf.error} what="the workflow" onRetry={wf.reload} />
      </div>
    );
  }
  if (!wf.data) return <Loading what="the workflow" />;
  const w = wf.data;
  return (
    <div class="workflow-page">
      <p class="crumbs">
        <Link href="/workflows">← Workflows</Link>
      </p>
      <header class="wf-header">
        <h1>
          {w.name} <span class={`badge wf-${w.status.toLowerCase()}`}>{w.status}</span>
        </h1>
        <p class="muted small">
          Version {w.version} · updated <span class="mono">{formatTime(w.updatedAt, zone)}</span> · id <span class="mono">{w.id}</span>
          {w.category ? ` · ${w.category}` : ''}
          {' · '}
          <Link href={`/runs?workflowId=${w.id}`}>Runs</Link>
          {' · '}
          <Link href={`/analytics?workflowId=${w.id}`}>Analytics</Link>
        </p>
        {w.description && <p>{w.description}</p>}
      </header>
      <nav class="tabs" aria-label="Workflow sections">
        {tabs.map((t) => (
          <Link key={t.id} href={withQuery(props.loc, { tab: t.id === 'definition' ? null : t.id })} aria-current={t.id === tab ? 'page' : undefined}>
            {t.label}
          </Link>
        ))}
      </nav>
      {tab === 'definition' && <DefinitionTab workflow={w} loc={props.loc} />}
      {tab === 'run' && <RunTab workflow={w} />}
      {tab === 'schedules' && <SchedulesTab workflow={w} />}
      {tab === 'webhook' && <WebhookTab workflow={w} />}
      {tab === 'runs' && <RecentRunsTab workflow={w} />}
    </div>
  );
}
