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

/** Split a string into literal text and `{{ expression }}` parts. */
export function parseTemplate(text: string): Segment[] {
  const segments: Segment[] = [];
  let last = 0;
  for (const m of text.matchAll(TEMPLATE_RE)) {
    if (m.index > last) segments.push({ literal: text.slice(last, m.index) });
    segments.push({ expr: m[1]!.trim() });
    last = m.index + m[0].length;
  }
  if (last < text.length) segments.push({ literal: text.slice(last) });
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
    if (segments.length === 1 && 'expr' in segments[0]!) {
      return evaluate(compileExpression(segments[0].expr, path), context);
    }
    let out = '';
    for (const seg of segments) {
      out += 'literal' in seg ? seg.literal : stringify(await evaluate(compileExpression(seg.expr, path), context));
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

/** Render a template that must produce text (URLs, messages, header values). */
export async function renderString(text: string, context: unknown, path = ''): Promise<string> {
  return stringify(await renderTemplates(text, context, path));
}
