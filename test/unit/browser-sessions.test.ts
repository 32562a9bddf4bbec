import { request } from 'node:http';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { EgressProxy, type ProxyRegistration } from '../../src/browser/egress-proxy.js';
import { WorkerBrowserSessions } from '../../src/browser/sessions.js';
import {
  BrowserActionError,
  type BrowserRuntime,
  type BrowserSession,
  type BrowserState,
  type OpenRequest,
  type ProxySettings,
} from '../../src/browser/types.js';
import { EgressPolicy } from '../../src/net/address-policy.js';

/**
 * WorkerBrowserSessions: one context per (job, session) behind its own
 * egress-proxy registration, one step at a time, closed with its job.
 * The browser is a fake (it records what it was asked to open); the proxy
 * is the real one, so a credential's fate is checked by asking the proxy.
 */

/**
 * A context that only remembers how it was opened and that it was closed:
 * WorkerBrowserSessions calls nothing else on a session (the step does), so
 * it stands in for a BrowserSession without the rest of that interface.
 */
class FakeSession implements Pick<BrowserSession, 'close'> {
  closes = 0;
  constructor(readonly request: OpenRequest) {}
  close(): Promise<void> {
    this.closes++;
    return Promise.resolve();
  }
}

class FakeRuntime implements BrowserRuntime {
  readonly sandboxed = true;
  readonly opened: FakeSession[] = [];
  /** Errors the next open() calls throw, in order. */
  readonly failures: Error[] = [];
  closes = 0;
  open(req: OpenRequest): Promise<BrowserSession> {
    const failure = this.failures.shift();
    if (failure) return Promise.reject(failure);
    const session = new FakeSession(req);
    this.opened.push(session);
    return Promise.resolve(session as unknown as BrowserSession);
  }
  close(): Promise<void> {
    this.closes++;
    return Promise.resolve();
  }
}

interface Harness {
  sessions: WorkerBrowserSessions;
  runtime: FakeRuntime;
  /** The real proxy, once the sessions started it. */
  proxy(): EgressProxy;
  /** Every registration the proxy handed out, in order. */
  registrations: ProxyRegistration[];
  runtimeFactory: ReturnType<typeof vi.fn>;
  proxyFactory: ReturnType<typeof vi.fn>;
  proxyCloses(): number;
}

const proxies: EgressProxy[] = [];

afterEach(async () => {
  await Promise.all(proxies.splice(0).map((p) => p.close()));
});

function harness(): Harness {
  const runtime = new FakeRuntime();
  const registrations: ProxyRegistration[] = [];
  let started: EgressProxy | undefined;
  let proxyCloses = 0;
  const runtimeFactory = vi.fn(() => Promise.resolve<BrowserRuntime>(runtime));
  const proxyFactory = vi.fn(async () => {
    const proxy = await EgressProxy.start({ policy: new EgressPolicy('') });
    proxies.push(proxy);
    started = proxy;
    // Watch what it hands out and when it is closed; behaviour unchanged.
    const register = proxy.register.bind(proxy);
    proxy.register = (allowOrigins) => {
      const r = register(allowOrigins);
      registrations.push(r);
      return r;
    };
    const close = proxy.close.bind(proxy);
    proxy.close = () => {
      proxyCloses++;
      return close();
    };
    return proxy;
  });
  const sessions = new WorkerBrowserSessions({ runtime: runtimeFactory, proxy: proxyFactory });
  return {
    sessions,
    runtime,
    proxy: () => started!,
    registrations,
    runtimeFactory,
    proxyFactory,
    proxyCloses: () => proxyCloses,
  };
}

const signal = new AbortController().signal;
const A = ['https://a.example.com'];
const B = ['https://b.example.com', 'http://127.0.0.1:9'];

/**
 * Sends a plain-http request for `url` through the proxy with these
 * credentials; the proxy's status: 407 for a credential it does not (or no
 * longer) knows, 403 for a refusal (nothing listens on port 9 and the
 * policy refuses loopback anyway, so no request ever leaves).
 */
function statusVia(proxy: ProxySettings, url: string): Promise<number> {
  const server = new URL(proxy.server);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: server.hostname,
        port: Number(server.port),
        method: 'GET',
        path: url,
        agent: false,
        headers: {
          host: new URL(url).host,
          'proxy-authorization': `Basic ${Buffer.from(`${proxy.username}:${proxy.password}`).toString('base64')}`,
        },
      },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

function codeOf(err: unknown): string | undefined {
  return err instanceof BrowserActionError ? err.code : undefined;
}

