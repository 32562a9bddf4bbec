import { Link } from '../../components/link.js';
import { StatusBadge } from '../../components/status-badge.js';
import { formatDuration, formatTime, useZone } from '../../time.js';
import type { JobRow } from './types.js';

/** A short table of runs, each linked to the inspector. */
export function JobTable(props: { jobs: JobRow[]; caption: string }) {
  const zone = useZone();
  return (
    <table class="grid">
      <caption class="sr-only">{props.caption}</caption>
      <thead>
        <tr>
          <th scope="col">Run</th>
          <th scope="col">Status</th>
          <th scope="col">Started by</th>
          <th scope="col">Created</th>
          <th scope="col" class="num">
            Duration
          </th>
          <th scope="col">Error</th>
        </tr>
      </thead>
      <tbody>
        {props.jobs.map((j) => (
          <tr key={j.id}>
            <td>
              <Link href={`/runs/${j.id}`}>#{j.runNumber}</Link>
            </td>
            <td>
              <StatusBadge status={j.status} />
            </td>
            <td>{j.initiatorType}</td>
            <td class="mono small">{formatTime(j.createdAt, zone)}</td>
            <td class="num">{formatDuration(j.durationMs)}</td>
            <td class="small">{j.error ? <code>{j.error.code}</code> : ''}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
