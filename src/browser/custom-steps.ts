import type { Page } from 'playwright-core';
import type { ActionTarget } from './actions.js';
import { pause, type Deadline } from './deadline.js';
import { browserError, describeSelectors } from './errors.js';
import { navigate, webUrl } from './navigation.js';
import { ELEMENT_HTML, ELEMENT_TEXT, TABLE_ROWS, TEXT_CHECK } from './page-scripts.js';
import { CUSTOM_STEP_NAMES } from './custom-step-names.js';
import { chooseOption } from './select-option.js';
import { allMatches, findElement } from './selectors.js';
import type { ActionContext, ActionOutcome, RecorderAction, Selectors } from './types.js';

/** Largest extracted value, as JSON (1 MiB): it lands in the step's output and the job's record. */
export const EXTRACT_MAX_BYTES = 1024 * 1024;

/** Colour painted over masked elements in screenshots: opaque black, as a redaction looks. */
export const MASK_COLOR = '#000000';

const POLL_MS = 100;

/** Run a `customStep` named `stepwise.*`; any other name is BROWSER_ACTION_INVALID. */
export async function runCustomStep(target: ActionTarget, action: RecorderAction, ctx: ActionContext, deadline: Deadline): Promise<ActionOutcome> {
  const params = action.parameters ?? {};
  switch (action.name) {
    case 'stepwise.extract':
      return extract(target.page, action, params, deadline);
    case 'stepwise.screenshot': {
      const fullPage = optionalBoolean(params, 'fullPage') ?? false;
      const mask = optionalMasks(params);
      return { screenshot: { bytes: await takeScreenshot(target.page, { fullPage, mask }, deadline), fullPage } };
    }
    case 'stepwise.select': {
      const value = optionalString(params, 'value');
      const label = optionalString(params, 'label');
      if (value === undefined && label === undefined) throw invalid('stepwise.select needs parameters.value or parameters.label');
      const { element } = await findElement(target.page, selectorsParam(params), action.frame, deadline);
      await chooseOption(element, { value, label }, deadline);
      return {};
    }
    case 'stepwise.assertText':
      await assertText(target.page, action, params, deadline);
      return {};
    case 'stepwise.upload': {
      const refs = blobRefs(params);
      const { element } = await findElement(target.page, selectorsParam(params), action.frame, deadline);
      const files = await Promise.all(refs.map((ref) => ctx.readBlob(ref)));
      await element.setInputFiles(
        files.map((f) => ({ name: f.name, mimeType: f.contentType, buffer: f.bytes })),
        { timeout: deadline.remaining() },
      );
      return {};
    }
    case 'stepwise.download': {
      const url = optionalString(params, 'url');
      const hasSelectors = params.selectors !== undefined;
      if ((url === undefined) === !hasSelectors) throw invalid('stepwise.download needs exactly one of parameters.selectors and parameters.url');
      const page = target.page;
      let trigger: () => Promise<unknown>;
      if (url !== undefined) {
        webUrl(url, page.url()); // refuse a non-http(s) URL before anything starts
        trigger = () => navigate(page, url, deadline);
      } else {
        const selectors = selectorsParam(params);
        trigger = async () => {
          const { element } = await findElement(page, selectors, action.frame, deadline);
          await element.click({ timeout: deadline.remaining() });
        };
      }
      const file = await target.downloads.capture(page, target.downloadArea, trigger, deadline, ctx.signal, target.downloadMaxBytes);
      return { download: file };
    }
    default:
      throw invalid(`unknown custom step ${JSON.stringify(action.name)}; known: ${CUSTOM_STEP_NAMES.join(', ')}`);
  }
}

function invalid(message: string) {
  return browserError('BROWSER_ACTION_INVALID', message);
}

