/**
 * The seams of browser steps. src/browser/ is the browser runtime (one
 * Chromium per worker process, contexts, Chrome DevTools Recorder actions,
 * selectors, extraction, screenshots, storage state) and the egress proxy
 * every context goes through; src/engine/steps/browser.ts is the step type
 * that drives them durably (checkpoints, sealing, screenshots into the
 * record, side-effect markers).
 */

/**
 * One selector: a chain of parts, each inside the previous part's shadow
 * root or iframe. A part is CSS, or prefixed `aria/`, `xpath/`, `text/` or
 * `pierce/` (the Chrome Recorder's forms).
 */
export type SelectorChain = readonly string[];

/** Alternatives tried in order until one matches (a Recorder step's `selectors`; a bare string is a one-part chain). */
export type Selectors = readonly (string | SelectorChain)[];

/** An event a Recorder action expects and Stepwise checks for real after it. */
export interface AssertedEvent {
  type: 'navigation';
  /** The page's URL after the action (exact). */
  url?: string;
  /** The page's title after the action (exact). */
  title?: string;
}

/**
 * A Chrome DevTools Recorder step (the JSON its Recorder panel exports), with
 * `{{ }}` templates already rendered in `url` and `value`, plus Stepwise's
 * own `sideEffect` and `verify`.
 */
export interface RecorderAction {
  type:
    | 'setViewport'
    | 'navigate'
    | 'click'
    | 'doubleClick'
    | 'change'
    | 'keyDown'
    | 'keyUp'
    | 'scroll'
    | 'hover'
    | 'waitForElement'
    | 'waitForExpression'
    | 'close'
    | 'customStep';
  selectors?: Selectors;
  /** The frame path (indexes of child frames from the main frame), as the Recorder writes it. */
  frame?: number[];
  url?: string;
  value?: string;
  key?: string;
  /** Click/scroll offsets inside the element. */
  offsetX?: number;
  offsetY?: number;
  button?: 'primary' | 'auxiliary' | 'secondary' | 'back' | 'forward';
  x?: number;
  y?: number;
  width?: number;
  height?: number;
  deviceScaleFactor?: number;
  isMobile?: boolean;
  hasTouch?: boolean;
  isLandscape?: boolean;
  /** waitForElement: the element count to wait for, compared with `operator` (default >= 1). */
  count?: number;
  operator?: '==' | '>=' | '<=';
  visible?: boolean;
  /** waitForExpression: evaluated inside the page only. */
  expression?: string;
  /** This action's own timeout (ms), else the step's per-action timeout. */
  timeout?: number;
  assertedEvents?: AssertedEvent[];
  /** customStep: `stepwise.extract`, `stepwise.screenshot`, `stepwise.select`, `stepwise.assertText`, `stepwise.upload`, `stepwise.download`. */
  name?: string;
  parameters?: Record<string, unknown>;
  /** The action changes something outside (a final submit): it is never replayed blindly after a crash. */
  sideEffect?: boolean;
  /** After a crash during a side-effecting action: these selectors present means it happened. */
  verify?: Selectors;
}

/** What a session keeps to be restored in a new context: cookies, storage per origin, and where it was. */
export interface BrowserState {
  /** Playwright's storage state (cookies; localStorage and IndexedDB per origin). */
  storage: unknown;
  /** sessionStorage per origin (Playwright's storage state leaves it out). */
  sessionStorage: Record<string, Record<string, string>>;
  url: string | null;
  title: string | null;
}

/** What one action produced. */
export interface ActionOutcome {
  /** stepwise.extract: a value under a name, merged into the step's `extracted`. */
  extracted?: { name: string; value: unknown };
  /** stepwise.screenshot: a PNG (masks applied). */
  screenshot?: { bytes: Buffer; fullPage: boolean };
  /** stepwise.download: the file (at most the download cap). */
  download?: { bytes: Buffer; name: string; contentType: string };
}

