import type { Locator, Page } from 'playwright-core';
import { runCustomStep } from './custom-steps.js';
import { Deadline, pause } from './deadline.js';
import type { DownloadArea, DownloadGate } from './download.js';
import { browserError, describeSelectors } from './errors.js';
import { navigate } from './navigation.js';
import { ELEMENT_KIND, POLL_EXPRESSION, SCROLL_ELEMENT, SCROLL_WINDOW, SET_VALUE } from './page-scripts.js';
import { chooseOption } from './select-option.js';
import { countMatches, findElement, frameAt } from './selectors.js';
import type { ActionContext, ActionOutcome, AssertedEvent, RecorderAction, Selectors } from './types.js';

/** What an action works on: the session's page and what its downloads need. */
export interface ActionTarget {
  page: Page;
  downloads: DownloadGate;
  downloadArea: DownloadArea;
  downloadMaxBytes: number;
  /** The `close` action: the session's page closes (the context stays until the session closes). */
  closePage(): Promise<void>;
}

/** Poll interval of the waits that poll the page (expressions, counts, asserted events). */
const POLL_MS = 100;

/** Recorder buttons to Playwright's; `back` and `forward` have no Playwright click. */
const BUTTONS = { primary: 'left', auxiliary: 'middle', secondary: 'right' } as const;

/** Input types Playwright's `fill` takes; others get their value set and input/change dispatched. */
const FILLABLE = new Set(['text', 'password', 'email', 'number', 'search', 'tel', 'url', 'date', 'datetime-local', 'month', 'time', 'week']);

/**
 * Run one Recorder action on the target's page within the deadline, then
 * check its asserted events. Throws BrowserActionError (or a Playwright
 * error the session maps to one).
 */
export async function performAction(target: ActionTarget, action: RecorderAction, ctx: ActionContext, deadline: Deadline): Promise<ActionOutcome> {
  const outcome = await act(target, action, ctx, deadline);
  if (action.assertedEvents && action.assertedEvents.length > 0) await checkAssertedEvents(target.page, action.assertedEvents, deadline);
  return outcome;
}

async function act(target: ActionTarget, action: RecorderAction, ctx: ActionContext, deadline: Deadline): Promise<ActionOutcome> {
  const { page } = target;
  switch (action.type) {
    case 'setViewport': {
      const { width, height } = action;
      if (!isSize(width) || !isSize(height)) throw browserError('BROWSER_ACTION_INVALID', 'setViewport needs integer width and height between 1 and 10000');
      // deviceScaleFactor, isMobile and hasTouch are fixed when a context is created; the Recorder's desktop values match the defaults.
      await page.setViewportSize({ width, height });
      return {};
    }
    case 'navigate':
      await navigate(page, required(action.url, 'navigate', 'url'), deadline);
      return {};
    case 'click':
    case 'doubleClick': {
      const button = mouseButton(action);
      const { element } = await findElement(page, needSelectors(action), action.frame, deadline);
      const position = await clickPosition(element, action, deadline);
      const options = { button, timeout: deadline.remaining(), ...(position ? { position } : {}) };
      if (action.type === 'click') await element.click(options);
      else await element.dblclick(options);
      return {};
    }
    case 'hover': {
      const { element } = await findElement(page, needSelectors(action), action.frame, deadline);
      await element.hover({ timeout: deadline.remaining() });
      return {};
    }
    case 'change': {
      const value = required(action.value, 'change', 'value');
      const { element } = await findElement(page, needSelectors(action), action.frame, deadline);
      await setValue(element, value, deadline);
      return {};
    }
    case 'keyDown':
      await page.keyboard.down(required(action.key, 'keyDown', 'key'));
      return {};
    case 'keyUp':
      await page.keyboard.up(required(action.key, 'keyUp', 'key'));
      return {};
    case 'scroll': {
      const to = { x: action.x ?? 0, y: action.y ?? 0 };
      if (action.selectors && action.selectors.length > 0) {
        const { element } = await findElement(page, action.selectors, action.frame, deadline);
        await element.evaluate(SCROLL_ELEMENT, to);
      } else {
        const frame = await waitForFrame(page, action.frame, deadline);
        await frame.evaluate(SCROLL_WINDOW, to);
      }
      return {};
    }
    case 'waitForElement':
      await waitForElement(page, action, deadline);
      return {};
    case 'waitForExpression':
      await waitForExpression(page, action, deadline);
      return {};
    case 'close':
      await target.closePage();
      return {};
    case 'customStep':
      return runCustomStep(target, action, ctx, deadline);
    default:
      throw browserError('BROWSER_ACTION_INVALID', `unknown action type ${JSON.stringify((action as { type: unknown }).type)}`);
  }
}

