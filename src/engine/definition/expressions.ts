import jsonata from 'jsonata';
import { ValidationError } from '../../errors/index.js';
import { isPlainObject } from '../../util/json.js';

/**
 * JSONata expressions and `{{ … }}` string templates. User logic is JSONata
 * only — no JavaScript is ever evaluated. Compiled expressions are cached by
 * their text: a workflow runs thousands of times and compiling costs far more
 * than evaluating.
 */
export type Expression = jsonata.Expression;

const CACHE_LIMIT = 10_000;
const cache = new Map<string, Expression>();

interface JsonataError {
  message?: string;
  position?: number;
  token?: string;
}

/** Compile (or fetch from cache). Throws ValidationError naming `path` on a syntax error. */
export function compileExpression(text: string, path: string): Expression {
  const hit = cache.get(text);
  if (hit) return hit;
  let expr: Expression;
  try {
    expr = jsonata(text);
  } catch (err) {
    const e = err as JsonataError;
    throw new ValidationError(`${path}: invalid JSONata expression: ${e.message ?? String(err)}`, {
      path,
      position: e.position,
    });
  }
  if (cache.size >= CACHE_LIMIT) cache.clear();
  cache.set(text, expr);
  return expr;
}

type Segment = { literal: string } | { expr: string };

const TEMPLATE_RE = /\{\{([\s\S]*?)\}\}/g;

const parsed = new Map<string, Segment[]>();

/** Split a string into literal text and `{{ expression }}` parts (cached: definitions repeat). */
export function parseTemplate(text: string): Segment[] {
  const hit = parsed.get(text);
  if (hit) return hit;
  const segments: Segment[] = [];
  let last = 0;
  for (const m of text.matchAll(TEMPLATE_RE)) {
    if (m.index > last) segments.push({ literal: text.slice(last, m.index) });
    segments.push({ expr: m[1]!.trim() });
    last = m.index + m[0].length;
  }
  if (last < text.length) segments.push({ literal: text.slice(last) });
  if (parsed.size >= CACHE_LIMIT) parsed.clear();
  parsed.set(text, segments);
  return segments;
}

/** Compile every template inside a JSON value so definition errors surface at save time. */
export function checkTemplates(value: unknown, path: string): void {
  if (typeof value === 'string') {
    for (const seg of parseTemplate(value)) {
      if ('expr' in seg) {
        if (seg.expr === '') throw new ValidationError(`${path}: empty {{ }} template`, { path });
        compileExpression(seg.expr, path);
      }
    }
  } else if (Array.isArray(value)) {
    value.forEach((v, i) => checkTemplates(v, `${path}/${i}`));
  } else if (isPlainObject(value)) {
    for (const [k, v] of Object.entries(value)) checkTemplates(v, `${path}/${k}`);
  }
}

/** Failure while evaluating an expression at run time (becomes the step's error). */
export class ExpressionError extends Error {
  readonly code = 'EXPRESSION_ERROR';
}

const SIMPLE_PATH = /^[A-Za-z_$][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/;

/**
 * `{{ input.member }}`-style templates are most of what workflows hold, and
 * JSONata took ~35 µs to evaluate one here (the largest single cost of the
 * throughput bench). A plain dotted path over plain objects means the same
 * thing as a property lookup, so it is resolved directly; anything else —
 * an array on the way (JSONata maps over arrays), a function, an operator —
 * goes to JSONata.
 */
function lookupSimplePath(text: string, context: unknown): { found: true; value: unknown } | { found: false } {
  if (!SIMPLE_PATH.test(text) || text.startsWith('$')) return { found: false };
  let value: unknown = context;
  for (const key of text.split('.')) {
    if (!isPlainObject(value)) return { found: false };
    if (!Object.hasOwn(value, key)) return { found: true, value: undefined };
    value = value[key];
  }
  if (Array.isArray(value)) return { found: false }; // JSONata flattens singleton arrays etc.
  return { found: true, value };
}

/** Evaluate a compiled expression against the step context. */
export async function evaluate(expr: Expression, context: unknown): Promise<unknown> {
  try {
    return await expr.evaluate(context);
  } catch (err) {
    const e = err as JsonataError;
    throw new ExpressionError(`expression failed: ${e.message ?? String(err)}${e.token ? ` (at "${e.token}")` : ''}`);
  }
}

function stringify(value: unknown): string {
  if (value === undefined || value === null) return '';
  if (typeof value === 'string') return value;
  return JSON.stringify(value);
}

/**
 * Render templates inside a JSON value. A string that is exactly one
 * `{{ expr }}` keeps the value's type (so a body field can be a number or an
 * object); mixed text renders values as strings.
 */
export async function renderTemplates(value: unknown, context: unknown, path = ''): Promise<unknown> {
  if (typeof value === 'string') {
    if (!value.includes('{{')) return value;
    const segments = parseTemplate(value);
    if (segments.length === 1 && 'expr' in segments[0]!) return evaluateTemplate(segments[0].expr, context, path);
    let out = '';
    for (const seg of segments) {
      out += 'literal' in seg ? seg.literal : stringify(await evaluateTemplate(seg.expr, context, path));
    }
    return out;
  }
  if (Array.isArray(value)) {
    return Promise.all(value.map((v, i) => renderTemplates(v, context, `${path}/${i}`)));
  }
  if (isPlainObject(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = await renderTemplates(v, context, `${path}/${k}`);
    return out;
  }
  return value;
}

async function evaluateTemplate(expr: string, context: unknown, path: string): Promise<unknown> {
  const simple = lookupSimplePath(expr, context);
  return simple.found ? simple.value : evaluate(compileExpression(expr, path), context);
}

/** Render a template that must produce text (URLs, messages, header values). */
export async function renderString(text: string, context: unknown, path = ''): Promise<string> {
  return stringify(await renderTemplates(text, context, path));
}
