import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_CHROMIUM_PATH } from '../../src/config/index.js';
import { BrowserPool } from '../../src/browser/pool.js';
import { processTreeMemory } from '../../src/browser/process-memory.js';
import { BrowserActionError, type ActionContext, type BrowserSession, type OpenRequest, type RecorderAction } from '../../src/browser/types.js';
import { startForwardProxy, type ForwardProxy } from '../helpers/forward-proxy.js';
import { decodePng } from '../helpers/png-decode.js';
import { FORBIDDEN_URL, PORTAL_PASSWORD, PORTAL_USER, SMALL_CSV, startPortal, type Portal } from '../helpers/portal.js';

/**
 * The browser runtime against a real Chromium (Debian's package) and the
 * fixture payer portal, every request through a test forward proxy. One
 * browser for the file, a fresh context per test; the pool lifecycle tests
 * (restart, crash) have a pool of their own.
 */
const CHROMIUM = process.env.STEPWISE_CHROMIUM_PATH || DEFAULT_CHROMIUM_PATH;
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) {
  console.warn(`browser-runtime tests SKIPPED: no Chromium at ${CHROMIUM} (apt-get install chromium; CI installs it)`);
}

const never = new AbortController().signal;

function actionContext(timeoutMs = 3_000, extra: Partial<ActionContext> = {}): ActionContext {
  return {
    timeoutMs,
    signal: never,
    readBlob: () => Promise.reject(new Error('no blobs in this test')),
    ...extra,
  };
}

async function failure(promise: Promise<unknown>): Promise<BrowserActionError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(BrowserActionError);
    return err as BrowserActionError;
  }
  throw new Error('expected the action to fail');
}

