import type { BrowserContext, Page } from 'playwright-core';
import type { Deadline } from './deadline.js';
import { browserError } from './errors.js';
import { navigate } from './navigation.js';
import { READ_SESSION_STORAGE, RESTORE_SESSION_STORAGE } from './page-scripts.js';
import type { BrowserState } from './types.js';

/** Playwright's storage state, as `newContext({ storageState })` takes it. */
export type StorageState = Awaited<ReturnType<BrowserContext['storageState']>>;

/**
 * Everything to restore the session elsewhere: Playwright's storage state
 * (cookies, httpOnly ones included; localStorage and IndexedDB per origin),
 * sessionStorage per origin read from the page's frames (Playwright leaves
 * it out), and where the page is.
 */
export async function captureState(context: BrowserContext, page: Page | null): Promise<BrowserState> {
  const storage = await context.storageState({ indexedDB: true });
  const sessionStorage: Record<string, Record<string, string>> = {};
  let url: string | null = null;
  let title: string | null = null;
  if (page && !page.isClosed()) {
    for (const frame of page.frames()) {
      // A frame that navigates away or refuses storage (sandboxed, opaque origin) has nothing to keep.
      const read = await frame.evaluate(READ_SESSION_STORAGE).catch(() => null);
      if (read && Object.keys(read.items).length > 0 && !(read.origin in sessionStorage)) sessionStorage[read.origin] = read.items;
    }
    url = /^https?:/.test(page.url()) ? page.url() : null;
    title = url === null ? null : await page.title().catch(() => null);
  }
  return { storage, sessionStorage, url, title };
}

function isRecordOfRecords(value: unknown): value is Record<string, Record<string, string>> {
  return (
    typeof value === 'object' &&
    value !== null &&
    Object.values(value).every((v) => typeof v === 'object' && v !== null && Object.values(v).every((s) => typeof s === 'string'))
  );
}

/** The saved storage state, checked enough to hand to Playwright (it came back from a checkpoint). */
export function storageStateOf(state: BrowserState): StorageState {
  const storage = state.storage as Partial<StorageState> | null;
  if (typeof storage !== 'object' || storage === null || !Array.isArray(storage.cookies) || !Array.isArray(storage.origins)) {
    throw browserError('BROWSER_ACTION_INVALID', 'the saved browser state has no cookies/origins storage state');
  }
  if (!isRecordOfRecords(state.sessionStorage)) throw browserError('BROWSER_ACTION_INVALID', 'the saved sessionStorage is not origin → { key: value }');
  return storage as StorageState;
}

/**
 * Put the saved sessionStorage back: an init script fills each saved
 * origin's storage before the page's own scripts run. Call before the
 * context's first page opens.
 */
export async function restoreSessionStorage(context: BrowserContext, state: BrowserState): Promise<void> {
  if (Object.keys(state.sessionStorage).length > 0) await context.addInitScript(RESTORE_SESSION_STORAGE, state.sessionStorage);
}

/** Go back to where the saved session was (cookies and storage are in place by then). */
export async function returnToPage(page: Page, state: BrowserState, deadline: Deadline): Promise<void> {
  if (state.url) await navigate(page, state.url, deadline);
}
