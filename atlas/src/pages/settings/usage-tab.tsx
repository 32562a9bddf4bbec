import { api } from '../../api.js';
import { ErrorBox } from '../../components/error-box.js';
import { Loading } from '../../components/loading.js';
import { useQuery } from '../../hooks.js';
import type { Usage } from './types.js';

const count = (n: number) => n.toLocaleString('en-US');

function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

/** One usage figure against its plan limit: the numbers in words, and a bar (decoration; the text carries it). */
function UsageBar(props: { label: string; used: number; limit: number | null }) {
  const { used, limit } = props;
  const ratio = limit ? Math.min(1, used / limit) : 0;
  const level = !limit ? 'none' : ratio >= 1 ? 'full' : ratio >= 0.8 ? 'high' : 'ok';
  return (
    <div class="usage-row">
      <div class="usage-label">
        <strong>{props.label}</strong>
        <span>
          {count(used)} {limit === null ? 'used · no limit' : `of ${count(limit)} (${Math.round((used / limit) * 100)} %)`}
          {level === 'full' ? ' · limit reached' : level === 'high' ? ' · near the limit' : ''}
        </span>
      </div>
      <div class="usage-track" aria-hidden="true">
        {limit !== null && <div class={`usage-fill ${level}`} style={{ width: `${(ratio * 100).toFixed(1)}%` }} />}
      </div>
    </div>
  );
}

export function UsageTab() {
  const usage = useQuery((signal) => api<Usage>('/v1/usage', { query: { months: 12 }, signal }), []);
  if (usage.error) return <ErrorBox error={usage.error} what="usage" onRetry={usage.reload} />;
  if (!usage.data) return <Loading what="usage" />;
  const u = usage.data;
  return (
    <section aria-label="Usage">
      <p>
        Plan <strong>{u.plan}</strong> · this month ({u.current.period.slice(0, 7)}, UTC)
      </p>
      <div class="card usage-card">
        <UsageBar label="Runs this month" used={u.current.executions} limit={u.limits.executionsPerMonth} />
        <UsageBar label="Workflows" used={u.current.workflows} limit={u.limits.workflows} />
        <UsageBar label="Credentials" used={u.current.credentials} limit={u.limits.credentials} />
        <p class="small muted">
          Steps this month: {count(u.current.steps)} · storage: {bytes(u.current.storageBytes)} · runs at once:{' '}
          {u.limits.concurrentRuns === null ? 'no limit' : `at most ${count(u.limits.concurrentRuns)}`}
        </p>
      </div>
      <h2>History</h2>
      <table class="grid">
        <thead>
          <tr>
            <th scope="col">Month</th>
            <th scope="col" class="num">
              Runs
            </th>
            <th scope="col" class="num">
              Steps
            </th>
            <th scope="col" class="num">
              Storage
            </th>
          </tr>
        </thead>
        <tbody>
          {u.history.map((m) => (
            <tr key={m.period}>
              <td>{m.period.slice(0, 7)}</td>
              <td class="num">{count(m.executions)}</td>
              <td class="num">{count(m.steps)}</td>
              <td class="num">{bytes(m.storageBytes)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {u.history.length === 0 && <p class="muted">No usage recorded yet.</p>}
    </section>
  );
}
