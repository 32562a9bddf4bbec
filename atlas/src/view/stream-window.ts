/**
 * Windowing for long lists (a run's stream may hold 50,000 rows): which rows
 * to put in the DOM for a scroll position, and a cache that holds a stream's
 * rows in pages fetched on demand. Pure and DOM-free, unit-tested.
 */

export interface WindowInput {
  count: number;
  rowHeight: number;
  viewportHeight: number;
  scrollTop: number;
  /** Rows rendered beyond each edge of the viewport, so a fast scroll shows no gap. */
  overscan: number;
}

export interface WindowRange {
  /** First row to render (inclusive). */
  first: number;
  /** Last row to render (exclusive): rows first..last-1. */
  last: number;
  /** Space above the first row and below the last, in px, so the scrollbar reflects the whole list. */
  padTop: number;
  padBottom: number;
}

/** The rows to render for a scroll position (an empty range for an empty list). */
export function computeWindow(w: WindowInput): WindowRange {
  const count = Math.max(0, Math.floor(w.count));
  if (count === 0 || w.rowHeight <= 0) return { first: 0, last: 0, padTop: 0, padBottom: 0 };
  const maxTop = Math.max(0, count * w.rowHeight - w.viewportHeight);
  const top = Math.min(Math.max(0, w.scrollTop), maxTop);
  const visibleFirst = Math.floor(top / w.rowHeight);
  const visibleLast = Math.ceil((top + Math.max(0, w.viewportHeight)) / w.rowHeight);
  const first = Math.max(0, visibleFirst - w.overscan);
  const last = Math.min(count, Math.max(visibleLast, visibleFirst + 1) + w.overscan);
  return { first, last, padTop: first * w.rowHeight, padBottom: (count - last) * w.rowHeight };
}

/** The scrollTop that puts row `index` at the top of the viewport (or centred). */
export function scrollTopFor(index: number, rowHeight: number, viewportHeight: number, align: 'top' | 'center' = 'center'): number {
  const top = index * rowHeight - (align === 'center' ? Math.max(0, (viewportHeight - rowHeight) / 2) : 0);
  return Math.max(0, Math.round(top));
}

/** A stream row as the cache needs it. */
export interface SeqRow {
  seq: number;
}

interface Page<R> {
  rows: R[];
  /** The highest seq this page holds (a short last page can grow). */
  coveredTo: number;
  /** The stream's last seq as known when the page was filled: a short page is fetched again only once the stream grew past it. */
  knownAtFetch: number;
}

/**
 * A stream's rows by sequence number, in pages: page p holds seqs
 * p*pageSize+1 .. (p+1)*pageSize and is fetched with
 * `afterSeq = p*pageSize, limit = pageSize`. Row i of the list is seq i+1
 * (a job's seqs are consecutive from 1). `count` is the highest seq known;
 * live rows extend it. The cache says which pages a window needs and
 * never asks twice for a page in flight.
 */
export class SeqPageCache<R extends SeqRow> {
  private readonly pages = new Map<number, Page<R>>();
  /** Pages in flight, with the last seq known when each was asked for. */
  private readonly pending = new Map<number, number>();
  private known = 0;

  constructor(readonly pageSize = 1000) {}

  /** Rows in the list: the highest seq known. */
  get count(): number {
    return this.known;
  }

  /** The last seq is at least `seq` (a tail probe, a status, a live row). */
  noteSeq(seq: number): void {
    if (seq > this.known) this.known = seq;
  }

  pageOf(index: number): number {
    return Math.floor(index / this.pageSize);
  }

  /** Query for a page: afterSeq and limit. */
  pageQuery(page: number): { afterSeq: number; limit: number } {
    return { afterSeq: page * this.pageSize, limit: this.pageSize };
  }

  /** Row i (seq i+1), or undefined while its page is not here. */
  get(index: number): R | undefined {
    const page = this.pages.get(this.pageOf(index));
    if (!page) return undefined;
    const seq = index + 1;
    const offset = seq - this.pageOf(index) * this.pageSize - 1;
    const direct = page.rows[offset];
    if (direct && direct.seq === seq) return direct;
    return page.rows.find((r) => r.seq === seq);
  }

