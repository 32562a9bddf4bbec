import { browserError } from './errors.js';

/**
 * One action's time budget. Every wait inside an action (finding the
 * element, acting, checking asserted events) takes what is left of one
 * budget, so an action ends within its timeout however many waits it has.
 */
export class Deadline {
  private readonly end: number;
  /** `signal`: an aborted action's budget is spent at once, so its polling loops stop instead of running out the clock. */
  constructor(
    readonly timeoutMs: number,
    private readonly signal?: AbortSignal,
  ) {
    this.end = Date.now() + timeoutMs;
  }
  /** Milliseconds left, at least 1 (Playwright reads 0 as "no timeout"). */
  remaining(): number {
    return Math.max(1, this.end - Date.now());
  }
  expired(): boolean {
    return Date.now() >= this.end || this.signal?.aborted === true;
  }
}

/**
 * Extra time the guard gives Playwright's own timeouts and an action's own deadline check to fire
 * first (they say more: which element, what was seen). 1 s was too little on a loaded 2-core machine:
 * one round of counting a selector's matches outlasted it and a missing element ended BROWSER_TIMEOUT.
 */
const GUARD_GRACE_MS = 3_000;

/**
 * Run `work` but give up when `signal` aborts (BROWSER_ABORTED) or the
 * budget plus the grace passes (BROWSER_TIMEOUT). Some Playwright calls
 * have no timeout of their own (evaluate in a page stuck in a loop), so this
 * guard is what bounds every action. The work itself is not stopped: the
 * caller closes the session after an abort.
 */
export async function guarded<T>(work: () => Promise<T>, timeoutMs: number, signal: AbortSignal, what: string): Promise<T> {
  if (signal.aborted) throw browserError('BROWSER_ABORTED', `${what}: aborted`);
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  const stop = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(browserError('BROWSER_TIMEOUT', `${what}: did not finish within ${timeoutMs} ms`)),
      timeoutMs + GUARD_GRACE_MS,
    );
    onAbort = () => reject(browserError('BROWSER_ABORTED', `${what}: aborted`));
    signal.addEventListener('abort', onAbort, { once: true });
  });
  const running = work();
  // The losing side of the race must not surface as an unhandled rejection.
  running.catch(() => undefined);
  try {
    return await Promise.race([running, stop]);
  } finally {
    clearTimeout(timer);
    if (onAbort) signal.removeEventListener('abort', onAbort);
  }
}

/** Sleep that wakes early when `signal` aborts (the caller then checks it). */
export function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