/** What an action may need from the step around it. */
export interface ActionContext {
  /** The per-action timeout (ms). */
  timeoutMs: number;
  /** Aborted when the step is stopped (cancel, deadline, lost lease, shutdown). */
  signal: AbortSignal;
  /** stepwise.upload: the bytes of a blob the workflow names (never a path on the server). */
  readBlob(reference: string): Promise<{ bytes: Buffer; name: string; contentType: string }>;
}

/** A browser context of one job's session. */
export interface BrowserSession {
  /** Run one action on the session's page; throws BrowserActionError (with a stable code) when it fails. */
  run(action: RecorderAction, ctx: ActionContext): Promise<ActionOutcome>;
  /** A viewport (or full-page) PNG of the page, masks painted over the elements the selectors match. */
  screenshot(options: { fullPage?: boolean; mask?: Selectors[] }): Promise<Buffer>;
  /** Whether any of the selectors matches now (the `verify` of a side-effecting action). */
  present(selectors: Selectors, timeoutMs: number): Promise<boolean>;
  /** Everything needed to restore the session elsewhere. */
  state(): Promise<BrowserState>;
  /** Start a Playwright trace of the context (actions, DOM snapshots, screenshots, network); a trace already running is dropped. */
  traceStart(): Promise<void>;
  /** Stop the trace: its zip when `keep`, else it is dropped (null also when none runs or the browser is gone). */
  traceStop(keep: boolean): Promise<Buffer | null>;
  url(): string;
  title(): Promise<string>;
  close(): Promise<void>;
}

/** The egress proxy a context goes through (its per-session credentials). */
export interface ProxySettings {
  /** `http://127.0.0.1:PORT`: the egress proxy; loopback is never bypassed. */
  server: string;
  username: string;
  password: string;
}

/** What `BrowserRuntime.open` takes. */
export interface OpenRequest {
  /** Every request of the context goes through this proxy (loopback included). */
  proxy: ProxySettings;
  /** The origins the proxy allows (informational here: the proxy enforces them, the runtime does not read them). */
  allowOrigins?: readonly string[] | undefined;
  /** Restore cookies, storage and the page from a previous session (navigates to its url). */
  state?: BrowserState | undefined;
  /** Bound of the restore navigation (ms); default 30,000. */
  timeoutMs?: number | undefined;
  /** Aborts waiting for a context slot (and the restore). */
  signal: AbortSignal;
}

/** Opens sessions on the worker's browser. */
export interface BrowserRuntime {
  /**
   * A fresh context (never shared across jobs), every request of it (loopback
   * included) through `proxy`, restored from `state` when given (then at the
   * saved page). Waits while the worker's context limit is reached.
   */
  open(request: OpenRequest): Promise<BrowserSession>;
  /** Whether Chromium runs sandboxed (false as root), said once at start. */
  readonly sandboxed: boolean;
  close(): Promise<void>;
}

/** The stable codes the runtime throws (see BrowserActionError). */
export type BrowserErrorCode =
  | 'BROWSER_SELECTOR_NOT_FOUND'
  | 'BROWSER_TIMEOUT'
  | 'BROWSER_ASSERTION'
  | 'BROWSER_URL_REFUSED'
  | 'BROWSER_CRASHED'
  | 'BROWSER_ACTION_INVALID'
  | 'BROWSER_ACTION_FAILED'
  | 'BROWSER_NAVIGATION_FAILED'
  | 'BROWSER_DOWNLOAD_TOO_LARGE'
  | 'BROWSER_EXTRACT_TOO_LARGE'
  | 'BROWSER_SESSION_CLOSED'
  | 'BROWSER_ABORTED'
  | 'BROWSER_LAUNCH_FAILED'
  | 'EGRESS_DENIED';

/** An action failed: `code` is stable (BROWSER_SELECTOR_NOT_FOUND, BROWSER_TIMEOUT, BROWSER_ASSERTION, EGRESS_DENIED, …; see BrowserErrorCode). */
export class BrowserActionError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly data?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'BrowserActionError';
  }
}
