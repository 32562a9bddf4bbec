import type { Location } from '../../router.js';

/** The same page with some query parameters changed (null or '' removes one); the rest are kept. */
export function withQuery(loc: Location, changes: Record<string, string | null>): string {
  const params = new URLSearchParams(loc.query);
  for (const [k, v] of Object.entries(changes)) {
    if (v === null || v === '') params.delete(k);
    else params.set(k, v);
  }
  const qs = params.toString();
  return `${loc.path}${qs ? `?${qs}` : ''}`;
}
