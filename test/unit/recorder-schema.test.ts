import { Ajv2020 } from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import { parseRecorderExport, recorderActionSchema } from '../../src/browser/recorder-schema.js';
import { BrowserPool } from '../../src/browser/pool.js';
import { parsePart } from '../../src/browser/selectors.js';
import { BrowserActionError } from '../../src/browser/types.js';
import { Slots } from '../../src/browser/slots.js';
import { ValidationError } from '../../src/errors/index.js';

/** What Chrome's Recorder panel exports for a login (trimmed, field order as written). */
const RECORDING = {
  title: 'Log in to the portal',
  steps: [
    { type: 'setViewport', width: 1280, height: 720, deviceScaleFactor: 1, isMobile: false, hasTouch: false, isLandscape: false },
    {
      type: 'navigate',
      url: 'https://portal.example.com/login',
      assertedEvents: [{ type: 'navigation', url: 'https://portal.example.com/login', title: 'Sign in' }],
    },
    {
      type: 'click',
      target: 'main',
      selectors: [['aria/User name'], ['#user'], ['xpath///*[@id="user"]'], ['pierce/#user']],
      offsetX: 61,
      offsetY: 9,
    },
    { type: 'change', value: 'ada', selectors: [['aria/User name'], ['#user']], target: 'main' },
    { type: 'keyDown', target: 'main', key: 'Enter' },
    { type: 'keyUp', key: 'Enter', target: 'main' },
    {
      type: 'click',
      target: 'main',
      selectors: [['aria/Sign in[role="button"]'], ['#sign-in'], ['text/Sign in']],
      offsetX: 20,
      offsetY: 8,
      deviceType: 'mouse',
      duration: 52,
      assertedEvents: [{ type: 'navigation', url: 'https://portal.example.com/home', title: '' }],
    },
    { type: 'waitForElement', selectors: [['#welcome']], operator: '==', count: 1, visible: true },
    { type: 'customStep', name: 'stepwise.extract', parameters: { selectors: ['#claims'], as: 'table', output: 'claims' } },
  ],
};

function validationError(fn: () => unknown): ValidationError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    return err as ValidationError;
  }
  throw new Error('expected a ValidationError');
}

describe('parseRecorderExport', () => {
  it('turns a Recorder export into actions, dropping what Stepwise has no use for', () => {
    const parsed = parseRecorderExport(JSON.stringify(RECORDING));
    expect(parsed.title).toBe('Log in to the portal');
    expect(parsed.actions).toHaveLength(RECORDING.steps.length);
    expect(parsed.actions[2]).toEqual({
      type: 'click',
      selectors: [['aria/User name'], ['#user'], ['xpath///*[@id="user"]'], ['pierce/#user']],
      offsetX: 61,
      offsetY: 9,
    });
    expect(parsed.actions[6]).not.toHaveProperty('deviceType');
    expect(parsed.actions[6]).not.toHaveProperty('duration');
  });

  it('gives a flow-wide timeout to actions without their own', () => {
    const parsed = parseRecorderExport({ ...RECORDING, timeout: 7_000 });
    expect(parsed.actions.every((a) => a.timeout === 7_000)).toBe(true);
  });

  it.each([
    [{ steps: [{ type: 'navigate', url: 'https://x.test/' }, {}, { type: 'click', offsetX: 1, offsetY: 1 }] }, '/steps/1/type is required'],
    [{ steps: [{ type: 'navigate', url: 'https://x.test/' }, { type: 'click', offsetX: 1, offsetY: 1 }] }, '/steps/1/selectors is required'],
    [{ steps: [{ type: 'emulateNetworkConditions', download: 1, upload: 1, latency: 1 }] }, '/steps/0/type must be one of setViewport, navigate'],
    [{ steps: [{ type: 'click', selectors: ['#a'], timeout: 90_000 }] }, '/steps/0/timeout must be <= 60000'],
    [{ steps: [{ type: 'click', selectors: ['#a'], target: 'popup-1' }] }, '/steps/0/target must be "main"'],
    [{ steps: [{ type: 'click', selectors: [] }] }, '/steps/0/selectors must NOT have fewer than 1 items'],
    [{ steps: [{ type: 'waitForElement', selectors: ['#a'], attributes: { x: '1' } }] }, '/steps/0/attributes is not a known property'],
    [{ steps: [{ type: 'customStep', name: 'stepwise.nope', parameters: {} }] }, '/steps/0/name must be one of stepwise.extract'],
    [{ steps: [{ type: 'customStep', name: 'stepwise.extract', parameters: { selectors: ['#t'] } }] }, '/steps/0/parameters/output is required'],
    [{ steps: [{ type: 'customStep', name: 'stepwise.extract', parameters: { selectors: ['#t'], as: 'attribute', output: 'x' } }] }, '/steps/0/parameters/attribute is required'],
    [{ steps: [{ type: 'customStep', name: 'stepwise.assertText', parameters: { selectors: ['#t'], equals: 'a', contains: 'b' } }] }, '/steps/0/parameters needs exactly one of equals, contains, matches'],
    [{ steps: [{ type: 'customStep', name: 'stepwise.select', parameters: { selectors: ['#t'] } }] }, '/steps/0/parameters needs at least one of value, label'],
    [{ steps: [{ type: 'customStep', name: 'stepwise.download', parameters: {} }] }, '/steps/0/parameters needs exactly one of selectors, url'],
    [{ title: 'x' }, '/steps is required'],
    [{ steps: [] }, '/steps must hold at least one step'],
  ])('refuses %j: %s', (recording, message) => {
    const err = validationError(() => parseRecorderExport(recording));
    expect(err.message.startsWith(message)).toBe(true);
    expect(err.details.path).toBe(message.split(' ')[0]);
  });

  it('refuses text that is not JSON, and JSON that is not an export', () => {
    expect(validationError(() => parseRecorderExport('{ nope')).message).toBe('the recording is not JSON');
    expect(validationError(() => parseRecorderExport([])).details.path).toBe('');
  });

  it('the action schema embeds in a strict Ajv (as the definition schema holds it)', () => {
    const ajv = new Ajv2020({ allErrors: false, discriminator: true, strict: true, strictRequired: false });
    const check = ajv.compile({ type: 'object', properties: { actions: { type: 'array', items: recorderActionSchema } } });
    expect(check({ actions: parseRecorderExport(RECORDING).actions })).toBe(true);
    expect(check({ actions: [{ type: 'click', selectors: ['#a'], sideEffect: true, verify: [['#done']] }] })).toBe(true);
    expect(check({ actions: [{ type: 'click', selectors: ['#a'], sideEffect: 'yes' }] })).toBe(false);
  });
});

