import { BrowserActionError, type BrowserErrorCode } from './types.js';

/** A BrowserActionError whose code is one of the runtime's own (a typo does not compile). */
export function browserError(code: BrowserErrorCode, message: string, data?: Record<string, unknown>): BrowserActionError {
  return new BrowserActionError(code, message, data);
}

/** Selectors as a reader sees them in a message: `"#a" | "aria/Go" > "button"`. */
export function describeSelectors(selectors: readonly (string | readonly string[])[]): string {
  return selectors.map((s) => (typeof s === 'string' ? JSON.stringify(s) : s.map((p) => JSON.stringify(p)).join(' > '))).join(' | ');
}

/** Playwright's message without its call log (the lines after the first blank one), short enough for a step's error. */
function firstLines(message: string): string {
  const cut = message.split(/\n\s*(?:Call log:|=+ logs =+)/)[0] ?? message;
  return cut.trim().slice(0, 500);
}

/** Whether Playwright says the page, context or browser went away under the call. */
export function isClosedError(err: unknown): boolean {
  return (
    err instanceof Error &&
    /Target page, context or browser has been closed|Target closed|Browser has been closed|browser has disconnected|Page crashed|Target crashed|has been closed/i.test(
      err.message,
    )
  );
}

/**
 * Turn whatever an action threw into a BrowserActionError with a stable
 * code. `crashed` says whether the session already knows its page or browser
 * died (then a "closed" error from Playwright is the crash, not a close).
 */
export function toBrowserError(err: unknown, what: string, crashed: boolean): BrowserActionError {
  if (err instanceof BrowserActionError) return err;
  if (crashed) return browserError('BROWSER_CRASHED', `${what}: the browser or its page crashed`);
  // By name, not instanceof: this module stays free of Playwright so the schema side can import it.
  if (err instanceof Error && err.name === 'TimeoutError') {
    return browserError('BROWSER_TIMEOUT', `${what}: ${firstLines(err.message)}`);
  }
  if (isClosedError(err)) return browserError('BROWSER_SESSION_CLOSED', `${what}: the page or its context is closed`);
  const message = err instanceof Error ? firstLines(err.message) : String(err);
  const net = /net::(ERR_[A-Z_]+)/.exec(message)?.[1];
  if (net !== undefined) return browserError('BROWSER_NAVIGATION_FAILED', `${what}: ${net}`, { netError: net });
  return browserError('BROWSER_ACTION_FAILED', `${what}: ${message}`);
}