function optionalString(params: Record<string, unknown>, name: string): string | undefined {
  const value = params[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw invalid(`parameters.${name} must be a string`);
  return value;
}

function optionalBoolean(params: Record<string, unknown>, name: string): boolean | undefined {
  const value = params[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'boolean') throw invalid(`parameters.${name} must be true or false`);
  return value;
}

function isSelectors(value: unknown): value is Selectors {
  return (
    Array.isArray(value) &&
    value.length > 0 &&
    value.every((s) => (typeof s === 'string' && s.length > 0) || (Array.isArray(s) && s.length > 0 && s.every((p) => typeof p === 'string' && p.length > 0)))
  );
}

function selectorsParam(params: Record<string, unknown>): Selectors {
  const value = params.selectors;
  if (!isSelectors(value)) throw invalid('parameters.selectors must be a non-empty array of selectors (strings or arrays of strings)');
  return value;
}

function optionalMasks(params: Record<string, unknown>): Selectors[] {
  const value = params.mask;
  if (value === undefined) return [];
  if (!Array.isArray(value) || !value.every(isSelectors)) throw invalid('parameters.mask must be an array of selector lists');
  return value as Selectors[];
}

function blobRefs(params: Record<string, unknown>): string[] {
  const one = params.blob;
  const many = params.blobs;
  if (typeof one === 'string' && one.length > 0 && many === undefined) return [one];
  if (one === undefined && Array.isArray(many) && many.length > 0 && many.every((b) => typeof b === 'string' && b.length > 0)) return many as string[];
  throw invalid('stepwise.upload needs parameters.blob (a blob reference) or parameters.blobs (a list of them)');
}

/**
 * A PNG of the viewport or the full page with every element any mask
 * matches painted over in MASK_COLOR (Playwright paints an overlay at each
 * element's box before capturing, and removes it after).
 */
export async function takeScreenshot(page: Page, options: { fullPage: boolean; mask: readonly Selectors[] }, deadline: Deadline): Promise<Buffer> {
  const mask = (await Promise.all(options.mask.map((selectors) => allMatches(page, selectors)))).flat();
  return page.screenshot({
    type: 'png',
    fullPage: options.fullPage,
    mask,
    maskColor: MASK_COLOR,
    animations: 'disabled',
    caret: 'hide',
    timeout: deadline.remaining(),
  });
}

/** stepwise.extract: text, an attribute, a table as rows, or HTML, of the first match (of every match with `all`). */
async function extract(page: Page, action: RecorderAction, params: Record<string, unknown>, deadline: Deadline): Promise<ActionOutcome> {
  const output = optionalString(params, 'output');
  if (output === undefined || !/^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(output)) throw invalid('stepwise.extract needs parameters.output, a name ([A-Za-z_][A-Za-z0-9_]*)');
  const as = optionalString(params, 'as') ?? 'text';
  const attribute = optionalString(params, 'attribute');
  if (as === 'attribute' && attribute === undefined) throw invalid('stepwise.extract as "attribute" needs parameters.attribute');
  if (!['text', 'attribute', 'table', 'html'].includes(as)) throw invalid(`parameters.as must be text, attribute, table or html, not ${JSON.stringify(as)}`);
  const all = optionalBoolean(params, 'all') ?? false;
  const found = await findElement(page, selectorsParam(params), action.frame, deadline);
  const elements = all ? await found.matches.all() : [found.element];
  const values: unknown[] = [];
  for (const element of elements) {
    if (as === 'text') values.push((await element.evaluate(ELEMENT_TEXT)).trim());
    else if (as === 'html') values.push(await element.evaluate(ELEMENT_HTML));
    else if (as === 'attribute') values.push(await element.getAttribute(attribute!, { timeout: deadline.remaining() }));
    else {
      const rows = await element.evaluate(TABLE_ROWS);
      if (rows === null) throw invalid(`stepwise.extract as "table": the element matched by ${describeSelectors(selectorsParam(params))} is not and holds no <table>`);
      values.push(rows);
    }
  }
  const value = all ? values : values[0];
  const bytes = Buffer.byteLength(JSON.stringify(value) ?? '', 'utf8');
  if (bytes > EXTRACT_MAX_BYTES) {
    throw browserError('BROWSER_EXTRACT_TOO_LARGE', `extracted ${output} is ${bytes} bytes of JSON; the limit is ${EXTRACT_MAX_BYTES}`, { bytes, limit: EXTRACT_MAX_BYTES });
  }
  return { extracted: { name: output, value } };
}

/** stepwise.assertText: the element's text (whitespace collapsed) equals / contains / matches, within the deadline. */
async function assertText(page: Page, action: RecorderAction, params: Record<string, unknown>, deadline: Deadline): Promise<void> {
  const modes = (['equals', 'contains', 'matches'] as const).filter((m) => params[m] !== undefined);
  if (modes.length !== 1) throw invalid('stepwise.assertText needs exactly one of parameters.equals, contains and matches');
  const mode = modes[0]!;
  const raw = optionalString(params, mode)!;
  const flags = optionalString(params, 'flags') ?? '';
  if (!/^[imsu]*$/.test(flags)) throw invalid('parameters.flags may hold only i, m, s and u');
  const expected = mode === 'matches' ? raw : raw.replace(/\s+/g, ' ').trim();
  const selectors = selectorsParam(params);
  const { element } = await findElement(page, selectors, action.frame, deadline);
  for (;;) {
    const result = await element.evaluate(TEXT_CHECK, { mode, expected, flags });
    if (result.error !== undefined) throw invalid(`parameters.matches is not a valid regular expression: ${result.error}`);
    if (result.ok) return;
    if (deadline.expired()) {
      throw browserError(
        'BROWSER_ASSERTION',
        `expected the text of ${describeSelectors(selectors)} to ${mode === 'equals' ? 'equal' : mode === 'contains' ? 'contain' : 'match'} ${JSON.stringify(expected)}; it is ${JSON.stringify(result.actual.slice(0, 500))}`,
        { mode, expected, actual: result.actual.slice(0, 2000) },
      );
    }
    await pause(Math.min(POLL_MS, deadline.remaining()));
  }
}