function isSize(n: unknown): n is number {
  return Number.isInteger(n) && (n as number) >= 1 && (n as number) <= 10_000;
}

function required<T>(value: T | undefined, type: string, field: string): T {
  if (value === undefined || value === null || value === '') throw browserError('BROWSER_ACTION_INVALID', `${type} needs ${field}`);
  return value;
}

function needSelectors(action: RecorderAction): Selectors {
  if (!action.selectors || action.selectors.length === 0) throw browserError('BROWSER_ACTION_INVALID', `${action.type} needs selectors`);
  return action.selectors;
}

function mouseButton(action: RecorderAction): 'left' | 'middle' | 'right' {
  const button = action.button ?? 'primary';
  if (button === 'back' || button === 'forward') throw browserError('BROWSER_ACTION_INVALID', `the ${button} mouse button cannot be clicked`);
  return BUTTONS[button];
}

/**
 * The Recorder's offset inside the element, when it still falls inside it;
 * else the element's centre (a layout that changed since the recording
 * would otherwise send the click to whatever is beside the element).
 */
async function clickPosition(element: Locator, action: RecorderAction, deadline: Deadline): Promise<{ x: number; y: number } | undefined> {
  const { offsetX: x, offsetY: y } = action;
  if (typeof x !== 'number' || typeof y !== 'number') return undefined;
  const box = await element.boundingBox({ timeout: deadline.remaining() });
  if (!box || x < 0 || y < 0 || x >= box.width || y >= box.height) return undefined;
  return { x, y };
}

/** The frame a `frame` path names, waiting for it to attach. */
async function waitForFrame(page: Page, path: readonly number[] | undefined, deadline: Deadline) {
  for (;;) {
    const frame = frameAt(page, path);
    if (frame) return frame;
    if (deadline.expired()) throw browserError('BROWSER_SELECTOR_NOT_FOUND', `frame ${JSON.stringify(path)} is not in the page`);
    await pause(Math.min(POLL_MS, deadline.remaining()));
  }
}

/** `change`: select an option, fill a field or contenteditable, else set the value and dispatch input/change. */
async function setValue(element: Locator, value: string, deadline: Deadline): Promise<void> {
  const kind = await element.evaluate(ELEMENT_KIND);
  if (kind.tag === 'select') return chooseOption(element, { value, label: value }, deadline);
  if (kind.editable || kind.tag === 'textarea' || (kind.tag === 'input' && FILLABLE.has(kind.type ?? 'text'))) {
    await element.fill(value, { timeout: deadline.remaining() });
    return;
  }
  await element.evaluate(SET_VALUE, value);
}

function compare(seen: number, operator: '==' | '>=' | '<=', count: number): boolean {
  return operator === '==' ? seen === count : operator === '>=' ? seen >= count : seen <= count;
}

