import type { Frame, Locator, Page } from 'playwright-core';
import { Deadline, pause } from './deadline.js';
import { browserError, describeSelectors, isClosedError } from './errors.js';
import { ELEMENT_KIND } from './page-scripts.js';
import type { SelectorChain, Selectors } from './types.js';

/**
 * Chrome Recorder selectors to Playwright locators.
 *
 * A Recorder step lists alternatives (`selectors`), tried in order until one
 * matches; each is a chain of parts, each part looked up inside the element
 * the previous part found: inside its shadow root (Playwright's CSS and text
 * engines pierce open shadow roots anyway) or, when that element is an
 * iframe, inside its document. A part is CSS, or `aria/`, `xpath/`, `text/`,
 * `pierce/` (CSS through shadow roots: Playwright's CSS already does that).
 */

/** What the root of a lookup may be: a page, a frame, an iframe's content, an element. */
export interface Scope {
  locator(selector: string): Locator;
  getByRole(role: AriaRole, options?: { name?: string; exact?: boolean }): Locator;
  getByText(text: string, options?: { exact?: boolean }): Locator;
  getByLabel(text: string, options?: { exact?: boolean }): Locator;
}

type AriaRole = Parameters<Page['getByRole']>[0];

/** One part of a chain, parsed. */
export type SelectorPart =
  | { kind: 'css'; css: string }
  | { kind: 'xpath'; xpath: string }
  | { kind: 'text'; text: string }
  | { kind: 'aria'; name: string; role: string | undefined };

/**
 * Roles tried for an `aria/Name` without a role: what a Recorder selects by
 * name (controls, links, headings, images, cells). Playwright looks up by
 * role and name, not by name alone, so each is a query; the list is kept
 * short because every one walks the page on every poll.
 */
const NAMED_ROLES: readonly AriaRole[] = [
  'button',
  'link',
  'textbox',
  'searchbox',
  'combobox',
  'checkbox',
  'radio',
  'switch',
  'listbox',
  'option',
  'menuitem',
  'menuitemcheckbox',
  'menuitemradio',
  'tab',
  'treeitem',
  'slider',
  'spinbutton',
  'heading',
  'img',
  'cell',
  'columnheader',
  'rowheader',
  'dialog',
];

/** `aria/Name[role="button"]`: the trailing `[role="…"]` / `[name="…"]` attributes, then the name. */
function parseAria(body: string): { name: string; role: string | undefined } {
  let rest = body;
  let role: string | undefined;
  let name: string | undefined;
  for (;;) {
    const m = /\[(role|name)="((?:[^"\\]|\\.)*)"\]$/.exec(rest);
    if (!m) break;
    const value = m[2]!.replace(/\\(.)/g, '$1');
    if (m[1] === 'role') role = value;
    else name = value;
    rest = rest.slice(0, m.index);
  }
  return { name: name ?? rest, role };
}

/** Parse one part of a chain (a string of the Recorder's forms). */
export function parsePart(part: string): SelectorPart {
  if (part.startsWith('aria/')) return { kind: 'aria', ...parseAria(part.slice(5)) };
  if (part.startsWith('xpath/')) return { kind: 'xpath', xpath: part.slice(6) };
  if (part.startsWith('text/')) return { kind: 'text', text: part.slice(5) };
  if (part.startsWith('pierce/')) return { kind: 'css', css: part.slice(7) };
  return { kind: 'css', css: part };
}

/** The locator of one part under a scope (all its matches). */
export function partLocator(scope: Scope, part: SelectorPart): Locator {
  switch (part.kind) {
    case 'css':
      // `css=` so that a part starting with `//` or `text=` is still read as CSS.
      return scope.locator(`css=${part.css}`);
    case 'xpath':
      return scope.locator(`xpath=${part.xpath}`);
    case 'text':
      return scope.getByText(part.text);
    case 'aria': {
      if (part.role !== undefined) return scope.getByRole(part.role as AriaRole, { name: part.name, exact: true });
      let any = scope.getByLabel(part.name, { exact: true });
      for (const role of NAMED_ROLES) any = any.or(scope.getByRole(role, { name: part.name, exact: true }));
      return any;
    }
  }
}

/** The chain of one alternative (a bare string is a one-part chain). */
export function chainOf(selector: string | SelectorChain): SelectorChain {
  return typeof selector === 'string' ? [selector] : selector;
}

/**
 * Walk a chain once, now (no waiting): the locator of the last part's
 * matches, or null when some part matches nothing. An element found before
 * the last part is the scope of the next; an iframe there means "inside its
 * document".
 */
export async function matchChain(root: Scope, chain: SelectorChain): Promise<Locator | null> {
  let scope: Scope = root;
  for (let i = 0; i < chain.length; i++) {
    const matches = partLocator(scope, parsePart(chain[i]!));
    if ((await matches.count()) === 0) return null;
    if (i === chain.length - 1) return matches;
    const first = matches.first();
    const kind = await first.evaluate(ELEMENT_KIND);
    scope = kind.tag === 'iframe' || kind.tag === 'frame' ? first.contentFrame() : first;
  }
  return null;
}

