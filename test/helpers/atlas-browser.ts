import { existsSync } from 'node:fs';
import { mkdir, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { expect } from 'vitest';

/** Debian's Chromium (installed by .ci/run); playwright-core never downloads one. */
export const CHROMIUM_PATH = process.env.STEPWISE_CHROMIUM_PATH || '/usr/lib/chromium/chromium';
export const haveChromium = existsSync(CHROMIUM_PATH);

/** The size the dashboard promises to be usable at. */
export const VIEWPORT = { width: 1280, height: 800 } as const;

/**
 * Headless Chromium for the dashboard's end-to-end test. --no-sandbox: CI
 * runs as root, where Chromium's sandbox refuses to start; /tmp instead of
 * a 64 MB /dev/shm; no GPU and none of Chromium's own traffic (src/browser/launch.ts).
 */
export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
  });
}

/** A page at 1280×800 in a fresh context (its own cookies), failing loudly on page errors. */
export async function newPage(browser: Browser): Promise<{ page: Page; errors: string[]; close: () => Promise<void> }> {
  const context = await browser.newContext({ viewport: VIEWPORT });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  return { page, errors, close: () => context.close() };
}

/** Where screenshots of every page go: ATLAS_SCREENSHOT_DIR, else a fresh directory under the OS temp dir. */
export async function screenshotDir(): Promise<string> {
  const dir = process.env.ATLAS_SCREENSHOT_DIR || (await mkdtemp(join(tmpdir(), 'atlas-shots-')));
  await mkdir(dir, { recursive: true });
  return dir;
}

/** Let the page settle (no request in flight for a moment, fonts laid out), then screenshot it as `<name>.png`. */
export async function shoot(page: Page, dir: string, name: string): Promise<void> {
  await page.waitForLoadState('networkidle', { timeout: 5_000 }).catch(() => undefined);
  await page.screenshot({ path: join(dir, `${name}.png`), fullPage: false });
}

/** Sign in through the form with the labels the issue names. */
export async function signIn(page: Page, baseUrl: string, email: string, password: string, path = '/runs'): Promise<void> {
  await page.goto(`${baseUrl}${path}`);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await expect.poll(() => new URL(page.url()).pathname, { timeout: 15_000 }).toBe(path.split('?')[0]);
}

/** An API client with a Bearer key, for the setup the test does around the browser. */
export function apiClient(baseUrl: string, key: string) {
  return async function call<T = unknown>(method: string, path: string, body?: unknown, expectStatus?: number): Promise<T> {
    const res = await fetch(`${baseUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${key}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    const parsed: unknown = text ? JSON.parse(text) : undefined;
    if (expectStatus !== undefined ? res.status !== expectStatus : !res.ok) {
      throw new Error(`${method} ${path} answered ${res.status}: ${text}`);
    }
    return parsed as T;
  };
}

export type ApiCall = ReturnType<typeof apiClient>;

/** POST /v1/users, an invitation, and its acceptance: a user who can sign in with `password`. */
export async function createUserWithPassword(baseUrl: string, call: ApiCall, user: { email: string; role: string; name: string }, password: string): Promise<string> {
  const created = await call<{ id: string }>('POST', '/v1/users', user, 201);
  const invite = await call<{ token: string }>('POST', `/v1/users/${created.id}/invitations`, undefined, 201);
  const res = await fetch(`${baseUrl}/v1/invitations/accept`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ token: invite.token, password }),
  });
  if (res.status !== 201) throw new Error(`accepting the invitation answered ${res.status}: ${await res.text()}`);
  return created.id;
}
