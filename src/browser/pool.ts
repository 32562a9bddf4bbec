import { rm } from 'node:fs/promises';
import type { Browser, BrowserContext } from 'playwright-core';
import type { Logger } from '../util/logger.js';
import { Deadline, guarded } from './deadline.js';
import { DOWNLOAD_MAX_BYTES, type DownloadArea } from './download.js';
import { browserError, toBrowserError } from './errors.js';
import { launchChromium } from './launch.js';
import { sandboxByDefault } from './sandbox.js';
import { processTreeMemory } from './process-memory.js';
import { PlaywrightSession } from './session.js';
import { Slots } from './slots.js';
import { restoreSessionStorage, returnToPage, storageStateOf } from './state.js';
import type { BrowserRuntime, BrowserSession, OpenRequest, ProxySettings } from './types.js';

/** Contexts open at once per worker process: each is a renderer of ~100–200 MB on a 2-core machine. */
export const DEFAULT_MAX_CONTEXTS = 3;
/** Contexts one browser serves before it is replaced, so slow leaks in the browser process do not build up. */
export const DEFAULT_RESTART_AFTER_CONTEXTS = 50;
/** Memory (PSS of the browser's process tree) past which the browser is replaced: 1.5 GiB. */
export const DEFAULT_MAX_BROWSER_MEMORY_BYTES = 1536 * 1024 * 1024;
/** Memory is read at an open at most this often (one reading of /proc took ~50 ms here). */
export const MEMORY_CHECK_INTERVAL_MS = 10_000;
/** Every context's viewport until a setViewport action changes it. */
export const DEFAULT_VIEWPORT = { width: 1280, height: 800 } as const;
const DEFAULT_LAUNCH_TIMEOUT_MS = 30_000;
const DEFAULT_RESTORE_TIMEOUT_MS = 30_000;

/** How the pool runs Chromium. */
export interface BrowserPoolOptions {
  /** The Chromium binary (config.chromiumPath). */
  executablePath: string;
  /** Contexts open at once; more `open` calls wait (default 3). */
  maxContexts?: number;
  /** Contexts one browser serves before it is replaced (default 50). */
  restartAfterContexts?: number;
  /** Memory of the browser's process tree past which it is replaced (default 1.5 GiB). */
  maxBrowserMemoryBytes?: number;
  /** How often an open reads that memory, at most (default 10 s). */
  memoryCheckIntervalMs?: number;
  /** Override of the sandbox decision (default: sandboxed unless running as root). */
  sandboxed?: boolean;
  viewport?: { width: number; height: number };
  launchTimeoutMs?: number;
  /** Largest download kept by stepwise.download (default 25 MiB). */
  downloadMaxBytes?: number;
  logger?: Pick<Logger, 'info' | 'warn'>;
}

/** Figures for logs and tests. */
export interface BrowserPoolStats {
  launches: number;
  /** Contexts open now. */
  contexts: number;
  /** Opens waiting for a slot. */
  waiting: number;
  /** The current browser's process id (null before the first open, or when /proc cannot say). */
  pid: number | null;
  /** Contexts the current browser has served. */
  servedByCurrent: number;
}

/** One browser process and its bookkeeping. */
interface Generation {
  browser: Browser;
  pid: number | null;
  downloadArea: DownloadArea;
  /** Contexts opened on it, ever. */
  opened: number;
  /** Contexts open on it now. */
  live: number;
  /** No new contexts: it closes when its last one does. */
  retiring: boolean;
  /** We are closing it (its disconnect is not a crash). */
  closing: boolean;
  crashed: boolean;
  memoryCheckedAt: number;
}

/**
 * The worker's browser runtime: one Chromium per worker process, launched
 * on first use; a fresh context per `open`, never shared, at most
 * `maxContexts` at once (others wait, leaving when their signal aborts).
 *
 * A browser is replaced after `restartAfterContexts` contexts, when its
 * memory passes the bound, or when it crashed. A replaced browser takes no
 * new contexts and closes when its last session does, so a restart never
 * cuts a running job short: for a while two browsers may run. A crashed
 * browser's sessions fail their next action with BROWSER_CRASHED, and the
 * next `open` launches a new one.
 *
 * Measured on this 2-core machine (Chromium 156): a launch ~1.2 s, a new
 * context and its page ~400 ms, closing a context ~30 ms, a browser with no
 * context open ~300 MB PSS.
 */