  /** The pages the rows first..last-1 need that are neither here (and current) nor in flight. */
  missing(first: number, last: number): number[] {
    const out: number[] = [];
    if (last <= first) return out;
    for (let p = this.pageOf(first); p <= this.pageOf(Math.max(first, last - 1)); p++) {
      if (this.pending.has(p)) continue;
      const page = this.pages.get(p);
      const pageEnd = (p + 1) * this.pageSize;
      if (!page) out.push(p);
      else if (page.rows.length < this.pageSize && page.coveredTo < Math.min(pageEnd, this.known) && this.known > page.knownAtFetch) out.push(p);
    }
    return out;
  }

  /** A page is being fetched. */
  begin(page: number): void {
    this.pending.set(page, this.known);
  }

  /** A fetch failed: the page may be asked for again. */
  fail(page: number): void {
    this.pending.delete(page);
  }

  /** A page's rows arrived (in seq order). */
  put(page: number, rows: readonly R[]): void {
    const askedAt = this.pending.get(page) ?? this.known;
    this.pending.delete(page);
    const pageEnd = (page + 1) * this.pageSize;
    const own = rows.filter((r) => r.seq > page * this.pageSize && r.seq <= pageEnd);
    // Live rows that came in while the page was fetched continue it.
    const before = this.pages.get(page);
    for (const r of before?.rows ?? []) {
      const lastHeld = own.length ? own[own.length - 1]!.seq : page * this.pageSize;
      if (r.seq === lastHeld + 1) own.push(r);
    }
    const last = own.length ? own[own.length - 1]!.seq : page * this.pageSize;
    this.noteSeq(last);
    this.pages.set(page, { rows: own, coveredTo: last, knownAtFetch: Math.max(askedAt, last) });
  }

  /** Rows that arrived live (after the last seq known), in order: added where they continue a page. */
  append(rows: readonly R[]): void {
    for (const r of rows) {
      const p = this.pageOf(r.seq - 1);
      let page = this.pages.get(p);
      if (!page && r.seq - 1 === p * this.pageSize && !this.pending.has(p)) {
        page = { rows: [], coveredTo: p * this.pageSize, knownAtFetch: r.seq };
        this.pages.set(p, page);
      }
      if (page && page.coveredTo === r.seq - 1) {
        page.rows.push(r);
        page.coveredTo = r.seq;
        page.knownAtFetch = Math.max(page.knownAtFetch, r.seq);
      }
      this.noteSeq(r.seq);
    }
  }

  /** Forget everything (a new filter, PHI revealed). */
  clear(): void {
    this.pages.clear();
    this.pending.clear();
    this.known = 0;
  }

  /** Rows here, for tests and for the events the Gantt reads. */
  loaded(): R[] {
    return [...this.pages.keys()].sort((a, b) => a - b).flatMap((p) => this.pages.get(p)!.rows);
  }
}

/**
 * A filtered stream (level ≥ WARN, say) has no seq ↔ index relation, so it
 * is read front to back: each page continues after the last row seen, and
 * the list grows as the reader nears its end.
 */
export class SequentialCache<R extends SeqRow> {
  rows: R[] = [];
  done = false;
  private inFlight = false;

  constructor(readonly pageSize = 1000) {}

  /** Rows in the list, plus one placeholder row while more may follow. */
  get count(): number {
    return this.rows.length + (this.done ? 0 : 1);
  }

  get(index: number): R | undefined {
    return this.rows[index];
  }

  /** The query of the next page when the window reaches within a page of the end; null when none is due. */
  next(last: number): { afterSeq: number; limit: number } | null {
    if (this.done || this.inFlight || last < this.rows.length - this.pageSize / 2) return null;
    this.inFlight = true;
    return { afterSeq: this.rows.length ? this.rows[this.rows.length - 1]!.seq : 0, limit: this.pageSize };
  }

  put(rows: readonly R[], limit: number): void {
    this.inFlight = false;
    const lastSeq = this.rows.length ? this.rows[this.rows.length - 1]!.seq : 0;
    for (const r of rows) if (r.seq > lastSeq) this.rows.push(r);
    if (rows.length < limit) this.done = true;
  }

  fail(): void {
    this.inFlight = false;
  }

  /** Live rows (already filtered by the caller). A finished list stays finished; an unfinished one gets them when it reads on. */
  append(rows: readonly R[]): void {
    if (!this.done) return;
    const lastSeq = this.rows.length ? this.rows[this.rows.length - 1]!.seq : 0;
    for (const r of rows) if (r.seq > lastSeq) this.rows.push(r);
  }
}
