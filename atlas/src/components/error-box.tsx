import type { ApiError } from '../api.js';

/**
 * A failed load, said plainly: what failed, the server's code and message,
 * and a way to try again. Lists show this instead of an empty table, so a
 * timed-out query is never mistaken for "no results".
 */
export function ErrorBox(props: { error: ApiError; what?: string; onRetry?: () => void }) {
  const { error, what, onRetry } = props;
  const title =
    error.status === 404 ? 'Not found' : error.code === 'QUERY_TIMEOUT' ? 'The query took too long' : `Could not load ${what ?? 'this'}`;
  return (
    <div class="error-box" role="alert">
      <strong>{title}</strong>
      <p>
        {error.message} <code>{error.code}</code>
      </p>
      {onRetry && (
        <button type="button" onClick={onRetry}>
          Try again
        </button>
      )}
    </div>
  );
}