describe('WorkerBrowserSessions', () => {
  it('starts neither the browser nor the proxy until the first acquire, then each once', async () => {
    const h = harness();
    expect(h.runtimeFactory).not.toHaveBeenCalled();
    expect(h.proxyFactory).not.toHaveBeenCalled();
    expect(h.sessions.openCount()).toBe(0);

    // Both at once: still one browser and one proxy.
    const [a, b] = await Promise.all([
      h.sessions.acquire('job-1', 'default', { allowOrigins: A, signal }),
      h.sessions.acquire('job-2', 'default', { allowOrigins: A, signal }),
    ]);
    await h.sessions.acquire('job-3', 'default', { allowOrigins: A, signal });
    expect(h.runtimeFactory).toHaveBeenCalledTimes(1);
    expect(h.proxyFactory).toHaveBeenCalledTimes(1);
    expect(h.runtime.opened).toHaveLength(3);
    expect(a.reused).toBe(false);
    expect(b.reused).toBe(false);
  });

  it('two acquires of one (job, session) at once: one context, the other BROWSER_SESSION_BUSY', async () => {
    const h = harness();
    const results = await Promise.allSettled([
      h.sessions.acquire('job-1', 'default', { allowOrigins: A, signal }),
      h.sessions.acquire('job-1', 'default', { allowOrigins: B, signal }),
    ]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(results.map((r) => (r.status === 'rejected' ? codeOf(r.reason) : 'ok')).sort()).toEqual(['BROWSER_SESSION_BUSY', 'ok']);
    await h.sessions.release('job-1');
    expect(h.runtime.opened.every((s) => s.closes >= 1)).toBe(true);
    expect(h.proxy().stats().activeRegistrations).toBe(0);
  });

  it('a close() before any acquire starts nothing', async () => {
    const h = harness();
    await h.sessions.close();
    expect(h.runtimeFactory).not.toHaveBeenCalled();
    expect(h.proxyFactory).not.toHaveBeenCalled();
  });

  it('opens each context behind its own registration: the proxy server, its credential, the state and the signal', async () => {
    const h = harness();
    const state: BrowserState = { storage: { cookies: [{ name: 'sid', value: '1' }], origins: [] }, sessionStorage: {}, url: 'https://a.example.com/x', title: 'x' };
    const controller = new AbortController();
    const lease = await h.sessions.acquire('job-1', 'portal', { allowOrigins: A, state, signal: controller.signal });
    expect(h.registrations).toHaveLength(1);
    const r = h.registrations[0]!;
    expect(r.allowOrigins).toEqual(A);
    const opened = h.runtime.opened[0]!;
    expect(lease.session).toBe(opened);
    expect(opened.request.proxy).toEqual({ server: h.proxy().url, username: r.username, password: r.password });
    expect(opened.request.state).toBe(state);
    expect(opened.request.signal).toBe(controller.signal);
    // The credential is live: the proxy applies this context's rules (a refusal, not 407).
    expect(await statusVia(opened.request.proxy, 'http://127.0.0.1:9/')).toBe(403);
    expect(h.proxy().stats().activeRegistrations).toBe(1);
  });

  it('the same (job, session) is reused by the next step, its allowed origins replaced by that step\'s', async () => {
    const h = harness();
    const first = await h.sessions.acquire('job-1', 'portal', { allowOrigins: A, signal });
    const creds = h.runtime.opened[0]!.request.proxy;
    // Outside A: refused as not-allowed.
    expect(await statusVia(creds, 'http://127.0.0.1:9/')).toBe(403);
    expect(await statusVia(creds, 'http://127.0.0.1:9/again')).toBe(403);
    // One notice per (host, reason), however often the page tried.
    expect(first.refusals()).toEqual([{ host: '127.0.0.1', reason: 'not-allowed', url: 'http://127.0.0.1:9/' }]);
    expect(first.refusals()).toEqual([]);
    // A refusal after the step ended is that step's, not the next one's.
    expect(await statusVia(creds, 'http://127.0.0.1:9/late')).toBe(403);
    await first.done({ discard: false });

    const second = await h.sessions.acquire('job-1', 'portal', { allowOrigins: B, signal, state: { storage: null, sessionStorage: {}, url: null, title: null } });
    expect(second.reused).toBe(true);
    expect(second.session).toBe(first.session);
    expect(h.runtime.opened).toHaveLength(1);
    expect(h.registrations).toHaveLength(1);
    expect(h.registrations[0]!.allowOrigins).toEqual(B);
    expect(second.refusals()).toEqual([]);
    // Same credential, new rules: 127.0.0.1:9 is an allowed origin now, so what refuses it is the address policy (loopback).
    expect(await statusVia(creds, 'http://127.0.0.1:9/')).toBe(403);
    expect(second.refusals()).toEqual([{ host: '127.0.0.1', reason: 'loopback', url: 'http://127.0.0.1:9/' }]);
    expect(h.sessions.openCount()).toBe(1);
  });

  it('different jobs, or different sessions of one job, get different contexts and different credentials', async () => {
    const h = harness();
    const leases = await Promise.all([
      h.sessions.acquire('job-1', 'default', { allowOrigins: A, signal }),
      h.sessions.acquire('job-1', 'other', { allowOrigins: A, signal }),
      h.sessions.acquire('job-2', 'default', { allowOrigins: A, signal }),
    ]);
    expect(h.runtime.opened).toHaveLength(3);
    expect(new Set(leases.map((l) => l.session)).size).toBe(3);
    expect(leases.every((l) => !l.reused)).toBe(true);
    const creds = h.runtime.opened.map((s) => s.request.proxy);
    expect(new Set(creds.map((c) => c.username)).size).toBe(3);
    expect(new Set(creds.map((c) => c.password)).size).toBe(3);
    expect(new Set(creds.map((c) => c.server)).size).toBe(1);
    expect(h.sessions.openCount()).toBe(3);
    expect(h.proxy().stats().activeRegistrations).toBe(3);

    // A job-2 step naming "default" after its first one gets job-2's context, never job-1's.
    await leases[2]!.done({ discard: false });
    const again = await h.sessions.acquire('job-2', 'default', { allowOrigins: A, signal });
    expect(again.session).toBe(leases[2]!.session);
    expect(again.session).not.toBe(leases[0]!.session);
  });

  it('a second acquire while the first lease is not done → BROWSER_SESSION_BUSY, without opening anything; after done it is free', async () => {
    const h = harness();
    const first = await h.sessions.acquire('job-1', 'portal', { allowOrigins: A, signal });
    const err = await h.sessions.acquire('job-1', 'portal', { allowOrigins: B, signal }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BrowserActionError);
    expect(codeOf(err)).toBe('BROWSER_SESSION_BUSY');
    expect((err as BrowserActionError).data).toEqual({ session: 'portal' });
    // Refused before touching the session: its origins are still the holder's.
    expect(h.registrations[0]!.allowOrigins).toEqual(A);
    expect(h.runtime.opened).toHaveLength(1);
    expect(h.registrations).toHaveLength(1);

    await first.done({ discard: false });
    // done twice changes nothing (it does not free a lease someone else holds).
    const second = await h.sessions.acquire('job-1', 'portal', { allowOrigins: B, signal });
    await first.done({ discard: false });
    expect(codeOf(await h.sessions.acquire('job-1', 'portal', { allowOrigins: B, signal }).catch((e: unknown) => e))).toBe('BROWSER_SESSION_BUSY');
    expect(second.reused).toBe(true);
    expect(h.runtime.opened).toHaveLength(1);
  });

  it('done({ discard: true }) closes the context and its credential; the next acquire opens a new one from the state it passes', async () => {
    const h = harness();
    const first = await h.sessions.acquire('job-1', 'portal', { allowOrigins: A, signal });
    const oldCreds = h.runtime.opened[0]!.request.proxy;
    await first.done({ discard: true });
    expect(h.runtime.opened[0]!.closes).toBe(1);
    expect(h.sessions.openCount()).toBe(0);
    expect(h.proxy().stats().activeRegistrations).toBe(0);
    expect(await statusVia(oldCreds, 'http://127.0.0.1:9/')).toBe(407);
    // Idempotent: a second done closes nothing again.
    await first.done({ discard: true });
    expect(h.runtime.opened[0]!.closes).toBe(1);

    const state: BrowserState = { storage: { cookies: [], origins: [] }, sessionStorage: { 'https://a.example.com': { k: 'v' } }, url: 'https://a.example.com/form', title: 'Form' };
    const second = await h.sessions.acquire('job-1', 'portal', { allowOrigins: A, state, signal });
    expect(second.reused).toBe(false);
    expect(h.runtime.opened).toHaveLength(2);
    expect(second.session).toBe(h.runtime.opened[1]);
    expect(h.runtime.opened[1]!.request.state).toBe(state);
    const newCreds = h.runtime.opened[1]!.request.proxy;
    expect(newCreds.username).not.toBe(oldCreds.username);
    expect(await statusVia(newCreds, 'http://127.0.0.1:9/')).toBe(403);
    expect(h.runtime.opened[1]!.closes).toBe(0);
  });

  it('release(jobId) closes every session of that job and ends their credentials; other jobs keep theirs', async () => {
    const h = harness();
    const a1 = await h.sessions.acquire('job-1', 'default', { allowOrigins: A, signal });
    const a2 = await h.sessions.acquire('job-1', 'other', { allowOrigins: A, signal });
    const b1 = await h.sessions.acquire('job-2', 'default', { allowOrigins: A, signal });
    await a1.done({ discard: false });
    // a2 is still held by a step: release closes it too (the job's run here is over).
    const [s1, s2, s3] = h.runtime.opened as [FakeSession, FakeSession, FakeSession];

    await h.sessions.release('job-1');
    expect([s1.closes, s2.closes, s3.closes]).toEqual([1, 1, 0]);
    expect(h.sessions.openCount()).toBe(1);
    expect(h.proxy().stats().activeRegistrations).toBe(1);
    expect(await statusVia(s1.request.proxy, 'http://127.0.0.1:9/')).toBe(407);
    expect(await statusVia(s2.request.proxy, 'http://127.0.0.1:9/')).toBe(407);
    expect(await statusVia(s3.request.proxy, 'http://127.0.0.1:9/')).toBe(403);

    // The held lease ending afterwards is harmless (a session's close is idempotent) and touches no other session;
    // a release of an unknown or released job is a no-op.
    await a2.done({ discard: true });
    expect(s3.closes).toBe(0);
    expect(h.sessions.openCount()).toBe(1);
    await h.sessions.release('job-1');
    await h.sessions.release('job-unknown');
    expect(s3.closes).toBe(0);

    // job-1 coming back here starts afresh.
    const again = await h.sessions.acquire('job-1', 'default', { allowOrigins: A, signal });
    expect(again.reused).toBe(false);
    expect(h.runtime.opened).toHaveLength(4);
    await b1.done({ discard: false });
  });

  it('a runtime.open failure releases the registration made for it, and the next acquire opens normally', async () => {
    const h = harness();
    const failure = new BrowserActionError('BROWSER_LAUNCH_FAILED', 'chromium would not start');
    h.runtime.failures.push(failure);
    const err = await h.sessions.acquire('job-1', 'portal', { allowOrigins: A, signal }).catch((e: unknown) => e);
    expect(err).toBe(failure);
    expect(h.registrations).toHaveLength(1);
    const failed = h.registrations[0]!;
    expect(h.proxy().stats().activeRegistrations).toBe(0);
    expect(await statusVia({ server: failed.server, username: failed.username, password: failed.password }, 'http://127.0.0.1:9/')).toBe(407);
    expect(h.sessions.openCount()).toBe(0);

    // Nothing was left behind under (job-1, portal): not busy, a new context.
    const lease = await h.sessions.acquire('job-1', 'portal', { allowOrigins: A, signal });
    expect(lease.reused).toBe(false);
    expect(h.runtime.opened).toHaveLength(1);
    expect(h.proxy().stats().activeRegistrations).toBe(1);
  });

  it('an invalid allowed origin fails the acquire before a context is opened', async () => {
    const h = harness();
    await expect(h.sessions.acquire('job-1', 'portal', { allowOrigins: ['https://a.example.com/path'], signal })).rejects.toThrow();
    expect(h.runtime.opened).toHaveLength(0);
    expect(h.sessions.openCount()).toBe(0);
    expect(h.proxy().stats().activeRegistrations).toBe(0);
  });

  it('close() closes every session, the browser and the proxy, and refuses later acquires', async () => {
    const h = harness();
    const held = await h.sessions.acquire('job-1', 'default', { allowOrigins: A, signal });
    const idle = await h.sessions.acquire('job-2', 'default', { allowOrigins: A, signal });
    await idle.done({ discard: false });
    const creds = h.runtime.opened.map((s) => s.request.proxy);
    // While open, a credential is answered (a refusal here).
    expect(await statusVia(creds[0]!, 'http://127.0.0.1:9/')).toBe(403);

    await h.sessions.close();
    expect(h.runtime.opened.map((s) => s.closes)).toEqual([1, 1]);
    expect(h.runtime.closes).toBe(1);
    expect(h.proxyCloses()).toBe(1);
    expect(h.sessions.openCount()).toBe(0);
    expect(h.proxy().stats().activeRegistrations).toBe(0);
    // The proxy is gone: its port refuses connections.
    await expect(statusVia(creds[0]!, 'http://127.0.0.1:9/')).rejects.toThrow();

    for (const job of ['job-1', 'job-2', 'job-3']) {
      const err = await h.sessions.acquire(job, 'default', { allowOrigins: A, signal }).catch((e: unknown) => e);
      expect(codeOf(err)).toBe('BROWSER_UNAVAILABLE');
    }
    expect(h.runtime.opened).toHaveLength(2);
    expect(h.runtimeFactory).toHaveBeenCalledTimes(1);
    expect(h.proxyFactory).toHaveBeenCalledTimes(1);
    // The step still holding a lease ends after the shutdown without trouble.
    await held.done({ discard: true });
    expect(h.runtime.opened[0]!.closes).toBeGreaterThanOrEqual(1);
  });
});
