import type { BlobStore } from '../../blob/index.js';
import type { Db, Queryable } from '../../db/index.js';
import { withTenant } from '../../db/tenant.js';
import { readJobStream } from '../../lifecycle/index.js';
import { findJobListItems, listJobSummaries, type JobListItem } from '../../read/index.js';
import { CHANGES_CHANNEL, parseChangePayload, TERMINAL_STATUSES, type StreamEntry } from '../../store/index.js';
import type { Logger } from '../../util/logger.js';
import type { SseConnection } from './sse-connection.js';

export interface LiveHubOptions {
  /** Per organization, at most one read of its changed jobs this often (notifications in between are coalesced). */
  coalesceMs: number;
  /** Stream rows read per job and tick; a job with more is read again at the next tick. */
  pageRows: number;
  /** After the LISTEN connection came back: how many of the newest jobs are sent again to /v1/events clients. */
  resyncJobs: number;
}

// pageRows and the jobs of one tick stay under half of a connection's queue (DEFAULT_SSE_LIMITS: 1,000
// events), so a client that catches up or a burst of changes is sent in slices, never cut off for it.
export const DEFAULT_LIVE_HUB_OPTIONS: LiveHubOptions = { coalesceMs: 200, pageRows: 400, resyncJobs: 200 };
/** Changed jobs one tick reads; the rest stay dirty for the next tick. */
const JOBS_PER_TICK = 400;

/** A GET /v1/events client: every change of its organization's jobs. */
export interface JobEventsSubscriber {
  readonly organizationId: string;
  readonly connection: SseConnection;
  /** Audits the items about to be sent (PHI), in the hub's tenant transaction. */
  audit(tx: Queryable, items: readonly JobListItem[]): Promise<void>;
  /** The JSON sent for each item (the list view, or with `phi=mask` the masked one). */
  shape(tx: Queryable, items: readonly JobListItem[]): Promise<unknown[]>;
}

/** A GET /v1/jobs/:id/stream/live client: one job's stream rows after `lastSeq`, and its status. */
export interface JobStreamSubscriber {
  readonly organizationId: string;
  readonly jobId: string;
  readonly connection: SseConnection;
  /** The last seq sent (or the client's Last-Event-ID / afterSeq). */
  lastSeq: number;
  /** The last status sent. */
  lastStatus: string | null;
  /** Audits the rows about to be sent (PHI), in the hub's tenant transaction. */
  audit(tx: Queryable, job: JobListItem, rows: readonly StreamEntry[]): Promise<void>;
  /** The JSON sent for each row (the one place rows are shaped for the client). */
  shape(job: JobListItem, rows: readonly StreamEntry[]): Promise<unknown[]>;
}

interface OrgState {
  readonly events: Set<JobEventsSubscriber>;
  readonly streams: Map<string, Set<JobStreamSubscriber>>;
  /** Jobs announced since the last tick. */
  readonly dirty: Set<string>;
  /** Send the newest jobs again (the LISTEN connection was down: changes may have gone unannounced). */
  resync: boolean;
  timer: NodeJS.Timeout | undefined;
  running: boolean;
  lastTickAt: number;
  failures: number;
}

/** What the hub has done (tests, metrics). */
export interface LiveHubStats {
  ticks: number;
  failedTicks: number;
  /** Connections ended because their client fell too far behind. */
  overflows: number;
}

/**
 * Live updates for the API's server-sent events. One LISTEN on
 * `stepwise_changes` per process, shared by every client (flushes and
 * enqueues announce the jobs they touched: store/change-notify.ts). Per
 * organization with clients, announcements are coalesced and each tick runs
 * ONE query for the changed jobs' list items, then at most one stream read
 * per job (from the lowest position among its clients) whatever the number
 * of clients, in a tenant transaction that also writes the PHI audit rows;
 * the events are written to the clients after it commits. Writing never
 * waits on a client (SseConnection ends one that falls behind), so nothing
 * here holds up a worker or the database.
 *
 * The LISTEN is taken with the first client and given back with the last:
 * an API process with no live client then holds no LISTEN for it. After the
 * LISTEN connection comes back from a drop, every stream client is read
 * again from its own position and /v1/events clients get the newest jobs
 * again, so nothing announced during the outage is lost.
 */
export class LiveHub {
  private readonly orgs = new Map<string, OrgState>();
  private subscribers = 0;
  /** LISTEN state changes run one after another; resolves to the unlisten function while listening. */
  private listening: Promise<(() => Promise<void>) | null> = Promise.resolve(null);
  private closed = false;
  readonly stats: LiveHubStats = { ticks: 0, failedTicks: 0, overflows: 0 };

  constructor(
    private readonly db: Db,
    private readonly blobs: BlobStore | undefined,
    private readonly logger: Logger,
    private readonly options: LiveHubOptions = DEFAULT_LIVE_HUB_OPTIONS,
  ) {}

