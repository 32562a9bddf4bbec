import type { StepBase } from '../../model/definition.js';
import { ValidationError } from '../../errors/index.js';
import { BrowserActionError, type BrowserSession, type BrowserState, type RecorderAction } from '../../browser/types.js';
import { recorderActionSchema } from '../../browser/recorder-schema.js';
import { renderString, renderTemplates } from '../definition/expressions.js';
import { durationSchema, MAX_DURATION_MS } from './durations.js';
import { noChildren, noDirectCredentials, StepError, type StepContext, type StepType } from './types.js';
import type { BrowserSessionLease, EgressNotice, Sealer } from '../services.js';
import { SEALED_TRACE_CONTENT_TYPE, traceSealedFor } from '../artifacts.js';

/** Actions one browser step may hold. */
export const MAX_BROWSER_ACTIONS = 200;
/** The per-action timeout when the step names none, and the most it may name. */
export const DEFAULT_ACTION_TIMEOUT_MS = 5_000;
export const MAX_ACTION_TIMEOUT_MS = 60_000;
/** The whole step's cap when it names none (every action, waits included). */
export const DEFAULT_BROWSER_STEP_MS = 300_000;

/**
 * Drives a real browser through Chrome DevTools Recorder actions (plus
 * Stepwise's `stepwise.*` custom steps), durably: after every action the
 * step keeps its progress (the next action, what it extracted, its
 * screenshots, and the session's cookies and storage sealed with the
 * credential key ring), so a job resumed after a crash — here or on another
 * worker — restores the session in a new context at the saved page and goes
 * on at the next action. An action marked `sideEffect` is committed as
 * in flight before it runs: after a crash during it, its `verify`
 * selectors decide whether it happened, and without them the step fails
 * BROWSER_UNCERTAIN rather than repeat it.
 */
export interface BrowserStep extends StepBase {
  type: 'browser';
  /** Consecutive browser steps of a job naming the same session share its cookies and open page. Default "default". */
  session?: string;
  /** Origins the page may reach (navigations, subresources, websockets, redirects): `https://portal.example.com`. */
  allowOrigins: string[];
  /** Per-action timeout (default 5 s, at most 60 s). */
  timeoutMs?: number;
  /** The whole step's cap (default 5 minutes). */
  maxDurationMs?: number;
  /** A screenshot after every action, or only when one fails (always then). */
  screenshots?: 'onFailure' | 'eachAction';
  /**
   * Keep a Playwright trace of the step (actions, DOM snapshots, network):
   * when it fails, or always. Sealed with the key ring and kept at most 7
   * days, since it holds what the pages showed and what was typed; a step
   * that fills in credentials cannot be traced (log in in a step of its own).
   */
  trace?: 'off' | 'onFailure' | 'always';
  /** Painted over in every screenshot the step takes itself (the failure and eachAction ones). */
  mask?: (string | string[])[][];
  actions: RecorderAction[];
}

/** What the step keeps after each action (ctx.progress), and gets back as ctx.resumed (after a crash) or ctx.previousProgress (on a retry). */
interface Progress {
  /** The next action to run. */
  next: number;
  /**
   * The first action run on the page as it is now (after the last change of
   * URL): a session restored at the saved URL is a fresh load, so the
   * actions from here to `next` (typing into a form, choosing options) are
   * run again to put the page back. Side-effecting ones never are.
   */
  pageFrom: number;
  /** An action with side effects that started and was not seen to finish. */
  inFlight?: number;
  /** Just after the last side-effecting action that finished: where a retry of the step starts (0 when none did). */
  committed: number;
  extracted: Record<string, unknown>;
  screenshots: string[];
  /** Milliseconds each action took, by index (null: not run in this step, e.g. after a close). */
  durationsMs: (number | null)[];
  url: string | null;
  title: string | null;
}

/** How long a trace is kept at most, whatever the screenshot retention policy says. */
export const TRACE_RETENTION_MS = 7 * 24 * 3600 * 1000;