export class BrowserPool implements BrowserRuntime {
  readonly sandboxed: boolean;
  private readonly slots: Slots;
  private readonly restartAfter: number;
  private readonly maxMemory: number;
  private current: Generation | null = null;
  private launching: Promise<Generation> | null = null;
  private readonly all = new Set<Generation>();
  private launches = 0;
  private closed = false;

  constructor(private readonly options: BrowserPoolOptions) {
    this.sandboxed = options.sandboxed ?? sandboxByDefault();
    this.slots = new Slots(options.maxContexts ?? DEFAULT_MAX_CONTEXTS);
    this.restartAfter = options.restartAfterContexts ?? DEFAULT_RESTART_AFTER_CONTEXTS;
    this.maxMemory = options.maxBrowserMemoryBytes ?? DEFAULT_MAX_BROWSER_MEMORY_BYTES;
  }

  stats(): BrowserPoolStats {
    return {
      launches: this.launches,
      contexts: this.slots.inUse,
      waiting: this.slots.waiting,
      pid: this.current?.pid ?? null,
      servedByCurrent: this.current?.opened ?? 0,
    };
  }

  async open(request: OpenRequest): Promise<BrowserSession> {
    if (this.closed) throw browserError('BROWSER_SESSION_CLOSED', 'the browser runtime is closed');
    const proxy = checkProxy(request.proxy);
    let release: () => void;
    try {
      release = await this.slots.acquire(request.signal);
    } catch {
      throw browserError('BROWSER_ABORTED', `aborted while waiting for a browser context (${this.slots.limit} in use)`);
    }
    let generation: Generation | null = null;
    let context: BrowserContext | null = null;
    let session: PlaywrightSession | null = null;
    let released = false;
    const done = () => {
      if (released) return;
      released = true;
      if (generation) this.contextClosed(generation);
      release();
    };
    try {
      generation = await this.generation();
      generation.opened++;
      generation.live++;
      const gen = generation;
      const storageState = request.state ? storageStateOf(request.state) : undefined;
      context = await gen.browser.newContext({
        // `<-loopback>`: Chromium sends loopback addresses past a proxy unless told not to; the egress proxy must see those too.
        proxy: { ...proxy, bypass: '<-loopback>' },
        serviceWorkers: 'block',
        // Only stepwise.download keeps a download; the session cancels any other as it starts.
        acceptDownloads: true,
        ignoreHTTPSErrors: false,
        viewport: this.options.viewport ?? DEFAULT_VIEWPORT,
        ...(storageState ? { storageState } : {}),
      });
      if (request.state) await restoreSessionStorage(context, request.state);
      const page = await context.newPage();
      session = new PlaywrightSession(context, page, {
        browserCrashed: () => gen.crashed,
        downloadArea: gen.downloadArea,
        downloadMaxBytes: this.options.downloadMaxBytes ?? DOWNLOAD_MAX_BYTES,
        released: done,
      });
      const state = request.state;
      if (state?.url) {
        const timeoutMs = request.timeoutMs ?? DEFAULT_RESTORE_TIMEOUT_MS;
        const deadline = new Deadline(timeoutMs);
        await guarded(() => returnToPage(page, state, deadline), timeoutMs, request.signal, 'restore');
      }
      return session;
    } catch (err) {
      if (session) await session.close();
      else {
        if (context) await context.close().catch(() => undefined);
        done();
      }
      throw toBrowserError(err, 'open', generation?.crashed ?? false);
    }
  }

  /** The browser to open the next context on: the current one unless it must be replaced. */
  private async generation(): Promise<Generation> {
    const gen = this.current;
    if (gen) {
      const reason = await this.retireReason(gen);
      if (reason === null && this.current === gen) return gen;
      if (reason !== null) this.retire(gen, reason);
    }
    if (this.current) return this.current;
    this.launching ??= this.launch().finally(() => {
      this.launching = null;
    });
    return this.launching;
  }

