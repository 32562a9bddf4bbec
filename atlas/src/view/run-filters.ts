/**
 * The runs list's filters and the address bar: every filter lives in the
 * URL (bookmark it, share it, reload it), so this is the one place that
 * reads and writes that query string. Pure (no DOM) so it is unit-tested.
 *
 * URL parameters (canonical order, defaults left out):
 *   status=FAILED&status=TIMED_OUT   statuses (repeat or comma list when read)
 *   workflowId, clientId             uuids
 *   initiatorType                    MANUAL | SCHEDULE | …
 *   errorCode                        1–100 characters
 *   window=1h|24h|30d                the time window back from now (7d, the default, is left out)
 *   from, to                         a custom window instead (ISO date-times, `to` exclusive)
 *   search=input.memberId:M-123      business fields (repeat; all must match)
 * Unknown parameters are ignored and invalid values dropped, so an old or
 * hand-edited link still opens a sensible list.
 */

export const JOB_STATUSES = ['PENDING', 'RUNNING', 'WAITING', 'COMPLETED', 'PARTIAL_SUCCESS', 'FAILED', 'CANCELLED', 'TIMED_OUT'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];
export const INITIATOR_TYPES = ['MANUAL', 'SCHEDULE', 'WEBHOOK', 'API', 'RETRY', 'PARENT'] as const;
export type InitiatorType = (typeof INITIATOR_TYPES)[number];

/** Relative windows offered, and how long each is. */
export const WINDOW_PRESETS = { '1h': 3_600_000, '24h': 86_400_000, '7d': 7 * 86_400_000, '30d': 30 * 86_400_000 } as const;
export type WindowPreset = keyof typeof WINDOW_PRESETS;
/** The bounded default: a list over all time would be slow and rarely what anyone wants. */
export const DEFAULT_WINDOW: WindowPreset = '7d';

export type TimeWindow = { preset: WindowPreset } | { from: string | null; to: string | null };

export interface SearchTerm {
  key: string;
  value: string;
}

export interface RunFilters {
  statuses: JobStatus[];
  workflowId: string | null;
  clientId: string | null;
  initiatorType: InitiatorType | null;
  errorCode: string | null;
  window: TimeWindow;
  search: SearchTerm[];
}

/** The server's limits (src/read/search-terms.ts, src/model/definition.ts). */
export const MAX_SEARCH_TERMS = 5;
export const MAX_SEARCH_VALUE_LENGTH = 200;
export const MAX_SEARCH_KEY_LENGTH = 200;
export const MAX_ERROR_CODE_LENGTH = 100;
const SEARCH_KEY = /^input(\.[A-Za-z0-9_-]+)+$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** A date-time the API accepts: an ISO date and time with an offset or Z. */
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/;

export function emptyFilters(): RunFilters {
  return { statuses: [], workflowId: null, clientId: null, initiatorType: null, errorCode: null, window: { preset: DEFAULT_WINDOW }, search: [] };
}

export function isSearchKey(key: string): boolean {
  return key.length <= MAX_SEARCH_KEY_LENGTH && SEARCH_KEY.test(key);
}

/** A valid search term, or null. */
export function parseSearchTerm(text: string): SearchTerm | null {
  const colon = text.indexOf(':');
  if (colon < 0) return null;
  const key = text.slice(0, colon);
  const value = text.slice(colon + 1);
  if (!isSearchKey(key) || value.length < 1 || value.length > MAX_SEARCH_VALUE_LENGTH) return null;
  return { key, value };
}

/** A date-time as the canonical ISO string, or null when it is not one. */
function isoOf(text: string | null): string | null {
  if (text === null || !DATE_TIME.test(text)) return null;
  const d = new Date(text);
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
}

function isPreset(value: string | null): value is WindowPreset {
  return value !== null && Object.prototype.hasOwnProperty.call(WINDOW_PRESETS, value);
}

export function filtersFromQuery(query: URLSearchParams): RunFilters {
  const f = emptyFilters();
  const statuses = new Set(query.getAll('status').flatMap((s) => s.split(',')));
  f.statuses = JOB_STATUSES.filter((s) => statuses.has(s));
  const workflowId = query.get('workflowId');
  if (workflowId && UUID.test(workflowId)) f.workflowId = workflowId.toLowerCase();
  const clientId = query.get('clientId');
  if (clientId && UUID.test(clientId)) f.clientId = clientId.toLowerCase();
  const initiator = query.get('initiatorType');
  if (initiator && (INITIATOR_TYPES as readonly string[]).includes(initiator)) f.initiatorType = initiator as InitiatorType;
  const errorCode = query.get('errorCode');
  if (errorCode && errorCode.length <= MAX_ERROR_CODE_LENGTH) f.errorCode = errorCode;

  const from = isoOf(query.get('from'));
  const to = isoOf(query.get('to'));
  const preset = query.get('window');
  if ((from || to) && !(from && to && from >= to)) f.window = { from, to };
  else if (isPreset(preset)) f.window = { preset };

  const seen = new Set<string>();
  for (const text of query.getAll('search')) {
    const term = parseSearchTerm(text);
    if (!term || seen.has(term.key) || f.search.length >= MAX_SEARCH_TERMS) continue;
    seen.add(term.key);
    f.search.push(term);
  }
  return f;
}