/** waitForElement: poll the count (visible elements unless `visible: false`) until it compares true with `count`. */
async function waitForElement(page: Page, action: RecorderAction, deadline: Deadline): Promise<void> {
  const selectors = needSelectors(action);
  const operator = action.operator ?? '>=';
  const count = action.count ?? 1;
  const visibleOnly = action.visible !== false;
  for (;;) {
    const seen = await countMatches(page, selectors, action.frame, visibleOnly);
    if (compare(seen, operator, count)) return;
    if (deadline.expired()) {
      const code = seen === 0 && operator !== '<=' ? 'BROWSER_SELECTOR_NOT_FOUND' : 'BROWSER_TIMEOUT';
      throw browserError(
        code,
        `waited ${deadline.timeoutMs} ms for ${operator} ${count} ${visibleOnly ? 'visible ' : ''}element(s), saw ${seen}: ${describeSelectors(selectors)}`,
        { selectors, seen },
      );
    }
    await pause(Math.min(POLL_MS, deadline.remaining()));
  }
}

/** waitForExpression: evaluated in the page (never in the worker) until truthy; a Promise is awaited. */
async function waitForExpression(page: Page, action: RecorderAction, deadline: Deadline): Promise<void> {
  const expression = required(action.expression, 'waitForExpression', 'expression');
  let lastError: string | undefined;
  for (;;) {
    const frame = frameAt(page, action.frame);
    if (frame) {
      const round = await frame.evaluate(POLL_EXPRESSION, expression).catch((err: unknown) => {
        // A navigation between rounds destroys the context the round ran in: try again in the new one.
        if (err instanceof Error && /Execution context was destroyed|Frame was detached|navigat/i.test(err.message)) return { ok: false } as const;
        throw err;
      });
      if (round.ok) return;
      if ('fatal' in round && round.fatal) throw browserError('BROWSER_ACTION_INVALID', `waitForExpression: ${round.error ?? 'the expression cannot be evaluated'}`);
      if ('error' in round) lastError = round.error;
    }
    if (deadline.expired()) {
      throw browserError(
        'BROWSER_TIMEOUT',
        `waitForExpression: not truthy within ${deadline.timeoutMs} ms${lastError ? ` (last error: ${lastError})` : ''}`,
        lastError ? { lastError } : {},
      );
    }
    await pause(Math.min(POLL_MS, deadline.remaining()));
  }
}

/** A URL as the browser writes it (`http://h` → `http://h/`), so an asserted URL compares with page.url(). */
function normalizeUrl(raw: string): string {
  try {
    return new URL(raw).href;
  } catch {
    return raw;
  }
}

/**
 * Asserted navigation events, checked for real: wait (within the action's
 * deadline) until the page's URL and/or title are the expected ones, else
 * BROWSER_ASSERTION with expected and actual. An empty `url` or `title` is
 * not asserted (the Recorder writes `"title": ""` when it saw none).
 */
async function checkAssertedEvents(page: Page, events: readonly AssertedEvent[], deadline: Deadline): Promise<void> {
  for (const event of events) {
    if (event.type !== 'navigation') throw browserError('BROWSER_ACTION_INVALID', `unknown asserted event type ${JSON.stringify(event.type)}`);
    const url = event.url ? normalizeUrl(event.url) : undefined;
    const title = event.title ? event.title : undefined;
    if (url === undefined && title === undefined) continue;
    for (;;) {
      const actualUrl = page.url();
      // Reading the title during a navigation can fail: it is read again next round.
      const actualTitle = await page.title().catch(() => '');
      if ((url === undefined || actualUrl === url) && (title === undefined || actualTitle === title)) break;
      if (deadline.expired()) {
        const expected = [url !== undefined ? `url ${JSON.stringify(url)}` : '', title !== undefined ? `title ${JSON.stringify(title)}` : ''].filter(Boolean).join(' and ');
        throw browserError(
          'BROWSER_ASSERTION',
          `expected a navigation to ${expected}; after ${deadline.timeoutMs} ms the page has url ${JSON.stringify(actualUrl)} and title ${JSON.stringify(actualTitle)}`,
          { expected: { url, title }, actual: { url: actualUrl, title: actualTitle } },
        );
      }
      await pause(Math.min(POLL_MS, deadline.remaining()));
    }
  }
}