  /** Live clients connected now. */
  subscriberCount(): number {
    return this.subscribers;
  }

  /** Whether the hub holds its LISTEN (settles pending LISTEN/UNLISTEN first). */
  async isListening(): Promise<boolean> {
    return (await this.listening) !== null;
  }

  async subscribeEvents(sub: JobEventsSubscriber): Promise<void> {
    await this.add(sub, (org) => org.events.add(sub), (org) => org.events.delete(sub));
  }

  /** Starts with a read of the rows after `sub.lastSeq` (whatever came before the subscription is not missed). */
  async subscribeStream(sub: JobStreamSubscriber): Promise<void> {
    await this.add(
      sub,
      (org) => {
        let set = org.streams.get(sub.jobId);
        if (!set) org.streams.set(sub.jobId, (set = new Set()));
        set.add(sub);
        org.dirty.add(sub.jobId);
      },
      (org) => {
        const set = org.streams.get(sub.jobId);
        set?.delete(sub);
        if (set?.size === 0) org.streams.delete(sub.jobId);
      },
    );
    this.schedule(sub.organizationId);
  }

  /** End every client's connection and stop listening (the app is closing). */
  async close(): Promise<void> {
    this.closed = true;
    for (const org of [...this.orgs.values()]) {
      for (const s of [...org.events]) s.connection.end('server');
      for (const set of [...org.streams.values()]) for (const s of [...set]) s.connection.end('server');
    }
    const unlisten = await this.listening.catch(() => null);
    this.listening = Promise.resolve(null);
    await unlisten?.().catch(() => undefined);
  }

  private async add(
    sub: { organizationId: string; connection: SseConnection },
    attach: (org: OrgState) => void,
    detach: (org: OrgState) => void,
  ): Promise<void> {
    if (this.closed) throw new Error('the live hub is closed');
    const org = this.org(sub.organizationId);
    attach(org);
    this.subscribers++;
    let removed = false;
    const remove = () => {
      if (removed) return;
      removed = true;
      detach(org);
      this.subscribers--;
      if (org.events.size === 0 && org.streams.size === 0 && this.orgs.get(sub.organizationId) === org) {
        if (org.timer) clearTimeout(org.timer);
        this.orgs.delete(sub.organizationId);
      }
      // Its failure is logged where the LISTEN is taken; nothing waits for it here.
      void this.syncListen().catch(() => undefined);
    };
    sub.connection.onClose((reason) => {
      if (reason === 'overflow') this.stats.overflows++;
      remove();
    });
    try {
      await this.syncListen();
    } catch (err) {
      remove();
      throw err;
    }
  }

  private org(organizationId: string): OrgState {
    let org = this.orgs.get(organizationId);
    if (!org) {
      org = { events: new Set(), streams: new Map(), dirty: new Set(), resync: false, timer: undefined, running: false, lastTickAt: 0, failures: 0 };
      this.orgs.set(organizationId, org);
    }
    return org;
  }

  /** LISTEN while anyone subscribes, UNLISTEN when nobody does; one change at a time. */
  private syncListen(): Promise<void> {
    const next = this.listening.then(async (unlisten) => {
      const wanted = this.subscribers > 0 && !this.closed;
      if (wanted && !unlisten) {
        return this.db.listen(CHANGES_CHANNEL, (payload) => this.announced(payload), { onReconnect: () => this.reconnected() });
      }
      if (!wanted && unlisten) {
        await unlisten();
        return null;
      }
      return unlisten;
    });
    this.listening = next.catch((err: unknown) => {
      this.logger.error({ err }, 'live updates: LISTEN failed');
      return null;
    });
    return next.then(() => undefined);
  }

  private announced(payload: string): void {
    const change = parseChangePayload(payload);
    if (!change) return;
    const org = this.orgs.get(change.organizationId);
    if (!org) return;
    const all = org.events.size > 0;
    let any = false;
    for (const jobId of change.jobIds) {
      if (all || org.streams.has(jobId)) {
        org.dirty.add(jobId);
        any = true;
      }
    }
    if (any) this.schedule(change.organizationId);
  }

  private reconnected(): void {
    for (const [organizationId, org] of this.orgs) {
      for (const jobId of org.streams.keys()) org.dirty.add(jobId);
      if (org.events.size > 0) org.resync = true;
      this.schedule(organizationId);
    }
  }

  /** Run the organization's tick now, or when `coalesceMs` has passed since its last one. */
  private schedule(organizationId: string): void {
    const org = this.orgs.get(organizationId);
    if (!org || org.timer || org.running || this.closed) return;
    if (org.dirty.size === 0 && !org.resync) return;
    const backoff = org.failures === 0 ? 0 : Math.min(10_000, this.options.coalesceMs * 2 ** org.failures);
    const delay = Math.max(0, org.lastTickAt + this.options.coalesceMs - Date.now(), backoff);
    org.timer = setTimeout(() => {
      org.timer = undefined;
      void this.tick(organizationId, org);
    }, delay);
  }