export function queryFromFilters(f: RunFilters): URLSearchParams {
  const q = new URLSearchParams();
  for (const s of JOB_STATUSES) if (f.statuses.includes(s)) q.append('status', s);
  if (f.workflowId) q.set('workflowId', f.workflowId);
  if (f.clientId) q.set('clientId', f.clientId);
  if (f.initiatorType) q.set('initiatorType', f.initiatorType);
  if (f.errorCode) q.set('errorCode', f.errorCode);
  if ('preset' in f.window) {
    if (f.window.preset !== DEFAULT_WINDOW) q.set('window', f.window.preset);
  } else {
    if (f.window.from) q.set('from', f.window.from);
    if (f.window.to) q.set('to', f.window.to);
  }
  for (const t of f.search) q.append('search', `${t.key}:${t.value}`);
  return q;
}

/** The window as absolute bounds at `now` (`to` exclusive; null = open). */
export function windowBounds(w: TimeWindow, now: Date): { from: Date | null; to: Date | null } {
  if ('preset' in w) return { from: new Date(now.getTime() - WINDOW_PRESETS[w.preset]), to: null };
  return { from: w.from ? new Date(w.from) : null, to: w.to ? new Date(w.to) : null };
}

/** The filter as GET /v1/jobs (and /v1/jobs/count) parameters; a relative window is fixed at `now`. */
export function apiQueryFromFilters(f: RunFilters, now: Date): Record<string, string | string[]> {
  const q: Record<string, string | string[]> = {};
  if (f.statuses.length > 0) q.status = [...f.statuses];
  if (f.workflowId) q.workflowId = f.workflowId;
  if (f.clientId) q.clientId = f.clientId;
  if (f.initiatorType) q.initiatorType = f.initiatorType;
  if (f.errorCode) q.errorCode = f.errorCode;
  const { from, to } = windowBounds(f.window, now);
  if (from) q.createdFrom = from.toISOString();
  if (to) q.createdTo = to.toISOString();
  if (f.search.length > 0) q.search = f.search.map((t) => `${t.key}:${t.value}`);
  return q;
}

/** The same filter as the `filter` of POST /v1/jobs/bulk. */
export function bulkFilterFromFilters(f: RunFilters, now: Date): Record<string, string | string[]> {
  return apiQueryFromFilters(f, now);
}

/** Does anything narrow the list beyond the time window? */
export function hasFilters(f: RunFilters): boolean {
  return f.statuses.length > 0 || !!f.workflowId || !!f.clientId || !!f.initiatorType || !!f.errorCode || f.search.length > 0;
}

/** "the last 7 days", "from … to …" — what an empty result names. */
export function describeWindow(w: TimeWindow, format: (iso: string) => string): string {
  if ('preset' in w) {
    return { '1h': 'the last hour', '24h': 'the last 24 hours', '7d': 'the last 7 days', '30d': 'the last 30 days' }[w.preset];
  }
  if (w.from && w.to) return `${format(w.from)} – ${format(w.to)}`;
  if (w.from) return `since ${format(w.from)}`;
  return `before ${format(w.to ?? '')}`;
}

/**
 * A `datetime-local` input's value (`2026-03-04T05:06`) as an ISO instant, in
 * UTC or in the browser's zone (`offsetMinutes` = Date#getTimezoneOffset
 * at that time, passed in to keep this pure). Null when it is not one.
 */
export function isoFromInput(value: string, zone: 'utc' | 'local', offsetMinutes: (utcGuess: Date) => number): string | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?$/.exec(value);
  if (!m) return null;
  const utcMs = Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, m[6] ? +m[6] : 0);
  if (Number.isNaN(utcMs)) return null;
  if (zone === 'utc') return new Date(utcMs).toISOString();
  // Local wall time → instant: shift by the zone's offset at (about) that time.
  const guess = new Date(utcMs);
  return new Date(utcMs + offsetMinutes(guess) * 60_000).toISOString();
}

/** An ISO instant as a `datetime-local` input's value in UTC or the browser's zone. */
export function inputFromIso(iso: string | null, zone: 'utc' | 'local', offsetMinutes: (at: Date) => number): string {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const shifted = zone === 'utc' ? d : new Date(d.getTime() - offsetMinutes(d) * 60_000);
  return shifted.toISOString().slice(0, 16);
}