describe('selector parts', () => {
  it.each([
    ['#user', { kind: 'css', css: '#user' }],
    ['pierce/#inner', { kind: 'css', css: '#inner' }],
    ['xpath///*[@id="a"]', { kind: 'xpath', xpath: '//*[@id="a"]' }],
    ['text/Sign in', { kind: 'text', text: 'Sign in' }],
    ['aria/Member ID', { kind: 'aria', name: 'Member ID', role: undefined }],
    ['aria/Sign in[role="button"]', { kind: 'aria', name: 'Sign in', role: 'button' }],
    ['aria/[name="Say \\"hi\\""][role="link"]', { kind: 'aria', name: 'Say "hi"', role: 'link' }],
  ])('%s', (part, parsed) => {
    expect(parsePart(part)).toEqual(parsed);
  });
});

describe('context slots', () => {
  it('grant in arrival order, pass a released slot on, and let an aborted waiter leave', async () => {
    const slots = new Slots(1);
    const first = await slots.acquire(new AbortController().signal);
    const leaving = new AbortController();
    const order: string[] = [];
    const a = slots.acquire(leaving.signal).then((r) => (order.push('a'), r));
    const b = slots.acquire(new AbortController().signal).then((r) => (order.push('b'), r));
    expect(slots.waiting).toBe(2);
    leaving.abort(new Error('gone'));
    await expect(a).rejects.toThrow('gone');
    first();
    first(); // a second release is a no-op
    const releaseB = await b;
    expect(order).toEqual(['b']);
    expect(slots.inUse).toBe(1);
    releaseB();
    expect(slots.inUse).toBe(0);
  });
});

describe('browser pool without Chromium', () => {
  it('fails open with BROWSER_LAUNCH_FAILED naming the path and the setting, and frees its slot', async () => {
    const pool = new BrowserPool({ executablePath: '/nonexistent/chromium', maxContexts: 1 });
    const request = { proxy: { server: 'http://127.0.0.1:9', username: 'u', password: 'p' }, signal: new AbortController().signal };
    for (let i = 0; i < 2; i++) {
      const err = await pool.open(request).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(BrowserActionError);
      expect((err as BrowserActionError).code).toBe('BROWSER_LAUNCH_FAILED');
      expect((err as Error).message).toContain('/nonexistent/chromium');
      expect((err as Error).message).toContain('STEPWISE_CHROMIUM_PATH');
    }
    expect(pool.stats().contexts).toBe(0);
    await pool.close();
  });

  it('refuses a proxy that is not a URL or carries its credentials inline', async () => {
    const pool = new BrowserPool({ executablePath: '/nonexistent/chromium' });
    for (const server of ['127.0.0.1:9', 'http://u:p@127.0.0.1:9', 'ftp://127.0.0.1:9']) {
      const err = await pool.open({ proxy: { server, username: 'u', password: 'p' }, signal: new AbortController().signal }).catch((e: unknown) => e);
      expect((err as BrowserActionError).code).toBe('BROWSER_ACTION_INVALID');
    }
    await pool.close();
  });
});