  private async tick(organizationId: string, org: OrgState): Promise<void> {
    if (this.orgs.get(organizationId) !== org) return; // everyone left meanwhile
    org.running = true;
    org.lastTickAt = Date.now();
    const jobIds = [...org.dirty].slice(0, JOBS_PER_TICK);
    const resync = org.resync;
    for (const id of jobIds) org.dirty.delete(id);
    org.resync = false;
    try {
      const deliveries = await withTenant(this.db, organizationId, (tx) => this.read(tx, organizationId, org, jobIds, resync));
      org.failures = 0;
      this.stats.ticks++;
      for (const deliver of deliveries) deliver();
    } catch (err) {
      org.failures++;
      this.stats.failedTicks++;
      for (const id of jobIds) org.dirty.add(id);
      org.resync ||= resync;
      this.logger.error({ err, organizationId, attempt: org.failures }, 'live updates: reading changed jobs failed; will retry');
    } finally {
      org.running = false;
      this.schedule(organizationId);
    }
  }

  /** Everything one tick reads and audits, in the tenant transaction; returns the writes to clients, made after commit. */
  private async read(tx: Queryable, organizationId: string, org: OrgState, jobIds: string[], resync: boolean): Promise<(() => void)[]> {
    const deliveries: (() => void)[] = [];
    const items = await findJobListItems(tx, organizationId, jobIds);
    if (org.events.size > 0) {
      const sent = resync ? mergeItems(items, (await listJobSummaries(tx, organizationId, { limit: this.options.resyncJobs })).items) : items;
      if (sent.length > 0) {
        for (const sub of [...org.events]) {
          await sub.audit(tx, sent);
          const events = (await sub.shape(tx, sent)).map((view) => ({ event: 'job', data: JSON.stringify(view) }));
          deliveries.push(() => {
            for (const e of events) if (!sub.connection.send(e)) return;
          });
        }
      }
    }
    const byId = new Map(items.map((i) => [i.id, i]));
    for (const jobId of jobIds) {
      const subs = org.streams.get(jobId);
      if (!subs || subs.size === 0) continue;
      const job = byId.get(jobId);
      if (!job) {
        // Gone (expired) since the client subscribed: nothing more will come.
        for (const sub of [...subs]) deliveries.push(() => sub.connection.end('done'));
        continue;
      }
      deliveries.push(...(await this.readStream(tx, org, job, [...subs])));
    }
    return deliveries;
  }

  /** One read of a job's stream for all its clients, from the lowest position among them. */
  private async readStream(tx: Queryable, org: OrgState, job: JobListItem, subs: JobStreamSubscriber[]): Promise<(() => void)[]> {
    const from = Math.min(...subs.map((s) => s.lastSeq));
    // The status is read (with the item) before the rows: a finished job's rows were all committed with its outcome.
    const page = await readJobStream(tx, this.blobs, job.organizationId, job, { afterSeq: from, limit: this.options.pageRows });
    const more = page.items.length === this.options.pageRows;
    if (more) org.dirty.add(job.id);
    const finished = TERMINAL_STATUSES.includes(job.status) && !more;
    const deliveries: (() => void)[] = [];
    for (const sub of subs) {
      const rows = page.items.filter((r) => r.seq > sub.lastSeq);
      const last = rows.length > 0 ? rows[rows.length - 1]!.seq : sub.lastSeq;
      const shaped = rows.length > 0 ? await sub.shape(job, rows) : [];
      if (rows.length > 0) await sub.audit(tx, job, rows);
      const statusChanged = sub.lastStatus !== job.status;
      // Positions move only once delivered, after the commit: a tick that failed is read again from the same place.
      deliveries.push(() => {
        const c = sub.connection;
        for (let i = 0; i < rows.length; i++) {
          // A connection is sent at most half its queue at once (a backlog of any size, rows of any
          // size): the rest waits for the next tick, which reads on from the last row sent.
          if (!c.hasRoom()) {
            org.dirty.add(job.id);
            return;
          }
          if (!c.send({ id: rows[i]!.seq, event: 'entry', data: JSON.stringify(shaped[i]) })) return;
          sub.lastSeq = rows[i]!.seq;
        }
        sub.lastSeq = last;
        sub.lastStatus = job.status;
        if (statusChanged && !c.send({ event: 'status', data: JSON.stringify({ status: job.status }) })) return;
        if (finished) {
          c.send({ event: 'end', data: JSON.stringify({ status: job.status, lastSeq: last }) });
          c.end('done');
        }
      });
    }
    return deliveries;
  }
}

/** `first`, then the items of `more` not already in it. */
function mergeItems(first: JobListItem[], more: JobListItem[]): JobListItem[] {
  const seen = new Set(first.map((i) => i.id));
  return [...first, ...more.filter((i) => !seen.has(i.id))];
}
