import { ValidationError } from '../../errors/index.js';
import {
  MAX_SEARCH_KEY_LENGTH,
  MAX_SEARCH_KEYS,
  SEARCH_KEY_PATTERN,
  type WorkflowDefinition,
} from '../../model/definition.js';

/**
 * `searchKeys` at a definition's top level: input paths whose scalar values
 * are indexed when a run starts (store/search-keys.ts) so the runs list can
 * find runs by them. The schema checks each path's shape; the count and
 * duplicates are checked here so the error names the offending entry and the
 * limit rather than the whole array.
 */
export const searchKeysProperty = {
  searchKeys: {
    type: 'array',
    description: `input paths indexed for the runs list's search (at most ${MAX_SEARCH_KEYS}, each unique)`,
    items: { type: 'string', maxLength: MAX_SEARCH_KEY_LENGTH, pattern: SEARCH_KEY_PATTERN },
  },
} as const;

export function checkSearchKeys(definition: WorkflowDefinition): void {
  const keys = definition.searchKeys;
  if (!keys) return;
  if (keys.length > MAX_SEARCH_KEYS) {
    const path = `/definition/searchKeys/${MAX_SEARCH_KEYS}`;
    throw new ValidationError(`${path} is one search key too many: a workflow declares at most ${MAX_SEARCH_KEYS}`, {
      path,
      limit: MAX_SEARCH_KEYS,
    });
  }
  const seen = new Map<string, number>();
  keys.forEach((key, i) => {
    const prior = seen.get(key);
    if (prior !== undefined) {
      const path = `/definition/searchKeys/${i}`;
      throw new ValidationError(`${path} "${key}" is already listed at /definition/searchKeys/${prior}`, { path });
    }
    seen.set(key, i);
  });
  // Searching by a value answers "is there a run with this value" without reading a run, so nothing
  // would audit it: a PHI path (or a path inside or around one) is never a search key.
  const phi = definition.phi ?? [];
  keys.forEach((key, i) => {
    const overlap = phi.find((p) => p === key || key.startsWith(`${p}.`) || p.startsWith(`${key}.`));
    if (overlap !== undefined) {
      const path = `/definition/searchKeys/${i}`;
      throw new ValidationError(`${path} "${key}" overlaps the PHI path "${overlap}": PHI is never a search key (a search is not audited)`, {
        path,
        phi: overlap,
      });
    }
  });
}
