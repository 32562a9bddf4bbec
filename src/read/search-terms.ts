import { ValidationError } from '../errors/index.js';
import { MAX_SEARCH_KEY_LENGTH, MAX_SEARCH_VALUE_LENGTH, SEARCH_KEY_PATTERN } from '../model/definition.js';
import type { SearchTerm } from './dashboard.js';

/** Most search terms one list, count or bulk filter may combine. */
export const MAX_SEARCH_TERMS = 5;

const KEY = new RegExp(SEARCH_KEY_PATTERN);

/**
 * Parse `path:value` search terms (split at the first ':'): the path must
 * look like a search key (`input.memberId`), the value 1–200 characters (the
 * longest value that is ever indexed), at most MAX_SEARCH_TERMS terms.
 * `path` names the field in errors (`/querystring/search`, `/body/filter/search`).
 */
export function parseSearchTerms(values: readonly string[] | undefined, path: string): SearchTerm[] | undefined {
  if (!values || values.length === 0) return undefined;
  if (values.length > MAX_SEARCH_TERMS) {
    throw new ValidationError(`${path} has ${values.length} terms; at most ${MAX_SEARCH_TERMS}`, { path, limit: MAX_SEARCH_TERMS });
  }
  return values.map((text, i) => {
    const at = `${path}/${i}`;
    const colon = text.indexOf(':');
    const key = colon < 0 ? text : text.slice(0, colon);
    if (colon < 0 || !KEY.test(key) || key.length > MAX_SEARCH_KEY_LENGTH) {
      throw new ValidationError(`${at} must be <search key>:<value>, the key like input.memberId (input and .segments of A-Z a-z 0-9 _ -)`, {
        path: at,
      });
    }
    const value = text.slice(colon + 1);
    if (value.length < 1 || value.length > MAX_SEARCH_VALUE_LENGTH) {
      throw new ValidationError(`${at} value must be 1 to ${MAX_SEARCH_VALUE_LENGTH} characters`, {
        path: at,
        limit: MAX_SEARCH_VALUE_LENGTH,
      });
    }
    return { key, value };
  });
}
