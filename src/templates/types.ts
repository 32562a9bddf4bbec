import type { OfficialTemplateRow } from '../store/index.js';

/**
 * An official template as code: everything the catalogue shows, the
 * definition with config placeholders (templates/config.ts), and the JSON
 * Schema of its settings. `slug` is its stable key in the table: renaming a
 * template keeps its popularity and ratings, changing the slug does not.
 */
export type OfficialTemplate = OfficialTemplateRow;

/** A credential-name setting: the names credentials may have (security/credentials.ts's rule). */
export const CREDENTIAL_NAME = { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_]{0,63}$' } as const;

/** An origin a browser step may reach: scheme, host and port, no path (engine/steps/browser.ts's rule). */
export const ORIGIN = { type: 'string', pattern: '^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?$' } as const;

/** A base URL for http steps: http(s), no trailing slash (paths are appended). */
export const BASE_URL = { type: 'string', pattern: '^https?://[^\\s/]+(/[^\\s]*[^\\s/])?$', maxLength: 2000 } as const;

/** A CSS selector a browser action waits for or acts on. */
export const SELECTOR = { type: 'string', minLength: 1, maxLength: 1000 } as const;