/** A `{{ }}` template naming credentials anywhere in an action's url, value or parameters. */
const CREDENTIAL_TEMPLATE = /\{\{[^}]*\bcredentials\b/;

function fillsCredentials(action: RecorderAction): boolean {
  return [action.url, action.value, action.parameters === undefined ? undefined : JSON.stringify(action.parameters)].some(
    (text) => text !== undefined && CREDENTIAL_TEMPLATE.test(text),
  );
}

/** A sealed session state larger than this keeps its cookies only (page storage dropped, with a warning): it is written with every action. */
export const MAX_SEALED_STATE_BYTES = 1024 * 1024;

/** Custom steps that only read the page: a restored page does not need them run again. */
const READ_ONLY_CUSTOM = new Set(['stepwise.extract', 'stepwise.screenshot', 'stepwise.assertText', 'stepwise.download']);

/** Codes after which the session is no use to a retry or the next step: it is closed, and reopened from the carried state. */
const DISCARD_CODES = new Set(['BROWSER_CRASHED', 'BROWSER_SESSION_CLOSED']);

const ORIGIN = '^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?$|^https?://\\[[0-9A-Fa-f:.]+\\](:[0-9]{1,5})?$';

export const browserStep: StepType<BrowserStep> = {
  type: 'browser',
  properties: {
    session: { type: 'string', pattern: '^[A-Za-z0-9_.:-]{1,64}$' },
    allowOrigins: { type: 'array', minItems: 1, maxItems: 50, uniqueItems: true, items: { type: 'string', pattern: ORIGIN } },
    timeoutMs: { type: 'integer', minimum: 1, maximum: MAX_ACTION_TIMEOUT_MS },
    maxDurationMs: durationSchema,
    screenshots: { enum: ['onFailure', 'eachAction'] },
    trace: { enum: ['off', 'onFailure', 'always'] },
    mask: { type: 'array', maxItems: 50, items: { type: 'array', minItems: 1, maxItems: 10, items: { anyOf: [{ type: 'string', minLength: 1, maxLength: 1000 }, { type: 'array', minItems: 1, maxItems: 10, items: { type: 'string', minLength: 1, maxLength: 1000 } }] } } },
    actions: { type: 'array', minItems: 1, maxItems: MAX_BROWSER_ACTIONS, items: recorderActionSchema },
  },
  required: ['allowOrigins', 'actions'],
  sources: (step) => {
    const templates: Record<string, unknown> = {};
    step.actions.forEach((a, i) => {
      if (a.url !== undefined) templates[`actions/${i}/url`] = a.url;
      if (a.value !== undefined) templates[`actions/${i}/value`] = a.value;
      if (a.parameters !== undefined) templates[`actions/${i}/parameters`] = a.parameters;
    });
    return { templates };
  },
  validate(step, path) {
    if (step.trace && step.trace !== 'off' && step.actions.some(fillsCredentials)) {
      throw new ValidationError(
        `${path}/trace: a trace records what is typed and sent, so a step that fills in credentials cannot be traced; log in in a browser step of its own (the session carries over)`,
        { path: `${path}/trace` },
      );
    }
    step.actions.forEach((a, i) => {
      if (a.verify && !a.sideEffect) {
        throw new ValidationError(`${path}/actions/${i}/verify is only for an action with "sideEffect": true`, { path: `${path}/actions/${i}/verify` });
      }
      if (a.timeout !== undefined && a.timeout > MAX_ACTION_TIMEOUT_MS) {
        throw new ValidationError(`${path}/actions/${i}/timeout must be at most ${MAX_ACTION_TIMEOUT_MS}`, { path: `${path}/actions/${i}/timeout`, limit: MAX_ACTION_TIMEOUT_MS });
      }
    });
  },
  credentials: noDirectCredentials,
  children: noChildren,
  block: false,
  // The whole step's cap, not the per-action timeout its timeoutMs means.
  attemptTimeoutMs: (step) => Math.min(step.maxDurationMs ?? DEFAULT_BROWSER_STEP_MS, MAX_DURATION_MS),
  sideEffects: true,
  abortable: true,
  compensation: false,
  run: runBrowser,
};

/** The key of a session's state in what the job carries, and what the seal is bound to (the organization and session: a retry from the failed step carries it into a new job of the same organization). */
function carriedKey(session: string): string {
  return `browser:${session}`;
}

function sealedFor(ctx: StepContext, session: string): string {
  return `browser-state:${ctx.job.organizationId}:${session}`;
}

function requireSealer(ctx: StepContext): Sealer {
  const sealer = ctx.services.sealer;
  if (!sealer) throw new StepError('BROWSER_UNAVAILABLE', 'browser steps need the credential key ring (STEPWISE_ENCRYPTION_KEYS) to seal session state');
  return sealer;
}

function progressOf(r: Readonly<Record<string, unknown>> | undefined): Progress | undefined {
  if (!r || typeof r.next !== 'number') return undefined;
  return {
    next: r.next,
    pageFrom: typeof r.pageFrom === 'number' ? r.pageFrom : r.next,
    ...(typeof r.inFlight === 'number' ? { inFlight: r.inFlight } : {}),
    committed: typeof r.committed === 'number' ? r.committed : 0,
    extracted: r.extracted !== null && typeof r.extracted === 'object' ? { ...(r.extracted as Record<string, unknown>) } : {},
    screenshots: Array.isArray(r.screenshots) ? r.screenshots.filter((s): s is string => typeof s === 'string') : [],
    durationsMs: Array.isArray(r.durationsMs) ? r.durationsMs.map((d) => (typeof d === 'number' ? d : null)) : [],
    url: typeof r.url === 'string' ? r.url : null,
    title: typeof r.title === 'string' ? r.title : null,
  };
}
/** The action with its `{{ }}` templates rendered (credentials included: filled in here, kept nowhere). */
async function rendered(action: RecorderAction, index: number, step: BrowserStep, ctx: StepContext): Promise<RecorderAction> {
  const where = `steps.${step.id}.actions.${index}`;
  const out: RecorderAction = { ...action };
  if (action.url !== undefined) out.url = await renderString(action.url, ctx.scope, `${where}.url`);
  if (action.value !== undefined) out.value = await renderString(action.value, ctx.scope, `${where}.value`);
  if (action.parameters !== undefined) {
    const parameters = await renderTemplates(action.parameters, ctx.scope, `${where}.parameters`);
    out.parameters = parameters !== null && typeof parameters === 'object' ? (parameters as Record<string, unknown>) : {};
  }
  return out;
}

async function capture(ctx: StepContext, session: BrowserSession, name: string, failure: boolean, mask: BrowserStep['mask']): Promise<string | null> {
  try {
    const bytes = await session.screenshot({ mask: mask ?? [] });
    const shot = await ctx.capture({ bytes, type: failure ? 'ERROR_SCREENSHOT' : 'SCREENSHOT', name });
    return shot.id;
  } catch {
    // A screenshot is evidence, not the step's outcome: a page that cannot be captured (closed, crashed) fails nothing more.
    return null;
  }
}

/**
 * Where a retry of the step starts: over from the first action (a flaky
 * page is loaded again), but never before a side-effecting action that
 * finished — a retry does not submit twice. One that was in flight is
 * decided by its `verify` first, as after a crash.
 */
function retryFrom(previous: Progress | undefined): Progress | undefined {
  if (!previous) return undefined;
  return { ...previous, next: previous.committed, pageFrom: previous.committed };
}

/** Whether a restored page needs this already-run action again to be as it was (form input yes; reads and side effects no). */
function replayable(action: RecorderAction): boolean {
  if (action.sideEffect) return false;
  if (action.type === 'customStep') return !READ_ONLY_CUSTOM.has(action.name ?? '');
  return action.type !== 'waitForElement' && action.type !== 'waitForExpression' && action.type !== 'close';
}

/** A StepError for a failed action (or replay), with what the page was refused meanwhile and the failure screenshot. */
function actionFailure(err: unknown, i: number, action: RecorderAction, refused: EgressNotice[], shot: string | null): StepError {
  const code = err instanceof BrowserActionError ? err.code : err instanceof StepError ? err.code : 'BROWSER_ACTION_FAILED';
  const message = err instanceof Error ? err.message : String(err);
  const data = {
    action: i,
    type: action.type,
    ...(action.selectors ? { selectors: action.selectors } : {}),
    ...(refused.length > 0 ? { refused } : {}),
    ...(shot ? { screenshotId: shot } : {}),
  };
  // A navigation that failed while its host was refused is the refusal, whatever Chromium called it (ERR_TUNNEL_CONNECTION_FAILED).
  if (code === 'EGRESS_DENIED' || (refused.length > 0 && code === 'BROWSER_NAVIGATION_FAILED')) {
    const first = refused[0];
    // host and reason at the top, as every EGRESS_DENIED failure has them (the metric's reason label is read there).
    return new StepError('EGRESS_DENIED', `action ${i} (${action.type}): ${first ? `the page may not reach ${first.host} (${first.reason})` : message}`, {
      ...data,
      ...(first ? { host: first.host, reason: first.reason } : {}),
    });
  }
  const also = refused.length > 0 ? ` (the page was refused ${refused.map((r) => `${r.host}: ${r.reason}`).join(', ')})` : '';
  return new StepError(code, `action ${i} (${action.type}) failed: ${message}${also}`, data);
}

async function runBrowser(step: BrowserStep, ctx: StepContext): Promise<unknown> {
  const sessions = ctx.services.browser;
  if (!sessions) throw new StepError('BROWSER_UNAVAILABLE', 'this worker runs no browser (browser steps are not enabled here)');
  const sealer = requireSealer(ctx);
  const sessionName = step.session ?? 'default';
  const aad = sealedFor(ctx, sessionName);
  const progress: Progress = progressOf(ctx.resumed) ?? retryFrom(progressOf(ctx.previousProgress)) ?? {
    next: 0,
    pageFrom: 0,
    committed: 0,
    extracted: {},
    screenshots: [],
    durationsMs: [],
    url: null,
    title: null,
  };
  const carried = ctx.carried.get(carriedKey(sessionName));
  let state: BrowserState | undefined;
  if (typeof carried === 'string') {
    try {
      state = sealer.open(carried, aad) as BrowserState;
    } catch {
      // Sealed under a key the ring no longer holds: the session starts empty, as a first one would.
      ctx.log('WARN', `the saved state of browser session "${sessionName}" could not be opened (key ring changed); starting with an empty session`);
    }
  }
  let lease: BrowserSessionLease;
  try {
    lease = await sessions.acquire(ctx.job.id, sessionName, { allowOrigins: step.allowOrigins, state, signal: ctx.signal });
  } catch (err) {
    if (ctx.signal.aborted) throw ctx.signal.reason;
    if (err instanceof BrowserActionError) throw new StepError(err.code, `browser session "${sessionName}": ${err.message}`, { session: sessionName });
    throw err;
  }
  let discard = false;
  let failed = true;
  const tracing = step.trace === 'onFailure' || step.trace === 'always';
  try {
    // A trace is evidence, not the work: one that cannot start leaves the step untraced, said in its log.
    if (tracing) await lease.session.traceStart().catch((err: unknown) => ctx.log('WARN', `no trace: ${err instanceof Error ? err.message : String(err)}`));
    const { output, closed } = await drive(step, ctx, lease, progress, { restored: !lease.reused && state !== undefined, sealer, aad, sessionName });
    // After a close action the page is gone: a later step of the session opens a new context from the carried state.
    discard = closed;
    failed = false;
    return output;
  } catch (err) {
    // Stopped mid-action (cancel, the step's cap): Playwright may still be at work on that page.
    discard = ctx.signal.aborted || (err instanceof StepError && DISCARD_CODES.has(err.code));
    throw err;
  } finally {
    if (tracing) await keepTrace(ctx, lease.session, failed || step.trace === 'always', failed, sealer);
    await lease.done({ discard });
  }
}

/** Stop the step's trace; keep it sealed, for at most TRACE_RETENTION_MS, when asked to. Never fails the step. */
async function keepTrace(ctx: StepContext, session: BrowserSession, keep: boolean, failed: boolean, sealer: Sealer): Promise<void> {
  try {
    const zip = await session.traceStop(keep);
    if (!zip) return;
    await ctx.capture({
      bytes: sealer.sealBytes(zip, traceSealedFor(ctx.job.organizationId, ctx.job.id)),
      type: 'ARTIFACT',
      contentType: SEALED_TRACE_CONTENT_TYPE,
      name: `trace of ${ctx.path}${failed ? ' (failed)' : ''}`,
      retainForMs: TRACE_RETENTION_MS,
    });
  } catch (err) {
    ctx.log('WARN', `the trace of ${ctx.path} was not kept: ${err instanceof Error ? err.message : String(err)}`);
  }
}

async function drive(
  step: BrowserStep,
  ctx: StepContext,
  lease: BrowserSessionLease,
  progress: Progress,
  how: { restored: boolean; sealer: Sealer; aad: string; sessionName: string },
): Promise<{ output: unknown; closed: boolean }> {
  const { session } = lease;
  const timeoutMs = step.timeoutMs ?? DEFAULT_ACTION_TIMEOUT_MS;
  const actionCtx = (action: RecorderAction) => ({
    timeoutMs: action.timeout ?? timeoutMs,
    signal: ctx.signal,
    readBlob: (reference: string) => {
      const artifacts = ctx.services.artifacts;
      if (!artifacts) return Promise.reject(new StepError('BROWSER_ACTION_INVALID', 'uploads need a blob store, and this worker has none'));
      return artifacts.read(ctx.job.organizationId, reference);
    },
  });
  const fail = async (err: unknown, i: number, action: RecorderAction): Promise<never> => {
    if (ctx.signal.aborted) throw ctx.signal.reason;
    const shot = await capture(ctx, session, `action ${i} (${action.type}) failed`, true, step.mask);
    throw actionFailure(err, i, action, lease.refusals(), shot);
  };
  const noteRefusals = () => {
    const refused = lease.refusals();
    if (refused.length > 0) ctx.log('WARN', `the page was refused ${refused.map((r) => `${r.host} (${r.reason})`).join(', ')}`, { refused });
  };
  const keep = async () => {
    const s = await session.state();
    progress.url = s.url;
    progress.title = s.title;
    let sealed = how.sealer.seal(s, how.aad);
    if (sealed.length > MAX_SEALED_STATE_BYTES) {
      ctx.log('WARN', `browser session "${how.sessionName}" holds ${sealed.length} bytes of page storage, over ${MAX_SEALED_STATE_BYTES}: only its cookies are kept for a resumed run`);
      const storage = s.storage as { cookies?: unknown } | null;
      sealed = how.sealer.seal({ ...s, storage: { cookies: storage?.cookies ?? [], origins: [] }, sessionStorage: {} }, how.aad);
    }
    ctx.carried.set(carriedKey(how.sessionName), sealed);
    ctx.progress({ ...progress });
  };

  // A restored session is a fresh load of the saved URL: type again what had been typed into it.
  if (how.restored && progress.pageFrom < progress.next) {
    const upTo = progress.inFlight ?? progress.next;
    for (let i = progress.pageFrom; i < upTo; i++) {
      const action = step.actions[i]!;
      if (!replayable(action)) continue;
      try {
        await session.run(await rendered(action, i, step, ctx), actionCtx(action));
      } catch (err) {
        await fail(err, i, action);
      }
    }
    ctx.log('INFO', `browser session "${how.sessionName}" restored at ${progress.url ?? 'a blank page'}; actions ${progress.pageFrom}–${upTo - 1} replayed where they only fill the page`);
  }

  // A side-effecting action was in flight when the last run died or the last attempt failed: decide, never guess.
  if (progress.inFlight !== undefined) {
    const i = progress.inFlight;
    const action = step.actions[i]!;
    if (!action.verify) {
      throw new StepError('BROWSER_UNCERTAIN', `action ${i} (${action.type}) has side effects and was interrupted; without "verify" selectors it is not run again`, { action: i });
    }
    const happened = await session.present(action.verify, action.timeout ?? timeoutMs).catch((err: unknown) => fail(err, i, action));
    ctx.log('INFO', happened ? `action ${i} had happened before the interruption (verify matched); going on` : `action ${i} had not happened (verify did not match); running it`);
    delete progress.inFlight;
    if (happened) {
      progress.next = i + 1;
      progress.pageFrom = i + 1;
      progress.committed = i + 1;
      await keep();
    }
  }

  let closed = false;
  for (let i = progress.next; i < step.actions.length; i++) {
    const action = await rendered(step.actions[i]!, i, step, ctx);
    const urlBefore = session.url();
    if (action.sideEffect) {
      // The marker is committed before the action runs: a crash during it is then known, not repeated blindly.
      progress.inFlight = i;
      await keep();
      await ctx.durable();
    }
    let outcome;
    const t0 = performance.now();
    try {
      outcome = await session.run(action, actionCtx(action));
      progress.durationsMs[i] = Math.round(performance.now() - t0);
    } catch (err) {
      // An element never found was never clicked: the side effect certainly did not happen.
      if (err instanceof BrowserActionError && err.code === 'BROWSER_SELECTOR_NOT_FOUND' && progress.inFlight === i) {
        delete progress.inFlight;
        ctx.progress({ ...progress });
      }
      await fail(err, i, action);
    }
    noteRefusals();
    if (outcome!.extracted) progress.extracted[outcome!.extracted.name] = outcome!.extracted.value;
    if (outcome!.screenshot) {
      const shot = await ctx.capture({ bytes: outcome!.screenshot.bytes, name: `action ${i} screenshot` });
      progress.screenshots.push(shot.id);
    }
    if (outcome!.download) {
      const file = await ctx.capture({ bytes: outcome!.download.bytes, type: 'ARTIFACT', contentType: outcome!.download.contentType, name: outcome!.download.name });
      progress.extracted[`download:${outcome!.download.name}`] = { artifactId: file.id, bytes: outcome!.download.bytes.length };
    }
    if (step.screenshots === 'eachAction') {
      const shot = await capture(ctx, session, `after action ${i} (${action.type})`, false, step.mask);
      if (shot) progress.screenshots.push(shot);
    }
    progress.next = i + 1;
    if (action.type === 'navigate' || session.url() !== urlBefore) progress.pageFrom = i + 1;
    if (action.sideEffect) progress.committed = i + 1;
    delete progress.inFlight;
    if (action.type === 'close') {
      ctx.progress({ ...progress });
      closed = true;
      break;
    }
    await keep();
    if (action.sideEffect) await ctx.durable();
  }
  const durationsMs = step.actions.map((_, i) => progress.durationsMs[i] ?? null);
  return { output: { url: progress.url, title: progress.title, extracted: progress.extracted, screenshots: progress.screenshots, durationsMs }, closed };
}
