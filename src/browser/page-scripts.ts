/**
 * The code Stepwise runs inside pages, as source text.
 *
 * Why text and not TypeScript functions: Playwright sends a function to the
 * page as `fn.toString()`, so whatever a compiler does to the function's
 * body travels with it. tsx and vitest (esbuild with keepNames) wrap inner
 * named functions in a `__name(...)` helper that does not exist in the page
 * ("__name is not defined"), and this project's TypeScript has no DOM types
 * anyway. A function built with `new Function` from text here is sent
 * exactly as written. Building it compiles the text in Node but never runs
 * it there; none of it comes from a workflow.
 */

/** A function Playwright can send to the page: `(element?, arg?) => result`. */
type InPage<Args extends unknown[], R> = (...args: Args) => R;

function inPage<Args extends unknown[], R>(params: string[], body: string): InPage<Args, R> {
  return new Function(...params, body) as InPage<Args, R>;
}

/** What an element is: chains step into iframes, `change` picks how to set a value. */
export interface ElementKind {
  tag: string;
  type: string | null;
  editable: boolean;
}

export const ELEMENT_KIND = inPage<[unknown], ElementKind>(
  ['el'],
  `return { tag: el.tagName.toLowerCase(), type: typeof el.type === 'string' ? el.type.toLowerCase() : null, editable: !!el.isContentEditable };`,
);

/** Set a value the way a user's input ends (for inputs `fill` refuses: range, color, hidden). */
export const SET_VALUE = inPage<[unknown, string], void>(
  ['el', 'value'],
  `el.focus();
   el.value = value;
   el.dispatchEvent(new Event('input', { bubbles: true }));
   el.dispatchEvent(new Event('change', { bubbles: true }));`,
);

export const SCROLL_ELEMENT = inPage<[unknown, { x: number; y: number }], void>(['el', 'to'], `el.scrollTo(to.x, to.y);`);

export const SCROLL_WINDOW = inPage<[{ x: number; y: number }], void>(['to'], `window.scrollTo(to.x, to.y);`);

/** The text a user sees in the element (innerText; textContent where there is no layout). */
export const ELEMENT_TEXT = inPage<[unknown], string>(
  ['el'],
  `return typeof el.innerText === 'string' ? el.innerText : (el.textContent || '');`,
);

export const ELEMENT_HTML = inPage<[unknown], string>(['el'], `return el.outerHTML;`);

/**
 * An HTML table (the element, or the first table inside it) as rows keyed
 * by header cells: the last row of <thead>, else a first row of <th> only,
 * else `column_1`…. Empty headers become `column_N`, repeated ones `Name_2`.
 * Cell text has its whitespace collapsed. Colspan is not expanded.
 */
export const TABLE_ROWS = inPage<[unknown], Record<string, string>[] | null>(
  ['el'],
  `const table = el.tagName === 'TABLE' ? el : el.querySelector('table');
   if (!table) return null;
   const text = (c) => (typeof c.innerText === 'string' ? c.innerText : (c.textContent || '')).replace(/\\s+/g, ' ').trim();
   const rows = Array.from(table.rows);
   let header = null;
   if (table.tHead && table.tHead.rows.length > 0) header = table.tHead.rows[table.tHead.rows.length - 1];
   else if (rows[0] && rows[0].cells.length > 0 && Array.from(rows[0].cells).every((c) => c.tagName === 'TH')) header = rows[0];
   const seen = new Map();
   const names = header ? Array.from(header.cells).map((c, i) => {
     let name = text(c) || 'column_' + (i + 1);
     const n = (seen.get(name) || 0) + 1;
     seen.set(name, n);
     if (n > 1) name = name + '_' + n;
     return name;
   }) : [];
   const out = [];
   for (const row of rows) {
     if (row === header || (table.tHead && row.parentElement === table.tHead) || row.cells.length === 0) continue;
     const record = {};
     Array.from(row.cells).forEach((c, i) => { record[names[i] || 'column_' + (i + 1)] = text(c); });
     out.push(record);
   }
   return out;`,
);

/** This frame's origin and its sessionStorage (null for opaque origins or where storage is refused). */
export const READ_SESSION_STORAGE = inPage<[], { origin: string; items: Record<string, string> } | null>(
  [],
  `try {
     if (!location.origin || location.origin === 'null') return null;
     const items = {};
     for (let i = 0; i < sessionStorage.length; i++) {
       const key = sessionStorage.key(i);
       if (key !== null) items[key] = sessionStorage.getItem(key);
     }
     return { origin: location.origin, items };
   } catch (e) {
     return null;
   }`,
);

/**
 * Init script of a restored context: fills sessionStorage for the saved
 * origins. Only into an empty storage, so a value the page has since
 * changed or removed is not put back on the next navigation.
 */
export const RESTORE_SESSION_STORAGE = inPage<[Record<string, Record<string, string>>], void>(
  ['saved'],
  `try {
     const items = saved[location.origin];
     if (!items || sessionStorage.length > 0) return;
     for (const key of Object.keys(items)) sessionStorage.setItem(key, items[key]);
   } catch (e) {}`,
);

/**
 * A waitForExpression round: the expression evaluated in the page's global
 * scope (indirect eval, in the page only), a Promise awaited. A throw counts
 * as "not yet", except a SyntaxError or EvalError, which never clears.
 */
export const POLL_EXPRESSION = inPage<[string], Promise<{ ok: boolean; error?: string; fatal?: boolean }>>(
  ['expression'],
  `return (async () => {
     try {
       const value = await (0, eval)(expression);
       return { ok: !!value };
     } catch (e) {
       const fatal = e instanceof SyntaxError || e instanceof EvalError;
       return { ok: false, error: String(e && e.message || e).slice(0, 300), fatal };
     }
   })();`,
);

/**
 * assertText in the page: the element's text against `equals`, `contains`
 * or `matches`. The regular expression runs here, in the renderer, so a
 * pathological pattern stalls a page (bounded by the action's timeout), never
 * the worker's event loop.
 */
export const TEXT_CHECK = inPage<[unknown, { mode: 'equals' | 'contains' | 'matches'; expected: string; flags: string }], { ok: boolean; actual: string; error?: string }>(
  ['el', 'check'],
  `const raw = typeof el.innerText === 'string' ? el.innerText : (el.textContent || '');
   const actual = raw.replace(/\\s+/g, ' ').trim();
   if (check.mode === 'equals') return { ok: actual === check.expected, actual };
   if (check.mode === 'contains') return { ok: actual.includes(check.expected), actual };
   try {
     return { ok: new RegExp(check.expected, check.flags).test(actual), actual };
   } catch (e) {
     return { ok: false, actual, error: String(e && e.message || e) };
   }`,
);

/** A <select>'s options (value and label), to choose by either without waiting out a timeout on a miss. */
export const SELECT_OPTIONS = inPage<[unknown], { value: string; label: string }[] | null>(
  ['el'],
  `if (el.tagName !== 'SELECT') return null;
   return Array.from(el.options).map((o) => ({ value: o.value, label: (o.label || o.textContent || '').trim() }));`,
);
