import { randomUUID } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { performAction, type ActionTarget } from './actions.js';
import { takeScreenshot } from './custom-steps.js';
import { Deadline, guarded, pause } from './deadline.js';
import { DownloadGate, type DownloadArea } from './download.js';
import { browserError, isClosedError, toBrowserError } from './errors.js';
import { isPresent } from './selectors.js';
import { captureState } from './state.js';
import type { ActionContext, ActionOutcome, BrowserSession, BrowserState, RecorderAction, Selectors } from './types.js';

/** What a session needs from the pool that opened it. */
export interface SessionHost {
  /** Whether the browser under the session is gone without having been closed (a crash, a kill). */
  browserCrashed(): boolean;
  /** Where this browser's downloads land, one at a time. */
  downloadArea: DownloadArea;
  downloadMaxBytes: number;
  /** Called once, when the session has closed its context (frees its slot). */
  released(): void;
}

/** Bound of the calls that have no action timeout of their own (screenshot, state, title). */
const SESSION_CALL_TIMEOUT_MS = 30_000;
/** Closing a context of a healthy browser took ~30 ms here; a dead one may never answer. */
const CLOSE_TIMEOUT_MS = 10_000;

const NEVER = new AbortController().signal;

/** One job's browser context and its one page (popups are watched for downloads only). */
export class PlaywrightSession implements BrowserSession {
  private pageCrashed = false;
  private pageClosed = false;
  private closed = false;
  private tracing = false;
  private lastUrl = 'about:blank';
  private readonly downloads = new DownloadGate();
  private readonly target: ActionTarget;

  constructor(
    private readonly context: BrowserContext,
    private readonly page: Page,
    private readonly host: SessionHost,
  ) {
    page.on('crash', () => (this.pageCrashed = true));
    // Dialogs are accepted, as the person recording clicked OK: a Recorder flow does not record them, and
    // Playwright's default (dismiss) would cancel a "Submit this claim?" confirm or block a navigation on beforeunload.
    page.on('dialog', (dialog) => void dialog.accept().catch(() => undefined));
    page.on('framenavigated', (frame) => {
      if (frame === page.mainFrame()) this.lastUrl = frame.url();
    });
    this.downloads.watch(page);
    context.on('page', (other) => {
      if (other !== page) this.downloads.watch(other);
    });
    this.target = {
      page,
      downloads: this.downloads,
      downloadArea: host.downloadArea,
      downloadMaxBytes: host.downloadMaxBytes,
      closePage: async () => {
        this.lastUrl = page.url();
        this.pageClosed = true;
        await page.close();
      },
    };
  }

  private crashed(): boolean {
    return this.pageCrashed || this.host.browserCrashed();
  }

  /** Refuse work on a closed or crashed session before touching Playwright. */
  private check(what: string): void {
    if (this.closed) throw browserError('BROWSER_SESSION_CLOSED', `${what}: the session is closed`);
    if (this.crashed()) throw browserError('BROWSER_CRASHED', `${what}: the browser or its page crashed`);
  }

  /**
   * Map a failure: a "closed" error on a session nobody closed is the
   * browser dying under the call (its disconnect event may land a moment
   * after the failed call, hence the short wait before deciding).
   */
  private async failure(err: unknown, what: string): Promise<never> {
    if (!this.closed && !this.crashed() && isClosedError(err)) await pause(100);
    if (!this.closed && this.crashed()) throw browserError('BROWSER_CRASHED', `${what}: the browser or its page crashed`);
    throw toBrowserError(err, what, false);
  }

  async run(action: RecorderAction, ctx: ActionContext): Promise<ActionOutcome> {
    const what = action.type === 'customStep' ? `customStep ${action.name ?? ''}`.trim() : action.type;
    this.check(what);
    if (this.pageClosed) throw browserError('BROWSER_SESSION_CLOSED', `${what}: the page was closed by a close action`);
    const timeoutMs = action.timeout ?? ctx.timeoutMs;
    const deadline = new Deadline(timeoutMs, ctx.signal);
    try {
      return await guarded(() => performAction(this.target, action, ctx, deadline), timeoutMs, ctx.signal, what);
    } catch (err) {
      return this.failure(err, what);
    }
  }

  async screenshot(options: { fullPage?: boolean; mask?: Selectors[] }): Promise<Buffer> {
    this.check('screenshot');
    const deadline = new Deadline(SESSION_CALL_TIMEOUT_MS);
    try {
      return await guarded(
        () => takeScreenshot(this.page, { fullPage: options.fullPage ?? false, mask: options.mask ?? [] }, deadline),
        SESSION_CALL_TIMEOUT_MS,
        NEVER,
        'screenshot',
      );
    } catch (err) {
      return this.failure(err, 'screenshot');
    }
  }

  async present(selectors: Selectors, timeoutMs: number): Promise<boolean> {
    this.check('present');
    try {
      return await guarded(() => isPresent(this.page, selectors, timeoutMs), timeoutMs, NEVER, 'present');
    } catch (err) {
      return this.failure(err, 'present');
    }
  }

  async state(): Promise<BrowserState> {
    this.check('state');
    try {
      return await guarded(() => captureState(this.context, this.pageClosed ? null : this.page), SESSION_CALL_TIMEOUT_MS, NEVER, 'state');
    } catch (err) {
      return this.failure(err, 'state');
    }
  }

  async traceStart(): Promise<void> {
    this.check('trace');
    if (this.tracing) await this.context.tracing.stop().catch(() => undefined);
    try {
      await guarded(() => this.context.tracing.start({ screenshots: true, snapshots: true }), SESSION_CALL_TIMEOUT_MS, NEVER, 'trace');
      this.tracing = true;
    } catch (err) {
      return this.failure(err, 'trace');
    }
  }

  async traceStop(keep: boolean): Promise<Buffer | null> {
    if (!this.tracing || this.closed || this.crashed()) return null;
    this.tracing = false;
    if (!keep) {
      await guarded(() => this.context.tracing.stop(), SESSION_CALL_TIMEOUT_MS, NEVER, 'trace').catch(() => undefined);
      return null;
    }
    // Playwright writes the zip to a file; it is read and removed at once (the caller seals it).
    const path = join(tmpdir(), `stepwise-trace-${randomUUID()}.zip`);
    try {
      await guarded(() => this.context.tracing.stop({ path }), SESSION_CALL_TIMEOUT_MS, NEVER, 'trace');
      return await readFile(path);
    } catch {
      return null;
    } finally {
      await rm(path, { force: true });
    }
  }

  url(): string {
    return this.pageClosed || this.page.isClosed() ? this.lastUrl : this.page.url();
  }

  async title(): Promise<string> {
    if (this.closed || this.pageClosed || this.crashed()) return '';
    return guarded(() => this.page.title(), SESSION_CALL_TIMEOUT_MS, NEVER, 'title').catch(() => '');
  }

  /** Close the context (idempotent); its slot is freed even when the browser is gone. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await guarded(() => this.context.close(), CLOSE_TIMEOUT_MS, NEVER, 'close').catch(() => undefined);
    } finally {
      this.host.released();
    }
  }
}