describe.skipIf(!haveChromium)('browser runtime', () => {
  let portal: Portal;
  let proxy: ForwardProxy;
  let pool: BrowserPool;

  beforeAll(async () => {
    portal = await startPortal();
    proxy = await startForwardProxy();
    pool = new BrowserPool({ executablePath: CHROMIUM });
  });

  afterAll(async () => {
    await pool?.close();
    await proxy?.close();
    await portal?.close();
  });

  const proxySettings = () => ({ server: proxy.server, username: proxy.username, password: proxy.password });

  async function withSession(fn: (s: BrowserSession) => Promise<void>, request: Partial<OpenRequest> = {}): Promise<void> {
    const session = await pool.open({ proxy: proxySettings(), signal: never, ...request });
    try {
      await fn(session);
    } finally {
      await session.close();
    }
  }

  const run = (s: BrowserSession, action: RecorderAction, timeoutMs?: number, extra?: Partial<ActionContext>) => s.run(action, actionContext(timeoutMs, extra));
  const go = (s: BrowserSession, path: string) => run(s, { type: 'navigate', url: `${portal.url}${path}` });
  const text = (s: BrowserSession, selectors: RecorderAction['selectors'], equals: string, frame?: number[]) =>
    run(s, { type: 'customStep', name: 'stepwise.assertText', ...(frame ? { frame } : {}), parameters: { selectors, equals } });

  async function login(s: BrowserSession): Promise<void> {
    await go(s, '/login');
    await run(s, { type: 'change', selectors: [['aria/User name'], ['#user']], value: PORTAL_USER });
    await run(s, { type: 'change', selectors: [['#password']], value: PORTAL_PASSWORD });
    await run(s, {
      type: 'click',
      selectors: [['aria/Sign in[role="button"]'], ['#sign-in']],
      offsetX: 5,
      offsetY: 5,
      assertedEvents: [{ type: 'navigation', url: `${portal.url}/home`, title: 'Home' }],
    });
  }

  it('runs unsandboxed only as root, and sends every request, loopback included, through the proxy with its credentials', async () => {
    expect(pool.sandboxed).toBe(process.getuid!() !== 0);
    const before = proxy.seen.length;
    await withSession(async (s) => {
      await go(s, '/login');
      expect(await s.title()).toBe('Sign in');
    });
    expect(proxy.seen.slice(before)).toContain(`GET ${portal.url}/login`);
    expect(proxy.challenged()).toBeGreaterThan(0); // Chromium was asked for, and gave, the session's credentials
  });

  it('logs in with asserted events that pass, and fails BROWSER_ASSERTION naming expected and actual', async () => {
    await withSession(async (s) => {
      await login(s);
      expect(s.url()).toBe(`${portal.url}/home`);
      await text(s, ['#welcome'], `Welcome, ${PORTAL_USER}`);
      // text/ selector: a link by its text.
      await run(s, { type: 'click', selectors: ['text/Search claims'], assertedEvents: [{ type: 'navigation', url: `${portal.url}/search`, title: '' }] });
      const err = await failure(
        run(s, { type: 'navigate', url: `${portal.url}/home`, assertedEvents: [{ type: 'navigation', title: 'Dashboard' }] }, 1_500),
      );
      expect(err.code).toBe('BROWSER_ASSERTION');
      expect(err.message).toContain('title "Dashboard"');
      expect(err.message).toContain('title "Home"');
    });
  });

  it('waits for an asserted navigation that lands after the action', async () => {
    await withSession(async (s) => {
      await run(s, { type: 'navigate', url: `${portal.url}/late`, assertedEvents: [{ type: 'navigation', url: `${portal.url}/late/done`, title: 'Done' }] });
    });
  });

  it('finds elements by CSS, aria name, aria name and role, xpath and pierce', async () => {
    await withSession(async (s) => {
      await go(s, '/search');
      await run(s, { type: 'change', selectors: ['#member'], value: 'M-1' });
      await run(s, { type: 'change', selectors: ['aria/Member ID'], value: 'M-2' });
      await run(s, { type: 'change', selectors: ['xpath///*[@id="member"]'], value: 'M-3' });
      await run(s, { type: 'click', selectors: ['aria/Search[role="button"]'], assertedEvents: [{ type: 'navigation', url: `${portal.url}/results?member=M-3&plan=`, title: 'Results' }] });
      await go(s, '/widget');
      await run(s, { type: 'click', selectors: ['pierce/#inner-button'] });
      await text(s, ['#widget-result'], 'approved');
    });
  });

  it('tries alternatives in order (one that does not match, then one that does) and names every selector when none match', async () => {
    await withSession(async (s) => {
      await go(s, '/widget');
      await run(s, { type: 'click', selectors: ['#does-not-exist', 'aria/Approve claim[role="button"]'] });
      await text(s, ['#widget-result'], 'approved');
      const err = await failure(run(s, { type: 'click', selectors: ['#nope', ['claim-widget', '#also-nope'], 'aria/Nothing'] }, 1_500));
      expect(err.code).toBe('BROWSER_SELECTOR_NOT_FOUND');
      expect(err.message).toContain('"#nope" | "claim-widget" > "#also-nope" | "aria/Nothing"');
    });
  });

  it('walks a chain into a shadow root and into an iframe, and a frame path selects the frame', async () => {
    await withSession(async (s) => {
      await go(s, '/widget');
      await run(s, { type: 'click', selectors: [['claim-widget', '.inner', '#inner-button']] });
      await text(s, ['#widget-result'], 'approved');
      await go(s, '/frame');
      await run(s, { type: 'change', selectors: [['#inner-frame', '#note']], value: 'hello' });
      await run(s, { type: 'click', selectors: [['iframe', 'aria/Send']] });
      await text(s, [['#inner-frame', '#frame-result']], 'sent hello');
      await run(s, { type: 'change', frame: [0], selectors: ['#note'], value: 'again' });
      await run(s, { type: 'click', frame: [0], selectors: ['#send'] });
      await text(s, ['#frame-result'], 'sent again', [0]);
      const err = await failure(run(s, { type: 'click', frame: [3], selectors: ['#send'] }, 1_500));
      expect(err.code).toBe('BROWSER_SELECTOR_NOT_FOUND');
      expect(err.message).toContain('frame [3] is not there');
    });
  });

  it('waits for a delayed results table and extracts it as rows keyed by header cells, text and attributes', async () => {
    await withSession(async (s) => {
      await go(s, '/search');
      await run(s, { type: 'change', selectors: ['#member'], value: 'M-7' });
      await run(s, { type: 'customStep', name: 'stepwise.select', parameters: { selectors: ['#plan'], label: 'PPO Silver' } });
      await text(s, ['#chosen'], 'plan:ppo');
      await run(s, { type: 'change', selectors: ['#plan'], value: 'hmo' }); // a Recorder change on a <select> chooses by value
      await text(s, ['#chosen'], 'plan:hmo');
      await run(s, { type: 'keyDown', key: 'Enter' });
      await run(s, { type: 'keyUp', key: 'Enter' });
      await run(s, { type: 'waitForExpression', expression: "document.querySelectorAll('#claims tbody tr').length === 2" });
      const table = await run(s, { type: 'customStep', name: 'stepwise.extract', parameters: { selectors: ['#results'], as: 'table', output: 'claims' } });
      expect(table.extracted).toEqual({
        name: 'claims',
        value: [
          { Claim: 'C-1', Date: '2024-01-02', Amount: '$10.00', column_4: 'paid' },
          { Claim: 'C-2', Date: '2024-02-03', Amount: '$20.50', column_4: 'open' },
        ],
      });
      const member = await run(s, { type: 'customStep', name: 'stepwise.extract', parameters: { selectors: ['#member-id'], output: 'member' } });
      expect(member.extracted).toEqual({ name: 'member', value: 'M-7' });
      const ids = await run(s, { type: 'customStep', name: 'stepwise.extract', parameters: { selectors: ['#claims tbody td:first-child'], output: 'ids', all: true } });
      expect(ids.extracted?.value).toEqual(['C-1', 'C-2']);
      await go(s, '/text');
      const attr = await run(s, { type: 'customStep', name: 'stepwise.extract', parameters: { selectors: ['#by-attr'], as: 'attribute', attribute: 'data-claim', output: 'claim' } });
      expect(attr.extracted?.value).toBe('C-1');
    });
  });

  it('waitForExpression: evaluated in the page, awaits a Promise, times out with the last error, refuses a syntax error', async () => {
    await withSession(async (s) => {
      await go(s, '/text');
      await run(s, { type: 'waitForExpression', expression: 'new Promise((resolve) => setTimeout(() => resolve(location.pathname === "/text"), 50))' });
      const late = await failure(run(s, { type: 'waitForExpression', expression: 'document.querySelector("#never").id' }, 1_500));
      expect(late.code).toBe('BROWSER_TIMEOUT');
      expect(late.message).toContain('last error');
      const bad = await failure(run(s, { type: 'waitForExpression', expression: 'this is not javascript' }, 2_000));
      expect(bad.code).toBe('BROWSER_ACTION_INVALID');
      // The worker's own globals are not there: the expression runs in the page.
      await run(s, { type: 'waitForExpression', expression: 'typeof process === "undefined" && typeof require === "undefined"' });
    });
  });

  it('waitForElement: a flaky element that appears on the second request, counts and operators', async () => {
    await withSession(async (s) => {
      await go(s, '/flaky');
      // 2 s: on a loaded 2-core machine one round of counting outlasted 300 ms plus the guard's grace (then 1 s) (BROWSER_TIMEOUT before the count was seen).
      const first = await failure(run(s, { type: 'waitForElement', selectors: ['#ready'] }, 2_000));
      expect(first.code).toBe('BROWSER_SELECTOR_NOT_FOUND');
      await go(s, '/flaky');
      await run(s, { type: 'waitForElement', selectors: ['#ready'] });
      await run(s, { type: 'waitForElement', selectors: ['#nothing-here'], operator: '==', count: 0 });
      await go(s, '/results?member=X');
      await run(s, { type: 'waitForElement', selectors: ['#claims tbody tr'], operator: '==', count: 2 });
      const tooMany = await failure(run(s, { type: 'waitForElement', selectors: ['#claims tbody tr'], operator: '<=', count: 1 }, 2_000));
      expect(tooMany.code).toBe('BROWSER_TIMEOUT');
      expect(tooMany.message).toContain('saw 2');
    });
  });

  it('refuses any scheme but http and https', async () => {
    await withSession(async (s) => {
      for (const url of ['file:///etc/passwd', 'javascript:alert(1)', 'data:text/html,hi', 'chrome://version']) {
        const err = await failure(run(s, { type: 'navigate', url }));
        expect(err.code).toBe('BROWSER_URL_REFUSED');
      }
      const download = await failure(run(s, { type: 'customStep', name: 'stepwise.download', parameters: { url: 'file:///etc/passwd' } }));
      expect(download.code).toBe('BROWSER_URL_REFUSED');
      expect(s.url()).toBe('about:blank');
    });
  });

  it('a redirect to the metadata address is refused by the proxy and never reached', async () => {
    await withSession(async (s) => {
      const err = await failure(go(s, '/escape'));
      expect(err.code).toBe('EGRESS_DENIED');
      expect(proxy.denied).toContain(new URL(FORBIDDEN_URL).host);
    });
  });

  it('paints masks over the selected elements before a screenshot', async () => {
    await withSession(async (s) => {
      await go(s, '/masked');
      // The box is at (40, 40), 240 × 60 CSS pixels, device scale 1; look inside its edges.
      const region = (png: Buffer) => {
        const image = decodePng(png);
        const colours = new Set<string>();
        for (let y = 45; y < 95; y += 3) for (let x = 45; x < 275; x += 3) colours.add(image.at(x, y).join(','));
        return colours;
      };
      const plain = region(await s.screenshot({}));
      expect(plain.size).toBeGreaterThan(10); // a gradient with text
      const masked = region(await s.screenshot({ mask: [['#nope', '#ssn']] }));
      expect([...masked]).toEqual(['0,0,0,255']);
      const viaStep = await run(s, { type: 'customStep', name: 'stepwise.screenshot', parameters: { mask: [[['#ssn']]] } });
      expect(viaStep.screenshot?.fullPage).toBe(false);
      expect([...region(viaStep.screenshot!.bytes)]).toEqual(['0,0,0,255']);
    });
  });

  it('saves the state and restores it in a new context: session cookie, sessionStorage, localStorage, IndexedDB, page', async () => {
    let state!: Awaited<ReturnType<BrowserSession['state']>>;
    await withSession(async (s) => {
      await login(s);
      await run(s, { type: 'click', selectors: ['#remember'] });
      await text(s, ['#remembered'], 'remembered');
      state = await s.state();
    });
    expect(state.url).toBe(`${portal.url}/home`);
    expect(state.title).toBe('Home');
    expect(state.sessionStorage[portal.url]).toEqual({ draft: 'claim-42' });
    expect(JSON.stringify(state.storage)).toContain('"sid"');
    await withSession(
      async (s) => {
        expect(s.url()).toBe(`${portal.url}/home`);
        await text(s, ['#welcome'], `Welcome, ${PORTAL_USER}`);
        await run(s, { type: 'waitForExpression', expression: "sessionStorage.getItem('draft') === 'claim-42'" });
        await run(s, { type: 'waitForExpression', expression: "localStorage.getItem('layout') === 'compact'" });
        await run(s, {
          type: 'waitForExpression',
          expression: `new Promise((resolve) => {
            const open = indexedDB.open('portal', 1);
            open.onsuccess = () => {
              const get = open.result.transaction('drafts').objectStore('drafts').get('claim-42');
              get.onsuccess = () => resolve(get.result && get.result.amount === 12);
              get.onerror = () => resolve(false);
            };
            open.onerror = () => resolve(false);
          })`,
        });
      },
      { state },
    );
    // A context without the state is a stranger: /home sends it to the login.
    await withSession(async (s) => {
      await run(s, { type: 'navigate', url: `${portal.url}/home`, assertedEvents: [{ type: 'navigation', url: `${portal.url}/login`, title: 'Sign in' }] });
    });
  });

  it('downloads a small file, and refuses one over the 25 MiB cap', async () => {
    await withSession(async (s) => {
      await go(s, '/downloads');
      const small = await run(s, { type: 'customStep', name: 'stepwise.download', parameters: { selectors: ['#small'] } }, 10_000);
      expect(small.download?.bytes.toString()).toBe(SMALL_CSV);
      expect(small.download?.name).toBe('claims.csv');
      expect(small.download?.contentType).toBe('text/csv');
      const byUrl = await run(s, { type: 'customStep', name: 'stepwise.download', parameters: { url: '/files/claims.csv' } }, 10_000);
      expect(byUrl.download?.bytes.toString()).toBe(SMALL_CSV);
      const large = await failure(run(s, { type: 'customStep', name: 'stepwise.download', parameters: { selectors: ['#large'] } }, 20_000));
      expect(large.code).toBe('BROWSER_DOWNLOAD_TOO_LARGE');
      // A download the step did not ask for is cancelled, and the session goes on.
      await run(s, { type: 'click', selectors: ['#small'] });
      await text(s, ['#small'], 'Claims CSV');
    });
  });

  it('uploads the bytes of a blob reference into a file input', async () => {
    await withSession(async (s) => {
      await go(s, '/upload');
      const readBlob = async (reference: string) => {
        expect(reference).toBe('blob-1');
        return { bytes: Buffer.from('hello'), name: 'note.txt', contentType: 'text/plain' };
      };
      await run(s, { type: 'customStep', name: 'stepwise.upload', parameters: { selectors: ['#file'], blob: 'blob-1' } }, 3_000, { readBlob });
      await text(s, ['#file-info'], 'note.txt 5 hello');
    });
  });

  it('a side-effecting submit runs once and its verify selectors are seen', async () => {
    await withSession(async (s) => {
      await go(s, '/claims/new');
      const before = portal.claimsSubmitted();
      await run(s, { type: 'click', selectors: ['#submit-claim'], sideEffect: true, verify: ['#confirmation'] });
      expect(await s.present(['#confirmation'], 2_000)).toBe(true);
      expect(await s.present(['#not-there'], 200)).toBe(false);
      expect(portal.claimsSubmitted()).toBe(before + 1);
      await text(s, ['#confirmation'], `Claim ${before + 1} submitted`);
    });
  });

  it('hover, doubleClick, scroll, setViewport, assertText modes, dialogs and close', async () => {
    await withSession(async (s) => {
      await run(s, { type: 'setViewport', width: 800, height: 600, deviceScaleFactor: 1, isMobile: false, hasTouch: false, isLandscape: false });
      await go(s, '/text');
      await run(s, { type: 'waitForExpression', expression: 'innerWidth === 800 && innerHeight === 600' });
      await run(s, { type: 'hover', selectors: ['#status'] });
      await run(s, { type: 'doubleClick', selectors: ['#status'], offsetX: 2, offsetY: 2 });
      await run(s, { type: 'scroll', x: 0, y: 10 });
      await run(s, { type: 'customStep', name: 'stepwise.assertText', parameters: { selectors: ['#status'], contains: 'C-1 is' } });
      await run(s, { type: 'customStep', name: 'stepwise.assertText', parameters: { selectors: ['#status'], matches: '^claim\\s+c-\\d+ is paid$', flags: 'i' } });
      const wrong = await failure(run(s, { type: 'customStep', name: 'stepwise.assertText', parameters: { selectors: ['#status'], equals: 'Claim C-1 is open' } }, 300));
      expect(wrong.code).toBe('BROWSER_ASSERTION');
      expect(wrong.message).toContain('"Claim C-1 is paid"');
      await go(s, '/confirm');
      await run(s, { type: 'click', selectors: ['#ask'] });
      await text(s, ['#answer'], 'yes'); // dialogs are accepted, as the person recording did
      await run(s, { type: 'close' });
      expect(s.url()).toBe(`${portal.url}/confirm`);
      const after = await failure(go(s, '/text'));
      expect(after.code).toBe('BROWSER_SESSION_CLOSED');
    });
  });

  it('refuses unknown custom steps and incomplete actions with BROWSER_ACTION_INVALID', async () => {
    await withSession(async (s) => {
      for (const action of [
        { type: 'customStep', name: 'stepwise.nope', parameters: {} },
        { type: 'customStep', name: 'other.thing', parameters: {} },
        { type: 'click' },
        { type: 'click', selectors: ['#x'], button: 'back' },
        { type: 'keyDown' },
        { type: 'click', selectors: ['xpath///*[@@'] },
      ] as RecorderAction[]) {
        const err = await failure(run(s, action, 500));
        expect(err.code, JSON.stringify(action)).toBe('BROWSER_ACTION_INVALID');
      }
    });
  });

  it('an abort ends a waiting action at once', async () => {
    await withSession(async (s) => {
      await go(s, '/text');
      const controller = new AbortController();
      const started = Date.now();
      setTimeout(() => controller.abort(), 100);
      const err = await failure(run(s, { type: 'waitForElement', selectors: ['#never'] }, 20_000, { signal: controller.signal }));
      expect(err.code).toBe('BROWSER_ABORTED');
      // Far sooner than the action's 20 s timeout (the bound is loose: a loaded machine is slow to deliver the abort).
      expect(Date.now() - started).toBeLessThan(10_000);
    });
  });

  it('contexts are never shared, at most three at once; a waiter leaves when its signal aborts', async () => {
    const sessions = await Promise.all([1, 2, 3].map(() => pool.open({ proxy: proxySettings(), signal: never })));
    try {
      await login(sessions[0]!);
      await run(sessions[1]!, { type: 'navigate', url: `${portal.url}/home`, assertedEvents: [{ type: 'navigation', url: `${portal.url}/login` }] });
      expect(pool.stats().contexts).toBe(3);
      const controller = new AbortController();
      const fourth = pool.open({ proxy: proxySettings(), signal: controller.signal });
      const fifth = pool.open({ proxy: proxySettings(), signal: never });
      await new Promise((r) => setTimeout(r, 50));
      expect(pool.stats().waiting).toBe(2);
      controller.abort();
      expect((await failure(fourth)).code).toBe('BROWSER_ABORTED');
      await sessions.shift()!.close();
      sessions.push(await fifth);
      expect(pool.stats().contexts).toBe(3);
    } finally {
      await Promise.all(sessions.map((s) => s.close()));
    }
    expect(pool.stats().contexts).toBe(0);
  });

  describe('browser lifecycle (a pool of its own)', () => {
    let own: BrowserPool;
    beforeAll(() => {
      own = new BrowserPool({ executablePath: CHROMIUM, restartAfterContexts: 2 });
    });
    afterAll(async () => {
      await own?.close();
    });

    it('launches lazily, measures its process tree, and replaces the browser after its context quota', async () => {
      expect(own.stats().launches).toBe(0);
      for (let i = 0; i < 2; i++) await (await own.open({ proxy: proxySettings(), signal: never })).close();
      const first = own.stats();
      expect(first.launches).toBe(1);
      expect(first.pid).not.toBeNull();
      const bytes = await processTreeMemory(first.pid!);
      expect(bytes).toBeGreaterThan(20 * 1024 * 1024);
      const third = await own.open({ proxy: proxySettings(), signal: never });
      expect(own.stats().launches).toBe(2);
      expect(own.stats().pid).not.toBe(first.pid);
      await third.close();
    });

    it('replaces a browser whose process tree passes the memory bound', async () => {
      const small = new BrowserPool({ executablePath: CHROMIUM, maxBrowserMemoryBytes: 1, memoryCheckIntervalMs: 0 });
      try {
        await (await small.open({ proxy: proxySettings(), signal: never })).close();
        await (await small.open({ proxy: proxySettings(), signal: never })).close();
        expect(small.stats().launches).toBe(2);
      } finally {
        await small.close();
      }
    });

    it('a crashed browser fails its sessions with BROWSER_CRASHED and the next open relaunches', async () => {
      const s = await own.open({ proxy: proxySettings(), signal: never });
      await go(s, '/text');
      const { pid, launches } = own.stats();
      process.kill(pid!, 'SIGKILL'); // the browser this test's pool launched
      const err = await failure(go(s, '/login'));
      expect(err.code).toBe('BROWSER_CRASHED');
      expect((await failure(go(s, '/login'))).code).toBe('BROWSER_CRASHED');
      await s.close();
      const next = await own.open({ proxy: proxySettings(), signal: never });
      try {
        expect(own.stats().launches).toBe(launches + 1);
        await go(next, '/text');
      } finally {
        await next.close();
      }
    });
  });
});