  private async launch(): Promise<Generation> {
    const launched = await launchChromium({
      executablePath: this.options.executablePath,
      sandboxed: this.sandboxed,
      timeoutMs: this.options.launchTimeoutMs ?? DEFAULT_LAUNCH_TIMEOUT_MS,
    });
    const gen: Generation = {
      browser: launched.browser,
      pid: launched.pid,
      downloadArea: { dir: launched.downloadsDir, lock: new Slots(1) },
      opened: 0,
      live: 0,
      retiring: false,
      closing: false,
      crashed: false,
      memoryCheckedAt: Date.now(),
    };
    launched.browser.on('disconnected', () => {
      if (gen.closing) return;
      gen.crashed = true;
      this.options.logger?.warn({ pid: gen.pid, openContexts: gen.live }, 'browser: Chromium went away (crashed or killed); its sessions fail, the next open launches a new one');
      if (this.current === gen) this.retire(gen, 'crashed');
    });
    this.launches++;
    this.all.add(gen);
    this.options.logger?.info({ pid: gen.pid, launchMs: launched.launchMs, sandboxed: this.sandboxed, launches: this.launches }, 'browser: Chromium launched');
    if (this.closed) {
      await this.shutdown(gen);
      throw browserError('BROWSER_SESSION_CLOSED', 'the browser runtime is closed');
    }
    this.current = gen;
    return gen;
  }

  /** Why this browser should take no more contexts, or null. */
  private async retireReason(gen: Generation): Promise<string | null> {
    if (gen.crashed || !gen.browser.isConnected()) return 'crashed';
    if (gen.opened >= this.restartAfter) return `served ${gen.opened} contexts`;
    if (gen.pid !== null && Date.now() - gen.memoryCheckedAt >= (this.options.memoryCheckIntervalMs ?? MEMORY_CHECK_INTERVAL_MS)) {
      gen.memoryCheckedAt = Date.now();
      const bytes = await processTreeMemory(gen.pid);
      if (bytes !== null && bytes > this.maxMemory) return `uses ${Math.round(bytes / 1048576)} MiB (bound ${Math.round(this.maxMemory / 1048576)} MiB)`;
    }
    return null;
  }

  private retire(gen: Generation, reason: string): void {
    if (this.current === gen) this.current = null;
    if (gen.retiring) return;
    gen.retiring = true;
    this.options.logger?.info({ pid: gen.pid, reason, openContexts: gen.live }, 'browser: replacing Chromium');
    if (gen.live === 0) void this.shutdown(gen);
  }

  private contextClosed(gen: Generation): void {
    gen.live--;
    if (gen.retiring && gen.live === 0) void this.shutdown(gen);
  }

  private async shutdown(gen: Generation): Promise<void> {
    if (!this.all.delete(gen)) return;
    gen.closing = true;
    await gen.browser.close().catch(() => undefined);
    await rm(gen.downloadArea.dir, { recursive: true, force: true }).catch(() => undefined);
  }

  /** Close every browser (their sessions fail from then on); open sessions should be closed first. */
  async close(): Promise<void> {
    this.closed = true;
    this.current = null;
    await this.launching?.catch(() => undefined);
    await Promise.all([...this.all].map((gen) => this.shutdown(gen)));
  }
}

/** The proxy must be a URL Chromium can use; its credentials travel with the context, never in the URL. */
function checkProxy(proxy: ProxySettings | undefined): ProxySettings {
  if (!proxy || typeof proxy.server !== 'string') throw browserError('BROWSER_ACTION_INVALID', 'open needs the egress proxy ({ server, username, password })');
  let url: URL;
  try {
    url = new URL(proxy.server);
  } catch {
    throw browserError('BROWSER_ACTION_INVALID', `the egress proxy ${JSON.stringify(proxy.server)} is not a URL`);
  }
  if (!['http:', 'https:', 'socks5:'].includes(url.protocol) || url.username || url.password) {
    throw browserError('BROWSER_ACTION_INVALID', 'the egress proxy must be http://, https:// or socks5:// host:port, with credentials given apart');
  }
  return { server: proxy.server, username: proxy.username, password: proxy.password };
}