/** The frame a Recorder `frame` path names (child indexes from the main frame), or null while it is not there. */
export function frameAt(page: Page, path: readonly number[] | undefined): Frame | null {
  let frame = page.mainFrame();
  for (const index of path ?? []) {
    const child = frame.childFrames()[index];
    if (child === undefined) return null;
    frame = child;
  }
  return frame;
}

/** A selector the page cannot parse: retrying cannot help. */
function isInvalidSelector(err: unknown): boolean {
  return (
    err instanceof Error &&
    /Unexpected token|is not a valid (selector|XPath)|Unknown (engine|role)|Invalid (regular expression|selector)|Failed to parse|while parsing/i.test(err.message)
  );
}

/** A lookup that failed because the page was changing under it (navigation, detached frame): try again. */
function isTransient(err: unknown): boolean {
  return err instanceof Error && /Execution context was destroyed|Frame was detached|frame got detached|Cannot find context|not attached/i.test(err.message);
}

/** One pass over the alternatives: the first that matches (index and its locator), else null. */
async function firstMatch(root: Scope, selectors: Selectors): Promise<{ index: number; matches: Locator } | null> {
  for (let index = 0; index < selectors.length; index++) {
    try {
      const matches = await matchChain(root, chainOf(selectors[index]!));
      if (matches) return { index, matches };
    } catch (err) {
      if (isInvalidSelector(err)) {
        throw browserError('BROWSER_ACTION_INVALID', `selector ${describeSelectors([selectors[index]!])} is not valid: ${(err as Error).message.split('\n')[0]}`);
      }
      if (isClosedError(err) || !isTransient(err)) throw err;
    }
  }
  return null;
}

/** Poll interval while waiting for an element: short enough not to add noticeable latency, long enough not to busy the renderer. */
const POLL_MS = 100;

/** The element an action works on: the first match of the first alternative that matches. */
export interface FoundElement {
  element: Locator;
  /** Every element the alternative matches (waitForElement counts these). */
  matches: Locator;
  /** Which alternative matched. */
  index: number;
}

/**
 * Wait until one of the alternatives matches (in order, each pass) within
 * the deadline. Fails BROWSER_SELECTOR_NOT_FOUND naming every selector
 * tried, BROWSER_ACTION_INVALID for a selector that cannot parse.
 */
export async function findElement(
  page: Page,
  selectors: Selectors,
  frame: readonly number[] | undefined,
  deadline: Deadline,
): Promise<FoundElement> {
  if (selectors.length === 0) throw browserError('BROWSER_ACTION_INVALID', 'the action has no selectors');
  for (;;) {
    const root = frameAt(page, frame);
    const found = root ? await firstMatch(root, selectors) : null;
    if (found) return { element: found.matches.first(), matches: found.matches, index: found.index };
    if (deadline.expired()) {
      const where = root ? '' : ` (frame ${JSON.stringify(frame)} is not there)`;
      throw browserError(
        'BROWSER_SELECTOR_NOT_FOUND',
        `none of the selectors matched within ${deadline.timeoutMs} ms${where}: ${describeSelectors(selectors)}`,
        { selectors: selectors.map((s) => chainOf(s)) },
      );
    }
    await pause(Math.min(POLL_MS, deadline.remaining()));
  }
}

/** How many elements match now: the count of the first alternative that matches any (visible ones only when asked). */
export async function countMatches(page: Page, selectors: Selectors, frame: readonly number[] | undefined, visibleOnly: boolean): Promise<number> {
  const root = frameAt(page, frame);
  if (!root) return 0;
  for (let index = 0; index < selectors.length; index++) {
    try {
      const matches = await matchChain(root, chainOf(selectors[index]!));
      if (!matches) continue;
      const n = visibleOnly ? await matches.filter({ visible: true }).count() : await matches.count();
      if (n > 0) return n;
    } catch (err) {
      if (isInvalidSelector(err)) {
        throw browserError('BROWSER_ACTION_INVALID', `selector ${describeSelectors([selectors[index]!])} is not valid`);
      }
      if (isClosedError(err) || !isTransient(err)) throw err;
    }
  }
  return 0;
}

/**
 * Every element any alternative matches now (for masks: masking more is the
 * safe side, and a mask that matches nothing leaves nothing to hide).
 */
export async function allMatches(page: Page, selectors: Selectors): Promise<Locator[]> {
  const out: Locator[] = [];
  for (const selector of selectors) {
    try {
      const matches = await matchChain(page.mainFrame(), chainOf(selector));
      if (matches) out.push(matches);
    } catch (err) {
      if (isInvalidSelector(err)) throw browserError('BROWSER_ACTION_INVALID', `selector ${describeSelectors([selector])} is not valid`);
      if (isClosedError(err) || !isTransient(err)) throw err;
    }
  }
  return out;
}

/** Whether any alternative matches within `timeoutMs` (the `verify` of a side-effecting action). */
export async function isPresent(page: Page, selectors: Selectors, timeoutMs: number): Promise<boolean> {
  const deadline = new Deadline(timeoutMs);
  for (;;) {
    if (await firstMatch(page.mainFrame(), selectors)) return true;
    if (deadline.expired()) return false;
    await pause(Math.min(POLL_MS, deadline.remaining()));
  }
}
