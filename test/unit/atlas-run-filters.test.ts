import { describe, expect, it } from 'vitest';
import {
  apiQueryFromFilters,
  describeWindow,
  emptyFilters,
  filtersFromQuery,
  hasFilters,
  inputFromIso,
  isoFromInput,
  queryFromFilters,
  type RunFilters,
} from '../../atlas/src/view/run-filters.js';

const WF = '0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b';
const CL = '0190a1b2-c3d4-7e5f-8a9b-ffffffffffff';

const full: RunFilters = {
  statuses: ['FAILED', 'TIMED_OUT'],
  workflowId: WF,
  clientId: CL,
  initiatorType: 'SCHEDULE',
  errorCode: 'HTTP_STATUS',
  window: { preset: '24h' },
  search: [
    { key: 'input.memberId', value: 'M-123' },
    { key: 'input.claim.id', value: 'a:b c&d=é' },
  ],
};

describe('filters ⇄ URL', () => {
  it('round-trips every filter exactly, both ways', () => {
    const q = queryFromFilters(full);
    expect(filtersFromQuery(q)).toEqual(full);
    expect(queryFromFilters(filtersFromQuery(new URLSearchParams(q.toString()))).toString()).toBe(q.toString());
    const custom: RunFilters = { ...emptyFilters(), window: { from: '2026-01-01T00:00:00.000Z', to: '2026-01-02T12:30:00.000Z' } };
    expect(filtersFromQuery(queryFromFilters(custom))).toEqual(custom);
    const openEnded: RunFilters = { ...emptyFilters(), window: { from: '2026-01-01T00:00:00.000Z', to: null } };
    expect(filtersFromQuery(queryFromFilters(openEnded))).toEqual(openEnded);
  });

  it('leaves defaults out: no filters and the 7-day window is an empty query', () => {
    expect(queryFromFilters(emptyFilters()).toString()).toBe('');
    expect(filtersFromQuery(new URLSearchParams())).toEqual(emptyFilters());
    expect(queryFromFilters({ ...emptyFilters(), window: { preset: '7d' } }).toString()).toBe('');
    expect(hasFilters(emptyFilters())).toBe(false);
    expect(hasFilters(full)).toBe(true);
  });

  it('writes a readable, canonical query string', () => {
    expect(queryFromFilters(full).toString()).toBe(
      `status=FAILED&status=TIMED_OUT&workflowId=${WF}&clientId=${CL}&initiatorType=SCHEDULE&errorCode=HTTP_STATUS&window=24h` +
        '&search=input.memberId%3AM-123&search=input.claim.id%3Aa%3Ab+c%26d%3D%C3%A9',
    );
  });

  it('reads comma lists and repeats of status, in canonical order, without duplicates', () => {
    const f = filtersFromQuery(new URLSearchParams('status=TIMED_OUT,FAILED&status=FAILED&status=RUNNING'));
    expect(f.statuses).toEqual(['RUNNING', 'FAILED', 'TIMED_OUT']);
  });

  it('ignores unknown parameters and drops invalid values', () => {
    const f = filtersFromQuery(
      new URLSearchParams(
        'foo=bar&status=NOPE&status=FAILED&workflowId=not-a-uuid&clientId=123&initiatorType=ROBOT&errorCode=' +
          'x'.repeat(101) +
          '&window=2y&search=memberId:1&search=input.memberId&search=input.a:&search=input.ok:yes&cursor=abc',
      ),
    );
    expect(f).toEqual({ ...emptyFilters(), statuses: ['FAILED'], search: [{ key: 'input.ok', value: 'yes' }] });
  });

  it('drops a custom window that is not a pair of date-times in order, keeping a valid preset', () => {
    expect(filtersFromQuery(new URLSearchParams('from=yesterday&window=1h')).window).toEqual({ preset: '1h' });
    expect(filtersFromQuery(new URLSearchParams('from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z')).window).toEqual({ preset: '7d' });
    // A custom window wins over a preset, and offsets are normalized to UTC.
    expect(filtersFromQuery(new URLSearchParams('window=1h&from=2026-01-01T02:00:00%2B02:00')).window).toEqual({
      from: '2026-01-01T00:00:00.000Z',
      to: null,
    });
    // A date alone is not a date-time: the API would refuse it.
    expect(filtersFromQuery(new URLSearchParams('to=2026-01-01')).window).toEqual({ preset: '7d' });
  });

  it('keeps at most 5 business-field terms, one per key', () => {
    const q = new URLSearchParams();
    q.append('search', 'input.a:1');
    q.append('search', 'input.a:2');
    for (const k of ['b', 'c', 'd', 'e', 'f']) q.append('search', `input.${k}:x`);
    const f = filtersFromQuery(q);
    expect(f.search.map((t) => `${t.key}:${t.value}`)).toEqual(['input.a:1', 'input.b:x', 'input.c:x', 'input.d:x', 'input.e:x']);
  });
});

describe('apiQueryFromFilters', () => {
  const now = new Date('2026-03-10T12:00:00.000Z');

  it('fixes a relative window at now, open-ended at the end', () => {
    expect(apiQueryFromFilters(emptyFilters(), now)).toEqual({ createdFrom: '2026-03-03T12:00:00.000Z' });
    expect(apiQueryFromFilters({ ...emptyFilters(), window: { preset: '1h' } }, now)).toEqual({ createdFrom: '2026-03-10T11:00:00.000Z' });
  });

  it('passes every filter under the API’s names', () => {
    expect(apiQueryFromFilters(full, now)).toEqual({
      status: ['FAILED', 'TIMED_OUT'],
      workflowId: WF,
      clientId: CL,
      initiatorType: 'SCHEDULE',
      errorCode: 'HTTP_STATUS',
      createdFrom: '2026-03-09T12:00:00.000Z',
      search: ['input.memberId:M-123', 'input.claim.id:a:b c&d=é'],
    });
    const custom = apiQueryFromFilters({ ...emptyFilters(), window: { from: null, to: '2026-01-01T00:00:00.000Z' } }, now);
    expect(custom).toEqual({ createdTo: '2026-01-01T00:00:00.000Z' });
  });
});

describe('window texts and inputs', () => {
  it('names the window', () => {
    const fmt = (iso: string) => iso.slice(0, 10);
    expect(describeWindow({ preset: '7d' }, fmt)).toBe('the last 7 days');
    expect(describeWindow({ from: '2026-01-01T00:00:00.000Z', to: '2026-01-02T00:00:00.000Z' }, fmt)).toBe('2026-01-01 – 2026-01-02');
    expect(describeWindow({ from: '2026-01-01T00:00:00.000Z', to: null }, fmt)).toBe('since 2026-01-01');
  });

  it('converts datetime-local values in UTC and in a zone with an offset', () => {
    const utc = () => 0;
    expect(isoFromInput('2026-01-02T03:04', 'utc', utc)).toBe('2026-01-02T03:04:00.000Z');
    expect(inputFromIso('2026-01-02T03:04:00.000Z', 'utc', utc)).toBe('2026-01-02T03:04');
    // UTC+2: getTimezoneOffset() is -120.
    const plus2 = () => -120;
    expect(isoFromInput('2026-01-02T03:04', 'local', plus2)).toBe('2026-01-02T01:04:00.000Z');
    expect(inputFromIso('2026-01-02T01:04:00.000Z', 'local', plus2)).toBe('2026-01-02T03:04');
    expect(isoFromInput('garbage', 'utc', utc)).toBeNull();
    expect(inputFromIso(null, 'utc', utc)).toBe('');
  });
});
