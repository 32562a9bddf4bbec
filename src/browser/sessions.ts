import type { BrowserSessionLease, BrowserSessions, EgressNotice } from '../engine/services.js';
import type { EgressProxy, ProxyRegistration } from './egress-proxy.js';
import { BrowserActionError, type BrowserRuntime, type BrowserSession, type BrowserState } from './types.js';

/** What the sessions need: the worker's browser and egress proxy, each made on first use (a worker that runs no browser step starts neither). */
export interface BrowserSessionsDeps {
  runtime(): Promise<BrowserRuntime>;
  proxy(): Promise<EgressProxy>;
}

interface OpenSession {
  session: BrowserSession;
  registration: ProxyRegistration;
  /** A step is using it now (parallel branches of one job must not drive one page at once). */
  busy: boolean;
}

/**
 * The browser sessions of the jobs running on this worker: one context per
 * (job, session name), each behind its own egress-proxy registration (so
 * its allowed origins are its own, and two jobs — two organizations — never
 * share cookies, storage or a credential), shared by the job's consecutive
 * browser steps that name the session, closed when the job's run here ends.
 */
export class WorkerBrowserSessions implements BrowserSessions {
  private readonly jobs = new Map<string, Map<string, OpenSession>>();
  private runtimeMade: Promise<BrowserRuntime> | undefined;
  private proxyStarted: Promise<EgressProxy> | undefined;
  private closed = false;
  /** `${jobId}\0${name}` of the sessions being opened now. */
  private readonly opening = new Set<string>();

  constructor(private readonly deps: BrowserSessionsDeps) {}

  async acquire(
    jobId: string,
    name: string,
    options: { allowOrigins: readonly string[]; state?: BrowserState | undefined; signal: AbortSignal },
  ): Promise<BrowserSessionLease> {
    if (this.closed) throw new BrowserActionError('BROWSER_UNAVAILABLE', 'the worker is shutting down its browser');
    const open = this.jobs.get(jobId)?.get(name);
    if (open) {
      if (open.busy) throw busy(name);
      open.registration.setAllowOrigins(options.allowOrigins);
      // What earlier steps' pages were refused is theirs, already reported.
      open.registration.takeRefusals();
      return this.lease(jobId, name, open, true);
    }
    // Opening takes a while (a context, a page, restoring state); a second step of the job asking for the
    // same session meanwhile is as busy as if the first had it already.
    const key = `${jobId}\u0000${name}`;
    if (this.opening.has(key)) throw busy(name);
    this.opening.add(key);
    try {
      return await this.open(jobId, name, options);
    } finally {
      this.opening.delete(key);
    }
  }

  private async open(
    jobId: string,
    name: string,
    options: { allowOrigins: readonly string[]; state?: BrowserState | undefined; signal: AbortSignal },
  ): Promise<BrowserSessionLease> {
    this.proxyStarted ??= this.deps.proxy();
    const proxy = await this.proxyStarted;
    const registration = proxy.register(options.allowOrigins);
    let session: BrowserSession;
    try {
      this.runtimeMade ??= this.deps.runtime();
      const runtime = await this.runtimeMade;
      session = await runtime.open({
        proxy: { server: registration.server, username: registration.username, password: registration.password },
        state: options.state,
        signal: options.signal,
      });
    } catch (err) {
      registration.release();
      throw err;
    }
    const entry: OpenSession = { session, registration, busy: false };
    if (this.closed) {
      // close() ran while this context opened: it would outlive the worker's browser otherwise.
      await this.closeOne(jobId, name, entry);
      throw new BrowserActionError('BROWSER_UNAVAILABLE', 'the worker is shutting down its browser');
    }
    let byName = this.jobs.get(jobId);
    if (!byName) this.jobs.set(jobId, (byName = new Map()));
    byName.set(name, entry);
    return this.lease(jobId, name, entry, false);
  }

  private lease(jobId: string, name: string, entry: OpenSession, reused: boolean): BrowserSessionLease {
    entry.busy = true;
    let done = false;
    return {
      session: entry.session,
      reused,
      refusals: () => dedupe(entry.registration.takeRefusals()),
      done: async ({ discard }) => {
        if (done) return;
        done = true;
        entry.busy = false;
        // A crashed or closed page is no use to the next step: it opens a new context from the carried state.
        if (discard) await this.closeOne(jobId, name, entry);
      },
    };
  }

  private async closeOne(jobId: string, name: string, entry: OpenSession): Promise<void> {
    const byName = this.jobs.get(jobId);
    if (byName?.get(name) === entry) byName.delete(name);
    if (byName?.size === 0) this.jobs.delete(jobId);
    try {
      await entry.session.close();
    } finally {
      entry.registration.release();
    }
  }

  async release(jobId: string): Promise<void> {
    const byName = this.jobs.get(jobId);
    if (!byName) return;
    await Promise.all([...byName].map(([name, entry]) => this.closeOne(jobId, name, entry)));
  }

  /** Sessions open now (tests, stats). */
  openCount(): number {
    let n = 0;
    for (const byName of this.jobs.values()) n += byName.size;
    return n;
  }

  /** Close every session, the browser and the proxy (worker shutdown). */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.jobs.keys()].map((jobId) => this.release(jobId)));
    if (this.runtimeMade) await (await this.runtimeMade).close();
    if (this.proxyStarted) await (await this.proxyStarted).close();
  }
}

function busy(name: string): BrowserActionError {
  return new BrowserActionError(
    'BROWSER_SESSION_BUSY',
    `browser session "${name}" is in use by another step of this job; steps that run at once (parallel branches, loop iterations) must name different sessions`,
    { session: name },
  );
}

/** One notice per (host, reason): a page retrying a refused request (a favicon, a beacon) says it once. */
function dedupe(refusals: readonly { host: string; reason: string; url?: string | undefined }[]): EgressNotice[] {
  const seen = new Map<string, EgressNotice>();
  for (const r of refusals) {
    const key = `${r.host}\u0000${r.reason}`;
    if (!seen.has(key)) seen.set(key, { host: r.host, reason: r.reason, ...(r.url ? { url: r.url } : {}) });
  }
  return [...seen.values()];
}
